//! The producer of `produce`, `demo` and `run`'s output topics: records keyed by the
//! caller, delivery failures counted rather than lost silently, flushed on demand.

use crate::{ClientSettings, KafkaError};
use rdkafka::ClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts records the broker did not take, so a feed never loses them silently.
#[derive(Debug, Default)]
struct Delivery {
    failed: AtomicU64,
}

impl ClientContext for Delivery {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::settings::forward_log(level, fac, message);
    }
}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A producer for the project's own feeds (demo, `deferlog produce`, tests) and for
/// outputs to topics.
pub struct Producer {
    inner: BaseProducer<Delivery>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

const PRODUCER_DEFAULTS: [(&str, &str); 3] = [
    ("linger.ms", "20"),
    ("batch.num.messages", "10000"),
    ("compression.type", "lz4"),
];

/// A request that timed out against a stalled broker is sent again; without
/// idempotence the broker may keep both, and every reader counts a line twice. Not
/// when the user sets what idempotence needs set its way (`acks=1`): theirs wins,
/// as every property of theirs does, rather than librdkafka refusing the pair.
const IDEMPOTENCE: (&str, &str) = ("enable.idempotence", "true");
const IDEMPOTENCE_NEEDS: [&str; 7] = [
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "max.in.flight",
    "max.in.flight.requests.per.connection",
    "retries",
    "message.send.max.retries",
];

fn defaults(settings: &ClientSettings) -> Vec<(&'static str, &'static str)> {
    let mut d = PRODUCER_DEFAULTS.to_vec();
    if !settings
        .properties
        .iter()
        .any(|(k, _)| IDEMPOTENCE_NEEDS.contains(&k.as_str()))
    {
        d.push(IDEMPOTENCE);
    }
    d
}

/// Whether librdkafka would make the producer of `run`'s outputs to topics from these
/// settings (see [`ClientSettings::check_whole`]); nothing connects.
pub fn check_producer(settings: &ClientSettings) -> Result<(), KafkaError> {
    settings.check_whole::<BaseProducer>(&defaults(settings), &[], "producer")
}

impl Producer {
    pub fn new(settings: &ClientSettings) -> Result<Self, KafkaError> {
        let inner = settings
            .client_config(&defaults(settings))
            .create_with_context(Delivery::default())
            .map_err(|cause| KafkaError::Create {
                what: "producer",
                cause,
            })?;
        Ok(Producer { inner })
    }

    /// Asks the brokers for every topic's metadata (which creates no topic): an
    /// unreachable cluster is an error within `timeout`, not records queued until
    /// librdkafka's message timeout (5 minutes).
    pub fn reach(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner
            .client()
            .fetch_metadata(None, timeout)
            .map(drop)
            .map_err(KafkaError::Unreachable)
    }

    /// Queues one record; waits (serving delivery reports) while the local queue is full.
    pub fn send(&self, topic: &str, key: Option<&[u8]>, value: &[u8]) -> Result<(), KafkaError> {
        self.send_with_headers(topic, key, value, &[])
    }

    pub fn send_with_headers(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<(), KafkaError> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(headers.len());
            for (key, value) in headers {
                h = h.insert(Header {
                    key,
                    value: Some(*value),
                });
            }
            record = record.headers(h);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    self.inner.poll(Duration::from_millis(50));
                    record = r;
                }
                Err((cause, _)) => {
                    return Err(KafkaError::Produce {
                        topic: topic.to_owned(),
                        cause,
                    });
                }
            }
        }
    }

    /// Serves delivery reports without blocking.
    pub fn poll(&self) {
        self.inner.poll(Duration::ZERO);
    }

    /// Waits until every queued record is acknowledged; fails if any was not.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(timeout).map_err(|cause| KafkaError::Produce {
            topic: "(flush)".into(),
            cause,
        })?;
        match self.inner.context().failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(KafkaError::Undelivered(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientSettings, check_producer, defaults};

    #[test]
    fn producers_are_idempotent_unless_the_user_sets_what_that_needs_otherwise() {
        let plain = ClientSettings::new("127.0.0.1:9092");
        assert!(defaults(&plain).contains(&("enable.idempotence", "true")));
        assert!(check_producer(&plain).is_ok());
        // librdkafka refuses idempotence with acks=1: the user's setting wins.
        let acks = ClientSettings::new("127.0.0.1:9092").with("acks", "1");
        assert!(!defaults(&acks).iter().any(|(k, _)| *k == "enable.idempotence"));
        check_producer(&acks).expect("acks=1 is the user's to choose");
        let retries = ClientSettings::new("127.0.0.1:9092").with("retries", "0");
        check_producer(&retries).expect("retries=0 is the user's to choose");
    }
}
