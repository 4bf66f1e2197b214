//! The only crate that links librdkafka (through `rdkafka`): a consumer-group source
//! whose rebalances are handed to the caller, a producer, and topic creation.
//!
//! Owns Kafka client settings and the translation between rdkafka's types and plain
//! values. Knows nothing of log formats, Arrow, SQL or files: what a record means and
//! where a partition resumes is the caller's ([`Partitions`]).

mod admin;
mod consumer;
mod embedded;
mod error;
mod producer;
mod settings;

pub use admin::create_topic;
pub use consumer::{LogEnds, Message, Partitions, Source, TopicPartition, check_consumer};
pub use embedded::EmbeddedBroker;
pub use error::KafkaError;
pub use producer::{Producer, check_producer};
pub use settings::ClientSettings;
