//! Routes event rows into per-hour builders and hands out full batches, so every
//! batch belongs to exactly one hour (one archive partition, one window).

use crate::builder::EventBuilder;
use crate::hour_of;
use crate::row::{EventRow, EventSink};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use std::collections::BTreeMap;

/// A batch and the hour (µs since the epoch) all its rows fall in.
#[derive(Debug, Clone)]
pub struct HourBatch {
    pub hour_us: i64,
    pub batch: RecordBatch,
}

#[derive(Debug)]
pub struct HourBatcher {
    rows_per_batch: usize,
    open: BTreeMap<i64, EventBuilder>,
    ready: Vec<Result<HourBatch, ArrowError>>,
    max_time_us: Option<i64>,
    /// Largest event time since [`HourBatcher::take_newest`] last took it.
    newest_us: Option<i64>,
}

impl HourBatcher {
    pub fn new(rows_per_batch: usize) -> Self {
        HourBatcher {
            rows_per_batch: rows_per_batch.max(1),
            open: BTreeMap::new(),
            ready: Vec::new(),
            max_time_us: None,
            newest_us: None,
        }
    }

    /// Largest event time pushed so far: the input side of the watermark.
    pub fn max_time_us(&self) -> Option<i64> {
        self.max_time_us
    }

    /// Largest event time pushed since the last call: what one record added, to a
    /// caller that takes it after each.
    pub fn take_newest(&mut self) -> Option<i64> {
        self.newest_us.take()
    }

    /// Whether a full batch waits to be taken.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Full batches produced since the last call.
    pub fn take_ready(&mut self) -> impl Iterator<Item = Result<HourBatch, ArrowError>> + '_ {
        self.ready.drain(..)
    }

    /// Finishes the builders of every hour that starts before `hour_us`.
    pub fn flush_before(&mut self, hour_us: i64) {
        let later = self.open.split_off(&hour_us);
        let done = std::mem::replace(&mut self.open, later);
        for (hour_us, mut b) in done {
            if !b.is_empty() {
                self.ready.push(b.finish().map(|batch| HourBatch { hour_us, batch }));
            }
        }
    }

    /// Finishes every builder.
    pub fn flush_all(&mut self) {
        self.flush_before(i64::MAX);
    }
}

impl EventSink for HourBatcher {
    fn push(&mut self, row: &EventRow<'_>) {
        let hour_us = hour_of(row.event_time_us);
        let t = row.event_time_us;
        self.max_time_us = Some(self.max_time_us.map_or(t, |m| m.max(t)));
        self.newest_us = Some(self.newest_us.map_or(t, |m| m.max(t)));
        let rows = self.rows_per_batch;
        let b = self
            .open
            .entry(hour_us)
            .or_insert_with(|| EventBuilder::with_capacity(rows.min(8192)));
        b.append(row);
        if b.len() >= rows {
            let batch = b.finish().map(|batch| HourBatch { hour_us, batch });
            self.ready.push(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, HOUR_US, Mta, Outcome};

    fn row(t: i64) -> EventRow<'static> {
        EventRow {
            event_time_us: t,
            tenant: "default",
            mta: Mta::Postfix,
            mta_host: "h",
            mta_instance: None,
            source_ip: None,
            queue_id: "Q",
            message_id: None,
            sender_domain: None,
            recipient_domain: None,
            recipient_hash: None,
            mx_host: None,
            mx_ip: None,
            mx_group: "unknown",
            outcome: Outcome::Delivered,
            class: Class::None,
            smtp_code: None,
            enhanced_status: None,
            response: None,
            attempt: None,
            delay_seconds: None,
            size_bytes: None,
            origin: "o".into(),
        }
    }

    #[test]
    fn batches_never_mix_hours_and_close_at_the_size() {
        let mut b = HourBatcher::new(3);
        for t in [0, 1, HOUR_US + 5, 2, HOUR_US + 6, 3] {
            b.push(&row(t));
        }
        let full: Vec<_> = b.take_ready().map(|r| r.expect("batch")).collect();
        assert_eq!(full.len(), 1);
        assert_eq!((full[0].hour_us, full[0].batch.num_rows()), (0, 3));
        b.flush_before(HOUR_US);
        let rest: Vec<_> = b.take_ready().map(|r| r.expect("batch")).collect();
        assert_eq!((rest[0].hour_us, rest[0].batch.num_rows()), (0, 1));
        b.flush_all();
        let rest: Vec<_> = b.take_ready().map(|r| r.expect("batch")).collect();
        assert_eq!((rest[0].hour_us, rest[0].batch.num_rows()), (HOUR_US, 2));
        assert_eq!(b.max_time_us(), Some(HOUR_US + 6));
    }

    #[test]
    fn negative_times_fall_in_the_hour_below() {
        assert_eq!(hour_of(-1), -HOUR_US);
    }
}
