//! What the stream counted beyond the parsers ([`Counters`], checkpointed; [`Timings`])
//! and turning it into metric [`Counts`]: rows of `counters.sql` (delivery series) and
//! the cumulative counters and parser statistics (health series). Shared with
//! `replay`, so both export the same series.

use crate::StreamError;
use arrow::record_batch::RecordBatch;
use deferlog_event::Mta;
use deferlog_metrics::{Counts, DeliveryRow, Family, key};
use deferlog_parse::{RejectReason, SkipKind, Stats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the stream did with records beyond the normalizer's own counts; kept in the
/// checkpoint so counts continue across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub records: u64,
    /// Records sent to the dead-letter output before or instead of parsing, by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Events whose hour was already closed (its row is written again).
    pub late_events: u64,
    /// Late events whose hour was already forgotten (kept in the event archive, but
    /// their hour row is not rewritten).
    pub late_forgotten: u64,
    /// Records delivered again below the partition's position, skipped.
    #[serde(default)]
    pub redelivered: u64,
    /// Records without a key that gave events: producers that do not key by MTA host spread one
    /// message's records over partitions, where each is correlated alone (attempts
    /// numbered from 1 again, expiries without their last attempt).
    #[serde(default)]
    pub unkeyed: u64,
    /// Staged files the checkpoint listed but that were gone: held pieces of open hours
    /// (see `checkpoint.rs`) missing when their hour's file gathered them, and pending
    /// files in neither staging nor the archive at recovery. Removed by hand, or by a
    /// second holder of the scope in the fence's window. What they held is not in the
    /// archive; the hourly rows and metrics count their events.
    #[serde(default)]
    pub missing_pieces: u64,
    /// Pieces of open hours that could not be used: damaged (unreadable when their
    /// hour's file gathered them), or staged for a scope that had no checkpoint (its
    /// checkpoint removed by hand, after it could not be read). Moved to
    /// `_state/set-aside/`, not deleted; their events were read and are in no output.
    #[serde(default)]
    pub set_aside_pieces: u64,
}

/// Where the stream's own time went (the caller adds the time spent consuming).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// `hourly.sql` over each batch and `hourly_merge.sql` into the windows.
    pub sql: std::time::Duration,
    /// Events files encoded and sealed, on the writer threads: not part of the
    /// processing threads' time.
    pub write: std::time::Duration,
    /// Closing windows, writing hourly rows and dead letters, waiting for the
    /// writer's files, storing checkpoints, publishing.
    pub checkpoint: std::time::Duration,
}

impl Timings {
    pub fn add(&mut self, o: &Timings) {
        self.sql += o.sql;
        self.write += o.write;
        self.checkpoint += o.checkpoint;
    }
}

/// Adds the rows of `counters.sql` to `counts`; a null label is exported empty.
pub fn add_counter_rows(b: &RecordBatch, counts: &mut Counts, limit: usize) -> Result<(), StreamError> {
    use arrow::array::{Array, AsArray};
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, Int64Type};
    let text = |i: usize| cast(b.column(i), &DataType::Utf8);
    let cols = (0..7).map(text).collect::<Result<Vec<_>, _>>()?;
    let s: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
    let n = cast(b.column(7), &DataType::Int64)?;
    let n = n.as_primitive::<Int64Type>();
    let v = |c: usize, i: usize| if s[c].is_null(i) { "" } else { s[c].value(i) };
    for i in 0..b.num_rows() {
        counts.add_delivery(
            &DeliveryRow {
                tenant: v(0, i),
                mta: v(1, i),
                source_ip: v(2, i),
                mx_group: v(3, i),
                mx_host: v(4, i),
                outcome: v(5, i),
                class: v(6, i),
                events: u64::try_from(n.value(i)).unwrap_or(0),
            },
            limit,
        );
    }
    Ok(())
}

/// The `mta` label of a reject: records that are no MTA's count as `unknown`.
fn mta_label(mta: Option<Mta>) -> &'static str {
    mta.map_or("unknown", Mta::as_str)
}

/// Sets the health series from counts kept cumulatively elsewhere.
pub fn count_health(c: &mut Counts, counters: &Counters, stats: &Stats) {
    c.set(key(Family::Records, &[]), counters.records);
    c.set(key(Family::LateEvents, &[]), counters.late_events);
    c.set(key(Family::LateUnmerged, &[]), counters.late_forgotten);
    c.set(key(Family::CorrelationEvictions, &[]), stats.evictions);
    // Counted where rows fold (`Counts::add_delivery`); shown at 0 until then, so an
    // alert on its rate has data from the start.
    c.add(&key(Family::StateFolded, &[]), 0);
    let mut rejects: BTreeMap<(&str, &str), u64> = Default::default();
    for m in [None].into_iter().chain(Mta::ALL.iter().map(|m| Some(*m))) {
        for r in RejectReason::ALL {
            *rejects.entry((mta_label(m), r.as_str())).or_default() += stats.rejected_by(m, *r);
        }
    }
    // Whole records, before any MTA's parser saw them (a bad key, an empty value);
    // `bad_tenant` also comes from shippers' envelopes.
    for (reason, n) in &counters.dead_letters {
        *rejects.entry((mta_label(None), reason)).or_default() += n;
    }
    for ((m, r), n) in rejects {
        if n > 0 {
            c.set(key(Family::Rejects, &[m, r]), n);
        }
    }
    for k in SkipKind::ALL {
        if stats.skipped(*k) > 0 {
            c.set(key(Family::Skipped, &[k.as_str()]), stats.skipped(*k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_are_labelled_by_the_mta_that_wrote_them() {
        let mut stats = Stats::default();
        stats.reject(Some(Mta::KumoMta), RejectReason::BadJson);
        stats.reject(Some(Mta::Exim), RejectReason::BadRecipient);
        stats.reject(Some(Mta::Exim), RejectReason::BadRecipient);
        stats.reject(None, RejectReason::BadJson);
        stats.reject(None, RejectReason::BadTenant);
        let mut counters = Counters::default();
        counters.dead_letters.insert("bad_key".into(), 3);
        counters.dead_letters.insert("bad_tenant".into(), 2);
        let mut c = Counts::default();
        count_health(&mut c, &counters, &stats);
        let rejects = |labels: &[&str]| c.get(&key(Family::Rejects, labels));
        assert_eq!(rejects(&["kumomta", "bad_json"]), 1);
        assert_eq!(rejects(&["exim", "bad_recipient"]), 2);
        assert_eq!(rejects(&["unknown", "bad_json"]), 1);
        assert_eq!(rejects(&["unknown", "bad_key"]), 3);
        assert_eq!(rejects(&["unknown", "bad_tenant"]), 3, "envelopes' and keys' together");
        assert_eq!(rejects(&["postfix", "bad_json"]), 0);
        assert_eq!(c.total(Family::Rejects), 10);
        let folded = key(Family::StateFolded, &[]);
        assert!(c.iter().any(|(k, n)| k == folded && n == 0), "exported at 0");
    }

    #[test]
    fn late_events_too_late_for_their_hour_row_are_counted_apart() {
        let counters = Counters {
            late_events: 5,
            late_forgotten: 2,
            ..Counters::default()
        };
        let mut c = Counts::default();
        count_health(&mut c, &counters, &Stats::default());
        assert_eq!(c.get(&key(Family::LateEvents, &[])), 5);
        assert_eq!(c.get(&key(Family::LateUnmerged, &[])), 2);
    }
}
