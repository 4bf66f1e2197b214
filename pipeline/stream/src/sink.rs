//! Outputs beyond the archive, told each partition's epoch.

use crate::StreamError;
use arrow::record_batch::RecordBatch;

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
