//! What can go wrong talking to Kafka; each variant says which step (creating a
//! client, subscribing, committing, delivering).

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("creating the kafka {what}: {cause}")]
    Create {
        what: &'static str,
        cause: rdkafka::error::KafkaError,
    },
    #[error("subscribing to {topics}: {cause}")]
    Subscribe {
        topics: String,
        cause: rdkafka::error::KafkaError,
    },
    #[error("consuming: {0}")]
    Consume(rdkafka::error::KafkaError),
    #[error("committing offsets {offsets}: {cause}")]
    Commit {
        /// `topic/partition@offset`, comma-separated.
        offsets: String,
        cause: rdkafka::error::KafkaError,
    },
    #[error("producing to {topic}: {cause}")]
    Produce {
        topic: String,
        cause: rdkafka::error::KafkaError,
    },
    #[error("{0} records were not accepted by the broker")]
    Undelivered(u64),
    #[error("no answer from the brokers (not reachable, or they refused our credentials): {0}")]
    Unreachable(rdkafka::error::KafkaError),
    #[error("librdkafka does not take it: {0}")]
    Property(String),
    #[error("expects a number, not {0:?}: librdkafka would read only its leading digits")]
    NotANumber(String),
    #[error("creating topic {topic}: {message}")]
    Admin { topic: String, message: String },
}

impl KafkaError {
    /// librdkafka's name of the error's code (`AllBrokersDown`), `other` when it has none.
    pub fn code(&self) -> String {
        let code = match self {
            KafkaError::Create { cause, .. }
            | KafkaError::Subscribe { cause, .. }
            | KafkaError::Commit { cause, .. }
            | KafkaError::Produce { cause, .. } => cause.rdkafka_error_code(),
            KafkaError::Consume(e) | KafkaError::Unreachable(e) => e.rdkafka_error_code(),
            _ => None,
        };
        code.map_or("other".to_owned(), |c| format!("{c:?}"))
    }

    /// A consumer was told a topic it reads does not exist (librdkafka keeps asking;
    /// a one-shot reader should say so and stop).
    pub fn is_unknown_topic(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode::{UnknownTopic, UnknownTopicOrPartition};
        matches!(
            self,
            KafkaError::Consume(e) if matches!(e.rdkafka_error_code(), Some(UnknownTopicOrPartition | UnknownTopic))
        )
    }
}
