//! A borrowed event row: what parsers hand to a sink without allocating.

use crate::{Class, Mta, Outcome};
use std::fmt;

/// One DeliveryEvent, borrowing every string from the parser's input or state.
///
/// `origin` is written by a callback so that `file:line` or `topic/partition/offset`
/// is formatted straight into the column buffer instead of a fresh `String` per row.
#[derive(Debug, Clone, Copy)]
pub struct EventRow<'a> {
    pub event_time_us: i64,
    pub tenant: &'a str,
    pub mta: Mta,
    pub mta_host: &'a str,
    pub mta_instance: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub queue_id: &'a str,
    pub message_id: Option<&'a str>,
    pub sender_domain: Option<&'a str>,
    pub recipient_domain: Option<&'a str>,
    pub recipient_hash: Option<u64>,
    pub mx_host: Option<&'a str>,
    pub mx_ip: Option<&'a str>,
    pub mx_group: &'a str,
    pub outcome: Outcome,
    pub class: Class,
    pub smtp_code: Option<u16>,
    pub enhanced_status: Option<&'a str>,
    pub response: Option<&'a str>,
    pub attempt: Option<u32>,
    pub delay_seconds: Option<f64>,
    pub size_bytes: Option<u64>,
    pub origin: Origin<'a>,
}

/// Where a record came from; formatted only when a row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// Free text, e.g. a test name.
    Text(&'a str),
    /// `file:line`, 1-based.
    Line { file: &'a str, line: u64 },
    /// `topic/partition/offset` of a Kafka record.
    Record {
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
}

impl Origin<'_> {
    pub fn write_origin(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        match self {
            Origin::Text(t) => out.write_str(t),
            Origin::Line { file, line } => write!(out, "{file}:{line}"),
            Origin::Record {
                topic,
                partition,
                offset,
            } => write!(out, "{topic}/{partition}/{offset}"),
        }
    }
}

impl<'a> From<&'a str> for Origin<'a> {
    fn from(t: &'a str) -> Self {
        Origin::Text(t)
    }
}

/// Receives events as parsers produce them.
pub trait EventSink {
    fn push(&mut self, row: &EventRow<'_>);
}

impl EventSink for Vec<OwnedSummary> {
    fn push(&mut self, row: &EventRow<'_>) {
        self.push(OwnedSummary::from(row));
    }
}

/// An owned copy of the fields tests and small tools look at most.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSummary {
    pub event_time_us: i64,
    pub tenant: String,
    pub mta_host: String,
    pub mta_instance: Option<String>,
    pub source_ip: Option<String>,
    pub queue_id: String,
    pub message_id: Option<String>,
    pub sender_domain: Option<String>,
    pub recipient_domain: Option<String>,
    pub recipient_hash: Option<u64>,
    pub mx_host: Option<String>,
    pub mx_ip: Option<String>,
    pub mx_group: String,
    pub outcome: Outcome,
    pub class: Class,
    pub smtp_code: Option<u16>,
    pub enhanced_status: Option<String>,
    pub response: Option<String>,
    pub attempt: Option<u32>,
    pub delay_seconds: Option<f64>,
    pub size_bytes: Option<u64>,
    pub origin: String,
}

impl From<&EventRow<'_>> for OwnedSummary {
    fn from(r: &EventRow<'_>) -> Self {
        let s = |v: Option<&str>| v.map(str::to_owned);
        let mut origin = String::new();
        // Writing into a String cannot fail.
        let _ = r.origin.write_origin(&mut origin);
        OwnedSummary {
            event_time_us: r.event_time_us,
            tenant: r.tenant.to_owned(),
            mta_host: r.mta_host.to_owned(),
            mta_instance: s(r.mta_instance),
            source_ip: s(r.source_ip),
            queue_id: r.queue_id.to_owned(),
            message_id: s(r.message_id),
            sender_domain: s(r.sender_domain),
            recipient_domain: s(r.recipient_domain),
            recipient_hash: r.recipient_hash,
            mx_host: s(r.mx_host),
            mx_ip: s(r.mx_ip),
            mx_group: r.mx_group.to_owned(),
            outcome: r.outcome,
            class: r.class,
            smtp_code: r.smtp_code,
            enhanced_status: s(r.enhanced_status),
            response: s(r.response),
            attempt: r.attempt,
            delay_seconds: r.delay_seconds,
            size_bytes: r.size_bytes,
            origin,
        }
    }
}
