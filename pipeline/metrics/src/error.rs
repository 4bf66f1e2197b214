use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("metrics ledger {}: {source}", path.display())]
    Ledger { path: PathBuf, source: serde_json::Error },
    #[error(transparent)]
    Prometheus(#[from] prometheus::Error),
}
