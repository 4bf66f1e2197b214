#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query {query}: {source}")]
    DataFusion {
        query: &'static str,
        source: datafusion::error::DataFusionError,
    },
    #[error("no event files under {0}: run `deferlog replay` (or `demo`) to fill the archive first")]
    EmptyArchive(String),
    #[error("archive path {path}: {source}")]
    Path {
        path: String,
        source: datafusion::error::DataFusionError,
    },
}
