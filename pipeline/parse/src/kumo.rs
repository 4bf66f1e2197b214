//! KumoMTA JSON log records (one JSON object per line).
//!
//! `Delivery`, `TransientFailure` and `Bounce` are attempts; `AdminBounce` (an
//! operator bounced the message) is a bounce of class `local`, like a sender-side
//! hold; `Expiration` is the recipient's expiry, attributed to its last attempt;
//! `Reception`, `OOB` and `Feedback` are not attempts and are skipped (counted as
//! `not_attempt`). Records carry no host: the line's host (envelope, record key, or
//! `default_host`) is used. The sending IP is `source_address`, else the egress map
//! with `egress_source` as the instance.

use crate::correlate::LastAttempt;
use crate::normalizer::{Normalizer, lower};
use crate::recipient::split_recipient;
use crate::redact::redact_addresses_str;
use crate::stats::{RejectReason, SkipKind};
use crate::text::bounded;
use deferlog_event::{Class, EventRow, EventSink, Mta, Origin, Outcome, RejectSink};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt::Write;
use std::mem;

#[derive(Debug, Deserialize)]
struct Record<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    sender: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    recipient: Option<Cow<'a, str>>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(borrow, default)]
    response: Option<Response<'a>>,
    #[serde(borrow, default)]
    peer_address: Option<Peer<'a>>,
    timestamp: Stamp,
    #[serde(default)]
    created: Option<Stamp>,
    #[serde(default)]
    num_attempts: Option<u32>,
    #[serde(borrow, default)]
    egress_source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source_address: Option<SourceAddress<'a>>,
}

#[derive(Debug, Deserialize)]
struct Response<'a> {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    enhanced_code: Option<Enhanced>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct Enhanced {
    class: u8,
    subject: u16,
    detail: u16,
}

#[derive(Debug, Deserialize)]
struct Peer<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    addr: Option<Cow<'a, str>>,
}

/// `source_address`: `{"address": "ip:port", ...}` or a bare `"ip:port"`. Read by a
/// visitor rather than `#[serde(untagged)]`, which buffers every value it tries.
#[derive(Debug, Default)]
struct SourceAddress<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for SourceAddress<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = SourceAddress<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address string or an object with `address`")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(SourceAddress(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SourceAddress(Cow::Owned(v.to_owned())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut address = SourceAddress::default();
                while let Some(k) = m.next_key::<Cow<'_, str>>()? {
                    if k == "address" {
                        address = m.next_value()?;
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(address)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl SourceAddress<'_> {
    /// The IP without its port (`[v6]:port`, `v4:port`, or a bare address).
    fn ip(&self) -> &str {
        let a = self.0.as_ref();
        if let Some(v6) = a.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        match a.rsplit_once(':') {
            Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
            _ => a,
        }
    }
}

/// Unix seconds (integer or fractional), or an RFC 3339 string; `None` when it is
/// neither.
#[derive(Debug, Clone, Copy)]
struct Stamp(Option<i64>);

impl Stamp {
    fn micros(&self) -> Option<i64> {
        self.0
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Stamp;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("unix seconds or an RFC 3339 time")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Stamp, E> {
                Ok(Stamp(i64::try_from(v).ok().and_then(|s| s.checked_mul(1_000_000))))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Stamp, E> {
                Ok(Stamp(v.checked_mul(1_000_000)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Stamp, E> {
                Ok(Stamp(
                    (v.is_finite() && v.abs() < 1e15).then(|| (v * 1e6).round() as i64),
                ))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Stamp, E> {
                Ok(Stamp(
                    chrono::DateTime::parse_from_rfc3339(v)
                        .ok()
                        .map(|d| d.timestamp_micros()),
                ))
            }
        }
        d.deserialize_any(V)
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
        let rec: Record<'_> = match serde_json::from_str(json) {
            Ok(r) => r,
            Err(e) if e.is_syntax() || e.is_eof() => {
                return self.reject(Mta::KumoMta, RejectReason::BadJson, raw, origin, rejects);
            }
            Err(_) => return self.reject(Mta::KumoMta, RejectReason::BadRecord, raw, origin, rejects),
        };
        let outcome = match rec.kind.as_ref() {
            "Delivery" => Outcome::Delivered,
            "TransientFailure" => Outcome::Deferred,
            "Bounce" | "AdminBounce" => Outcome::Bounced,
            "Expiration" => Outcome::Expired,
            _ => return self.stats.skip(SkipKind::NotAttempt),
        };
        let (Some(time_us), Some(rcpt)) = (rec.timestamp.micros(), rec.recipient.as_deref()) else {
            return self.reject(Mta::KumoMta, RejectReason::BadRecord, raw, origin, rejects);
        };
        let response = rec.response.as_ref();
        let code = response.and_then(|r| r.code);
        let content = response.and_then(|r| r.content.as_deref()).unwrap_or("");
        // The reply as the receiver sent it, `code enhanced content`, in a reused buffer
        // that the enhanced code is a slice of.
        let mut reply_buf = mem::take(&mut self.scratch.reply);
        reply_buf.clear();
        if let Some(c) = code {
            let _ = write!(reply_buf, "{c} ");
        }
        let enhanced_at = reply_buf.len();
        if let Some(e) = response.and_then(|r| r.enhanced_code.as_ref()) {
            let _ = write!(reply_buf, "{}.{}.{}", e.class, e.subject, e.detail);
        }
        let enhanced_end = reply_buf.len();
        if enhanced_end > enhanced_at {
            reply_buf.push(' ');
        }
        reply_buf.push_str(content);
        let enhanced = (enhanced_end > enhanced_at).then(|| &reply_buf[enhanced_at..enhanced_end]);
        let reply = reply_buf.trim_end();
        let class = match (rec.kind.as_ref(), outcome) {
            (_, Outcome::Delivered) => Class::None,
            (_, Outcome::Expired) => Class::Expired,
            ("AdminBounce", _) => Class::Local,
            _ => self.classify(code, enhanced, reply),
        };

        let mut mx_buf = mem::take(&mut self.scratch.mx_host);
        let mut domain_buf = mem::take(&mut self.scratch.domain);
        let peer = rec.peer_address.as_ref();
        let mx_host = peer
            .and_then(|p| p.name.as_deref())
            .filter(|n| !n.is_empty())
            .map(|n| lower(n, &mut mx_buf));
        let mx_ip = peer.and_then(|p| p.addr.as_deref()).filter(|a| !a.is_empty());
        let group = mx_host.and_then(|h| self.group_of_host(h));
        let (rcpt_hash, rcpt_domain) = split_recipient(&self.hasher, rcpt, &mut domain_buf);
        let mx_group = group.as_deref().or(rcpt_domain).unwrap_or("unknown");
        let instance = rec.egress_source.as_deref();
        let source_ip = rec
            .source_address
            .as_ref()
            .map(SourceAddress::ip)
            .filter(|ip| !ip.is_empty())
            .or_else(|| self.egress.lookup(host, instance.unwrap_or("")));
        let mut sender_buf = mem::take(&mut self.scratch.sender);
        let sender_domain = rec
            .sender
            .as_deref()
            .and_then(|s| s.rsplit_once('@'))
            .map(|(_, d)| lower(d, &mut sender_buf));
        let delay = rec
            .created
            .as_ref()
            .and_then(Stamp::micros)
            .map(|c| (time_us - c) as f64 / 1e6);
        let masked = redact_addresses_str(reply);
        let stored = bounded(&masked, self.response_max_bytes);

        let last;
        let st = self.state.get_or_insert(host, &rec.id);
        let rcpt_state = st.rcpt_mut(rcpt_hash.unwrap_or(0), rcpt_domain);
        let mut row = EventRow {
            event_time_us: time_us,
            tenant: &self.tenant,
            mta: Mta::KumoMta,
            mta_host: host,
            mta_instance: instance,
            source_ip,
            queue_id: &rec.id,
            message_id: None,
            sender_domain,
            recipient_domain: rcpt_domain,
            recipient_hash: rcpt_hash,
            mx_host,
            mx_ip,
            mx_group,
            outcome,
            class,
            smtp_code: code,
            enhanced_status: enhanced,
            response: (!stored.is_empty()).then_some(stored),
            attempt: rec.num_attempts,
            delay_seconds: delay,
            size_bytes: rec.size,
            origin,
        };
        match rcpt_state {
            Some(r) if outcome == Outcome::Expired => {
                // Attributed to the last attempt, when one was seen.
                last = r.pending.take();
                if let Some(l) = &last {
                    row.source_ip = l.source_ip.as_deref();
                    row.mx_host = l.mx_host.as_deref();
                    row.mx_ip = l.mx_ip.as_deref();
                    row.mx_group = &l.mx_group;
                }
                row.attempt = None;
                row.smtp_code = None;
                row.enhanced_status = None;
                row.response = None;
            }
            Some(r) => {
                r.attempts += 1;
                r.pending =
                    (outcome == Outcome::Deferred).then(|| LastAttempt::new(source_ip, mx_host, mx_ip, mx_group));
                row.attempt = rec.num_attempts.or(Some(r.attempts));
            }
            None => self.stats.untracked_recipients += 1,
        }
        events.push(&row);
        self.stats.events += 1;
        if outcome == Outcome::Expired {
            self.stats.expiries += 1;
            self.stats.expiry_lines += 1;
        }
        // A finished recipient needs no state; a message with none left is dropped.
        if matches!(outcome, Outcome::Delivered | Outcome::Bounced | Outcome::Expired)
            && let Some(st) = self.state.get(host, &rec.id)
        {
            st.rcpts.retain(|r| Some(r.hash) != rcpt_hash);
            if st.rcpts.is_empty() {
                self.state.remove(host, &rec.id);
            }
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
    fn source_addresses_lose_their_port() {
        let ip = |json: &str| {
            let a: SourceAddress<'_> = serde_json::from_str(json).expect("address");
            a.ip().to_owned()
        };
        assert_eq!(ip(r#""10.0.0.1:25""#), "10.0.0.1");
        assert_eq!(ip(r#""[2001:db8::1]:25""#), "2001:db8::1");
        assert_eq!(ip(r#""2001:db8::1""#), "2001:db8::1");
        assert_eq!(ip(r#"{"protocol":"tcp","address":"10.0.0.1"}"#), "10.0.0.1");
    }

    #[test]
    fn stamps_are_seconds_or_rfc3339() {
        let t = |json: &str| serde_json::from_str::<Stamp>(json).expect("stamp").micros();
        assert_eq!(t("1.5"), Some(1_500_000));
        assert_eq!(t("2"), Some(2_000_000));
        assert_eq!(t(r#""1970-01-01T00:00:02Z""#), Some(2_000_000));
        assert_eq!(t(r#""yesterday""#), None);
        assert_eq!(t("1e300"), None);
    }
}
