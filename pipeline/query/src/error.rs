//! What can go wrong running `queries/` over batches or the archive: each variant names
//! the query or the path.

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query {query}: {cause}")]
    DataFusion {
        query: &'static str,
        cause: datafusion::error::DataFusionError,
    },
    #[error("nothing under {0}: fill the archive with `deferlog replay`, `run` or `demo` first")]
    EmptyArchive(String),
    #[error("starting the SQL runtime: {0}")]
    Runtime(std::io::Error),
    #[error("archive path {path}: {cause}")]
    Path {
        path: String,
        cause: datafusion::error::DataFusionError,
    },
}
