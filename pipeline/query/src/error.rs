#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query {query}: {source}")]
    DataFusion {
        query: &'static str,
        source: datafusion::error::DataFusionError,
    },
    #[error("nothing under {0}: fill the archive with `deferlog replay`, `run` or `demo` first")]
    EmptyArchive(String),
    #[error("archive path {path}: {source}")]
    Path {
        path: String,
        source: datafusion::error::DataFusionError,
    },
}
