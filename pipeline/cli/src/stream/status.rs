//! `run`'s periodic status line: one per process every `stream.status_interval_secs`,
//! however many group members and workers it runs, with every partition it holds.
//!
//! Each worker posts what it holds to the [`Board`] at most twice an interval (at its
//! clock checks: every few thousand records, or when the topic is quiet) and
//! publishes the lag gauges of its partitions; the worker that finds the board's
//! interval up prints the line. Another worker's partitions are as of its last post;
//! the record count and rate are exact. This module only reads the processors and the
//! source; it changes nothing they hold.

use deferlog_kafka::{LogEnds, Source, TopicPartition};
use deferlog_metrics::Exporter;
use deferlog_stream::{BatchLatency, PartitionStatus, Processor};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One partition in the line.
#[derive(Debug, Clone)]
struct Part {
    topic: String,
    partition: i32,
    next_offset: i64,
    text: String,
}

/// What one worker held at its last post.
#[derive(Debug, Clone)]
struct Post {
    /// Records of partitions it no longer held, skipped (cumulative).
    stray: u64,
    /// Its watermark (µs); `i64::MIN`: none yet.
    watermark_us: i64,
    /// Whether any of its partitions has hours open.
    open_hours: bool,
    /// Batches since the last line was printed.
    latency: BatchLatency,
    parts: Vec<Part>,
}

impl Default for Post {
    fn default() -> Self {
        Post {
            stray: 0,
            watermark_us: i64::MIN,
            open_hours: false,
            latency: BatchLatency::default(),
            parts: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Printed {
    at: Instant,
    records: u64,
    posts: Vec<Post>,
}

/// The process's status, shared by its workers.
#[derive(Debug)]
pub(crate) struct Board {
    every: Duration,
    /// Records processed by every worker of the process.
    records: AtomicU64,
    printed: Mutex<Printed>,
}

impl Board {
    pub(crate) fn new(workers: usize, every: Duration) -> Board {
        Board {
            every,
            records: AtomicU64::new(0),
            printed: Mutex::new(Printed {
                at: Instant::now(),
                records: 0,
                posts: vec![Post::default(); workers],
            }),
        }
    }

    pub(crate) fn add_records(&self, n: usize) {
        self.records.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Stores worker `slot`'s post; prints the line when the interval is up.
    fn post(&self, slot: usize, post: Post) {
        let mut p = self.printed.lock().unwrap_or_else(PoisonError::into_inner);
        // Read with the count, under the lock: a rate of records counted by now.
        let now = Instant::now();
        let Some(mine) = p.posts.get_mut(slot) else {
            return;
        };
        let mut latency = std::mem::take(&mut mine.latency);
        latency.merge(&post.latency);
        *mine = Post { latency, ..post };
        let dt = now.saturating_duration_since(p.at);
        if dt < self.every {
            return;
        }
        let records = self.records.load(Ordering::Relaxed);
        say!("deferlog run: {}", line(&p.posts, records - p.records, records, dt));
        p.at = now;
        p.records = records;
        for post in &mut p.posts {
            post.latency = BatchLatency::default();
        }
    }
}

/// The status line, without its `deferlog run: ` prefix.
fn line(posts: &[Post], new_records: u64, records: u64, dt: Duration) -> String {
    let rate = new_records as f64 / dt.as_secs_f64().max(1e-9);
    let mut latency = BatchLatency::default();
    for p in posts {
        latency.merge(&p.latency);
    }
    // A partition that moved between workers is in both posts until the one it left
    // posts again.
    let mut parts: Vec<&Part> = posts.iter().flat_map(|p| &p.parts).collect();
    newest_per_partition(&mut parts, |p| (&p.topic, p.partition, p.next_offset));
    let parts = if parts.is_empty() {
        "no partitions held".to_owned()
    } else {
        parts.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(", ")
    };
    let wm = process_watermark(
        posts
            .iter()
            .map(|p| worker_watermark(p.watermark_us, !p.parts.is_empty(), p.open_hours)),
    )
    .and_then(chrono::DateTime::from_timestamp_micros)
    .map_or("none".to_owned(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    // A worker's count includes partitions it held before they moved elsewhere.
    let stray = match posts.iter().map(|p| p.stray).sum::<u64>() {
        0 => String::new(),
        n => format!(", {n} skipped: their partition had gone to another member"),
    };
    format!("{records} records processed ({rate:.0}/s{stray}), watermark {wm}, batch latency {latency}; {parts}")
}

/// A worker's say in the process's watermark: its own (`i64::MIN`: none yet), or
/// `None` when it has nothing to close: no partition (its watermark, which never goes
/// back, belongs to partitions gone elsewhere), or no watermark and no hour open (its
/// partitions have had no event yet).
pub(crate) fn worker_watermark(watermark_us: i64, holds: bool, open_hours: bool) -> Option<i64> {
    (holds && (watermark_us != i64::MIN || open_hours)).then_some(watermark_us)
}

/// The process's watermark over its workers' says: a worker with hours open and no
/// watermark yet holds it at none, since no hour is final everywhere then.
pub(crate) fn process_watermark(workers: impl IntoIterator<Item = Option<i64>>) -> Option<i64> {
    workers.into_iter().flatten().min().filter(|w| *w != i64::MIN)
}

/// Sorts by (topic, partition) and keeps one entry of each, the one furthest on
/// (`key`: topic, partition, next offset): workers' reports of a partition that moved
/// between them.
pub(crate) fn newest_per_partition<T>(items: &mut Vec<T>, key: impl Fn(&T) -> (&str, i32, i64)) {
    items.sort_by(|a, b| {
        let (ta, pa, oa) = key(a);
        let (tb, pb, ob) = key(b);
        (ta, pa).cmp(&(tb, pb)).then(ob.cmp(&oa))
    });
    items.dedup_by(|later, kept| {
        let (tl, pl, _) = key(later);
        let (tk, pk, _) = key(kept);
        (tl, pl) == (tk, pk)
    });
}

/// One partition's entry: offset, lag, open hours, whether it holds the watermark
/// back (`now`, when its worker's watermark has a say: see [`worker_watermark`]), and
/// what reaches no hourly row.
fn part_text(p: &PartitionStatus, ends: Option<&LogEnds>, now: Option<Instant>) -> String {
    let lag = ends.map_or("?".to_owned(), |e| e.lag(p.next_offset).to_string());
    // A partition held but never read has no position yet (its offset is -1).
    let at = match p.next_offset {
        o if o < 0 => "nothing read yet".to_owned(),
        o => format!("@{o}"),
    };
    let mut s = format!("{}/{} {at} lag {lag} open {}h", p.topic, p.partition, p.open_hours);
    // Why the watermark says none while hours are open: a partition whose records
    // hold no delivery event (a quiet or inbound-only host).
    if let Some((until, now)) = p.holds_watermark_until.zip(now)
        && let left = until.saturating_duration_since(now)
        && !left.is_zero()
    {
        s.push_str(&format!(
            " (no event yet: holds the watermark back for up to {}s more, idle_timeout_secs)",
            left.as_secs_f64().ceil()
        ));
    }
    // Taken with no checkpoint here, reading from the group's committed offset past
    // the log's start: those records reach no output of this archive (another
    // consumer's group_id, or another archive's), and nothing else would say so.
    if let (Some(first), Some(e)) = (p.unresumed_start, ends) {
        let start = first.unwrap_or(e.committed);
        if start > e.low {
            s.push_str(&format!(
                " (no checkpoint of it in this archive: read from the group's committed offset {start}, not the \
                 log's start {}: the {} records before it are in no output here; is kafka.group_id another \
                 consumer's, or was stream.out another directory?)",
                e.low,
                start - e.low
            ));
        }
    }
    if p.counters.unkeyed > 0 {
        s.push_str(&format!(
            " ({} records with events but without a key: a producer that does not key by MTA host spreads a message over \
             partitions, and its attempts are numbered apart; see README, The stream)",
            p.counters.unkeyed
        ));
    }
    if p.counters.redelivered > 0 {
        s.push_str(&format!(
            " ({} records below the checkpoint skipped)",
            p.counters.redelivered
        ));
    }
    if p.counters.late_forgotten > 0 {
        s.push_str(&format!(
            " ({} events later than keep_closed_hours: archived, not in hourly rows)",
            p.counters.late_forgotten
        ));
    }
    // State limits (DESIGN: hitting one is counted and logged).
    if p.stats.evictions > 0 {
        s.push_str(&format!(
            " ({} queue ids dropped from full correlation state, limits.max_queue_ids: their later lines lose \
             their attempt numbers and expiry attribution)",
            p.stats.evictions
        ));
    }
    if p.stats.untracked_recipients > 0 {
        s.push_str(&format!(
            " ({} attempts to recipients past {} of one queue id: no attempt number, and no expiry of their own)",
            p.stats.untracked_recipients,
            deferlog_parse::MAX_RCPTS_PER_QUEUE_ID
        ));
    }
    if p.folded_events > 0 {
        s.push_str(&format!(
            " ({} events counted under `other` labels in the metrics, metrics.scope_series_limit reached)",
            p.folded_events
        ));
    }
    if p.counters.missing_pieces > 0 {
        s.push_str(&format!(
            " ({} staged files the checkpoint listed were gone (removed by hand from `_state/staging` or the \
             archive?): what they held is not archived)",
            p.counters.missing_pieces
        ));
    }
    if p.counters.set_aside_pieces > 0 {
        s.push_str(&format!(
            " ({} staged pieces of open hours could not be used (damaged, or no checkpoint named them): set aside \
             in `_state/set-aside/`, their events are in no output)",
            p.counters.set_aside_pieces
        ));
    }
    s
}

/// A worker's side: when to post, and the lag gauges it set.
pub(crate) struct Status {
    /// This worker's place among the process's.
    slot: usize,
    every: Duration,
    last: Instant,
    exporter: Arc<Exporter>,
    /// Partitions this worker has published a lag for.
    lagged: Vec<(String, i32)>,
}

impl Status {
    pub(crate) fn new(slot: usize, board: &Board, exporter: Arc<Exporter>) -> Self {
        Status {
            slot,
            every: board.every / 2,
            last: Instant::now(),
            exporter,
            lagged: Vec::new(),
        }
    }

    /// Lag gauges for the partitions held (from their own positions, so a partition
    /// with nothing new since a restart shows 0, not nothing); a partition let go
    /// loses its gauge.
    fn publish_lag(
        &mut self,
        ends: &BTreeMap<TopicPartition, LogEnds>,
        held: &[PartitionStatus],
    ) -> Vec<Option<LogEnds>> {
        let now: Vec<(String, i32)> = held.iter().map(|p| (p.topic.clone(), p.partition)).collect();
        for (t, p) in self.lagged.iter().filter(|k| !now.contains(k)) {
            self.exporter.set_lag(t, *p, None, self.slot);
        }
        let of_held: Vec<Option<LogEnds>> = now.iter().map(|k| ends.get(k).copied()).collect();
        for ((k, e), p) in now.iter().zip(&of_held).zip(held) {
            self.exporter
                .set_lag(&k.0, k.1, e.map(|e| e.lag(p.next_offset)), self.slot);
        }
        self.lagged = now;
        of_held
    }

    /// Posts this worker's partitions to the board when its half interval is up.
    pub(crate) fn maybe_post(&mut self, now: Instant, proc: &mut Processor, source: &Source, board: &Board) {
        if now.duration_since(self.last) < self.every {
            return;
        }
        let held = proc.status();
        let ends = self.publish_lag(&source.log_ends(), &held);
        let open_hours = held.iter().any(|p| p.open_hours > 0);
        let watermark_us = proc.watermark_us();
        let says = worker_watermark(watermark_us, true, open_hours).map(|_| now);
        let parts = held
            .iter()
            .zip(ends)
            .map(|(p, ends)| Part {
                topic: p.topic.clone(),
                partition: p.partition,
                next_offset: p.next_offset,
                text: part_text(p, ends.as_ref(), says),
            })
            .collect();
        let post = Post {
            stray: proc.stray_records(),
            watermark_us,
            open_hours,
            latency: proc.take_batch_latency(),
            parts,
        };
        board.post(self.slot, post);
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(topic: &str, partition: i32, next_offset: i64) -> Part {
        Part {
            topic: topic.to_owned(),
            partition,
            next_offset,
            text: format!("{topic}/{partition} @{next_offset}"),
        }
    }

    /// `batches` batches taking `total_ms` in all, the longest `max_ms`.
    fn latency(batches: u64, total_ms: u64, max_ms: u64) -> BatchLatency {
        BatchLatency {
            batches,
            total: Duration::from_millis(total_ms),
            max: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn a_partition_without_events_says_how_long_it_holds_the_watermark_back() {
        let now = Instant::now();
        let status = |until: Option<Instant>| PartitionStatus {
            topic: "mail".into(),
            partition: 3,
            next_offset: 120,
            max_event_us: None,
            holds_watermark_until: until,
            open_hours: 0,
            closed_before: i64::MIN,
            stats: Default::default(),
            counters: Default::default(),
            folded_events: 0,
            unresumed_start: None,
        };
        // Read up to the log's end: lag 0.
        let caught_up = LogEnds {
            low: 0,
            high: 120,
            committed: 100,
        };
        let e = Some(&caught_up);
        let holding = status(Some(now + Duration::from_millis(39_200)));
        assert_eq!(
            part_text(&holding, e, Some(now)),
            "mail/3 @120 lag 0 open 0h (no event yet: holds the watermark back for up to 40s more, idle_timeout_secs)"
        );
        // Not when its worker's watermark has no say (no watermark, no hour open).
        assert_eq!(part_text(&holding, e, None), "mail/3 @120 lag 0 open 0h");
        for until in [None, Some(now)] {
            assert_eq!(part_text(&status(until), e, Some(now)), "mail/3 @120 lag 0 open 0h");
        }
        // Held but never read: no offset to show.
        let unread = PartitionStatus {
            next_offset: -1,
            ..status(None)
        };
        assert_eq!(part_text(&unread, None, None), "mail/3 nothing read yet lag ? open 0h");
        // Taken with no checkpoint position, reading from past the log's start: said.
        let foreign = |start: Option<i64>| PartitionStatus {
            unresumed_start: Some(start),
            ..status(None)
        };
        let committed = LogEnds {
            low: 7,
            high: 200,
            committed: 150,
        };
        for start in [None, Some(150)] {
            let text = part_text(&foreign(start), Some(&committed), None);
            assert!(
                text.contains("read from the group's committed offset 150, not the log's start 7: the 143 records"),
                "{text}"
            );
        }
        let from_start = part_text(&foreign(Some(7)), Some(&committed), None);
        assert_eq!(from_start, "mail/3 @120 lag 80 open 0h");
        assert_eq!(
            part_text(&status(None), Some(&committed), None),
            "mail/3 @120 lag 80 open 0h"
        );
        // A state limit reached is said on every line from then on.
        let mut full = PartitionStatus {
            folded_events: 12,
            ..status(None)
        };
        full.stats.evictions = 3;
        full.stats.untracked_recipients = 5;
        let text = part_text(&full, e, None);
        assert!(
            text.contains("(3 queue ids dropped from full correlation state, limits.max_queue_ids")
                && text.contains("(12 events counted under `other` labels in the metrics, metrics.scope_series_limit")
                && text.contains("(5 attempts to recipients past 1024 of one queue id"),
            "{text}"
        );
    }

    #[test]
    fn a_worker_holds_the_processs_watermark_back_only_with_something_to_close() {
        let w = |us: i64, holds: bool, open: bool| worker_watermark(us, holds, open);
        assert_eq!(process_watermark([w(20, true, true), w(10, true, false)]), Some(10));
        // Hours open and no watermark yet.
        assert_eq!(process_watermark([w(20, true, true), w(i64::MIN, true, true)]), None);
        // No event yet in its partitions, or no partitions: nothing to close.
        assert_eq!(
            process_watermark([w(20, true, true), w(i64::MIN, true, false)]),
            Some(20)
        );
        assert_eq!(process_watermark([w(20, true, true), w(5, false, false)]), Some(20));
        assert_eq!(process_watermark([w(5, false, false)]), None);
    }

    #[test]
    fn one_line_holds_every_workers_partitions_once_and_the_oldest_watermark() {
        let posts = vec![
            Post {
                stray: 2,
                watermark_us: 1_764_550_800_000_000, // 2025-12-01T01:00:00Z
                open_hours: true,
                latency: latency(1, 30, 30),
                // mail/3 moved to worker 1 since this post.
                parts: vec![part("mail", 1, 10), part("mail", 3, 5)],
            },
            Post {
                stray: 0,
                watermark_us: 1_764_547_200_000_000, // 2025-12-01T00:00:00Z
                open_hours: true,
                latency: latency(3, 30, 20),
                parts: vec![part("mail", 3, 7), part("mail", 0, 4)],
            },
            // A worker that holds nothing yet, one whose partitions all went, and one
            // whose partitions have had records but no event.
            Post::default(),
            Post {
                watermark_us: 1_764_500_000_000_000,
                ..Post::default()
            },
            Post {
                parts: vec![part("mail", 5, 9)],
                ..Post::default()
            },
        ];
        let l = line(&posts, 500, 1500, Duration::from_secs(10));
        assert_eq!(
            l,
            "1500 records processed (50/s, 2 skipped: their partition had gone to another member), \
             watermark 2025-12-01T00:00:00Z, batch latency avg 15 ms, max 30 ms over 4 batches; \
             mail/0 @4, mail/1 @10, mail/3 @7, mail/5 @9"
        );
        // Hours open and no watermark yet: nothing is final everywhere.
        let mut holding_back = posts;
        holding_back[4].open_hours = true;
        let l = line(&holding_back, 500, 1500, Duration::from_secs(10));
        assert!(l.contains("watermark none"), "{l}");
        let idle = line(&[Post::default()], 0, 0, Duration::from_secs(10));
        assert_eq!(
            idle,
            "0 records processed (0/s), watermark none, batch latency no batches; no partitions held"
        );
    }
}
