//! Topic administration: creating a topic (for `produce --create-partitions` and the
//! demo), nothing else.

use crate::{ClientSettings, KafkaError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Creates a topic; one that already exists is fine.
pub async fn create_topic(settings: &ClientSettings, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> =
        settings
            .client_config(&[])
            .create()
            .map_err(|cause| KafkaError::Create {
                what: "admin client",
                cause,
            })?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        // An unreachable cluster is an error in seconds, not a wait without end.
        .create_topics(
            [&new],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(|e| KafkaError::Admin {
            topic: topic.to_owned(),
            message: e.to_string(),
        })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(KafkaError::Admin {
                    topic: t,
                    message: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
