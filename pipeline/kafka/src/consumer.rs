//! A consumer-group source. Rebalances are handed to [`Partitions`] inside `poll`, on
//! the polling thread: a revoked partition is checkpointed before it is released, an
//! assigned one starts at the offset its checkpoint names.

use crate::{ClientSettings, KafkaError};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Timestamp};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub type TopicPartition = (String, i32);

/// What the caller does when partitions move. Called on the polling thread.
pub trait Partitions: Send + Sync {
    /// The partitions are now ours: for each, the offset to start at (`None`: the
    /// group's committed offset, else `auto.offset.reset`).
    fn assigned(&self, parts: &[TopicPartition]) -> Vec<Option<i64>>;
    /// The partitions are about to go: finish them; returns offsets to commit.
    fn revoked(&self, parts: &[TopicPartition]) -> Vec<(String, i32, i64)>;
    /// The partitions are gone already: this member was out of the group too long
    /// and another may be reading them. Nothing of theirs may be written or committed.
    fn lost(&self, parts: &[TopicPartition]) {
        let _ = parts;
    }
}

struct Ctx {
    handler: Arc<dyn Partitions>,
    ends: Mutex<BTreeMap<TopicPartition, LogEnds>>,
}

/// Where a partition's log starts and ends, from librdkafka's last statistics report:
/// up to `statistics.interval.ms` old, and approximate against brokers whose high
/// watermark is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEnds {
    pub low: i64,
    /// The last stable offset where the broker gives one (what a `read_committed`
    /// reader, librdkafka's default, can read up to), else the high watermark.
    pub high: i64,
    /// The group's committed offset, where a reader with no position of its own
    /// starts (negative: none).
    pub committed: i64,
}

impl LogEnds {
    /// Records a reader whose next offset is `next` has yet to read (`next` < 0: it
    /// has read nothing and starts at the group's committed offset, else at the
    /// log's start).
    ///
    /// Counted from the reader's own position rather than librdkafka's
    /// `consumer_lag`, which is unknown until a record or a commit after each start
    /// (deferlog starts from its checkpoints) and lags the position by a report.
    pub fn lag(&self, next: i64) -> i64 {
        let from = if next >= 0 {
            next
        } else if self.committed >= 0 {
            self.committed
        } else {
            self.low
        };
        (self.high - from).max(0)
    }
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::settings::forward_log(level, fac, message);
    }

    fn stats(&self, s: Statistics) {
        let mut ends = self.ends.lock().unwrap_or_else(PoisonError::into_inner);
        ends.clear();
        for (topic, t) in &s.topics {
            for (p, st) in &t.partitions {
                // Partition -1 is librdkafka's internal one; a high watermark below 0
                // is not known yet.
                if *p >= 0 && st.hi_offset >= 0 {
                    let high = if st.ls_offset >= 0 { st.ls_offset } else { st.hi_offset };
                    let low = st.lo_offset.clamp(0, high);
                    let committed = st.committed_offset;
                    ends.insert((topic.clone(), *p), LogEnds { low, high, committed });
                }
            }
        }
    }
}

fn list(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

fn commit_list(offsets: &[(String, i32, i64)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        // Offsets and partitions come from this consumer's own assignment.
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    tpl
}

/// A log line from inside a librdkafka callback, where a panic (a stderr that cannot
/// be written) would abort the process: such a line is lost instead.
fn log(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "deferlog: kafka: {line}");
}

impl ConsumerContext for Ctx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts = list(tpl);
                let starts = self.handler.assigned(&parts);
                for ((t, p), start) in parts.iter().zip(starts) {
                    if let Some(o) = start {
                        let _ = tpl.set_partition_offset(t, *p, Offset::Offset(o));
                    }
                }
                let r = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = r {
                    log(format_args!("assigning partitions failed: {e}"));
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if consumer.assignment_lost() {
                    self.handler.lost(&list(tpl));
                } else {
                    let offsets = self.handler.revoked(&list(tpl));
                    if !offsets.is_empty() {
                        // Best effort: the checkpoint already holds these offsets.
                        let _ = consumer.commit(&commit_list(&offsets), CommitMode::Sync);
                    }
                }
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = r {
                    log(format_args!("releasing partitions failed: {e}"));
                }
            }
            other => {
                log(format_args!("rebalance error: {other:?}"));
                self.handler.lost(&list(tpl));
                let _ = consumer.unassign();
            }
        }
    }
}

/// One record, borrowed from the consumer until the next poll.
pub struct Message<'a>(BorrowedMessage<'a>);

impl Message<'_> {
    pub fn topic(&self) -> &str {
        self.0.topic()
    }
    pub fn partition(&self) -> i32 {
        self.0.partition()
    }
    pub fn offset(&self) -> i64 {
        self.0.offset()
    }
    pub fn key(&self) -> Option<&[u8]> {
        self.0.key()
    }
    pub fn value(&self) -> Option<&[u8]> {
        self.0.payload()
    }
    /// The broker's timestamp in ms (create or log-append time).
    pub fn timestamp_ms(&self) -> Option<i64> {
        match self.0.timestamp() {
            Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
            Timestamp::NotAvailable => None,
        }
    }
    /// Every header, in order.
    pub fn headers(&self) -> Vec<(&str, Option<&[u8]>)> {
        self.0
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default()
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let h = self.0.headers()?;
        h.iter().find(|h| h.key == name).and_then(|h| h.value)
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.topic(), self.partition(), self.offset())
    }
}

pub struct Source {
    consumer: BaseConsumer<Ctx>,
    topics: Vec<String>,
    /// Set by [`Source::ask_rejoin`], from any thread; acted on by the polling one.
    rejoin_asked: AtomicBool,
    /// When it was first asked, and for which partitions.
    rejoin: Mutex<Option<(Instant, Vec<TopicPartition>)>>,
}

/// How long a rejoin asked for waits for the group's own word that the partitions
/// are lost (it comes within a heartbeat or two of a stalled member waking up).
const REJOIN_GRACE: Duration = Duration::from_secs(10);

const CONSUMER_DEFAULTS: [(&str, &str); 6] = [
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("statistics.interval.ms", "5000"),
    ("enable.partition.eof", "false"),
    // When the prefetch queue is full (processing slower than fetching), librdkafka
    // waits this long before fetching again; its default of a second leaves the queue
    // empty and the consumer idle in between.
    ("fetch.queue.backoff.ms", "10"),
];

/// Whether librdkafka would make `run`'s consumer from these settings (see
/// [`ClientSettings::check_whole`]); nothing connects.
pub fn check_consumer(settings: &ClientSettings, group: &str) -> Result<(), KafkaError> {
    settings.check_whole::<BaseConsumer>(&CONSUMER_DEFAULTS, &[("group.id", group)], "consumer")
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").finish_non_exhaustive()
    }
}

impl Source {
    /// Joins `group` and subscribes to `topics`. Offsets are committed only by
    /// [`Source::commit`] (the caller's checkpoint decides), never automatically.
    pub fn new(
        settings: &ClientSettings,
        group: &str,
        topics: &[&str],
        handler: Arc<dyn Partitions>,
    ) -> Result<Self, KafkaError> {
        let ctx = Ctx {
            handler,
            ends: Mutex::new(BTreeMap::new()),
        };
        let consumer: BaseConsumer<Ctx> = settings
            .client_config(&CONSUMER_DEFAULTS)
            .set("group.id", group)
            .create_with_context(ctx)
            .map_err(|cause| KafkaError::Create {
                what: "consumer",
                cause,
            })?;
        consumer.subscribe(topics).map_err(|cause| KafkaError::Subscribe {
            topics: topics.join(","),
            cause,
        })?;
        Ok(Source {
            consumer,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            rejoin_asked: AtomicBool::new(false),
            rejoin: Mutex::new(None),
        })
    }

    /// Asks the polling thread to leave the group and join it again (see
    /// [`Source::rejoin_if_asked`]) if `fenced`, partitions this member found another
    /// had taken over, are still assigned to it once the group has had time to say
    /// they are lost.
    pub fn ask_rejoin(&self, fenced: &[TopicPartition]) {
        let mut r = self.rejoin.lock().unwrap_or_else(PoisonError::into_inner);
        r.get_or_insert_with(|| (Instant::now(), Vec::new()))
            .1
            .extend_from_slice(fenced);
        self.rejoin_asked.store(true, Ordering::Relaxed);
    }

    /// Leaves the group and joins it again if asked to, [`REJOIN_GRACE`] ago, and a
    /// partition asked about is still in this consumer's assignment: the group's own
    /// "lost" usually takes them away first, and then nothing is done. The handler
    /// hears every partition revoked (and checkpoints them), then the group assigns
    /// afresh, and each partition starts from its checkpoint. Returns whether it did.
    pub fn rejoin_if_asked(&self) -> Result<bool, KafkaError> {
        if !self.rejoin_asked.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let fenced = {
            let mut r = self.rejoin.lock().unwrap_or_else(PoisonError::into_inner);
            match &*r {
                Some((at, _)) if at.elapsed() >= REJOIN_GRACE => {
                    self.rejoin_asked.store(false, Ordering::Relaxed);
                    r.take().map(|(_, parts)| parts).unwrap_or_default()
                }
                _ => return Ok(false),
            }
        };
        let assigned = self.consumer.assignment().map_err(KafkaError::Consume)?;
        if !fenced.iter().any(|(t, p)| assigned.find_partition(t, *p).is_some()) {
            return Ok(false);
        }
        self.consumer.unsubscribe();
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        self.consumer
            .subscribe(&topics)
            .map_err(|cause| KafkaError::Subscribe {
                topics: topics.join(","),
                cause,
            })?;
        Ok(true)
    }

    /// The next record, or `None` after `timeout`. Rebalances run inside this call.
    /// Transient broker errors are retried by librdkafka and returned as `Err` only
    /// for the caller to log.
    pub fn poll(&self, timeout: Duration) -> Option<Result<Message<'_>, KafkaError>> {
        self.consumer
            .poll(timeout)
            .map(|r| r.map(Message).map_err(KafkaError::Consume))
    }

    pub fn commit(&self, offsets: &[(String, i32, i64)], sync: bool) -> Result<(), KafkaError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mode = if sync { CommitMode::Sync } else { CommitMode::Async };
        self.consumer
            .commit(&commit_list(offsets), mode)
            .map_err(|cause| KafkaError::Commit {
                offsets: offsets
                    .iter()
                    .map(|(t, p, o)| format!("{t}/{p}@{o}"))
                    .collect::<Vec<_>>()
                    .join(","),
                cause,
            })
    }

    /// Each assigned partition's log ends, from the last statistics report.
    pub fn log_ends(&self) -> BTreeMap<TopicPartition, LogEnds> {
        self.consumer
            .context()
            .ends
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::{ClientSettings, Duration, LogEnds, check_consumer};

    #[test]
    fn contradicting_properties_are_found_without_connecting() {
        // Nothing listens on port 1: a check that connected would hang or fail on it.
        let ok = ClientSettings::new("127.0.0.1:1").with("session.timeout.ms", "6000");
        let started = std::time::Instant::now();
        check_consumer(&ok, "g").expect("a consumer can be made");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let bad = ClientSettings::new("127.0.0.1:1").with("fetch.max.bytes", "65536");
        let e = check_consumer(&bad, "g").expect_err("fetch.max.bytes below message.max.bytes");
        assert!(e.to_string().contains("fetch.max.bytes"), "{e}");
    }

    #[test]
    fn lag_counts_from_the_readers_position_or_the_logs_start() {
        let ends = LogEnds {
            low: 100,
            high: 250,
            committed: -1001,
        };
        assert_eq!(ends.lag(200), 50);
        assert_eq!(ends.lag(-1), 150, "nothing read, nothing committed: the whole log");
        assert_eq!(ends.lag(260), 0, "a report older than the position");
        let ends = LogEnds { committed: 240, ..ends };
        assert_eq!(ends.lag(-1), 10, "nothing read yet: from the group's offset");
    }
}
