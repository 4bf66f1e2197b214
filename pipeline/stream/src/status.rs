//! What a worker tells about its partitions and batches, for logs and metrics.

use crate::Counters;
use deferlog_metrics::Exporter;
use deferlog_parse::Stats;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One partition's position and state, for logs and metrics.
#[derive(Debug, Clone)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    pub max_event_us: Option<i64>,
    /// No event yet: until when it holds the watermark back, unless one comes.
    pub holds_watermark_until: Option<Instant>,
    pub open_hours: usize,
    pub closed_before: i64,
    pub stats: Stats,
    pub counters: Counters,
    /// Events counted under all-`other` labels: its label sets reached the series limit.
    pub folded_events: u64,
    /// Taken with no checkpoint position: where reading began (`Some(None)`: nothing
    /// read yet). `None` when the checkpoint gave the start.
    pub unresumed_start: Option<Option<i64>>,
}

/// Batch latencies (first event of a batch in, to its rows archived and windowed)
/// since they were last taken.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct BatchLatency {
    pub batches: u64,
    pub total: Duration,
    pub max: Duration,
}

/// Batch latencies: summed for the status line, observed into the exporter's histogram.
#[derive(Debug, Default)]
pub(crate) struct LatencyMeter {
    pub(crate) since_taken: BatchLatency,
    pub(crate) metrics: Option<Arc<Exporter>>,
}

impl BatchLatency {
    /// Adds another worker's (or another interval's) batches.
    pub fn merge(&mut self, o: &BatchLatency) {
        self.batches += o.batches;
        self.total += o.total;
        self.max = self.max.max(o.max);
    }
}

impl LatencyMeter {
    pub(crate) fn add(&mut self, d: Option<Duration>) {
        if let Some(d) = d {
            self.since_taken.merge(&BatchLatency {
                batches: 1,
                total: d,
                max: d,
            });
            if let Some(m) = &self.metrics {
                m.observe_batch_latency(d);
            }
        }
    }
}

impl std::fmt::Display for BatchLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.batches == 0 {
            return f.write_str("no batches");
        }
        let avg = self.total / u32::try_from(self.batches).unwrap_or(u32::MAX);
        write!(
            f,
            "avg {:.0} ms, max {:.0} ms over {} batches",
            avg.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3,
            self.batches
        )
    }
}
