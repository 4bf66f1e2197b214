//! Metrics: what the pipeline counted, as Prometheus series, served over HTTP.
//!
//! Owns the metric surface (names, labels, help), cardinality bounds (`fold`), the
//! per-instance ledger that keeps counters monotonic across restarts and rebalances
//! (`ledger`), and the `/metrics`, `/healthz`, `/readyz` endpoints (`server`).
//! Knows nothing of Kafka, Arrow or DataFusion: the stream hands it plain [`Counts`]
//! at each checkpoint, and gauges are set by the caller.

mod counts;
mod error;
mod exporter;
mod fold;
mod ledger;
mod server;

pub use counts::{Counts, DeliveryRow, Family, key, split};
pub use error::MetricsError;
pub use exporter::{Exporter, ExporterConfig, HourRow};
pub use server::serve;
