//! The Parquet archive on disk:
//!
//! ```text
//! OUT/events/date=YYYY-MM-DD/hour=HH/part-RUN-SEQ.parquet   DeliveryEvents, Hive-partitioned
//! OUT/hourly/hourly-RUN.parquet                               hourly rows of that run
//! OUT/rejects/rejects-RUN.parquet                             dead letters, raw bytes kept
//! ```
//!
//! Files are written as `*.parquet.tmp` and renamed when complete, so a reader never
//! sees half a file. This crate owns paths and Parquet settings; it knows nothing of
//! log formats, SQL or Kafka.

mod error;
mod events;
mod file;
mod paths;

pub use error::ArchiveError;
pub use events::EventArchive;
pub use file::{ParquetFile, Staged, read_parquet, write_parquet};
pub use paths::{
    EVENTS_DIR, HOURLY_DIR, REJECTS_DIR, events_file_name, hour_partition, hourly_file_name, rejects_file_name,
    run_file_prefixes, run_id,
};
