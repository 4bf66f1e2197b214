//! The stream core: records in (from Kafka, but this crate does not know Kafka), and
//! per record source partition ("scope"): normalize, batch, archive, window, checkpoint.
//!
//! Owns: event-time hourly windows (`window`), the checkpoint and staging protocol
//! (`checkpoint`), per-partition state (`partition`) and one worker's partitions and
//! its watermark over them (`processor`; the process's is the minimum over workers). SQL runs through `deferlog-query` (`sql`); files go
//! through `deferlog-archive`. Must not touch rdkafka, sockets or signals: the caller
//! polls the broker, feeds [`Record`]s and commits the offsets this crate returns.

mod checkpoint;
mod config;
mod counting;
mod dead_letters;
mod error;
mod partition;
mod processor;
mod sink;
mod sql;
mod status;
mod window;
mod writer;

pub use checkpoint::{Checkpoint, STATE_DIR, ScopeDirs};
pub use config::{HostFrom, StreamConfig, TenantFrom, TopicConfig};
pub use counting::{Counters, Timings, add_counter_rows, count_health};
pub use error::StreamError;
pub use partition::scope_of;
pub use processor::{Moving, Processor, Record};
pub use sink::EpochSink;
pub use status::{BatchLatency, PartitionStatus};
pub use window::{PartialRow, WindowsState};
