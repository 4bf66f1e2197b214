//! The DeliveryEvent, schema v1 (`shared/DESIGN.md`): its Arrow schema, the enums of
//! its closed vocabularies, and a bulk builder that turns borrowed rows into
//! RecordBatches.
//!
//! This crate owns the shape of an event and nothing else: it must not know about
//! log formats, Kafka, DataFusion, Parquet files or HTTP.

mod batcher;
mod builder;
mod bytes;
mod dict;
mod reject;
mod row;
mod schema;
mod vocab;

pub use batcher::{HourBatch, HourBatcher};
pub use builder::EventBuilder;
pub use bytes::short_eq;
pub use reject::{RejectBuilder, RejectRow, RejectSink, reject_schema};
pub use row::{EventRow, EventSink, Origin, OwnedSummary, push_u64, write_u64};
pub use schema::{SCHEMA_VERSION, col, event_schema};
pub use vocab::{Class, Mta, Outcome, ParseVocabError};

/// Microseconds in one hour: the width of every window and archive partition.
pub const HOUR_US: i64 = 3_600_000_000;

/// The hour (as microseconds since the epoch, floor) an event time belongs to.
pub fn hour_of(event_time_us: i64) -> i64 {
    event_time_us.div_euclid(HOUR_US) * HOUR_US
}
