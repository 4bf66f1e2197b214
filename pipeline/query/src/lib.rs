//! Runs the SQL of `queries/` on DataFusion, over the Parquet archive or over batches
//! in memory. The only crate that builds a DataFusion session.
//!
//! SQL text lives only in `queries/*.sql`, embedded at build time; Rust never assembles
//! SQL. Filters are DataFrame expressions applied to a query's input table before the
//! query runs, so every query file stays one fixed, testable statement.

mod engine;
mod error;
mod filter;
mod local;
mod queries;
pub mod schema;

pub use engine::{Engine, EventSource, TARGET_PARTITIONS, Table};
pub use error::QueryError;
pub use filter::{EventFilter, SourceIp};
pub use local::LocalEngine;
pub use queries::{ALL_QUERIES, Query};

/// Re-exported so callers format and inspect results with the arrow DataFusion uses.
pub use datafusion::arrow;
