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
            // Once per event: plain writes, not the formatting machinery.
            Origin::Line { file, line } => {
                out.write_str(file)?;
                out.write_char(':')?;
                write_u64(out, *line)
            }
            Origin::Record {
                topic,
                partition,
                offset,
            } => {
                out.write_str(topic)?;
                out.write_char('/')?;
                write_i64(out, i64::from(*partition))?;
                out.write_char('/')?;
                write_i64(out, *offset)
            }
        }
    }
}

fn write_i64(out: &mut dyn fmt::Write, n: i64) -> fmt::Result {
    if n < 0 {
        out.write_char('-')?;
    }
    write_u64(out, n.unsigned_abs())
}

/// The decimal digits of `n`, from `at` on.
fn digits(mut n: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return (digits, at);
        }
    }
}

/// `n` in decimal, without the formatting machinery (hot paths write numbers per row).
pub fn write_u64(out: &mut dyn fmt::Write, n: u64) -> fmt::Result {
    let (digits, at) = digits(n);
    // ASCII digits only.
    out.write_str(std::str::from_utf8(&digits[at..]).map_err(|_| fmt::Error)?)
}

/// [`write_u64`] into a `String`, a digit at a time: reply codes are a few digits, and
/// pushing them inline beats a `memcpy` call behind a `dyn Write`.
pub fn push_u64(out: &mut String, n: u64) {
    let (digits, at) = digits(n);
    for d in &digits[at..] {
        out.push(char::from(*d));
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

#[cfg(test)]
mod tests {
    use super::Origin;

    fn written(o: Origin<'_>) -> String {
        let mut s = String::new();
        o.write_origin(&mut s).expect("a String takes any text");
        s
    }

    #[test]
    fn origins_read_as_file_line_and_topic_partition_offset() {
        assert_eq!(written(Origin::Text("stdin")), "stdin");
        assert_eq!(
            written(Origin::Line {
                file: "mail.log",
                line: 0
            }),
            "mail.log:0"
        );
        assert_eq!(
            written(Origin::Line {
                file: "a.log",
                line: u64::MAX
            }),
            format!("a.log:{}", u64::MAX)
        );
        assert_eq!(
            written(Origin::Record {
                topic: "mta-logs",
                partition: 5,
                offset: 1_234_567_890_123
            }),
            "mta-logs/5/1234567890123"
        );
        assert_eq!(
            written(Origin::Record {
                topic: "t",
                partition: -1,
                offset: i64::MIN
            }),
            format!("t/-1/{}", i64::MIN)
        );
    }

    #[test]
    fn pushed_numbers_read_as_decimal() {
        for n in [0, 7, 10, 421, 1_000_000, u64::MAX] {
            let mut s = String::from("x");
            super::push_u64(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }
}
