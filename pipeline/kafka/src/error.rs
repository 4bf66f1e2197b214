#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client setting {key}: {source}")]
    Setting {
        key: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("creating the kafka {what}: {source}")]
    Create {
        what: &'static str,
        source: rdkafka::error::KafkaError,
    },
    #[error("subscribing to {topics}: {source}")]
    Subscribe {
        topics: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("consuming: {0}")]
    Consume(rdkafka::error::KafkaError),
    #[error("committing offsets: {0}")]
    Commit(rdkafka::error::KafkaError),
    #[error("producing to {topic}: {source}")]
    Produce {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("{0} records were not accepted by the broker")]
    Undelivered(u64),
    #[error("creating topic {topic}: {message}")]
    Admin { topic: String, message: String },
}
