//! The stream core: records in (from Kafka, but this crate does not know Kafka), and
//! per record source partition ("scope"): normalize, batch, archive, window, checkpoint.
//!
//! Owns: event-time hourly windows (`window`), the checkpoint and staging protocol
//! (`checkpoint`), per-partition state (`partition`) and the watermark over all
//! partitions (`processor`). SQL runs through `deferlog-query` (`sql`); files go
//! through `deferlog-archive`. Must not touch rdkafka, sockets or signals: the caller
//! polls the broker, feeds [`Record`]s and commits the offsets this crate returns.

mod checkpoint;
mod counting;
mod error;
mod partition;
mod processor;
mod sql;
mod window;
mod writer;

pub use checkpoint::{Checkpoint, STATE_DIR, ScopeDirs};
pub use counting::{add_counter_rows, count_health};
pub use error::StreamError;
pub use partition::scope_of;
pub use processor::{BatchLatency, Moving, PartitionStatus, Processor, Record, StreamConfig, TenantFrom, TopicConfig};
pub use window::{PartialRow, WindowsState};

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Outputs beyond the archive (Kafka topics, the demo's screen). Each partition's
/// epoch is handed over after its files are sealed and before its checkpoint is
/// stored: a crash in between redoes the epoch, so a sink sees every epoch at least
/// once, with the same revision (the epoch number) each time, and keys its records
/// so that readers can drop repeats.
pub trait EpochSink: Send {
    /// `hourly`: stored hourly rows (scope, revision, final included); `dead_letters`:
    /// the epoch's dead letters (the `rejects/` schema).
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], dead_letters: &[RecordBatch]) -> Result<(), StreamError>;

    /// After a Processor's checkpoint is stored (every partition it checkpointed at
    /// once, or one it let go): a sink that gathers the epochs acts on them once here
    /// rather than once per partition.
    fn checkpointed(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

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
    /// Held pieces of open hours (see `checkpoint.rs`) missing from staging when their
    /// hour's file gathered them: removed by hand, or by a second holder of the scope in
    /// the fence's window. Their events are not in the archive; the hourly rows count
    /// them.
    #[serde(default)]
    pub missing_pieces: u64,
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
