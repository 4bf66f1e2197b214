//! `run`: the consumer loop that feeds Kafka records to the stream core.
//!
//! ```text
//! librdkafka fetch threads ─▶ poll + copy (polling thread) ─▶ chunks, by partition ─▶ workers:
//!     Processor: normalize → batch → archive (staged) + hourly.sql → windows
//!     ─▶ checkpoint ─▶ publish ─▶ commit
//! ```
//!
//! `stream.consumers` group members (default 1), each a consumer of its own with its
//! own partitions, one polling thread and `stream.workers` processing threads (default
//! one per core), each with its own Processor. The poller copies records out of
//! librdkafka's messages to the worker holding their partition ([`crate::feed`]) and
//! moves a partition to another worker when that evens out their loads
//! ([`crate::route`]): a barrier first, so the partition's records stay in order.
//! librdkafka fetches ahead on its own threads; its bounded prefetch queue
//! (`queued.max.messages.kbytes`) and the bounded chunk channels are the backpressure.
//! Rebalances run inside `poll` on the polling thread: a revoke first waits until every
//! worker has processed every record polled before it, so a revoked partition is
//! checkpointed up to its last record before it is released, with no lock held across
//! the poll.
//!
//! Shutdown order (on cancel: SIGTERM, SIGINT, or the caller): stop polling; hand the
//! last records over; each worker, as soon as it has processed its own, closes its
//! open batches and checkpoints its partitions with open hours written as not final
//! (publishing what the checkpoint covers); once every worker has, commit offsets
//! synchronously; leave the group (dropping the consumer runs the revoke callbacks,
//! which find nothing left to write).

use crate::config::RunSettings;
use crate::feed::{Fed, Feed, Feeder};
use crate::metrics::{HourGaugeSink, HourGauges, Served};
use crate::output::{self, Format};
use crate::route::{self, Routes};
use crate::status::{Board, Status, newest_per_partition, process_watermark, worker_watermark};
use anyhow::{Context, Result, anyhow};
use arrow::array::{Array, AsArray, RecordBatch};
use deferlog_kafka::{Partitions, Producer, Source, TopicPartition};
use deferlog_metrics::Exporter;
use deferlog_stream::{EpochSink, PartitionStatus, Processor, Record, StreamError, TenantFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Called after every checkpoint with the status of every partition held.
pub type OnCheckpoint = Box<dyn FnMut(&[PartitionStatus]) + Send>;

/// What a caller adds to a run: a look after each checkpoint, and another sink for
/// each epoch's rows (the demo's screen).
#[derive(Default)]
pub struct Hooks {
    pub on_checkpoint: Option<OnCheckpoint>,
    pub sink: Option<Box<dyn EpochSink>>,
    /// Stop (in order, as on SIGTERM) once this many records were consumed (benches):
    /// looked at every few hundred records and whenever nothing is prefetched, so a
    /// topic with more may be read a little past it.
    pub stop_after: Option<u64>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

/// Hourly rows and dead letters to Kafka topics. Flushed before the checkpoint that
/// covers them is stored: at least once, keyed so readers can drop repeats.
struct TopicSink {
    producer: Producer,
    hourly_topic: Option<String>,
    dead_letter_topic: Option<String>,
}

fn output_err(e: impl std::error::Error + Send + Sync + 'static) -> StreamError {
    StreamError::Output(Box::new(e))
}

impl EpochSink for TopicSink {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], dead: &[RecordBatch]) -> Result<(), StreamError> {
        if let Some(topic) = &self.hourly_topic
            && !hourly.is_empty()
        {
            let mut json = Vec::new();
            output::write(Format::Json, hourly, &mut json).map_err(|e| StreamError::Output(e.into()))?;
            for line in json.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                // Scope and hour: the key readers keep the latest revision of.
                let row: serde_json::Value = serde_json::from_slice(line).map_err(output_err)?;
                let key = format!("{scope}/{}", row["hour"].as_str().unwrap_or_default());
                let key = key.as_bytes();
                self.producer.send(topic, Some(key), line).map_err(output_err)?;
            }
        }
        if let Some(topic) = &self.dead_letter_topic {
            for b in dead {
                self.send_dead_letters(topic, b)?;
            }
        }
        self.producer.flush(Duration::from_secs(30)).map_err(output_err)
    }
}

impl TopicSink {
    /// One batch of dead letters (the `rejects/` schema) to `topic`: raw bytes as the
    /// value, the origin as the key, reason and MTA as headers.
    fn send_dead_letters(&self, topic: &str, b: &RecordBatch) -> Result<(), StreamError> {
        let text = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
        };
        let (Some(mta), Some(reason), Some(origin)) = (text("mta"), text("reason"), text("origin")) else {
            return Err(StreamError::Output("dead letters without mta, reason or origin".into()));
        };
        let (mta, reason, origin) = (
            mta.as_string::<i32>(),
            reason.as_string::<i32>(),
            origin.as_string::<i32>(),
        );
        let raw = b
            .column_by_name("raw")
            .and_then(|c| c.as_binary_opt::<i32>())
            .ok_or_else(|| StreamError::Output("dead letters without raw bytes".into()))?;
        for i in 0..b.num_rows() {
            // A record that is no MTA's: labelled as its reject counter is.
            let m = if mta.is_valid(i) { mta.value(i) } else { "unknown" };
            let headers: [(&str, &[u8]); 2] = [("reason", reason.value(i).as_bytes()), ("mta", m.as_bytes())];
            let value = if raw.is_valid(i) { raw.value(i) } else { &[] };
            self.producer
                .send_with_headers(topic, Some(origin.value(i).as_bytes()), value, &headers)
                .map_err(output_err)?;
        }
        Ok(())
    }
}

/// Hands each epoch to several sinks, in order.
struct Tee(Vec<Box<dyn EpochSink>>);

impl EpochSink for Tee {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], dead: &[RecordBatch]) -> Result<(), StreamError> {
        self.0.iter_mut().try_for_each(|s| s.epoch(scope, hourly, dead))
    }
    fn checkpointed(&mut self) -> Result<(), StreamError> {
        self.0.iter_mut().try_for_each(|s| s.checkpointed())
    }
}

/// One processing thread of a member: its Processor and the channel to it.
struct Worker {
    proc: Mutex<Processor>,
    feeder: Feeder,
}

impl Worker {
    fn proc(&self) -> MutexGuard<'_, Processor> {
        self.proc.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Handler {
    workers: Vec<Worker>,
    /// Which worker holds each partition (see [`crate::route`]).
    routes: Mutex<Routes>,
    /// Changes with every change to `routes`: the poller's memo of them is good
    /// while it stays the same.
    routes_version: AtomicU64,
    exporter: Arc<Exporter>,
    /// The first failure inside a rebalance callback; the loop stops on it.
    failed: Mutex<Option<StreamError>>,
    /// Set with `failed`, so the loop checks a flag per record, not a lock.
    has_failed: AtomicBool,
    /// When this member started, for the times its log lines give.
    started: Instant,
    /// Its first worker's number among the process's (log lines number workers so).
    first_slot: usize,
    /// Each partition taken on brings its rows; each one let go takes them along.
    hour_gauges: Arc<Mutex<HourGauges>>,
    /// This member's number in the process.
    member: usize,
    /// Partitions it lost (see [`Partitions::lost`]).
    lost: AtomicU64,
}

impl Handler {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The routes, to change them.
    fn routes_mut(&self) -> MutexGuard<'_, Routes> {
        self.routes_version.fetch_add(1, Ordering::Relaxed);
        self.routes()
    }

    /// The worker holding a record's partition (`None`: not held here).
    fn worker_of(&self, memo: &mut route::Memo, topic: &str, partition: i32) -> Option<usize> {
        let version = self.routes_version.load(Ordering::Relaxed);
        memo.worker(version, topic, partition, || self.routes())
    }

    fn fail(&self, e: StreamError) {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(e);
        self.has_failed.store(true, Ordering::Relaxed);
    }

    /// The hour gauges take on each partition's newest closed hour, from the
    /// windows its checkpoint restored (late events included). The gauges only:
    /// counting goes on without them.
    fn restore_hour_gauges(&self, taken: Vec<(String, Vec<RecordBatch>)>) {
        let restored = self
            .hour_gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .restore(self.member, taken);
        if let Err(e) = restored {
            say!("deferlog run: hour gauges not restored: {e:#}");
        }
    }

    /// Partitions gone from this member take their rows out of the hour gauges:
    /// their next holder exports them.
    fn forget_hour_gauges(&self, parts: &[TopicPartition]) {
        let scopes: Vec<String> = parts.iter().map(|(t, n)| deferlog_stream::scope_of(t, *n)).collect();
        let forgotten = self
            .hour_gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(self.member, &scopes);
        if let Err(e) = forgotten {
            say!("deferlog run: hour gauges not refreshed: {e:#}");
        }
    }

    /// Moves the partition that best evens out the workers' loads, if one does. Runs
    /// on the polling thread, so no record of the partition is sent anywhere until it
    /// has moved.
    fn balance(&self, memo: &mut route::Memo) {
        let planned = {
            let mut routes = self.routes_mut();
            memo.count(&mut routes);
            routes.plan()
        };
        let Some(m) = planned else {
            return;
        };
        // The worker that had it processes everything sent to it first.
        self.workers[m.from].feeder.barrier();
        let moving = self.workers[m.from].proc().release(&m.topic, m.partition);
        if let Some(moving) = moving {
            self.workers[m.to].proc().adopt(moving);
        }
        say!(
            "deferlog run: moved {}/{} from worker {} to worker {} ({:.2}s after the member started)",
            m.topic,
            m.partition,
            self.first_slot + m.from,
            self.first_slot + m.to,
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Partitions for Handler {
    fn assigned(&self, parts: &[TopicPartition]) -> Vec<Option<i64>> {
        let mut taken = Vec::with_capacity(parts.len());
        let starts = parts
            .iter()
            .map(|(t, n)| {
                let w = self.routes_mut().place(t, *n);
                let mut p = self.workers[w].proc();
                let start = p.assign(t, *n).unwrap_or_else(|e| {
                    self.fail(e);
                    None
                });
                match p.last_closed_rows(t, *n) {
                    Some(Ok(rows)) => taken.push(rows),
                    Some(Err(e)) => say!("deferlog run: hour gauges of {t}/{n} not restored: {e}"),
                    None => {}
                }
                start
            })
            .collect::<Vec<_>>();
        say!(
            "deferlog run: assigned {} ({:.2}s after the member started)",
            names(parts),
            self.started.elapsed().as_secs_f64()
        );
        self.restore_hour_gauges(taken);
        self.exporter.set_ready(true);
        starts
    }

    fn revoked(&self, parts: &[TopicPartition]) -> Vec<(String, i32, i64)> {
        // Records polled before the revoke are the partition's, up to its checkpoint.
        for w in &self.workers {
            w.feeder.barrier();
        }
        let mut commits = Vec::new();
        for (t, n) in parts {
            let Some(w) = self.routes_mut().remove(t, *n) else {
                continue;
            };
            match self.workers[w].proc().revoke(t, *n) {
                Ok(Some(o)) => commits.push((t.clone(), *n, o)),
                Ok(None) => {}
                Err(e) => self.fail(e),
            }
        }
        if !parts.is_empty() {
            say!("deferlog run: released {}", names(parts));
        }
        self.forget_hour_gauges(parts);
        commits
    }

    fn lost(&self, parts: &[TopicPartition]) {
        self.lost.fetch_add(parts.len() as u64, Ordering::Relaxed);
        for w in &self.workers {
            w.feeder.barrier();
        }
        for (t, n) in parts {
            if let Some(w) = self.routes_mut().remove(t, *n) {
                self.workers[w].proc().lose(t, *n);
            }
        }
        // After they are dropped: a worker's checkpoint before that could bring
        // their rows back.
        self.forget_hour_gauges(parts);
        if !parts.is_empty() {
            // Out of the group: not ready until the next assignment.
            self.exporter.set_ready(false);
            say!(
                "deferlog run: lost {} (out of the group longer than its session timeout): dropped unwritten; \
                 their new owner resumes from the last checkpoint",
                names(parts)
            );
        }
    }
}

/// `topic/partition ...` for log lines.
fn names(parts: &[TopicPartition]) -> String {
    parts
        .iter()
        .map(|(t, n)| format!("{t}/{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Default)]
pub struct RunSummary {
    pub records: u64,
    /// Wall clock of the whole run.
    pub elapsed: Duration,
    /// From the start to the first record (joining the group, fetching); the earliest
    /// over group members.
    pub first_record: Option<Duration>,
    /// The stretch at the end with nothing left to read (a run stopped by a signal
    /// once it had caught up): not throughput. The shortest over group members.
    pub idle_tail: Option<Duration>,
    /// Leaving the group once everything is written and committed (librdkafka's
    /// close): shutdown, not throughput. The shortest over group members.
    pub leaving: Option<Duration>,
    /// Processing-thread time from its first records to the end, summed over members.
    pub busy: Duration,
    /// Of `busy`, waiting for the polling thread.
    pub consume: Duration,
    /// Of `busy`: SQL, writing and checkpoints; the rest is parsing and batching.
    pub timings: deferlog_stream::Timings,
    /// Partitions lost during the run (out of the group too long): dropped unwritten.
    pub lost_partitions: u64,
}

impl RunSummary {
    fn add(&mut self, o: &RunSummary) {
        self.records += o.records;
        self.first_record = shortest(self.first_record, o.first_record);
        self.idle_tail = shortest(self.idle_tail, o.idle_tail);
        self.leaving = shortest(self.leaving, o.leaving);
        self.busy += o.busy;
        self.consume += o.consume;
        self.timings.add(&o.timings);
        self.lost_partitions += o.lost_partitions;
    }
}

fn shortest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.timings;
        let s = |d: Duration| d.as_secs_f64();
        // Before the first record the consumer joins the group and waits for records,
        // a run stopped once caught up sits idle at the end, and it leaves the group
        // after its last commit: none of that is throughput.
        let head = match self.first_record {
            Some(startup) => {
                let (idle, leaving) = (self.idle_tail.unwrap_or_default(), self.leaving.unwrap_or_default());
                let working = self.elapsed.saturating_sub(startup + idle + leaving);
                format!(
                    "{} records in {:.2}s, the first {:.2}s after start ({:.0}/s), then {:.2}s without records until \
                     stopped and {:.2}s leaving the group",
                    self.records,
                    s(working),
                    s(startup),
                    self.records as f64 / s(working).max(1e-9),
                    s(idle),
                    s(leaving),
                )
            }
            None => return write!(f, "no records in {:.2}s", s(self.elapsed)),
        };
        // The events files are written on the writer threads, beside this time.
        let rest = self.busy.saturating_sub(self.consume + t.sql + t.checkpoint);
        write!(
            f,
            "{head}; processing threads: waiting for records {:.2}s, parse+batch {:.2}s, SQL {:.2}s, checkpoint \
             {:.2}s; writer threads: events files {:.2}s",
            s(self.consume),
            s(rest),
            s(t.sql),
            s(t.checkpoint),
            s(t.write)
        )
    }
}

/// What the workers of one run share.
struct Shared {
    on_checkpoint: Mutex<Option<OnCheckpoint>>,
    /// The latest status of each worker's partitions.
    statuses: Mutex<Vec<Vec<PartitionStatus>>>,
    sink: Option<Arc<Mutex<Box<dyn EpochSink>>>>,
    /// Records consumed, counted toward `stop_after`.
    records: AtomicU64,
    stop_after: Option<u64>,
    exporter: Arc<Exporter>,
    hour_gauges: Arc<Mutex<HourGauges>>,
    /// Each worker's say in the process's watermark (see
    /// [`crate::status::worker_watermark`]).
    watermarks: Mutex<Vec<Option<i64>>>,
    /// The status line.
    board: Board,
    /// Hosts and instances already logged as making attempts without a source IP, and
    /// whether the ones past those a normalizer names were.
    no_ip_told: Mutex<(Vec<(String, String)>, bool)>,
}

impl Shared {
    /// Adds `uncounted` (zeroing it) to the records consumed; whether `stop_after`
    /// is reached.
    fn count_toward_stop(&self, uncounted: &mut u64) -> bool {
        let n = std::mem::take(uncounted);
        self.stop_after
            .is_some_and(|limit| self.records.fetch_add(n, Ordering::Relaxed) + n >= limit)
    }

    fn checkpointed(&self, slot: usize, status: Vec<PartitionStatus>, watermark_us: i64) {
        self.tell_no_source_ip(&status);
        let open = status.iter().any(|p| p.open_hours > 0);
        let held = worker_watermark(watermark_us, !status.is_empty(), open);
        let mut all: Vec<PartitionStatus> = {
            let mut st = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
            st[slot] = status;
            st.iter().flatten().cloned().collect()
        };
        // A partition moved to another worker stays in its old worker's last status
        // until that one checkpoints again.
        newest_per_partition(&mut all, |p| (&p.topic, p.partition, p.next_offset));
        let watermark = {
            let mut w = self.watermarks.lock().unwrap_or_else(PoisonError::into_inner);
            w[slot] = held;
            process_watermark(w.iter().copied())
        };
        self.exporter.set_state(
            all.iter().map(|p| p.stats.state_size).sum(),
            all.iter().map(|p| p.open_hours as u64).sum(),
            watermark.map(|w| w as f64 / 1e6),
        );
        if let Some(cb) = self
            .on_checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            cb(&all);
        }
    }

    /// Logs, once per process, each (host, instance) whose attempts go out without a
    /// sending IP: the `[[egress]]` entry the configuration lacks.
    fn tell_no_source_ip(&self, status: &[PartitionStatus]) {
        let mut guard = self.no_ip_told.lock().unwrap_or_else(PoisonError::into_inner);
        let (told, others_told) = &mut *guard;
        for p in status {
            let no_ip = &p.stats.no_source_ip;
            for s in &no_ip.sources {
                if !told.iter().any(|(h, i)| *h == s.host && *i == s.instance) {
                    told.push((s.host.clone(), s.instance.clone()));
                    say!(
                        "deferlog run: {}/{}: attempts of {s} get no source_ip: the records name none and no \
                         [[egress]] entry matches",
                        p.topic,
                        p.partition
                    );
                }
            }
            if no_ip.others > 0 && !*others_told {
                *others_told = true;
                say!(
                    "deferlog run: {}/{}: attempts of more hosts and instances than are named get no source_ip",
                    p.topic,
                    p.partition
                );
            }
        }
    }
}

/// One sink shared by every member.
struct SharedSink(Arc<Mutex<Box<dyn EpochSink>>>);

impl EpochSink for SharedSink {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], dead: &[RecordBatch]) -> Result<(), StreamError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .epoch(scope, hourly, dead)
    }
    fn checkpointed(&mut self) -> Result<(), StreamError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).checkpointed()
    }
}

/// Consumes until `cancel` fires (or a failure), then shuts down in order, with
/// `stream.consumers` members in the group. Each is a consumer of its own with its own
/// partitions, exactly like separate instances, and processes them on
/// `stream.workers` threads; the first failure stops them all.
pub fn run(settings: RunSettings, cancel: CancellationToken, hooks: Hooks) -> Result<RunSummary> {
    let started = Instant::now();
    let n = settings.consumers.max(1);
    let slots = n * settings.workers.max(1);
    let served = Served::start(&settings.metrics)?;
    let shared = Arc::new(Shared {
        exporter: served.exporter.clone(),
        hour_gauges: Arc::new(Mutex::new(HourGauges::new(served.exporter.clone())?)),
        watermarks: Mutex::new(vec![None; slots]),
        board: Board::new(slots, settings.status_interval),
        no_ip_told: Mutex::default(),
        on_checkpoint: Mutex::new(hooks.on_checkpoint),
        statuses: Mutex::new(vec![Vec::new(); slots]),
        sink: hooks.sink.map(|s| Arc::new(Mutex::new(s))),
        records: AtomicU64::new(0),
        stop_after: hooks.stop_after,
    });
    say!(
        "deferlog run: group {} on {} reading {} with {n} member(s), each polling on one thread and processing on {}; archive {}; {}",
        settings.group,
        settings.client.brokers,
        settings
            .stream
            .topics
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        settings.workers.max(1),
        settings.stream.out.display(),
        served.describe()
    );
    let threads = (0..n)
        .map(|i| {
            let (settings, cancel, shared) = (settings.clone(), cancel.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("deferlog-consumer-{i}"))
                .spawn(move || {
                    let r = consume(i, &settings, &cancel, &shared);
                    if r.is_err() {
                        cancel.cancel();
                    }
                    r
                })
                .context("starting a consumer thread")
        })
        .collect::<Result<Vec<_>>>()?;
    let mut total = RunSummary::default();
    let mut first_err = None;
    for t in threads {
        match t
            .join()
            .map_err(|_| anyhow!("a consumer thread panicked"))
            .and_then(|r| r)
        {
            Ok(s) => total.add(&s),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    total.elapsed = started.elapsed();
    let lost = match total.lost_partitions {
        0 => String::new(),
        n => format!(
            "; {n} partition(s) lost during the run were dropped unwritten (their next owner resumes them from their \
             last checkpoint)"
        ),
    };
    say!(
        "deferlog run: stopped; everything consumed from the partitions it held is written and committed{lost}. {total}"
    );
    Ok(total)
}

/// One group member: its own consumer, and a Processor per worker. This thread polls
/// and copies records out to the worker holding their partition (see [`crate::feed`],
/// [`crate::route`]); each worker thread parses, batches, windows, writes,
/// checkpoints and commits its partitions.
fn consume(index: usize, settings: &RunSettings, cancel: &CancellationToken, shared: &Shared) -> Result<RunSummary> {
    let started = Instant::now();
    let mut member_sinks: Vec<Arc<Mutex<Box<dyn EpochSink>>>> = Vec::new();
    if settings.hourly_topic.is_some() || settings.dead_letter_topic.is_some() {
        member_sinks.push(Arc::new(Mutex::new(Box::new(TopicSink {
            producer: Producer::new(&settings.client)?,
            hourly_topic: settings.hourly_topic.clone(),
            dead_letter_topic: settings.dead_letter_topic.clone(),
        }))));
    }
    member_sinks.extend(shared.sink.clone());
    let w = settings.workers.max(1);
    let mut workers = Vec::with_capacity(w);
    let mut feeds = Vec::with_capacity(w);
    for _ in 0..w {
        let mut sinks: Vec<Box<dyn EpochSink>> = member_sinks
            .iter()
            .map(|s| Box::new(SharedSink(s.clone())) as Box<dyn EpochSink>)
            .collect();
        sinks.push(Box::new(HourGaugeSink::new(shared.hour_gauges.clone(), index)));
        let proc = Processor::new(settings.stream.clone())
            .context("starting the stream")?
            .with_metrics(shared.exporter.clone())
            .with_sink(Box::new(Tee(sinks)));
        let (feeder, feed) = Feeder::new();
        workers.push(Worker {
            proc: Mutex::new(proc),
            feeder,
        });
        feeds.push(feed);
    }
    let topics: Vec<&str> = settings.stream.topics.iter().map(|t| t.name.as_str()).collect();
    let handler = Arc::new(Handler {
        workers,
        routes: Mutex::new(Routes::new(w)),
        routes_version: AtomicU64::new(0),
        exporter: shared.exporter.clone(),
        failed: Mutex::new(None),
        has_failed: AtomicBool::new(false),
        started,
        first_slot: index * w,
        hour_gauges: shared.hour_gauges.clone(),
        member: index,
        lost: AtomicU64::new(0),
    });
    let source = Source::new(&settings.client, &settings.group, &topics, handler.clone())?;

    let (polled, processed, polled_at) = std::thread::scope(|s| {
        let mut threads = Vec::with_capacity(w);
        for (i, feed) in feeds.into_iter().enumerate() {
            let job = Job {
                slot: index * w + i,
                worker: &handler.workers[i],
                source: &source,
                settings,
                shared,
            };
            let t = std::thread::Builder::new()
                .name(format!("deferlog-process-{index}-{i}"))
                .spawn_scoped(s, move || {
                    let r = process(feed, &job);
                    if r.is_err() {
                        cancel.cancel();
                    }
                    r
                });
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    cancel.cancel();
                    for w in &handler.workers {
                        w.feeder.end(false);
                    }
                    return (
                        Err(anyhow!(e).context("starting a processing thread")),
                        Vec::new(),
                        Instant::now(),
                    );
                }
            }
        }
        let polled = poll(&source, &handler, settings, cancel, shared, started);
        let polled_at = Instant::now();
        // After a clean stop each worker writes its final checkpoint as soon as it has
        // processed its own records, not once every worker has: the busiest worker's
        // backlog sets the time, not the sum of it and the last checkpoint.
        for w in &handler.workers {
            w.feeder.end(polled.is_ok());
        }
        let processed: Vec<Result<Processed>> = threads
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| anyhow!("a processing thread panicked"))
                    .and_then(|r| r)
            })
            .collect();
        (polled, processed, polled_at)
    });
    // Stop: the workers have written everything (see above); commit, then leave the
    // group. After a failure only leave: a restart resumes from the last checkpoint.
    // (A worker that failed stops the poller cleanly, so the others may have written
    // their final checkpoints: each covers just what its worker processed, like any
    // checkpoint, and a restart resumes from it whether committed or not.)
    let committing = Instant::now();
    let stop = match (
        &polled,
        processed.iter().map(|p| p.as_ref().ok()).collect::<Option<Vec<_>>>(),
    ) {
        (Ok(_), Some(done)) => stop(index, &handler, &source, shared, &done),
        _ => Ok(()),
    };
    let committing = committing.elapsed();
    // What a stop waits for once reading ends: the records still queued for the
    // workers, their final checkpoints, the commit.
    let flushing = polled_at.elapsed();
    let leaving = Instant::now();
    drop(source);
    let leaving = leaving.elapsed();
    if let Some(e) = handler.failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
        return Err(anyhow!(e).context("while leaving the consumer group"));
    }
    let polled = polled?;
    let processed = processed.into_iter().collect::<Result<Vec<_>>>()?;
    stop?;
    let elapsed = started.elapsed();
    // Per member: how evenly the group's partitions spread the work.
    let seconds = |ds: &mut dyn Iterator<Item = Duration>| {
        ds.map(|d| format!("{:.2}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let waits = seconds(&mut processed.iter().map(|p| p.waiting));
    let drained = seconds(&mut processed.iter().map(|p| {
        p.ended
            .map_or(Duration::ZERO, |e| e.saturating_duration_since(polled_at))
    }));
    let last_checkpoints = seconds(&mut processed.iter().map(|p| p.final_checkpoint));
    let blocked = seconds(&mut handler.workers.iter().map(|w| w.feeder.blocked()));
    let longest = match polled.longest_wait {
        Some((d, at)) => format!(" (longest {:.2}s from {:.2}s)", d.as_secs_f64(), at.as_secs_f64()),
        None => String::new(),
    };
    // Waits count from the first record (before it the member joins and waits for
    // traffic): with none, there is nothing to say about them.
    match polled.first_record {
        Some(d) => say!(
            "deferlog run: consumer {index}: {} records, the first {:.2}s after the member started; polling waited \
             {:.2}s for records{longest} and {} for full workers; workers waited {} for the poller; writing and \
             committing once reading stopped took {:.2}s (the workers' queues emptied after {drained}, their final \
             checkpoints took {last_checkpoints}, the commit {:.2}s)",
            polled.records,
            d.as_secs_f64(),
            polled.waiting.as_secs_f64(),
            blocked,
            waits,
            flushing.as_secs_f64(),
            committing.as_secs_f64(),
        ),
        None => say!(
            "deferlog run: consumer {index}: no records in {:.2}s",
            elapsed.as_secs_f64()
        ),
    }
    let mut summary = RunSummary {
        records: polled.records,
        elapsed,
        first_record: polled.first_record,
        idle_tail: polled.idle_tail,
        leaving: Some(leaving),
        lost_partitions: handler.lost.load(Ordering::Relaxed),
        ..RunSummary::default()
    };
    for (p, w) in processed.iter().zip(&handler.workers) {
        let first = p.first.map_or(elapsed, |f| f.duration_since(started));
        summary.busy += elapsed.saturating_sub(first);
        summary.consume += p.waiting;
        summary.timings.add(&w.proc().timings());
    }
    Ok(summary)
}

/// The clean stop of a member, once every worker has written its final checkpoint
/// (open hours as not final): one synchronous commit of what they cover.
fn stop(index: usize, handler: &Handler, source: &Source, shared: &Shared, done: &[&Processed]) -> Result<()> {
    let commits: Vec<_> = done.iter().flat_map(|p| p.commits.iter().cloned()).collect();
    source.commit(&commits, true)?;
    let w = handler.workers.len();
    for (i, worker) in handler.workers.iter().enumerate() {
        let p = worker.proc();
        shared.checkpointed(index * w + i, p.status(), p.watermark_us());
    }
    Ok(())
}

/// What the polling thread did.
#[derive(Debug, Default)]
struct Polled {
    records: u64,
    /// Waiting for librdkafka after the first record.
    waiting: Duration,
    first_record: Option<Duration>,
    /// The longest stretch without a record after the first, and when it began (both
    /// since the member started); a stall shows here, spread waits do not.
    longest_wait: Option<(Duration, Duration)>,
    /// From the last wait's start to the end, when polling ended waiting.
    idle_tail: Option<Duration>,
}

const CANCEL_EVERY: u32 = 256;
/// Records between looks at the workers' loads: a few hundredths of a second when
/// busy, and enough records per partition to tell loads apart.
const BALANCE_EVERY: u64 = 1 << 15;

/// Polls until cancelled, copying each record to the worker holding its partition;
/// stops early when a worker is gone or a rebalance callback failed.
fn poll(
    source: &Source,
    handler: &Handler,
    settings: &RunSettings,
    cancel: &CancellationToken,
    shared: &Shared,
    started: Instant,
) -> Result<Polled> {
    let header_of: Vec<(&str, &str)> = settings
        .stream
        .topics
        .iter()
        .filter_map(|t| match &t.tenant {
            TenantFrom::Header(h) => Some((t.name.as_str(), h.as_str())),
            _ => None,
        })
        .collect();
    let mut p = Polled::default();
    let mut warnings = 0u64;
    // Reading the token takes a lock: in a burst it is read once per CANCEL_EVERY
    // records (well under a millisecond), and always before the poller waits.
    let mut check_in = 0u32;
    // Since when the poller has waited without a record (once it has had one).
    let mut stalled: Option<Instant> = None;
    let mut memo = route::Memo::default();
    // Records not yet added to the shared count (`Hooks::stop_after`): it is added
    // to in runs, as a shared counter per record is a contended atomic.
    let mut uncounted = 0u64;
    loop {
        if check_in == 0 {
            if cancel.is_cancelled() {
                break;
            }
            check_in = CANCEL_EVERY;
        }
        check_in -= 1;
        // Records already fetched come back at once; only waiting is timed.
        let mut polled = source.poll(Duration::ZERO);
        if polled.is_none() {
            if shared.count_toward_stop(&mut uncounted) {
                cancel.cancel();
            }
            if cancel.is_cancelled() {
                break;
            }
            // Nothing prefetched: what is copied so far goes now, not when a chunk fills.
            if !handler.workers.iter().all(|w| w.feeder.flush()) {
                break;
            }
            let before = Instant::now();
            polled = source.poll(Duration::from_millis(100));
            // Waiting before the first record is joining the group, not consuming.
            if p.first_record.is_some() {
                p.waiting += before.elapsed();
                stalled.get_or_insert(before);
            }
        }
        match polled {
            Some(Ok(m)) => {
                let header = header_of
                    .iter()
                    .find(|(t, _)| *t == m.topic())
                    .and_then(|(_, h)| m.header(h));
                let r = Record {
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key(),
                    value: m.value(),
                    tenant_header: header,
                    timestamp_ms: m.timestamp_ms(),
                };
                // A partition not held (prefetched before a revoke) goes to worker 0,
                // which counts it and leaves it to its owner.
                let w = handler.worker_of(&mut memo, r.topic, r.partition).unwrap_or(0);
                if !handler.workers[w].feeder.push(&r) {
                    break;
                }
                p.records += 1;
                if p.records.is_multiple_of(BALANCE_EVERY) {
                    handler.balance(&mut memo);
                }
                // Only after a wait, so the clock is not read per record.
                if let Some(since) = stalled.take() {
                    let stall = since.elapsed();
                    if p.longest_wait.is_none_or(|(d, _)| stall > d) {
                        p.longest_wait = Some((stall, since.duration_since(started)));
                    }
                }
                if p.first_record.is_none() {
                    p.first_record = Some(started.elapsed());
                }
                uncounted += 1;
                if uncounted == u64::from(CANCEL_EVERY) && shared.count_toward_stop(&mut uncounted) {
                    cancel.cancel();
                    check_in = 0;
                }
            }
            Some(Err(e)) => {
                // The broker being away repeats the same error many times a second.
                warnings += 1;
                if warnings.is_power_of_two() {
                    say!(
                        "deferlog run: kafka ({}): {e} (seen {warnings} times)",
                        settings.client.brokers
                    );
                }
            }
            None => {}
        }
        if handler.has_failed.load(Ordering::Relaxed)
            && let Some(e) = handler.failed.lock().unwrap_or_else(PoisonError::into_inner).take()
        {
            return Err(e.into());
        }
    }
    p.idle_tail = stalled.map(|since| since.elapsed());
    Ok(p)
}

/// What the processing thread did.
#[derive(Debug, Default)]
struct Processed {
    /// When the first chunk came.
    first: Option<Instant>,
    /// Waiting for the polling thread after the first chunk.
    waiting: Duration,
    /// When the polling thread's end came, everything before it processed.
    ended: Option<Instant>,
    /// The final checkpoint (after a clean stop): how long it took, and the offsets
    /// it covers, to commit.
    final_checkpoint: Duration,
    commits: Vec<(String, i32, i64)>,
}

/// How long a worker goes at most without looking at the clock (batch and
/// checkpoint intervals, the status line), busy or quiet.
const TICK: Duration = Duration::from_millis(100);

/// What a processing thread works with.
struct Job<'a> {
    /// This worker's place among all the run's workers (for the shared status).
    slot: usize,
    worker: &'a Worker,
    source: &'a Source,
    settings: &'a RunSettings,
    shared: &'a Shared,
}

/// Processes the polling thread's chunks until it ends; closes batches on time,
/// checkpoints and commits on the checkpoint interval, and logs the status line.
fn process(feed: Fed, job: &Job<'_>) -> Result<Processed> {
    let Job {
        slot,
        worker,
        source,
        settings,
        shared,
    } = *job;
    let mut done = Processed::default();
    let mut last_checkpoint = Instant::now();
    let mut status = Status::new(slot, &shared.board, shared.exporter.clone());
    let mut since_tick = 0usize;
    let mut last_tick = Instant::now();
    loop {
        let before = Instant::now();
        let got = feed.recv_timeout(TICK);
        // `now` dates batches and idleness: once per chunk is often enough.
        let now = Instant::now();
        if done.first.is_some() {
            done.waiting += now - before;
        }
        match got {
            Ok(Feed::Records(chunk)) => {
                done.first.get_or_insert(now);
                let mut p = worker.proc();
                for r in chunk.records() {
                    p.process(&r, now)?;
                }
                shared.board.add_records(chunk.len());
                since_tick += chunk.len();
                feed.give_back(chunk);
            }
            Ok(Feed::Barrier(ack)) => {
                let _ = ack.send(());
            }
            Ok(Feed::End { finish }) => {
                done.ended = Some(now);
                if finish {
                    done.commits = worker.proc().checkpoint(true, now)?;
                    done.final_checkpoint = now.elapsed();
                }
                return Ok(done);
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(done),
            // Quiet: time to look at the clock.
            Err(RecvTimeoutError::Timeout) => since_tick = usize::MAX,
        }
        // Clock checks every few thousand records, and at least every `TICK`: a
        // trickle of records (each its own chunk, none waiting) never lets the
        // channel go quiet, and must still close batches and checkpoint on time.
        if since_tick >= 4096 || now.duration_since(last_tick) >= TICK {
            since_tick = 0;
            last_tick = now;
            let mut p = worker.proc();
            p.tick(now)?;
            if now.duration_since(last_checkpoint) >= settings.checkpoint_interval {
                let commits = p.checkpoint(false, now)?;
                // Asynchronous: a lost commit only means a restart re-reads from the
                // checkpoint's own offsets, which it does anyway.
                source.commit(&commits, false)?;
                last_checkpoint = now;
                shared.checkpointed(slot, p.status(), p.watermark_us());
            }
            status.maybe_post(now, &mut p, source, &shared.board);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_splits_the_run_into_start_records_and_idle_end() {
        let s = RunSummary {
            records: 1000,
            elapsed: Duration::from_secs(10),
            first_record: Some(Duration::from_secs(3)),
            idle_tail: Some(Duration::from_secs(4)),
            leaving: Some(Duration::from_secs(1)),
            busy: Duration::from_secs(4),
            consume: Duration::from_secs(1),
            // On the writer threads: not taken from the processing threads' time.
            timings: deferlog_stream::Timings {
                write: Duration::from_secs(2),
                ..Default::default()
            },
            lost_partitions: 0,
        };
        assert_eq!(
            s.to_string(),
            "1000 records in 2.00s, the first 3.00s after start (500/s), then 4.00s without records until stopped and \
             1.00s leaving the group; \
             processing threads: waiting for records 1.00s, parse+batch 3.00s, SQL 0.00s, checkpoint 0.00s; \
             writer threads: events files 2.00s"
        );
        // Nothing read: no rates or waits to speak of.
        let idle = RunSummary {
            elapsed: Duration::from_secs(17),
            ..RunSummary::default()
        };
        assert_eq!(idle.to_string(), "no records in 17.00s");
    }
}
