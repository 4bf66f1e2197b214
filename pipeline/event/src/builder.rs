//! Column builders for event batches: one append per row, one `finish` per batch.

use crate::dict::{Dict, Vocab};
use crate::row::EventRow;
use crate::schema::event_schema;
use crate::{Class, Mta, Outcome};
use arrow::array::{
    ArrayRef, Float64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use std::fmt::Write;
use std::sync::Arc;

/// Accumulates [`EventRow`]s into the columns of one RecordBatch.
///
/// Low-cardinality strings go through dictionary builders, so a batch stores each
/// distinct MX host or class once however many rows name it.
pub struct EventBuilder {
    event_time: TimestampMicrosecondBuilder,
    tenant: Dict,
    mta: Vocab,
    mta_host: Dict,
    mta_instance: Dict,
    source_ip: Dict,
    queue_id: StringBuilder,
    message_id: StringBuilder,
    sender_domain: Dict,
    recipient_domain: Dict,
    recipient_hash: UInt64Builder,
    mx_host: Dict,
    mx_ip: Dict,
    mx_group: Dict,
    outcome: Vocab,
    class: Vocab,
    smtp_code: UInt16Builder,
    enhanced_status: Dict,
    response: StringBuilder,
    attempt: UInt32Builder,
    delay_seconds: Float64Builder,
    size_bytes: UInt64Builder,
    origin: StringBuilder,
    len: usize,
}

impl std::fmt::Debug for EventBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBuilder")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Default for EventBuilder {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl EventBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        let dict = || Dict::with_capacity(rows);
        let strings = |avg: usize| StringBuilder::with_capacity(rows, rows * avg);
        EventBuilder {
            event_time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            tenant: dict(),
            mta: Vocab::with_capacity(rows, Mta::NAMES),
            mta_host: dict(),
            mta_instance: dict(),
            source_ip: dict(),
            queue_id: strings(12),
            message_id: strings(40),
            sender_domain: dict(),
            recipient_domain: dict(),
            recipient_hash: UInt64Builder::with_capacity(rows),
            mx_host: dict(),
            mx_ip: dict(),
            mx_group: dict(),
            outcome: Vocab::with_capacity(rows, Outcome::NAMES),
            class: Vocab::with_capacity(rows, Class::NAMES),
            smtp_code: UInt16Builder::with_capacity(rows),
            enhanced_status: dict(),
            response: strings(64),
            attempt: UInt32Builder::with_capacity(rows),
            delay_seconds: Float64Builder::with_capacity(rows),
            size_bytes: UInt64Builder::with_capacity(rows),
            origin: strings(24),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn append(&mut self, r: &EventRow<'_>) {
        self.event_time.append_value(r.event_time_us);
        self.tenant.append_value(r.tenant);
        self.mta.append(r.mta.index());
        self.mta_host.append_value(r.mta_host);
        self.mta_instance.append_option(r.mta_instance);
        self.source_ip.append_option(r.source_ip);
        self.queue_id.append_value(r.queue_id);
        self.message_id.append_option(r.message_id);
        self.sender_domain.append_option(r.sender_domain);
        self.recipient_domain.append_option(r.recipient_domain);
        self.recipient_hash.append_option(r.recipient_hash);
        self.mx_host.append_option(r.mx_host);
        self.mx_ip.append_option(r.mx_ip);
        self.mx_group.append_value(r.mx_group);
        self.outcome.append(r.outcome.index());
        self.class.append(r.class.index());
        self.smtp_code.append_option(r.smtp_code);
        self.enhanced_status.append_option(r.enhanced_status);
        self.response.append_option(r.response);
        self.attempt.append_option(r.attempt);
        // A time since queueing is a finite, non-negative number; a log's `delay=NaN` or
        // `-5` (or a clock that stepped back) would poison every average over the column.
        self.delay_seconds
            .append_option(r.delay_seconds.filter(|d| d.is_finite() && *d >= 0.0));
        self.size_bytes.append_option(r.size_bytes);
        // The origin is formatted straight into the column's value buffer; a failing
        // writer is impossible for a StringBuilder, and an empty origin is still a row.
        let _ = r.origin.write_origin(&mut self.origin as &mut dyn Write);
        self.origin.append_value("");
        self.len += 1;
    }

    /// Takes the rows appended so far as one batch and leaves the builder empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_time.finish()),
            Arc::new(self.tenant.finish()),
            Arc::new(self.mta.finish()),
            Arc::new(self.mta_host.finish()),
            Arc::new(self.mta_instance.finish()),
            Arc::new(self.source_ip.finish()),
            Arc::new(self.queue_id.finish()),
            Arc::new(self.message_id.finish()),
            Arc::new(self.sender_domain.finish()),
            Arc::new(self.recipient_domain.finish()),
            Arc::new(self.recipient_hash.finish()),
            Arc::new(self.mx_host.finish()),
            Arc::new(self.mx_ip.finish()),
            Arc::new(self.mx_group.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.class.finish()),
            Arc::new(self.smtp_code.finish()),
            Arc::new(self.enhanced_status.finish()),
            Arc::new(self.response.finish()),
            Arc::new(self.attempt.finish()),
            Arc::new(self.delay_seconds.finish()),
            Arc::new(self.size_bytes.finish()),
            Arc::new(self.origin.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(event_schema(), columns)
    }
}

impl crate::EventSink for EventBuilder {
    fn push(&mut self, row: &EventRow<'_>) {
        self.append(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, Mta, Outcome};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, UInt64Type};

    fn row<'a>(origin: &'a str, source_ip: Option<&'a str>) -> EventRow<'a> {
        EventRow {
            event_time_us: 1_700_000_000_000_000,
            tenant: "default",
            mta: Mta::Postfix,
            mta_host: "mta-out1",
            mta_instance: Some("postfix-ip1"),
            source_ip,
            queue_id: "ABC123",
            message_id: None,
            sender_domain: Some("news.example"),
            recipient_domain: Some("gmail.com"),
            recipient_hash: Some(42),
            mx_host: Some("gmail-smtp-in.l.google.com"),
            mx_ip: Some("142.250.1.27"),
            mx_group: "google",
            outcome: Outcome::Deferred,
            class: Class::RateLimit,
            smtp_code: Some(421),
            enhanced_status: Some("4.7.28"),
            response: Some("421 4.7.28 rate limited"),
            attempt: Some(2),
            delay_seconds: Some(1.5),
            size_bytes: None,
            origin: origin.into(),
        }
    }

    #[test]
    fn a_batch_has_the_schema_and_the_rows_appended() {
        let mut b = EventBuilder::default();
        b.append(&row("mail.log:1", Some("198.51.100.11")));
        b.append(&row("mail.log:2", None));
        let batch = b.finish().expect("batch");
        assert_eq!(batch.schema(), event_schema());
        assert_eq!(batch.num_rows(), 2);
        let origin = batch.column_by_name("origin").expect("origin").as_string::<i32>();
        assert_eq!(origin.value(0), "mail.log:1");
        assert_eq!(origin.value(1), "mail.log:2");
        let ip = batch.column_by_name("source_ip").expect("source_ip");
        assert!(ip.is_valid(0));
        assert!(ip.is_null(1));
        let hash = batch.column_by_name("recipient_hash").expect("hash");
        assert_eq!(hash.as_primitive::<UInt64Type>().value(1), 42);
        assert!(b.is_empty());
    }

    #[test]
    fn a_delay_that_is_no_time_since_queueing_is_null() {
        let mut b = EventBuilder::default();
        for d in [0.0, 2.5, -5.0, f64::NAN, f64::INFINITY] {
            b.append(&EventRow {
                delay_seconds: Some(d),
                ..row("x", None)
            });
        }
        let batch = b.finish().expect("batch");
        let delay = batch
            .column_by_name("delay_seconds")
            .expect("delay")
            .as_primitive::<Float64Type>();
        let kept: Vec<Option<f64>> = delay.iter().collect();
        assert_eq!(kept, [Some(0.0), Some(2.5), None, None, None]);
    }

    #[test]
    fn dictionary_columns_store_each_value_once() {
        let mut b = EventBuilder::default();
        for _ in 0..100 {
            b.append(&row("x", None));
        }
        let batch = b.finish().expect("batch");
        let mx = batch.column_by_name("mx_host").expect("mx_host");
        let dict = mx.as_any_dictionary();
        assert_eq!(dict.values().len(), 1);
    }
}
