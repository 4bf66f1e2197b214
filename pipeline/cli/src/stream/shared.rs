//! What every worker of a run shares: the status board, the exporter's state gauges,
//! the watermark, the caller's hooks and the once-only log lines.

use super::OnCheckpoint;
use super::status::{Board, newest_per_partition, process_watermark, worker_watermark};
use crate::metrics::HourGauges;
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
    pub(super) fenced: Mutex<HashMap<(String, i32), Instant>>,
}

/// A partition taken over twice within this is no stalled member's misfortune but two
/// writers of one archive that are not one group.
const FENCED_AGAIN_WITHIN: Duration = Duration::from_secs(600);

impl Shared {
    /// Notes partitions found taken over; an error if one was already, lately: two
    /// deployments (another `kafka.group_id`) writing one archive would otherwise
    /// take it from each other for ever, each rejoining its group in turn.
    pub(super) fn fenced_again(&self, parts: &[(String, i32)]) -> anyhow::Result<()> {
        let mut seen = self.fenced.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        for (t, n) in parts {
            if let Some(at) = seen.insert((t.clone(), *n), now)
                && now.duration_since(at) < FENCED_AGAIN_WITHIN
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
