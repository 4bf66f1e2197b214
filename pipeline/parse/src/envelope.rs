//! Shippers' envelopes: a JSON object (rsyslog `mmjsonparse`/templates, Vector, Fluent
//! Bit, journald's JSON export) whose log line sits in one field (default `message`),
//! with optional host, timestamp and tenant fields. The line inside is read like any
//! other line; the envelope's host stands in for lines that name none (Exim's own log,
//! KumoMTA, PowerMTA), its tenant for the record's, and its timestamp is the ingest
//! time BSD stamps take their year from.
//!
//! Shippers that parse syslog themselves send only the line's content: with its tag
//! (`postfix/smtp[12]: 4XYZ: to=...`), or without it and the program in a field of
//! its own (`[envelope] program`). A message with no shape of its own (no stamp of any
//! time, no `<PRI>`, JSON or CSV record) is then read as that program's message, at
//! the envelope's timestamp, from the envelope's host (else `default_host`). Field
//! names may be dotted paths into nested objects (Filebeat's `host.name`).

use crate::json::Reader;
use crate::normalizer::Normalizer;
use crate::stamp::{epoch_micros, plausible};
use crate::stats::{RejectReason, SkipKind};
use crate::syslog::SyslogLine;
use deferlog_event::{EventSink, Mta, Origin, RejectSink};
use serde_json::Value;
use std::mem;

/// Which envelope fields hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeFields {
    pub message: String,
    pub host: String,
    pub timestamp: String,
    /// Absent: the tenant comes from elsewhere (record key, header, configuration).
    pub tenant: Option<String>,
    /// The syslog program (tag) of a line whose content alone is in `message`.
    pub program: Option<String>,
}

impl Default for EnvelopeFields {
    fn default() -> Self {
        EnvelopeFields {
            message: "message".into(),
            host: "host".into(),
            timestamp: "timestamp".into(),
            tenant: None,
            program: None,
        }
    }
}

/// KumoMTA writes `type` and `id` as strings at the top level of every record, in
/// that order first; shippers' envelopes carry neither as top-level keys (Vector's
/// is `source_type`), though they may nest them: Filebeat's `agent` object has both.
pub(crate) fn is_kumo(line: &str) -> bool {
    // KumoMTA's own order: `{"type":"…","id":"` at the start, checked without a walk.
    if let Some(rest) = line.strip_prefix("{\"type\":\"")
        && let Some(end) = rest.find('"')
        && rest[end..].starts_with("\",\"id\":\"")
    {
        return true;
    }
    // Any other order (a shipper that re-serialized the record): the top level's keys.
    let (mut ty, mut id) = (false, false);
    let mut r = Reader::new(line);
    let walked = r.object(&[(&b"type"[..], true), (&b"id"[..], false)], |r, key| match key {
        Some(is_type) => match r.string_if_next() {
            Some(text) => {
                text?;
                *(if is_type { &mut ty } else { &mut id }) = true;
                Some(())
            }
            None => r.skip(),
        },
        None => r.skip(),
    });
    walked.is_some() && ty && id
}

/// A tenant is a label value and part of state: a short printable name.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty() && t.len() <= 128 && !t.contains(char::is_control)
}

/// Unix seconds (or milliseconds or microseconds, when that large; journald writes µs
/// as a string) or RFC 3339, as µs.
fn micros(v: &Value) -> Option<i64> {
    match v {
        // From 10^9 (2001) on: a smaller number is a date written as one (`20261108`).
        Value::Number(n) => epoch_micros(n.as_f64().filter(|n| *n >= 1e9)?),
        // Ten digits or more: a count since the epoch (2001 on), not a date written
        // without separators (`20261108`).
        Value::String(t)
            if t.bytes().take_while(u8::is_ascii_digit).count() >= 10
                && t.bytes().all(|c| c.is_ascii_digit() || c == b'.') =>
        {
            epoch_micros(t.parse().ok()?)
        }
        Value::String(t) => chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .and_then(|d| plausible(d.timestamp_micros())),
        _ => None,
    }
}

/// A field by name, else by a dotted path through nested objects.
fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        let mut parts = name.split('.');
        let mut v = obj.get(parts.next()?)?;
        for p in parts {
            v = v.as_object()?.get(p)?;
        }
        Some(v)
    })
}

/// journald writes a message that is not valid UTF-8 (or holds control characters)
/// as an array of its bytes.
fn journald_bytes(v: &Value) -> Option<String> {
    let bytes = v
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<Vec<u8>>>()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The syslog tag at the start of a message (`postfix/smtp[123]: ` or `postfix: `):
/// its program, and the message after it.
fn tag(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let ident = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'))
        .count();
    let mut end = ident;
    if b.get(end) == Some(&b'[') {
        let digits = b[end + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || b.get(end + 1 + digits) != Some(&b']') {
            return None;
        }
        end += digits + 2;
    }
    // All ASCII up to `end`: both are char boundaries.
    (ident > 0 && b[end..].starts_with(b": ")).then(|| (&line[..ident], &line[end + 2..]))
}

/// The MTA whose program it is: Postfix's (`instance/service`, or `postfix...` without
/// its service) or Exim's; `None` for programs deferlog does not read.
fn mta_of(p: &str) -> Option<Mta> {
    match p {
        "exim" | "exim4" => Some(Mta::Exim),
        p if p.contains('/') || p.starts_with("postfix") => Some(Mta::Postfix),
        _ => None,
    }
}

/// Words Postfix starts a message with, before a colon (`NOQUEUE: reject: ...`,
/// `warning: ...`): without a tag, such a message is no other program's.
const POSTFIX_WORDS: [&str; 6] = ["NOQUEUE", "warning", "error", "fatal", "panic", "statistics"];

/// Whether a word before a colon may be a Postfix queue id (`15F9E37AAAF: to=<...>`)
/// rather than a program: short ids are upper-case hex, long ones (`4XYZbcdf...`)
/// letters and digits without vowels.
fn queue_id_like(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 5
        && b.iter().all(u8::is_ascii_alphanumeric)
        && (b.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
            || (b.len() >= 10 && !b.iter().any(|c| b"aeiouAEIOU".contains(c))))
}

/// The program and message of `line` when it is a syslog line's content without its
/// frame; `None` when it is a line to read whole. `program`: the envelope's field.
fn content_of<'a>(line: &'a str, program: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    let tagged = tag(line);
    match program {
        // The tag may be left at the start too (rsyslog's `%syslogtag%%msg%`), and be
        // the fuller name: rsyslog's `programname` stops at the `/`.
        Some(p) => Some(match tagged {
            Some((ident, rest))
                if ident == p
                    || (mta_of(ident).is_some() && ident.strip_prefix(p).is_some_and(|r| r.starts_with('/'))) =>
            {
                (ident, rest)
            }
            // rsyslog's `%msg%` keeps the space after the tag's colon.
            _ => (p, line.strip_prefix(' ').unwrap_or(line)),
        }),
        // A tag with a pid, or a word neither a queue id nor one Postfix starts its
        // own messages with: a Postfix message without its tag starts so.
        None => tagged.filter(|(ident, _)| {
            mta_of(ident).is_some()
                || line.as_bytes().get(ident.len()) == Some(&b'[')
                || !(queue_id_like(ident) || POSTFIX_WORDS.contains(ident))
        }),
    }
}

impl Normalizer {
    pub(crate) fn envelope(
        &mut self,
        json: &str,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        let obj = match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return self.reject(None, RejectReason::BadRecord, raw, origin, rejects),
            Err(_) => return self.reject(None, RejectReason::BadJson, raw, origin, rejects),
        };
        let fields = &self.envelope_fields;
        let message = field(&obj, &fields.message);
        let from_bytes = message.and_then(journald_bytes);
        let line = match (message, &from_bytes) {
            (_, Some(text)) => text.as_str(),
            (Some(Value::String(line)), None) => line.as_str(),
            _ => return self.reject(None, RejectReason::BadRecord, raw, origin, rejects),
        };
        // One level only: an envelope in an envelope is not a shipper's record.
        if line.starts_with('{') && !is_kumo(line) {
            return self.reject(None, RejectReason::BadRecord, raw, origin, rejects);
        }
        // A named field's text, when it has some.
        let text = |name: Option<&str>| {
            name.and_then(|f| field(&obj, f))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        };
        let host = text(Some(&fields.host));
        let tenant = text(fields.tenant.as_deref());
        if tenant.is_some_and(|t| !valid_tenant(t)) {
            return self.reject(None, RejectReason::BadTenant, raw, origin, rejects);
        }
        let ingest = field(&obj, &fields.timestamp).and_then(micros);
        let program = text(fields.program.as_deref());
        // A trailing newline inside the field is part of the shipping, not the line.
        let line = line.trim_end_matches(['\n', '\r']);
        let content = if self.has_shape(line) {
            None
        } else {
            content_of(line, program)
        };
        // The envelope's time is nearer the line than the record's, but is only
        // taken within the record's own reach: a shipper clock in 2190 would
        // otherwise let a stamp in 2190 through `max_ahead`.
        let ingest = ingest.and_then(|t| self.stamps.in_reach(t));

        let saved_host = host.map(|h| mem::replace(&mut self.host, h.to_owned()));
        let saved_tenant = tenant.map(|t| mem::replace(&mut self.tenant, t.to_owned()));
        let saved_reference = self.stamps.reference_us();
        if let Some(t) = ingest {
            self.stamps.set_reference(t);
        }
        match content {
            None => self.text(line, raw, origin, events, rejects),
            Some((program, message)) => match ingest {
                Some(time_us) => {
                    let host = mem::take(&mut self.host);
                    let frame = SyslogLine {
                        time_us,
                        host: &host,
                        program,
                        message,
                    };
                    self.dispatch(&frame, raw, origin, events, rejects);
                    self.host = host;
                }
                // Its time went with the frame the shipper took away.
                None => match mta_of(program) {
                    Some(mta) => self.reject(mta, RejectReason::BadTimestamp, raw, origin, rejects),
                    None => self.stats.skip(SkipKind::OtherProgram),
                },
            },
        }
        if let Some(h) = saved_host {
            self.host = h;
        }
        if let Some(t) = saved_tenant {
            self.tenant = t;
        }
        self.stamps.set_reference(saved_reference);
    }
}

impl Normalizer {
    /// Whether a message is a record of its own (a JSON record or envelope, a
    /// PowerMTA CSV line, a line that starts with a stamp or a `<PRI>`), never a
    /// syslog line's bare content.
    fn has_shape(&mut self, line: &str) -> bool {
        let b = line.as_bytes();
        matches!(b.first(), Some(b'{' | b'<')) || crate::pmta::looks_like_pmta(b) || self.stamps.has_stamp(b)
    }
}
