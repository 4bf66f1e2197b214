//! One group member's workers and the rebalance callbacks that place, move, release
//! and drop its partitions among them. The callbacks run inside `poll` on the polling
//! thread; they reach a worker's Processor only after its feed has passed a barrier.

use super::feed::Feeder;
use super::route::{self, Routes};
use crate::metrics::HourGauges;
use arrow::array::RecordBatch;
use deferlog_kafka::{Partitions, TopicPartition};
use deferlog_metrics::Exporter;
use deferlog_stream::{Processor, StreamError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// One processing thread of a member: its Processor and the channel to it.
pub(super) struct Worker {
    pub(super) proc: Mutex<Processor>,
    pub(super) feeder: Feeder,
}

impl Worker {
    pub(super) fn proc(&self) -> MutexGuard<'_, Processor> {
        self.proc.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct Handler {
    pub(super) workers: Vec<Worker>,
    /// Which worker holds each partition (see [`route`]).
    pub(super) routes: Mutex<Routes>,
    /// Changes with every change to `routes`: the poller's memo of them is good
    /// while it stays the same.
    pub(super) routes_version: AtomicU64,
    pub(super) exporter: Arc<Exporter>,
    /// The first failure inside a rebalance callback; the loop stops on it.
    pub(super) failed: Mutex<Option<StreamError>>,
    /// Set with `failed`, so the loop checks a flag per record, not a lock.
    pub(super) has_failed: AtomicBool,
    /// When this member started, for the times its log lines give.
    pub(super) started: Instant,
    /// Its first worker's number among the process's (log lines number workers so).
    pub(super) first_slot: usize,
    /// Each partition taken on brings its rows; each one let go takes them along.
    pub(super) hour_gauges: Arc<Mutex<HourGauges>>,
    /// This member's number in the process.
    pub(super) member: usize,
    /// Partitions it lost (see [`Partitions::lost`]).
    pub(super) lost: AtomicU64,
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
    pub(super) fn worker_of(&self, memo: &mut route::Memo, topic: &str, partition: i32) -> Option<usize> {
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
    pub(super) fn balance(&self, memo: &mut route::Memo) {
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
        self.exporter.set_assigned(self.member, true);
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
            let mut p = self.workers[w].proc();
            match p.revoke(t, *n) {
                Ok(Some(o)) => commits.push((t.clone(), *n, o)),
                Ok(None) => {}
                Err(e) => self.fail(e),
            }
            super::process::say_fenced(&mut p);
        }
        if !parts.is_empty() {
            say!("deferlog run: released {}", names(parts));
        }
        self.forget_hour_gauges(parts);
        commits
    }

    fn lost(&self, parts: &[TopicPartition]) {
        self.lost.fetch_add(parts.len() as u64, Ordering::Relaxed);
        self.exporter.count_partitions_lost(parts.len() as u64);
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
            self.exporter.set_assigned(self.member, false);
            say!(
                "deferlog run: lost {} (out of the group longer than its session timeout): dropped unwritten; \
                 their new owner resumes from the last checkpoint",
                names(parts)
            );
        }
    }
}

/// `topic/partition ...` for log lines.
pub(super) fn names(parts: &[TopicPartition]) -> String {
    parts
        .iter()
        .map(|(t, n)| format!("{t}/{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}
