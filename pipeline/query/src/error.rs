//! What can go wrong running `queries/` over batches or the archive: each variant names
//! the query or the path.

use datafusion::error::DataFusionError;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query {query}: {}", Tidy(cause))]
    DataFusion {
        query: &'static str,
        cause: DataFusionError,
    },
    #[error("nothing under {0}: fill the archive with `deferlog replay`, `run` or `demo` first")]
    EmptyArchive(String),
    #[error("starting the SQL runtime: {0}")]
    Runtime(std::io::Error),
    #[error("setting up the SQL engine: {}", Tidy(.0))]
    Setup(DataFusionError),
    #[error("archive path {path}: {}", Tidy(cause))]
    Path { path: String, cause: DataFusionError },
    #[error("archive file {path} is damaged ({reason}): move it away, or restore it from a backup")]
    Damaged { path: PathBuf, reason: String },
}

impl QueryError {
    /// What ran short, when the query needed more memory than [`crate::Engine::bounded`]
    /// allows and could not spill it: the pool's own error, naming the biggest holders,
    /// without the advice DataFusion wraps it in (settings deferlog does not expose).
    pub fn out_of_memory(&self) -> Option<&DataFusionError> {
        match self {
            QueryError::DataFusion { cause, .. } => {
                Some(cause.find_root()).filter(|root| matches!(root, DataFusionError::ResourcesExhausted(_)))
            }
            _ => None,
        }
    }
}

/// DataFusion's message with a kind of error said once where it is repeated: a
/// Parquet error reaches the user wrapped twice, at each level of its context
/// ("Parquet error: Parquet error: Failed to fetch metadata for file ...: Parquet
/// error: Parquet error: ..."). Only such kinds (`... error`) are collapsed, so text a
/// message quotes is kept as it is.
struct Tidy<'a>(&'a DataFusionError);

impl fmt::Display for Tidy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let mut last = None;
        for part in text.split(": ") {
            if last == Some(part) && part.ends_with(" error") {
                continue;
            }
            if last.is_some() {
                f.write_str(": ")?;
            }
            f.write_str(part)?;
            last = Some(part);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_memory_is_found_under_the_wrappings_datafusion_adds() {
        use datafusion::arrow::error::ArrowError;
        use std::sync::Arc;
        let oom = DataFusionError::ResourcesExhausted("Failed to allocate".into());
        let wrapped = DataFusionError::Context(
            "Not enough memory to continue external sort".into(),
            Box::new(DataFusionError::Shared(Arc::new(DataFusionError::ArrowError(
                Box::new(ArrowError::ExternalError(Box::new(oom))),
                None,
            )))),
        );
        let query = |cause| QueryError::DataFusion { query: "q", cause };
        assert!(query(wrapped).out_of_memory().is_some());
        let said = DataFusionError::Execution("Resources exhausted: as text only".into());
        assert!(query(said).out_of_memory().is_none());
    }

    #[test]
    fn a_repeated_kind_of_error_is_said_once_and_other_text_kept() {
        let e = DataFusionError::Execution("Parquet error: Parquet error: bad: bad: file".into());
        assert_eq!(Tidy(&e).to_string(), "Execution error: Parquet error: bad: bad: file");
    }
}
