//! librdkafka's in-process mock cluster, for the demo: a real Kafka protocol endpoint
//! on loopback with no external service.
//!
//! It keeps only the newest ~5 MiB per partition and drops older records silently, so
//! it is fit for a demo whose consumer keeps up, never as a proof of no data loss
//! (the tests use a real broker, tansu).

use crate::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl EmbeddedBroker {
    /// One broker with `topic` created with `partitions` partitions.
    pub fn start(topic: &str, partitions: i32) -> Result<Self, KafkaError> {
        let cluster = MockCluster::new(1).map_err(|cause| KafkaError::Create {
            what: "embedded broker",
            cause,
        })?;
        cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| KafkaError::Admin {
                topic: topic.to_owned(),
                message: e.to_string(),
            })?;
        Ok(EmbeddedBroker { cluster })
    }

    /// `host:port` to give clients as `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
