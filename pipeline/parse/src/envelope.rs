//! Shippers' envelopes: a JSON object (rsyslog `mmjsonparse`/templates, Vector, Fluent
//! Bit, journald's JSON export) whose log line sits in one field (default `message`),
//! with optional host, timestamp and tenant fields. The line inside is read like any
//! other line; the envelope's host stands in for lines that name none (Exim's own log,
//! KumoMTA, PowerMTA), its tenant for the record's, and its timestamp is the ingest
//! time BSD stamps take their year from.
//!
//! Shippers that parse syslog themselves send only the line's content: with its tag
//! (`postfix/smtp[12]: 4XYZ: to=...`), or without it and the program and pid in fields
//! of their own (`[envelope] program`, `pid`). Such a line is given back the frame it
//! lost — the envelope's timestamp (then the line's own time), its host (else the
//! record's) and the tag — and read as the syslog line it was. Field names may be
//! dotted paths into nested objects (Filebeat's `host.hostname`).

use crate::json::Reader;
use crate::normalizer::Normalizer;
use crate::stamp::{epoch_micros, plausible};
use crate::stats::RejectReason;
use deferlog_event::{EventSink, Origin, RejectSink};
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
    /// Its process id, written into the tag when present.
    pub pid: Option<String>,
}

impl Default for EnvelopeFields {
    fn default() -> Self {
        EnvelopeFields {
            message: "message".into(),
            host: "host".into(),
            timestamp: "timestamp".into(),
            tenant: None,
            program: None,
            pid: None,
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
        Value::Number(n) => epoch_micros(n.as_f64()?),
        Value::String(t) if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit() || c == b'.') => {
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

/// A field's text: a string, or a number (pids) as written.
fn text_of(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        _ => None,
    }
}

/// The length of a syslog tag (`postfix/smtp[123]` or `postfix`) at the start of a
/// line, when `": "` follows it. A whole syslog line never starts so: a BSD stamp's
/// month is followed by a space, an RFC 3339 stamp's hour by a colon and a digit.
fn tag_len(line: &str) -> Option<usize> {
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
    (ident > 0 && b[end..].starts_with(b": ")).then_some(end)
}

/// A line's content given back its syslog frame: `STAMP HOST [TAG: ]CONTENT`.
fn framed(time_us: i64, host: &str, tag: Option<(&str, Option<&str>)>, content: &str) -> Option<String> {
    use std::fmt::Write;
    let t = chrono::DateTime::from_timestamp_micros(time_us)?;
    let mut s = String::with_capacity(content.len() + host.len() + 64);
    let _ = write!(s, "{} {host} ", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
    if let Some((program, pid)) = tag {
        s.push_str(program);
        if let Some(pid) = pid {
            let _ = write!(s, "[{pid}]");
        }
        s.push_str(": ");
    }
    s.push_str(content);
    Some(s)
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
        let line = match field(&obj, &fields.message) {
            // One level only: an envelope in an envelope is not a shipper's record.
            Some(Value::String(line)) if !line.starts_with('{') || is_kumo(line) => line.as_str(),
            _ => return self.reject(None, RejectReason::BadRecord, raw, origin, rejects),
        };
        let host = field(&obj, &fields.host)
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty());
        let tenant = fields
            .tenant
            .as_deref()
            .and_then(|t| field(&obj, t))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        if tenant.is_some_and(|t| !valid_tenant(t)) {
            return self.reject(None, RejectReason::BadTenant, raw, origin, rejects);
        }
        let ingest = field(&obj, &fields.timestamp).and_then(micros);
        // A line's content without its frame: the tag in a field of its own, or at the
        // start of the content.
        let of = |name: &Option<String>| name.as_deref().and_then(|f| field(&obj, f)).and_then(text_of);
        let (program, pid) = (of(&fields.program), of(&fields.pid));
        // A trailing newline inside the field is part of the shipping, not the line.
        let line = line.trim_end_matches(['\n', '\r']);
        let frame = match program.as_deref() {
            Some(p) if !line.starts_with(p) || tag_len(line).is_none() => Some(Some((p, pid.as_deref()))),
            _ => tag_len(line).map(|_| None),
        };
        let framed_line;
        let line = match frame {
            None => line,
            Some(tag) => {
                let host = host.unwrap_or(&self.host);
                match ingest.and_then(|t| framed(t, host, tag, line)) {
                    Some(l) => {
                        framed_line = l;
                        framed_line.as_str()
                    }
                    // Its time was in the frame the shipper took away.
                    None => return self.reject(None, RejectReason::BadTimestamp, raw, origin, rejects),
                }
            }
        };

        let saved_host = host.map(|h| mem::replace(&mut self.host, h.to_owned()));
        let saved_tenant = tenant.map(|t| mem::replace(&mut self.tenant, t.to_owned()));
        let saved_reference = self.stamps.reference_us();
        // The envelope's time is nearer the line than the record's, but is only
        // taken within the record's own reach: a shipper clock in 2190 would
        // otherwise let a stamp in 2190 through `max_ahead`.
        if let Some(t) = ingest.and_then(|t| self.stamps.in_reach(t)) {
            self.stamps.set_reference(t);
        }
        self.text(line, raw, origin, events, rejects);
        if let Some(h) = saved_host {
            self.host = h;
        }
        if let Some(t) = saved_tenant {
            self.tenant = t;
        }
        self.stamps.set_reference(saved_reference);
    }
}
