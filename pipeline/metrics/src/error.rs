//! What can go wrong exporting metrics: the ledger's file, its contents, or a
//! registration with the `prometheus` crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("metrics ledger {}: {cause}", path.display())]
    Ledger { path: PathBuf, cause: serde_json::Error },
    #[error(
        "metrics ledger {} has version {found}; this build reads version {known} (written by another build of \
         deferlog?)",
        path.display()
    )]
    LedgerVersion { path: PathBuf, found: u32, known: u32 },
    #[error(
        "metrics.instance {instance:?} is in use by another running process ({} is locked): each instance of a \
         group needs its own name, or their counters add up twice",
        path.display()
    )]
    InstanceInUse { instance: String, path: PathBuf },
    #[error(transparent)]
    Prometheus(#[from] prometheus::Error),
}
