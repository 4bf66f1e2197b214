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
//! librdkafka's messages to the worker holding their partition ([`feed`]) and
//! moves a partition to another worker when that evens out their loads
//! ([`route`]): a barrier first, so the partition's records stay in order.
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

mod feed;
mod handler;
mod poll;
mod process;
mod route;
mod shared;
mod sinks;
mod status;
mod summary;

pub use summary::RunSummary;

use crate::config::RunSettings;
use crate::metrics::{HourGaugeSink, HourGauges, Served};
use anyhow::{Context, Result, anyhow};
use deferlog_kafka::{Producer, Source};
use deferlog_stream::{EpochSink, PartitionStatus, Processor};
use feed::Feeder;
use handler::{Handler, Worker};
use poll::poll;
use process::{Job, Processed, process};
use route::Routes;
use shared::Shared;
use sinks::{SharedSink, Tee, TopicSink};
use status::Board;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
        fenced: Mutex::default(),
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
    let committed = match total.uncommitted {
        0 => "written and committed",
        _ => "written (the last commit got no answer: a restart resumes from the checkpoints)",
    };
    say!("deferlog run: stopped; everything consumed from the partitions it held is {committed}{lost}. {total}");
    Ok(total)
}

/// One group member: its own consumer, and a Processor per worker. This thread polls
/// and copies records out to the worker holding their partition (see [`feed`],
/// [`route`]); each worker thread parses, batches, windows, writes,
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
    // Not ready until this member too holds an assignment.
    shared.exporter.set_assigned(index, false);
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
    let commits = match (
        &polled,
        processed.iter().map(|p| p.as_ref().ok()).collect::<Option<Vec<_>>>(),
    ) {
        (Ok(_), Some(done)) => Some(stop(index, &handler, shared, &done)),
        _ => None,
    };
    let Left {
        committed: stop,
        answered,
        committing,
        leaving,
    } = commit_and_leave(source, commits);
    // What a stop waits for once reading ends: the records still queued for the
    // workers, their final checkpoints, the commit (answered or not).
    let flushing = polled_at
        .elapsed()
        .saturating_sub(if answered { leaving } else { Duration::ZERO });
    let left = handler
        .failed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .map(|e| anyhow!(e).context("while leaving the consumer group"));
    // A worker's failure first: the others (the poller stopping, a revoke failing
    // on the same full disk) follow from it.
    let ended = processed
        .into_iter()
        .collect::<Result<Vec<_>>>()
        .and_then(|processed| Ok((polled?, processed)))
        .and_then(|done| stop.map(|()| done));
    let (polled, processed) = match (ended, left) {
        (Ok(done), None) => done,
        (Ok(_), Some(left)) => return Err(left),
        (Err(e), left) => {
            if let Some(left) = left {
                say!("deferlog run: {left:#}");
            }
            return Err(e);
        }
    };
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
             checkpoints took {last_checkpoints}, the commit {:.2}s{})",
            polled.records,
            d.as_secs_f64(),
            polled.waiting.as_secs_f64(),
            blocked,
            waits,
            flushing.as_secs_f64(),
            committing.as_secs_f64(),
            if answered { "" } else { " without an answer" },
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
        uncommitted: u64::from(!answered),
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

/// How long the last commit and leaving the group may take together, once everything
/// is written.
const LEAVE_LIMIT: Duration = Duration::from_secs(10);

/// How the last commit and the leave went.
struct Left {
    committed: Result<()>,
    /// The commit came back in time (`committed` says how).
    answered: bool,
    committing: Duration,
    leaving: Duration,
}

/// Commits what the final checkpoints cover (`None`: after a failure, nothing), then
/// leaves the group (librdkafka's close: the revoke callbacks release the partitions,
/// with nothing left to write), waiting at most [`LEAVE_LIMIT`] for both. A broker that
/// hangs rather than refuses would hold the commit and the close, and so the exit,
/// until an orchestrator's grace period kills the process. Nothing is lost by going
/// without them: a partition resumes from its checkpoint, never from the commit, and
/// the group reassigns the partitions after `session.timeout.ms`.
fn commit_and_leave(source: Source, commits: Option<Vec<(String, i32, i64)>>) -> Left {
    enum Step {
        Committed(Result<()>, Duration),
        Left,
    }
    let started = Instant::now();
    let (tx, steps) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("deferlog-leave".into())
        .spawn(move || {
            let committed = commits.map_or(Ok(()), |c| source.commit(&c, true).map_err(Into::into));
            let _ = tx.send(Step::Committed(committed, started.elapsed()));
            drop(source);
            let _ = tx.send(Step::Left);
        });
    if let Err(e) = closing {
        return Left {
            committed: Err(anyhow!(e).context("starting the thread that commits and leaves the group")),
            answered: false,
            committing: Duration::ZERO,
            leaving: Duration::ZERO,
        };
    }
    let deadline = started + LEAVE_LIMIT;
    let next = || steps.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let (committed, committing) = match next() {
        Ok(Step::Committed(r, took)) => (r, took),
        _ => {
            say!(
                "deferlog run: committing: no answer from the brokers within {}s; going without it and without \
                 leaving the group (everything read is in the checkpoints, which a restart resumes from)",
                LEAVE_LIMIT.as_secs()
            );
            // The wait is the stop's, not reading's: the summary takes it out of the
            // working time as it does a leave's.
            return Left {
                committed: Ok(()),
                answered: false,
                committing: started.elapsed(),
                leaving: started.elapsed(),
            };
        }
    };
    if !matches!(next(), Ok(Step::Left)) {
        say!(
            "deferlog run: leaving the group: no answer from the brokers within {}s of the last commit's start; \
             going without it (the group reassigns the partitions after session.timeout.ms, from their checkpoints)",
            LEAVE_LIMIT.as_secs()
        );
    }
    Left {
        committed,
        answered: true,
        committing,
        leaving: started.elapsed().saturating_sub(committing),
    }
}

/// The clean stop of a member, once every worker has written its final checkpoint
/// (open hours as not final): what to commit.
fn stop(index: usize, handler: &Handler, shared: &Shared, done: &[&Processed]) -> Vec<(String, i32, i64)> {
    let w = handler.workers.len();
    for (i, worker) in handler.workers.iter().enumerate() {
        let p = worker.proc();
        shared.checkpointed(index * w + i, p.status(), p.watermark_us());
    }
    done.iter().flat_map(|p| p.commits.iter().cloned()).collect()
}
