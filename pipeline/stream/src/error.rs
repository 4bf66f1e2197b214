//! Failures of the stream's machinery (disk, SQL, state, outputs): never bad input,
//! which is counted and dead-lettered instead.

use std::path::PathBuf;

/// Failures of the stream's own machinery (disk, SQL, state). Bad input is never an
/// error here: it is counted and dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error(
        "checkpoint {path} cannot be read ({cause}): stopping rather than guess where its partition stands. \
         Restore it from a backup; else move it aside, and its partition resumes from the group's committed offset \
         with the pieces of its open hours set aside in _state/set-aside/ (their events in no output)"
    )]
    Checkpoint { path: PathBuf, cause: serde_json::Error },
    #[error(
        "checkpoint {path} was replaced by another member of the group: this one lost the partition (it was out \
         of the group longer than session.timeout.ms / max.poll.interval.ms, or another deployment writes this \
         archive) and writes nothing more of it"
    )]
    TakenOver { path: PathBuf },
    #[error(
        "checkpoint {path} is gone: was the archive moved or deleted while this process wrote it? Stopping rather \
         than starting a second archive there with part of the records. Put it back (first remove what is at its \
         path now: directories and staged files of this process's last seconds, nothing of the archive) and start \
         again"
    )]
    Vanished { path: PathBuf },
    #[error("checkpoint {path} has version {found}; this build reads versions 1 to {newest}")]
    CheckpointVersion { path: PathBuf, found: u32, newest: u32 },
    #[error(transparent)]
    Archive(#[from] deferlog_archive::ArchiveError),
    #[error(transparent)]
    Query(#[from] deferlog_query::QueryError),
    #[error(transparent)]
    Metrics(#[from] deferlog_metrics::MetricsError),
    #[error("building batches: {0}")]
    Arrow(arrow::error::ArrowError),
    #[error("output: {0}")]
    Output(Box<dyn std::error::Error + Send + Sync>),
    #[error("starting the events writer: {0}")]
    WriterThread(std::io::Error),
    #[error("the events writer stopped (it panicked)")]
    WriterStopped,
}

// By hand: `#[from]` would also make the error the source, and `{e:#}` would print it
// a second time after this message.
impl From<arrow::error::ArrowError> for StreamError {
    fn from(e: arrow::error::ArrowError) -> Self {
        StreamError::Arrow(e)
    }
}
