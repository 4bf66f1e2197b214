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

/// What a file of rows of another schema is refused with.
pub(crate) const OTHER_SCHEMA: &str = "rows of another schema";

impl ArchiveError {
    /// Whether a [`ArchiveError::Read`] of `cause` says the file is damaged (its bytes
    /// do not decode), as opposed to one that could not be opened (permissions, too
    /// many files: the operator's to mend) or holds rows of another schema (another
    /// build's).
    pub fn is_damage(cause: &parquet::errors::ParquetError) -> bool {
        use parquet::errors::ParquetError;
        match cause {
            ParquetError::External(e) => e.downcast_ref::<std::io::Error>().is_none(),
            ParquetError::General(m) => m != OTHER_SCHEMA,
            _ => true,
        }
    }
}
