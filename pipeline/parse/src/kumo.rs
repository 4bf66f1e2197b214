//! KumoMTA JSON log records (one JSON object per line).
//!
//! `Delivery`, `TransientFailure` and `Bounce` are attempts; `AdminBounce` (an
//! operator bounced the message) is a bounce of class `local`, like a sender-side
//! hold; `Expiration` is the recipient's expiry, attributed to its last attempt;
//! `Reception`, `OOB` and `Feedback` are not attempts and are skipped (counted as
//! `not_attempt`). Records carry no host: the envelope's, else `default_host`, is
//! used. The sending IP is `source_address`, else the egress map
//! with `egress_source` as the instance.

use crate::correlate::{LastAttempt, record_attempt};
use crate::json::Reader;
use crate::normalizer::{Normalizer, lower};
use crate::recipient::split_recipient;
use crate::redact::redact_reply;
use crate::stamp::{epoch_micros, plausible};
use crate::stats::{RejectReason, SkipKind};
use crate::text::bounded;
use deferlog_event::{Class, EventRow, EventSink, Mta, Origin, Outcome, RejectSink, push_u64};
use std::borrow::Cow;
use std::mem;

#[derive(Debug, Default)]
struct Record<'a> {
    kind: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    sender: Option<Cow<'a, str>>,
    recipient: Option<Cow<'a, str>>,
    size: Option<u64>,
    response: Option<Response<'a>>,
    peer_address: Option<Peer<'a>>,
    /// The MX site (`source->(alt1|alt2)?.gmail-smtp-in.l.google.com.`).
    site: Option<Cow<'a, str>>,
    /// µs; `None` when absent or neither unix seconds nor RFC 3339.
    timestamp: Option<i64>,
    created: Option<i64>,
    num_attempts: Option<u32>,
    egress_source: Option<Cow<'a, str>>,
    source_address: Option<Cow<'a, str>>,
}

#[derive(Debug, Default)]
struct Response<'a> {
    code: Option<u16>,
    enhanced_code: Option<(u64, u64, u64)>,
    content: Option<Cow<'a, str>>,
}

#[derive(Debug, Default)]
struct Peer<'a> {
    name: Option<Cow<'a, str>>,
    addr: Option<Cow<'a, str>>,
}

/// Why a record could not be read.
enum Bad {
    /// Not JSON, or a field of the wrong type.
    Json,
    /// JSON, but without `type`, `id`, a time or a recipient.
    Record,
}

fn opt_string<'a>(r: &mut Reader<'a>) -> Option<Option<Cow<'a, str>>> {
    if r.null() { Some(None) } else { r.string().map(Some) }
}

fn opt_number(r: &mut Reader<'_>) -> Option<Option<f64>> {
    if r.null() { Some(None) } else { r.number().map(Some) }
}

/// A count or code: a whole number that fits `T`. Anything else (a fraction, a
/// negative size, a code of 70000) is no value rather than a clamped one.
fn whole<T: TryFrom<u64>>(n: f64) -> Option<T> {
    // The upper bound keeps `as` exact: below 2^53 every whole f64 is a u64.
    (n.fract() == 0.0 && (0.0..9.0e15).contains(&n))
        .then(|| T::try_from(n as u64).ok())
        .flatten()
}

/// Unix seconds (integer or fractional) or an RFC 3339 string, as µs.
fn stamp(r: &mut Reader<'_>) -> Option<Option<i64>> {
    if r.null() {
        return Some(None);
    }
    if let Some(text) = r.string_if_next() {
        let text = text?;
        return Some(
            chrono::DateTime::parse_from_rfc3339(&text)
                .ok()
                .and_then(|d| plausible(d.timestamp_micros())),
        );
    }
    Some(epoch_micros(r.number()?))
}

/// `source_address`: `{"address": "ip:port", ...}` or a bare `"ip:port"`.
fn source_address<'a>(r: &mut Reader<'a>) -> Option<Option<Cow<'a, str>>> {
    if let Some(text) = r.string_if_next() {
        return text.map(Some);
    }
    if r.null() {
        return Some(None);
    }
    const FIELDS: &[(&[u8], ())] = &[(b"address", ())];
    let mut address = None;
    r.object(FIELDS, |r, k| match k {
        Some(()) => opt_string(r).map(|a| address = a),
        None => r.skip(),
    })?;
    Some(address)
}

#[derive(Clone, Copy)]
enum ResponseField {
    Code,
    EnhancedCode,
    Content,
    Command,
}

fn response<'a>(r: &mut Reader<'a>) -> Option<Response<'a>> {
    use ResponseField::*;
    const FIELDS: &[(&[u8], ResponseField)] = &[
        (b"code", Code),
        (b"enhanced_code", EnhancedCode),
        (b"content", Content),
        (b"command", Command),
    ];
    const ENHANCED: &[(&[u8], usize)] = &[(b"class", 0), (b"subject", 1), (b"detail", 2)];
    let mut resp = Response::default();
    r.object(FIELDS, |r, k| match k {
        Some(Code) => opt_number(r).map(|n| resp.code = n.and_then(whole)),
        Some(Content) => opt_string(r).map(|c| resp.content = c),
        Some(EnhancedCode) if r.null() => Some(()),
        Some(EnhancedCode) => {
            let mut e = [None; 3];
            r.object(ENHANCED, |r, k| match k {
                Some(at) => r.number().map(|n| e[at] = whole(n)),
                None => r.skip(),
            })?;
            if let [Some(c), Some(s), Some(d)] = e {
                resp.enhanced_code = Some((c, s, d));
            }
            Some(())
        }
        Some(Command) | None => r.skip(),
    })?;
    Some(resp)
}

fn peer<'a>(r: &mut Reader<'a>) -> Option<Peer<'a>> {
    // `true` for the name, `false` for the address.
    const FIELDS: &[(&[u8], bool)] = &[(b"name", true), (b"addr", false)];
    let mut p = Peer::default();
    r.object(FIELDS, |r, k| match k {
        Some(true) => opt_string(r).map(|v| p.name = v),
        Some(false) => opt_string(r).map(|v| p.addr = v),
        None => r.skip(),
    })?;
    Some(p)
}

/// What a record of this `type` is; `None` for records that are not attempts.
fn outcome(kind: &str) -> Option<Outcome> {
    match kind {
        "Delivery" => Some(Outcome::Delivered),
        "TransientFailure" => Some(Outcome::Deferred),
        "Bounce" | "AdminBounce" => Some(Outcome::Bounced),
        "Expiration" => Some(Outcome::Expired),
        _ => None,
    }
}

/// A top-level key deferlog reads, or one it skips (`Skip`, listed only so that the
/// walk keeps KumoMTA's order).
#[derive(Clone, Copy)]
enum Field {
    Type,
    Id,
    Sender,
    Recipient,
    Size,
    Response,
    PeerAddress,
    Site,
    Timestamp,
    Created,
    NumAttempts,
    EgressSource,
    SourceAddress,
    Skip,
}

/// The MX host of a `site`, for a record with no peer (the connection failed): the
/// common suffix of `source->(alt1|alt2)?.gmail-smtp-in.l.google.com.`, the first of
/// `(mx1.a.example|mx2.b.example)`, or the one host named.
fn site_host(site: &str) -> Option<&str> {
    let s = site.rsplit_once("->").map_or(site, |(_, s)| s);
    // The ready queue's protocol, as kumod names its queues (`...@smtp_client`).
    let s = s.rsplit_once('@').map_or(s, |(s, _)| s).trim_end_matches('.');
    let host = match s.strip_prefix('(') {
        Some(inner) => {
            let (alts, rest) = inner.split_once(')')?;
            match rest.trim_start_matches('?').strip_prefix('.') {
                Some(suffix) if !suffix.is_empty() => suffix,
                _ => alts.split('|').next()?,
            }
        }
        None => s,
    };
    (host.contains('.') && !host.contains(['(', ')', '|', ' ', '*'])).then_some(host)
}

/// KumoMTA's keys in the order it writes them (`JsonLogRecord` in kumo-log-types).
const FIELDS: &[(&[u8], Field)] = &[
    (b"type", Field::Type),
    (b"id", Field::Id),
    (b"sender", Field::Sender),
    (b"recipient", Field::Recipient),
    (b"queue", Field::Skip),
    (b"site", Field::Site),
    (b"size", Field::Size),
    (b"response", Field::Response),
    (b"peer_address", Field::PeerAddress),
    (b"timestamp", Field::Timestamp),
    (b"created", Field::Created),
    (b"num_attempts", Field::NumAttempts),
    (b"bounce_classification", Field::Skip),
    (b"egress_pool", Field::Skip),
    (b"egress_source", Field::EgressSource),
    (b"source_address", Field::SourceAddress),
    (b"feedback_report", Field::Skip),
    (b"meta", Field::Skip),
    (b"headers", Field::Skip),
    (b"delivery_protocol", Field::Skip),
    (b"reception_protocol", Field::Skip),
    (b"nodeid", Field::Skip),
    (b"tls_cipher", Field::Skip),
    (b"tls_protocol_version", Field::Skip),
    (b"tls_peer_subject_name", Field::Skip),
    (b"provider_name", Field::Skip),
    (b"session_id", Field::Skip),
];

/// The record's fields; a record that is not an attempt is left on its `type` (KumoMTA
/// writes it first), unread: a third of a log is `Reception`.
fn read(json: &str) -> Result<Record<'_>, Bad> {
    let mut r = Reader::new(json);
    let mut rec = Record::default();
    let mut not_attempt = false;
    let walked = r.object(FIELDS, |r, k| match k {
        Some(Field::Type) => {
            let kind = r.string()?;
            not_attempt = outcome(&kind).is_none();
            rec.kind = Some(kind);
            // Stops the walk.
            (!not_attempt).then_some(())
        }
        Some(Field::Id) => r.string().map(|v| rec.id = Some(v)),
        Some(Field::Sender) => opt_string(r).map(|v| rec.sender = v),
        Some(Field::Recipient) => opt_string(r).map(|v| rec.recipient = v),
        Some(Field::Site) => opt_string(r).map(|v| rec.site = v),
        Some(Field::Size) => opt_number(r).map(|v| rec.size = v.and_then(whole)),
        Some(Field::Timestamp) => stamp(r).map(|v| rec.timestamp = v),
        Some(Field::Created) => stamp(r).map(|v| rec.created = v),
        Some(Field::NumAttempts) => opt_number(r).map(|v| rec.num_attempts = v.and_then(whole)),
        Some(Field::EgressSource) => opt_string(r).map(|v| rec.egress_source = v),
        Some(Field::SourceAddress) => source_address(r).map(|v| rec.source_address = v),
        Some(Field::Response) if r.null() => Some(()),
        Some(Field::Response) => response(r).map(|v| rec.response = Some(v)),
        Some(Field::PeerAddress) if r.null() => Some(()),
        Some(Field::PeerAddress) => peer(r).map(|v| rec.peer_address = Some(v)),
        Some(Field::Skip) | None => r.skip(),
    });
    if not_attempt {
        return Ok(rec);
    }
    if walked.is_none() || !r.at_end() {
        return Err(Bad::Json);
    }
    if rec.kind.is_none() || rec.id.is_none() {
        return Err(Bad::Record);
    }
    Ok(rec)
}

/// The IP of `ip:port`, `[v6]:port` or a bare address.
fn ip_of(a: &str) -> &str {
    if let Some(v6) = a.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match a.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => a,
    }
}

impl Normalizer {
    /// One KumoMTA record (a JSON object) from `host`.
    pub(crate) fn kumo(
        &mut self,
        json: &str,
        host: &str,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        let rec = match read(json) {
            Ok(r) => r,
            Err(Bad::Json) => return self.reject(Mta::KumoMta, RejectReason::BadJson, raw, origin, rejects),
            Err(Bad::Record) => return self.reject(Mta::KumoMta, RejectReason::BadRecord, raw, origin, rejects),
        };
        let kind = rec.kind.as_deref().unwrap_or("");
        let Some(outcome) = outcome(kind) else {
            return self.stats.skip(SkipKind::NotAttempt);
        };
        let id = rec.id.as_deref().unwrap_or("");
        let (Some(time_us), Some(rcpt)) = (rec.timestamp, rec.recipient.as_deref()) else {
            return self.reject(Mta::KumoMta, RejectReason::BadRecord, raw, origin, rejects);
        };
        let Some(time_us) = self.stamps.in_reach(time_us) else {
            return self.reject(Mta::KumoMta, RejectReason::BadTimestamp, raw, origin, rejects);
        };
        // An expiry whose record names a hand-off address has no receiver: the message
        // never got past the filter.
        let mut peer = rec.peer_address.as_ref();
        // A socket address where a version writes one: the port is no part of the IP.
        let mut mx_ip = peer
            .and_then(|p| p.addr.as_deref())
            .map(ip_of)
            .filter(|a| !a.is_empty());
        if self.is_handoff(mx_ip) {
            if outcome != Outcome::Expired {
                return self.stats.skip(SkipKind::Handoff);
            }
            (peer, mx_ip) = (None, None);
        }
        let response = rec.response.as_ref();
        let code = response.and_then(|r| r.code);
        let content = response.and_then(|r| r.content.as_deref()).unwrap_or("");
        // The reply as the receiver sent it, `code enhanced content`, in a reused buffer
        // that the enhanced code is a slice of.
        let mut reply_buf = mem::take(&mut self.scratch.reply);
        reply_buf.clear();
        if let Some(c) = code {
            push_u64(&mut reply_buf, u64::from(c));
            reply_buf.push(' ');
        }
        let enhanced_at = reply_buf.len();
        if let Some((c, s, d)) = response.and_then(|r| r.enhanced_code) {
            push_u64(&mut reply_buf, c);
            reply_buf.push('.');
            push_u64(&mut reply_buf, s);
            reply_buf.push('.');
            push_u64(&mut reply_buf, d);
        }
        let enhanced_end = reply_buf.len();
        if enhanced_end > enhanced_at {
            reply_buf.push(' ');
        }
        reply_buf.push_str(content);
        let enhanced = (enhanced_end > enhanced_at).then(|| &reply_buf[enhanced_at..enhanced_end]);
        let reply = reply_buf.trim_end();
        let class = match (kind, outcome) {
            (_, Outcome::Delivered) => Class::None,
            (_, Outcome::Expired) => Class::Expired,
            ("AdminBounce", _) => Class::Local,
            _ => self.classify(code, enhanced, reply),
        };

        let mut mx_buf = mem::take(&mut self.scratch.mx_host);
        let mut domain_buf = mem::take(&mut self.scratch.domain);
        let mx_host = peer
            .and_then(|p| p.name.as_deref())
            .filter(|n| !n.is_empty())
            .map(|n| lower(n, &mut mx_buf));
        let (rcpt_hash, rcpt_domain) = split_recipient(&self.hasher, rcpt, &mut domain_buf);
        let mut sender_buf = mem::take(&mut self.scratch.sender);
        let group = match (mx_host, mx_ip) {
            (Some(h), _) => self.group_of_host(h),
            // No connection (`peer_address` null): the provider of the site it was
            // for, else the recipient domain's provider.
            (None, None) => rec
                .site
                .as_deref()
                .and_then(site_host)
                .and_then(|h| self.group_of_host(lower(h, &mut sender_buf)))
                .or_else(|| self.mailbox_group(rcpt_domain)),
            // A hop seen by its IP alone is not the provider's (`MxGroups::mx_group`).
            (None, Some(_)) => None,
        };
        let mx_group = group.as_deref().or(rcpt_domain).unwrap_or("unknown");
        let instance = rec.egress_source.as_deref();
        let source_ip = rec
            .source_address
            .as_ref()
            .map(|a| ip_of(a))
            .filter(|ip| !ip.is_empty())
            .or_else(|| self.egress.lookup(host, instance.unwrap_or("")));
        let sender_domain = rec
            .sender
            .as_deref()
            .and_then(|s| s.rsplit_once('@'))
            .map(|(_, d)| lower(d, &mut sender_buf));
        let delay = rec.created.map(|c| (time_us - c) as f64 / 1e6);
        let masked = redact_reply(reply, rcpt);
        let stored = bounded(&masked, self.response_max_bytes);

        let expired = outcome == Outcome::Expired;
        let deferred_to = (outcome == Outcome::Deferred).then(|| LastAttempt::new(source_ip, mx_host, mx_ip, mx_group));
        // KumoMTA logs an attempt before it counts it (`num_attempts` is 0 at the
        // first); this is the n-th.
        let (attempt, last) = record_attempt(
            &mut self.state,
            &mut self.stats,
            host,
            id,
            outcome,
            rcpt_hash,
            rec.num_attempts.map(|n| n.saturating_add(1)),
            deferred_to,
        );
        let row = EventRow {
            event_time_us: time_us,
            tenant: &self.tenant,
            mta: Mta::KumoMta,
            mta_host: host,
            mta_instance: instance,
            source_ip: last.as_ref().map_or(source_ip, |l| l.source_ip()),
            queue_id: id,
            message_id: None,
            sender_domain,
            recipient_domain: rcpt_domain,
            recipient_hash: rcpt_hash,
            mx_host: last.as_ref().map_or(mx_host, |l| l.mx_host()),
            mx_ip: last.as_ref().map_or(mx_ip, |l| l.mx_ip()),
            mx_group: last.as_ref().map_or(mx_group, |l| l.mx_group()),
            outcome,
            class,
            smtp_code: code.filter(|_| !expired),
            enhanced_status: enhanced.filter(|_| !expired),
            response: (!stored.is_empty() && !expired).then_some(stored),
            attempt,
            delay_seconds: delay,
            size_bytes: rec.size,
            origin,
        };
        events.push(&row);
        self.stats.events += 1;
        if expired {
            self.stats.expiries += 1;
            self.stats.expiry_lines += 1;
        }
        self.scratch.mx_host = mx_buf;
        self.scratch.domain = domain_buf;
        self.scratch.sender = sender_buf;
        self.scratch.reply = reply_buf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_names_the_mx_host_its_alternatives_share() {
        let cases = [
            (
                "source2->(alt1|alt2|alt3|alt4)?.gmail-smtp-in.l.google.com.",
                Some("gmail-smtp-in.l.google.com"),
            ),
            ("(mta5|mta6|mta7).am0.yahoodns.net", Some("am0.yahoodns.net")),
            ("ip-1->(mx1.a.example|mx2.b.example)", Some("mx1.a.example")),
            ("mx.example.com.", Some("mx.example.com")),
            // Today's kumod names the ready queue, protocol and all.
            (
                "ip-2->(alt1|alt2|alt3|alt4)?.aspmx.l.google.com@smtp_client",
                Some("aspmx.l.google.com"),
            ),
            ("ip-2->mx1.corp.example@smtp_client", Some("mx1.corp.example")),
            ("", None),
            ("localhost", None),
            ("(broken", None),
        ];
        for (site, host) in cases {
            assert_eq!(site_host(site), host, "{site}");
        }
    }

    #[test]
    fn source_addresses_lose_their_port() {
        assert_eq!(ip_of("10.0.0.1:25"), "10.0.0.1");
        assert_eq!(ip_of("[2001:db8::1]:25"), "2001:db8::1");
        assert_eq!(ip_of("2001:db8::1"), "2001:db8::1");
        assert_eq!(ip_of("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn records_read_with_every_documented_shape() {
        fn rec(json: &str) -> Record<'_> {
            read(json).ok().expect("record")
        }
        let r = rec(
            r#"{"type":"Delivery","id":"x","timestamp":1.5,"source_address":{"protocol":"tcp","address":"10.0.0.1:25"},"response":{"code":250,"enhanced_code":null,"content":"ok"},"peer_address":null,"headers":{"a":[1,{"b":"}"}]}}"#,
        );
        assert_eq!(
            (r.timestamp, r.source_address.as_deref()),
            (Some(1_500_000), Some("10.0.0.1:25"))
        );
        assert_eq!(r.response.as_ref().and_then(|p| p.code), Some(250));
        let r = rec(
            r#"{"type":"Bounce","id":"y","timestamp":"1970-01-01T00:00:02Z","source_address":"[::1]:25","created":"yesterday"}"#,
        );
        assert_eq!(
            (r.timestamp, r.created, r.source_address.as_deref()),
            (Some(2_000_000), None, Some("[::1]:25"))
        );
        // Numbers no code, size or count can be are no value, not a clamped one.
        let r = rec(
            r#"{"type":"Delivery","id":"w","size":-1,"num_attempts":1e12,"response":{"code":70000,"enhanced_code":{"class":4.5,"subject":7,"detail":0},"content":"x"}}"#,
        );
        let resp = r.response.as_ref().expect("response");
        assert_eq!(
            (r.size, r.num_attempts, resp.code, resp.enhanced_code),
            (None, None, None, None)
        );
        let r = rec(
            r#"{"type":"Delivery","id":"v","size":2048,"num_attempts":3,"response":{"code":421,"enhanced_code":{"class":4,"subject":7,"detail":0},"content":"x"}}"#,
        );
        let resp = r.response.as_ref().expect("response");
        assert_eq!(
            (r.size, r.num_attempts, resp.code, resp.enhanced_code),
            (Some(2048), Some(3), Some(421), Some((4, 7, 0)))
        );
        assert!(matches!(read(r#"{"id":"z","timestamp":1}"#), Err(Bad::Record)));
        assert!(matches!(read(r#"{"type":5,"id":"z"}"#), Err(Bad::Json)));
        assert!(matches!(
            read(r#"{"type":"Delivery","id":"z"} trailing"#),
            Err(Bad::Json)
        ));
    }
}
