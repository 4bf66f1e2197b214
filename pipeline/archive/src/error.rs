//! What can go wrong writing the archive: every variant names the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot create {path}: {cause}")]
    Create { path: PathBuf, cause: std::io::Error },
    #[error("cannot finish {path}: {cause}")]
    Rename { path: PathBuf, cause: std::io::Error },
    #[error("writing {path}: {cause}")]
    Parquet {
        path: PathBuf,
        cause: parquet::errors::ParquetError,
    },
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: parquet::errors::ParquetError,
    },
}
