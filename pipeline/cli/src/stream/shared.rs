//! What every worker of a run shares: the status board, the exporter's state gauges,
//! the watermark, the caller's hooks and the once-only log lines.

use super::OnCheckpoint;
use super::status::{Board, newest_per_partition, process_watermark, worker_watermark};
use crate::metrics::HourGauges;
use deferlog_kafka::TopicPartition;
use deferlog_metrics::Exporter;
use deferlog_stream::{EpochSink, PartitionStatus};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the workers of one run share.
pub(super) struct Shared {
    pub(super) on_checkpoint: Mutex<Option<OnCheckpoint>>,
    /// The latest status of each worker's partitions.
    pub(super) statuses: Mutex<Vec<Vec<PartitionStatus>>>,
    pub(super) sink: Option<Arc<Mutex<Box<dyn EpochSink>>>>,
    /// Records consumed, counted toward `stop_after`.
    pub(super) records: AtomicU64,
    pub(super) stop_after: Option<u64>,
    pub(super) exporter: Arc<Exporter>,
    pub(super) hour_gauges: Arc<Mutex<HourGauges>>,
    /// Each worker's say in the process's watermark (see
    /// [`super::status::worker_watermark`]).
    pub(super) watermarks: Mutex<Vec<Option<i64>>>,
    /// The status line.
    pub(super) board: Board,
    /// Hosts and instances already logged as making attempts without a source IP, and
    /// whether the ones past those a normalizer names were.
    pub(super) no_ip_told: Mutex<(Vec<(String, String)>, bool)>,
    /// When each partition was last found taken over by another writer.
    pub(super) fenced: Mutex<Fences>,
}

/// A partition taken over twice within this is no stalled member's misfortune but two
/// writers of one archive that are not one group.
const FENCED_AGAIN_WITHIN: Duration = Duration::from_secs(600);

/// When each partition was last found taken over by another writer.
#[derive(Debug, Default)]
pub(super) struct Fences(HashMap<TopicPartition, Instant>);

impl Fences {
    /// Notes partitions found taken over at `now`; an error if one was already,
    /// lately: two deployments (another `kafka.group_id`) writing one archive would
    /// otherwise take it from each other for ever, each rejoining its group in turn.
    pub(super) fn note(&mut self, parts: &[TopicPartition], now: Instant) -> anyhow::Result<()> {
        for (t, n) in parts {
            if let Some(at) = self.0.insert((t.clone(), *n), now)
                && now.saturating_duration_since(at) < FENCED_AGAIN_WITHIN
            {
                anyhow::bail!(
                    "{t}/{n} was taken over twice within {} minutes: is another deployment (another \
                     kafka.group_id) writing this archive? Each group needs its own stream.out",
                    FENCED_AGAIN_WITHIN.as_secs() / 60
                );
            }
        }
        Ok(())
    }
}

impl Shared {
    /// See [`Fences::note`].
    pub(super) fn fenced_again(&self, parts: &[TopicPartition]) -> anyhow::Result<()> {
        self.fenced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .note(parts, Instant::now())
    }

    /// Adds `uncounted` (zeroing it) to the records consumed; whether `stop_after`
    /// is reached.
    pub(super) fn count_toward_stop(&self, uncounted: &mut u64) -> bool {
        let n = std::mem::take(uncounted);
        self.stop_after
            .is_some_and(|limit| self.records.fetch_add(n, Ordering::Relaxed) + n >= limit)
    }

    pub(super) fn checkpointed(&self, slot: usize, status: Vec<PartitionStatus>, watermark_us: i64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_taken_over_twice_within_ten_minutes_stops_the_run() {
        let mut f = Fences::default();
        let t0 = Instant::now();
        let p = |n| vec![("mail".to_owned(), n)];
        assert!(f.note(&p(3), t0).is_ok(), "a stalled member, once");
        assert!(f.note(&p(4), t0 + Duration::from_secs(60)).is_ok(), "another partition");
        assert!(f.note(&p(3), t0 + Duration::from_secs(601)).is_ok(), "long after");
        let err = f
            .note(&p(3), t0 + Duration::from_secs(900))
            .expect_err("twice in 10 minutes");
        assert!(err.to_string().contains("mail/3 was taken over twice"), "{err}");
    }
}
