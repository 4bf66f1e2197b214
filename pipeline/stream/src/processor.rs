//! Every partition one worker holds, and that worker's watermark over them (the
//! process's is the minimum over its workers).

use crate::StreamError;
use crate::config::{StreamConfig, TenantFrom};
use crate::partition::{Partition, Tenant};
use crate::sql::Sql;
use crate::status::{BatchLatency, LatencyMeter, PartitionStatus};
use crate::writer::Writer;
use deferlog_event::hour_of;
use deferlog_metrics::Exporter;
use std::sync::Arc;
use std::time::Instant;

/// One record, as the broker delivered it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The header named by the topic's `tenant` setting, when that is a header.
    pub tenant_header: Option<&'a [u8]>,
    /// The broker's timestamp (ms), the ingest time BSD stamps take their year from.
    pub timestamp_ms: Option<i64>,
}

/// A partition between two Processors (see [`Processor::release`]).
pub struct Moving(Partition);

impl std::fmt::Debug for Moving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Moving").field(&self.0.scope).finish()
    }
}

pub struct Processor {
    cfg: StreamConfig,
    sql: Sql,
    writer: Writer,
    /// Sorted by (topic, partition); a handful per instance, so a scan beats hashing
    /// (and needs no owned key per record).
    parts: Vec<Partition>,
    watermark_us: i64,
    latency: LatencyMeter,
    sink: Option<Box<dyn crate::EpochSink>>,
    /// Timings of partitions already released.
    released: crate::Timings,
    /// Records of partitions not held, skipped (see `process`).
    stray_records: u64,
    /// Partitions dropped because another member had taken them over, not yet
    /// reported (see [`Processor::take_fenced`]).
    fenced: Vec<(String, i32)>,
    /// The wall clock, read at each tick rather than per record: it only bounds
    /// broker timestamps (`ingest_us`), an hour wide.
    wall_us: i64,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("partitions", &self.parts.len())
            .field("watermark_us", &self.watermark_us)
            .finish_non_exhaustive()
    }
}

impl Processor {
    pub fn new(cfg: StreamConfig) -> Result<Self, StreamError> {
        Ok(Processor {
            cfg,
            sql: Sql::new()?,
            writer: Writer::new()?,
            parts: Vec::new(),
            watermark_us: i64::MIN,
            latency: LatencyMeter::default(),
            sink: None,
            released: crate::Timings::default(),
            stray_records: 0,
            fenced: Vec::new(),
            wall_us: now_us(),
        })
    }

    /// Exports what each checkpoint commits (and batch latencies) through `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Exporter>) -> Self {
        self.latency.metrics = Some(metrics);
        self
    }

    fn metrics(&self) -> Option<&Exporter> {
        self.latency.metrics.as_deref()
    }

    /// Hands every epoch to `sink` too (see [`crate::EpochSink`]).
    pub fn with_sink(mut self, sink: Box<dyn crate::EpochSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Takes a partition on: restores its checkpoint. Returns the offset to start
    /// reading at, or `None` when there is no checkpoint (start at the group's
    /// committed offset, else the earliest).
    pub fn assign(&mut self, topic: &str, partition: i32) -> Result<Option<i64>, StreamError> {
        let i = self.held(topic, partition)?;
        let next = self.parts[i].next_offset;
        Ok((next >= 0).then_some(next))
    }

    /// The index of a partition, opened from its checkpoint if not held yet.
    fn held(&mut self, topic: &str, partition: i32) -> Result<usize, StreamError> {
        if let Some(i) = self.find(topic, partition) {
            return Ok(i);
        }
        let p = Partition::open(&self.cfg, topic, partition, self.metrics().map(Exporter::instance))?;
        if let Some(m) = self.metrics() {
            m.acquire(&p.scope, &p.counts, p.prior_owner.as_deref());
        }
        Ok(self.insert(p))
    }

    /// Keeps `parts` sorted; returns where `p` went.
    fn insert(&mut self, p: Partition) -> usize {
        let at = self
            .parts
            .partition_point(|q| (&*q.topic, q.partition) < (&*p.topic, p.partition));
        self.parts.insert(at, p);
        at
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.parts
            .iter()
            .position(|p| p.partition == partition && &*p.topic == topic)
    }

    /// Lets a partition go: checkpoints it first, so its next owner resumes exactly
    /// here. Returns the offset to commit.
    pub fn revoke(&mut self, topic: &str, partition: i32) -> Result<Option<i64>, StreamError> {
        let Some(i) = self.find(topic, partition) else {
            return Ok(None);
        };
        let mut p = self.parts.remove(i);
        let close = self.close_before();
        let r = p.checkpoint(
            close,
            false,
            Instant::now(),
            &mut self.sql,
            &self.writer,
            self.sink.as_deref_mut(),
        );
        self.released.add(&p.timings);
        match r {
            Ok(Some(off)) => {
                if let Some(m) = self.metrics() {
                    m.commit(&[(&p.scope, &p.counts)])?;
                }
                if let Some(sink) = self.sink.as_deref_mut() {
                    sink.checkpointed()?;
                }
                Ok(Some(off))
            }
            Ok(None) => Ok(None),
            Err(StreamError::TakenOver { .. }) => {
                self.fenced.push((p.topic.to_string(), p.partition));
                p.abort();
                Ok(None)
            }
            Err(e) => {
                p.abort();
                Err(e)
            }
        }
    }

    /// Partitions this member found another member of the group had taken over (it
    /// was out of the group longer than its session timeout, and the group's callback
    /// saying so had not come yet) since the last call: each was dropped unwritten at
    /// its checkpoint, as [`Processor::lose`] drops one, and its new owner resumes from
    /// its own checkpoint. The member goes on with the partitions it still holds.
    pub fn take_fenced(&mut self) -> Vec<(String, i32)> {
        std::mem::take(&mut self.fenced)
    }

    /// Drops a partition this member lost (another member may be writing it now):
    /// nothing of it is written, its staged files are deleted. The new owner
    /// resumes from the last checkpoint, which covers everything committed.
    pub fn lose(&mut self, topic: &str, partition: i32) {
        if let Some(i) = self.find(topic, partition) {
            self.drop_unwritten(i);
        }
    }

    /// Takes the partition at `i` out, writing nothing of it (see [`Processor::lose`]).
    fn drop_unwritten(&mut self, i: usize) -> (String, i32) {
        let p = self.parts.remove(i);
        self.released.add(&p.timings);
        let name = (p.topic.to_string(), p.partition);
        p.abort();
        name
    }

    /// Lets a partition go to another Processor of this process, whole: its open
    /// batch, staged files, windows and normalizer state travel along, nothing is
    /// written. The caller must have had this Processor process every record of the
    /// partition it was sent, and sends the rest to the one that adopts it.
    pub fn release(&mut self, topic: &str, partition: i32) -> Option<Moving> {
        let i = self.find(topic, partition)?;
        Some(Moving(self.parts.remove(i)))
    }

    /// Takes on a partition another Processor released. From here its hours close on
    /// this Processor's watermark: hours that watermark has passed close at the next
    /// checkpoint, and the partition's later events of them count as late (the hour is
    /// written again with a higher revision).
    pub fn adopt(&mut self, moving: Moving) {
        self.insert(moving.0);
    }

    /// Waits until the events files handed to the writer so far (the hours the
    /// partitions' events have passed) are sealed in staging. A checkpoint waits for
    /// them anyway; this is for whoever looks at staging in between.
    pub fn flush_writes(&self) -> Result<(), StreamError> {
        self.writer.flush()
    }

    /// Normalizes one record. `Err` only for failures of disk or state, never for input.
    pub fn process(&mut self, r: &Record<'_>, now: Instant) -> Result<(), StreamError> {
        // A record of a partition this processor does not hold (prefetched before a
        // revoke) belongs to the partition's owner, which reads it again from its
        // checkpoint. Taking the partition on here would give it two writers.
        let Some(i) = self.find(r.topic, r.partition) else {
            self.stray_records += 1;
            return Ok(());
        };
        let tenant_from = self.cfg.topics.iter().find(|t| t.name == r.topic).map(|t| &t.tenant);
        let default = self.cfg.normalizer.tenant.as_str();
        let tenant = match tenant_from {
            Some(TenantFrom::Fixed(t)) => Tenant::Default(t),
            Some(TenantFrom::Key) => r.key.map_or(Tenant::Default(default), Tenant::Given),
            Some(TenantFrom::Header(_)) => r.tenant_header.map_or(Tenant::Default(default), Tenant::Given),
            None => Tenant::Default(default),
        };
        let reference_us = ingest_us(r.timestamp_ms, self.wall_us);
        let batch_rows = self.cfg.batch_rows;
        let p = &mut self.parts[i];
        p.process(r.offset, r.key, r.value, tenant, reference_us, now);
        p.hand_over_passed(&self.writer)?;
        if p.rows_in_batch() >= batch_rows {
            self.latency.add(p.close_batch(&mut self.sql, &self.writer)?);
        }
        Ok(())
    }

    /// Closes batches older than the batch interval.
    pub fn tick(&mut self, now: Instant) -> Result<(), StreamError> {
        self.wall_us = now_us();
        for p in self.parts.iter_mut() {
            if p.batch_started
                .is_some_and(|t| now.duration_since(t) >= self.cfg.batch_interval)
            {
                self.latency.add(p.close_batch(&mut self.sql, &self.writer)?);
            }
        }
        Ok(())
    }

    /// Min over active partitions of (max event time − allowed lateness). A partition
    /// is active from its assignment until it has read no event for the idle timeout
    /// (records that are not events, such as a host's inbound lines, do not count);
    /// an active partition that has not delivered an event yet holds the watermark
    /// where it is (it may be about to deliver old hours). Never goes back.
    fn advance_watermark(&mut self, now: Instant) -> i64 {
        let mut mark: Option<i64> = None;
        for p in self.parts.iter() {
            if p.is_idle(now) {
                continue;
            }
            let Some(m) = p.max_event_us else {
                return self.watermark_us;
            };
            let m = m.saturating_sub(self.cfg.lateness_us);
            mark = Some(mark.map_or(m, |x| x.min(m)));
        }
        // Every partition idle: the min over all of them.
        let mark = mark.or_else(|| {
            self.parts
                .iter()
                .filter_map(|p| p.max_event_us)
                .map(|m| m.saturating_sub(self.cfg.lateness_us))
                .min()
        });
        if let Some(w) = mark {
            self.watermark_us = self.watermark_us.max(w);
        }
        self.watermark_us
    }

    /// Where the time went, over every partition held now.
    pub fn timings(&self) -> crate::Timings {
        let mut t = self.released;
        for p in &self.parts {
            t.add(&p.timings);
        }
        t
    }

    /// Batch latencies since the last call.
    pub fn take_batch_latency(&mut self) -> BatchLatency {
        std::mem::take(&mut self.latency.since_taken)
    }

    /// Records skipped because their partition is not held here.
    pub fn stray_records(&self) -> u64 {
        self.stray_records
    }

    /// Hours before this are closed: the hour the watermark is in.
    fn close_before(&self) -> i64 {
        if self.watermark_us == i64::MIN {
            i64::MIN
        } else {
            hour_of(self.watermark_us)
        }
    }

    pub fn watermark_us(&self) -> i64 {
        self.watermark_us
    }

    /// Checkpoints every partition (see `checkpoint.rs` for the order of writes).
    /// With `stopping`, open hours are written too, as not final. Returns the offsets
    /// to commit: (topic, partition, next offset).
    pub fn checkpoint(&mut self, stopping: bool, now: Instant) -> Result<Vec<(String, i32, i64)>, StreamError> {
        for p in self.parts.iter_mut() {
            self.latency.add(p.close_batch(&mut self.sql, &self.writer)?);
        }
        self.advance_watermark(now);
        let close = self.close_before();
        let mut commits = Vec::new();
        let mut stored = Vec::new();
        let mut fenced = Vec::new();
        for (i, p) in self.parts.iter_mut().enumerate() {
            let sink = self.sink.as_deref_mut();
            match p.checkpoint(close, stopping, now, &mut self.sql, &self.writer, sink) {
                Ok(Some(off)) => {
                    commits.push((p.topic.to_string(), p.partition, off));
                    stored.push(i);
                }
                Ok(None) => {}
                Err(StreamError::TakenOver { .. }) => fenced.push(i),
                Err(e) => return Err(e),
            }
        }
        // After the checkpoints: what Prometheus sees is never ahead of what a
        // restart resumes from.
        if let Some(m) = self.metrics()
            && !stored.is_empty()
        {
            let scopes: Vec<_> = stored
                .iter()
                .map(|i| (self.parts[*i].scope.as_str(), &self.parts[*i].counts))
                .collect();
            m.commit(&scopes)?;
        }
        if let Some(sink) = self.sink.as_deref_mut()
            && !stored.is_empty()
        {
            sink.checkpointed()?;
        }
        for i in fenced.into_iter().rev() {
            let name = self.drop_unwritten(i);
            self.fenced.push(name);
        }
        Ok(commits)
    }

    /// A held partition's scope and the stored-row form of its newest closed hour
    /// with rows (see [`crate::EpochSink`]); the hour gauges start from them.
    pub fn last_closed_rows(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<Result<(String, Vec<arrow::record_batch::RecordBatch>), StreamError>> {
        let p = &self.parts[self.find(topic, partition)?];
        Some(p.last_closed_rows().map(|rows| (p.scope.clone(), rows)))
    }

    pub fn status(&self) -> Vec<PartitionStatus> {
        self.parts
            .iter()
            .map(|p| PartitionStatus {
                topic: p.topic.to_string(),
                partition: p.partition,
                next_offset: p.next_offset,
                max_event_us: p.max_event_us,
                holds_watermark_until: p.holds_watermark_until(),
                open_hours: p.windows.open_hours(),
                closed_before: p.windows.closed_before(),
                stats: p.stats(),
                counters: p.counters.clone(),
                folded_events: p
                    .counts
                    .get(&deferlog_metrics::key(deferlog_metrics::Family::StateFolded, &[])),
                unresumed_start: p.unresumed_start(),
            })
            .collect()
    }
}

/// A record's ingest time: its broker timestamp, or the wall clock when it has none
/// or one more than the allowed clock skew ahead. The timestamp is usually the
/// producer's (CreateTime): a producer clock far ahead, or a number no clock gives,
/// would otherwise become the partition's ingest clock for good (it never goes back
/// and the checkpoint keeps it), publishing hours of dead letters early and letting
/// events that far ahead through.
fn ingest_us(timestamp_ms: Option<i64>, wall_us: i64) -> i64 {
    timestamp_ms
        .filter(|t| *t > 0)
        .and_then(|ms| ms.checked_mul(1000))
        .filter(|us| *us <= wall_us.saturating_add(crate::partition::CLOCK_SKEW_US))
        .unwrap_or(wall_us)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_timestamp_is_the_ingest_time_unless_absent_or_beyond_the_skew() {
        let wall_ms = 1_800_000_000_000;
        let wall = wall_ms * 1000;
        let minute = 60_000;
        assert_eq!(
            ingest_us(Some(wall_ms - 90 * minute), wall),
            wall - 90 * minute * 1000,
            "a backlog keeps its time"
        );
        assert_eq!(
            ingest_us(Some(wall_ms + 30 * minute), wall),
            wall + 30 * minute * 1000,
            "drift within the skew"
        );
        assert_eq!(
            ingest_us(Some(wall_ms + 90 * minute), wall),
            wall,
            "a producer clock ahead"
        );
        for none in [None, Some(0), Some(-5), Some(i64::MAX), Some(i64::MAX / 999)] {
            assert_eq!(ingest_us(none, wall), wall, "{none:?}");
        }
    }
}
