//! Shippers' envelopes: a JSON object (rsyslog `mmjsonparse`/templates, Vector, Fluent
//! Bit) whose log line sits in one field (default `message`), with optional host,
//! timestamp and tenant fields. The line inside is read like any other line; the
//! envelope's host stands in for lines that name none (Exim's own log, KumoMTA,
//! PowerMTA), its tenant for the record's, and its timestamp is the ingest time BSD
//! stamps take their year from.

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
}

impl Default for EnvelopeFields {
    fn default() -> Self {
        EnvelopeFields {
            message: "message".into(),
            host: "host".into(),
            timestamp: "timestamp".into(),
            tenant: None,
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

/// Unix seconds (or milliseconds, when that large) or RFC 3339, as µs.
fn micros(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => epoch_micros(n.as_f64()?),
        Value::String(t) => chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .and_then(|d| plausible(d.timestamp_micros())),
        _ => None,
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
        let line = match obj.get(&fields.message) {
            // One level only: an envelope in an envelope is not a shipper's record.
            Some(Value::String(line)) if !line.starts_with('{') || is_kumo(line) => line.as_str(),
            _ => return self.reject(None, RejectReason::BadRecord, raw, origin, rejects),
        };
        let host = obj.get(&fields.host).and_then(Value::as_str).filter(|h| !h.is_empty());
        let tenant = fields
            .tenant
            .as_deref()
            .and_then(|t| obj.get(t))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        if tenant.is_some_and(|t| !valid_tenant(t)) {
            return self.reject(None, RejectReason::BadTenant, raw, origin, rejects);
        }
        let ingest = obj.get(&fields.timestamp).and_then(micros);

        let saved_host = host.map(|h| mem::replace(&mut self.host, h.to_owned()));
        let saved_tenant = tenant.map(|t| mem::replace(&mut self.tenant, t.to_owned()));
        let saved_reference = self.stamps.reference_us();
        // The envelope's time is nearer the line than the record's, but is only
        // taken within the record's own reach: a shipper clock in 2190 would
        // otherwise let a stamp in 2190 through `max_ahead`.
        if let Some(t) = ingest.and_then(|t| self.stamps.in_reach(t)) {
            self.stamps.set_reference(t);
        }
        // A trailing newline inside the field is part of the shipping, not the line.
        let line = line.trim_end_matches(['\n', '\r']);
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
