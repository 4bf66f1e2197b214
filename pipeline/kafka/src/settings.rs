//! librdkafka properties: the few deferlog sets, then whatever the user passes through.

use rdkafka::ClientConfig;

/// Brokers plus any librdkafka property (`security.protocol`, `sasl.*`, `ssl.*`, ...),
/// so secured clusters need no code change.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub brokers: String,
    pub properties: Vec<(String, String)>,
}

impl ClientSettings {
    pub fn new(brokers: &str) -> Self {
        ClientSettings {
            brokers: brokers.to_owned(),
            properties: Vec::new(),
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.properties.push((key.to_owned(), value.to_owned()));
        self
    }

    /// `defaults` first, then the user's properties (which win), then the brokers.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &self.brokers);
        // librdkafka logs to stderr through the `log` crate otherwise unseen; keep its
        // own errors visible on stderr.
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        c
    }
}
