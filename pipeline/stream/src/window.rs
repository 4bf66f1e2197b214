//! The hourly windows of one scope (one Kafka partition): per hour, the results of
//! `hourly.sql` over each batch, merged by `hourly_merge.sql`; which hours are closed;
//! which need writing.
//!
//! Owns window bookkeeping only; running SQL is the caller's (through [`Merge`]).

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use deferlog_event::HOUR_US;
use deferlog_query::schema::{conform, partial_schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Folds many partial batches of one hour into one (`hourly_merge.sql`).
pub trait Merge {
    fn merge(&mut self, partials: Vec<RecordBatch>) -> Result<RecordBatch, crate::StreamError>;
}

#[derive(Debug, Default)]
struct Window {
    partials: Vec<RecordBatch>,
    closed: bool,
    /// Changed since it was last written.
    dirty: bool,
}

/// An hour to write now.
#[derive(Debug)]
pub struct Emit {
    /// Every row of one hour (the rows carry it).
    pub rows: RecordBatch,
    pub is_final: bool,
}

#[derive(Debug)]
pub struct Windows {
    hours: BTreeMap<i64, Window>,
    /// Hours before this are closed (the watermark has passed their end).
    closed_before: i64,
    /// Closed hours before this may have been written and then dropped from state.
    forgotten_before: i64,
}

/// Partials folded together before the window holds more than this many.
const MAX_PARTIALS: usize = 32;

impl Windows {
    pub fn closed_before(&self) -> i64 {
        self.closed_before
    }

    /// The newest closed hour with rows: its partial rows (they add up), as held now.
    pub fn last_closed(&self) -> Option<&[RecordBatch]> {
        self.hours
            .values()
            .rev()
            .find(|w| w.closed && !w.partials.is_empty())
            .map(|w| w.partials.as_slice())
    }

    pub fn open_hours(&self) -> usize {
        self.hours.values().filter(|w| !w.closed).count()
    }

    /// Adds `hourly.sql` over one batch (rows of any number of hours). Returns the
    /// hours that were already closed (their events are late: the hours will be
    /// written again).
    pub fn add(&mut self, partial: &RecordBatch, merge: &mut dyn Merge) -> Result<Vec<i64>, crate::StreamError> {
        let mut late = Vec::new();
        let mut crowded = Vec::new();
        for (hour_us, rows) in split_by_hour(partial) {
            let is_late = hour_us < self.closed_before;
            let w = self.hours.entry(hour_us).or_insert_with(|| Window {
                closed: is_late,
                ..Window::default()
            });
            w.partials.push(rows);
            w.dirty = true;
            if is_late {
                late.push(hour_us);
            }
            if w.partials.len() > MAX_PARTIALS {
                crowded.push(hour_us);
            }
        }
        self.merge_hours(&crowded, merge)?;
        Ok(late)
    }

    /// Folds the partials of each of `hours` into one batch, with one SQL run for all.
    fn merge_hours(&mut self, hours: &[i64], merge: &mut dyn Merge) -> Result<(), crate::StreamError> {
        let mut input = Vec::new();
        for h in hours {
            if let Some(w) = self.hours.get_mut(h) {
                input.append(&mut w.partials);
            }
        }
        if input.is_empty() {
            return Ok(());
        }
        for (hour_us, rows) in split_by_hour(&merge.merge(input)?) {
            if let Some(w) = self.hours.get_mut(&hour_us) {
                w.partials.push(rows);
            }
        }
        Ok(())
    }

    /// Closes every hour before `close_before` (never reopens one) and returns what
    /// must be written: hours that just closed or changed since written (final), and
    /// with `open_too` the open hours that changed (not final: a stop writes them so
    /// the archive covers everything consumed).
    pub fn take_emits(
        &mut self,
        close_before: i64,
        open_too: bool,
        merge: &mut dyn Merge,
    ) -> Result<Vec<Emit>, crate::StreamError> {
        self.closed_before = self.closed_before.max(close_before);
        let mut due = Vec::new();
        for (&hour_us, w) in self.hours.iter_mut() {
            if hour_us < self.closed_before && !w.closed {
                w.closed = true;
                w.dirty = true;
            }
            if w.dirty && (w.closed || open_too) && !w.partials.is_empty() {
                due.push(hour_us);
            }
        }
        self.merge_hours(&due, merge)?;
        let mut out = Vec::with_capacity(due.len());
        for hour_us in due {
            if let Some(w) = self.hours.get_mut(&hour_us)
                && let Some(rows) = w.partials.first()
            {
                w.dirty = false;
                out.push(Emit {
                    rows: rows.clone(),
                    is_final: w.closed,
                });
            }
        }
        Ok(out)
    }

    /// Forgets closed hours before `hour_us`. A late event for one of them still
    /// reaches the event archive, but its hour row is not rewritten.
    pub fn forget_before(&mut self, hour_us: i64) {
        let keep = self.hours.split_off(&hour_us);
        for (h, w) in std::mem::replace(&mut self.hours, keep) {
            // A closed hour with unwritten changes stays until it is written.
            if !w.closed || w.dirty {
                self.hours.insert(h, w);
            } else {
                // Only hours actually dropped: a scope that never held an hour (a
                // partition whose backlog starts behind the watermark) still takes it.
                self.forgotten_before = self.forgotten_before.max(h.saturating_add(HOUR_US));
            }
        }
    }

    /// Whether an event of `hour_us` belongs to an hour that may have been written
    /// and forgotten: its row cannot be rewritten without the counts it had. (A closed
    /// hour after the last one dropped is simply started, closed, and written.)
    pub fn is_forgotten(&self, hour_us: i64) -> bool {
        hour_us < self.forgotten_before && !self.hours.contains_key(&hour_us)
    }

    pub fn snapshot(&mut self, merge: &mut dyn Merge) -> Result<WindowsState, crate::StreamError> {
        let crowded: Vec<i64> = self
            .hours
            .iter()
            .filter(|(_, w)| w.partials.len() > 1)
            .map(|(h, _)| *h)
            .collect();
        self.merge_hours(&crowded, merge)?;
        let hours = self
            .hours
            .iter()
            .map(|(&hour_us, w)| HourState {
                hour_us,
                closed: w.closed,
                dirty: w.dirty,
                rows: w.partials.first().map(rows_of).unwrap_or_default(),
            })
            .collect();
        Ok(WindowsState {
            closed_before: self.closed_before,
            forgotten_before: self.forgotten_before,
            hours,
        })
    }

    pub fn restore(s: WindowsState) -> Result<Self, crate::StreamError> {
        let mut hours = BTreeMap::new();
        for h in s.hours {
            let partials = if h.rows.is_empty() {
                Vec::new()
            } else {
                vec![batch_of(&h.rows)?]
            };
            hours.insert(
                h.hour_us,
                Window {
                    partials,
                    closed: h.closed,
                    dirty: h.dirty,
                },
            );
        }
        Ok(Windows {
            hours,
            closed_before: s.closed_before,
            forgotten_before: s.forgotten_before,
        })
    }
}

/// [`Windows`] at rest, in a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WindowsState {
    pub closed_before: i64,
    pub forgotten_before: i64,
    pub hours: Vec<HourState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HourState {
    pub hour_us: i64,
    pub closed: bool,
    pub dirty: bool,
    pub rows: Vec<PartialRow>,
}

/// One merged row of an hour: (source_ip, mx_host, mx_group) and the five counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialRow {
    pub hour_us: i64,
    pub source_ip: Option<String>,
    pub mx_host: Option<String>,
    pub mx_group: Option<String>,
    pub counts: [i64; 5],
}

fn rows_of(b: &RecordBatch) -> Vec<PartialRow> {
    let hour = b.column(0).as_primitive::<TimestampMicrosecondType>();
    let text = |i: usize| b.column(i).as_string::<i32>();
    let (ip, mx, group) = (text(1), text(2), text(3));
    let get = |a: &StringArray, r: usize| a.is_valid(r).then(|| a.value(r).to_owned());
    let counts: Vec<_> = (4..9).map(|i| b.column(i).as_primitive::<Int64Type>()).collect();
    (0..b.num_rows())
        .map(|r| PartialRow {
            hour_us: hour.value(r),
            source_ip: get(ip, r),
            mx_host: get(mx, r),
            mx_group: get(group, r),
            counts: std::array::from_fn(|i| counts[i].value(r)),
        })
        .collect()
}

fn batch_of(rows: &[PartialRow]) -> Result<RecordBatch, crate::StreamError> {
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.hour_us)).with_timezone("UTC")),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.source_ip.as_deref()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.mx_host.as_deref()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.mx_group.as_deref()))),
    ];
    for i in 0..5 {
        cols.push(Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.counts[i]))));
    }
    Ok(RecordBatch::try_new(partial_schema(), cols)?)
}

/// Runs of rows with the same `hour` (the query files sort by hour first), each with
/// its hour.
fn split_by_hour(b: &RecordBatch) -> Vec<(i64, RecordBatch)> {
    let hours = b.column(0).as_primitive::<TimestampMicrosecondType>();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=b.num_rows() {
        if i == b.num_rows() || hours.value(i) != hours.value(start) {
            out.push((hours.value(start), b.slice(start, i - start)));
            start = i;
        }
    }
    out
}

/// `hourly.sql` results as the windows keep them (plain `Utf8`, the declared schema).
pub fn conform_partial(b: &RecordBatch) -> Result<RecordBatch, crate::StreamError> {
    Ok(conform(b, &partial_schema())?)
}
