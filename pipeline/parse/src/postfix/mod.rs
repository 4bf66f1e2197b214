//! Postfix: which service logged a line, and what it means for the counts.
//!
//! Attempts come from the delivery agents `smtp`, `lmtp` and `error` (`retry` is the
//! same program under another name); expiries from `qmgr`; `cleanup` and `qmgr`
//! lines feed correlation state; `removed` drops it. Local delivery agents (`local`,
//! `virtual`, `pipe`, LMTP into a socket) are not outbound attempts and are skipped,
//! as are hand-offs to a content filter (see `handoff`).

mod delivery;
mod reply;

use crate::correlate::{LastAttempt, QueueState};
use crate::normalizer::{Normalizer, lower};
use crate::recipient::split_recipient;
use crate::redact::redact_reply;
use crate::stats::{RejectReason, SkipKind};
use crate::syslog::SyslogLine;
use crate::text::{self, Needle, find2};
use deferlog_classify::split_reply;
use deferlog_event::{Class, EventRow, EventSink, Mta, Origin, Outcome, RejectSink};
use std::mem;

/// What a delivery line without a readable queue id still carries.
static TO: Needle = Needle::new(": to=");

/// Longest Message-ID kept; longer ones are cut, not rejected.
pub(crate) const MESSAGE_ID_MAX: usize = 256;

/// `QUEUEID: rest` with a plausible Postfix queue id (short hex or long form).
fn split_queue_id(msg: &str) -> Option<(&str, &str)> {
    let colon = find2(msg, b':', b' ')?;
    let (qid, rest) = (&msg[..colon], &msg[colon + 2..]);
    let ok = (5..=20).contains(&qid.len()) && qid.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some((qid, rest))
}

fn is_diagnostic(msg: &str) -> bool {
    ["warning: ", "error: ", "fatal: ", "panic: ", "statistics: "]
        .iter()
        .any(|p| msg.starts_with(p))
}

/// The service of a Postfix message whose program lost it (`postfix`, as rsyslog's
/// `programname` and its RFC 5424 APP give `postfix/smtp`), from what the message
/// says: deliveries to a host (`relay=host[ip]`, `none`, an LMTP socket) are the
/// `smtp` client's, other deliveries (`relay=local`, a pipe's transport) local ones.
pub(crate) fn service_of(message: &str) -> &'static str {
    let Some((_, rest)) = split_queue_id(message) else {
        // A delivery line with a broken queue id is the client's, rejected as such.
        return if TO.find(message).is_some() { "smtp" } else { "postfix" };
    };
    if rest.starts_with("to=") {
        // A line that does not parse is the client's too, rejected for what is wrong.
        let Ok(d) = delivery::parse(rest) else {
            return "smtp";
        };
        let text = d.text.unwrap_or("");
        return match (d.relay, d.status) {
            // The queue manager's own deferrals, before any transport ran.
            (Some("none"), "deferred")
                if text.contains("mail transport unavailable") || text.contains("unknown mail transport error") =>
            {
                "qmgr"
            }
            // Only the discard agent reports a delivery to no relay.
            (Some("none"), "sent") => "discard",
            (Some(r), _) if r != "none" && !r.contains(['[', '/']) => "local",
            _ => "smtp",
        };
    }
    if rest.starts_with("from=") || rest == "removed" {
        "qmgr"
    } else if rest.starts_with("message-id=") {
        "cleanup"
    } else if rest.starts_with("client=") || rest.starts_with("uid=") {
        "smtpd"
    } else if rest.contains(" notification: ") {
        "bounce"
    } else {
        // `host ... said`, `lost connection ...`: the client's, not an attempt.
        "smtp"
    }
}

impl Normalizer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn postfix(
        &mut self,
        f: &SyslogLine<'_>,
        instance: &str,
        service: &str,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        if is_diagnostic(f.message) {
            return self.stats.skip(SkipKind::Warning);
        }
        match service {
            "smtp" | "lmtp" | "error" | "retry" => self.delivery(f, instance, raw, origin, events, rejects),
            "qmgr" => self.qmgr(f, instance, origin, events),
            "cleanup" => {
                if let Some((qid, rest)) = split_queue_id(f.message)
                    && let Some(id) = rest.strip_prefix("message-id=")
                {
                    let id = id.trim_start_matches('<').trim_end_matches('>');
                    // A message begins: whatever its queue id held is an earlier
                    // message's that left no `removed` line (short ids are reused), and
                    // its recipients must not expire with this one.
                    *self.state.get_or_insert(f.host, qid) = QueueState {
                        message_id: Some(text::bounded(id, MESSAGE_ID_MAX).into()),
                        ..QueueState::default()
                    };
                }
                self.stats.skip(SkipKind::Submission)
            }
            "postsuper" => {
                if let Some((qid, "removed")) = split_queue_id(f.message) {
                    self.state.remove(f.host, qid);
                }
                self.stats.skip(SkipKind::OtherService)
            }
            "pickup" | "smtpd" | "postscreen" | "dnsblog" | "tlsproxy" => self.stats.skip(SkipKind::Submission),
            "local" | "virtual" | "pipe" => self.stats.skip(SkipKind::LocalDelivery),
            "bounce" | "defer" | "trace" => self.stats.skip(SkipKind::Notification),
            _ => self.stats.skip(SkipKind::OtherService),
        }
    }

    fn delivery(
        &mut self,
        f: &SyslogLine<'_>,
        instance: &str,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        let Some((qid, rest)) = split_queue_id(f.message) else {
            if TO.find(f.message).is_some() {
                self.reject(Mta::Postfix, RejectReason::BadQueueId, raw, origin, rejects);
            } else {
                self.stats.skip(SkipKind::SmtpInfo);
            }
            return;
        };
        if !rest.starts_with("to=") {
            return self.stats.skip(SkipKind::SmtpInfo);
        }
        let d = match delivery::parse(rest) {
            Ok(d) => d,
            Err(reason) => return self.reject(Mta::Postfix, reason, raw, origin, rejects),
        };
        let outcome = match d.status {
            "sent" => Outcome::Delivered,
            // `soft_bounce = yes`: the receiver refused for good, Postfix will try again.
            "deferred" | "SOFTBOUNCE" => Outcome::Deferred,
            "bounced" => Outcome::Bounced,
            "deliverable" | "undeliverable" | "undeliverable-but-not-cached" => {
                return self.stats.skip(SkipKind::AddressVerification);
            }
            _ => return self.reject(Mta::Postfix, RejectReason::BadStatus, raw, origin, rejects),
        };
        let text = d.text.unwrap_or("");
        let relay = match d.relay {
            // The hop a `relay=none` text names: `connect to HOST[IP]:25: ...`.
            Some("none") => reply::hop_in_text(text),
            Some(relay) => Some(relay),
            None => return self.reject(Mta::Postfix, RejectReason::BadRelay, raw, origin, rejects),
        };
        // LMTP into a mailbox server's socket (`HOST[private/dovecot-lmtp]`), delivered
        // or not, is final delivery on this host, as `local` and `virtual` are.
        if relay.is_some_and(|r| r.contains('/')) {
            return self.stats.skip(SkipKind::LocalDelivery);
        }
        let hop = match relay.map(reply::split_relay) {
            Some(Some(hop)) => Some(hop),
            Some(None) => return self.reject(Mta::Postfix, RejectReason::BadRelay, raw, origin, rejects),
            None => None,
        };
        if self.is_handoff(hop.and_then(|(_, ip)| ip)) {
            self.held_at_handoff(f, instance, qid, d.to, outcome);
            return self.stats.skip(SkipKind::Handoff);
        }
        // Counted, not refused: the try is whole, but its cause is read from what is
        // left of the reply, which may lack the words that name it.
        self.stats.cut_replies += u64::from(d.cut_reply);
        // Postfix's own hold, which may quote what the site said before (`delivery
        // temporarily suspended: host X refused to talk to me: 421 ...`): nothing was
        // said in this try, so its reply is the whole text, with no code, classified as
        // the hold it is rather than as that earlier reply.
        let (response, (code, enhanced)) = if text.starts_with(reply::HOLD) {
            (text, (None, None))
        } else {
            let response = reply::reply_of(text);
            (response, split_reply(response))
        };
        let enhanced = enhanced.or(d.dsn);
        let class = match outcome {
            Outcome::Delivered => Class::None,
            _ => self.classify(code, enhanced, response),
        };

        let mut mx_buf = mem::take(&mut self.scratch.mx_host);
        let mut domain_buf = mem::take(&mut self.scratch.domain);
        let mx_host = hop.map(|(h, _)| lower(h, &mut mx_buf));
        let mx_ip = hop.and_then(|(_, ip)| ip);
        let (rcpt_hash, rcpt_domain) = split_recipient(&self.hasher, d.to, &mut domain_buf);
        let group = match (mx_host, mx_ip) {
            (Some(h), _) => self.group_of_host(h),
            (None, None) => self.mailbox_group(rcpt_domain),
            // A hop seen by its IP alone is not the provider's (`MxGroups::mx_group`).
            (None, Some(_)) => None,
        };
        let mx_group = group.as_deref().or(rcpt_domain).unwrap_or("unknown");
        let source_ip = self.egress.lookup(f.host, instance);
        // Mask before cutting: a cut inside an address would hide its `@` from the mask.
        let masked = redact_reply(response, d.to);
        let stored_response = text::bounded(&masked, self.response_max_bytes);

        let st = self.state.get_or_insert(f.host, qid);
        let deferred_to = (outcome == Outcome::Deferred).then(|| LastAttempt::new(source_ip, mx_host, mx_ip, mx_group));
        let attempt = st.attempt(rcpt_hash.unwrap_or(0), rcpt_domain, deferred_to);
        if attempt.is_none() {
            self.stats.untracked_recipients += 1;
        }
        events.push(&EventRow {
            event_time_us: f.time_us,
            tenant: &self.tenant,
            mta: Mta::Postfix,
            mta_host: f.host,
            mta_instance: Some(instance),
            source_ip,
            queue_id: qid,
            message_id: st.message_id.as_deref(),
            sender_domain: st.sender_domain.as_deref(),
            recipient_domain: rcpt_domain,
            recipient_hash: rcpt_hash,
            mx_host,
            mx_ip,
            mx_group,
            outcome,
            class,
            smtp_code: code,
            enhanced_status: enhanced,
            response: (!stored_response.is_empty()).then_some(stored_response),
            attempt,
            delay_seconds: d.delay,
            size_bytes: st.size,
            origin,
        });
        self.stats.events += 1;
        self.scratch.mx_host = mx_buf;
        self.scratch.domain = domain_buf;
    }

    /// A hand-off is no attempt, but a recipient deferred at the filter is still one
    /// the queue id may expire: pending where its last attempt went, or, with none
    /// seen, with no receiver (the fallback of an expiry with no attempt seen: the
    /// instance's IP, the recipient domain's group). One the filter took or refused is
    /// done.
    fn held_at_handoff(&mut self, f: &SyslogLine<'_>, instance: &str, qid: &str, to: &str, outcome: Outcome) {
        let mut domain_buf = mem::take(&mut self.scratch.domain);
        let (hash, domain) = split_recipient(&self.hasher, to, &mut domain_buf);
        let hash = hash.unwrap_or(0);
        if outcome == Outcome::Deferred {
            let source_ip = self.egress.lookup(f.host, instance);
            let group = self.mailbox_group(domain);
            let group = group.as_deref().or(domain).unwrap_or("unknown");
            let pending = LastAttempt::new(source_ip, None, None, group);
            match self.state.get_or_insert(f.host, qid).rcpt_mut(hash, domain) {
                Some(r) => {
                    r.pending.get_or_insert(pending);
                }
                None => self.stats.untracked_recipients += 1,
            }
        } else if let Some(st) = self.state.get(f.host, qid)
            && let Some(r) = st.rcpts.iter_mut().find(|r| r.hash == hash)
        {
            r.pending = None;
        }
        self.scratch.domain = domain_buf;
    }

    fn qmgr(&mut self, f: &SyslogLine<'_>, instance: &str, origin: Origin<'_>, events: &mut dyn EventSink) {
        let Some((qid, rest)) = split_queue_id(f.message) else {
            return self.stats.skip(SkipKind::QueueManager);
        };
        if rest == "removed" {
            self.state.remove(f.host, qid);
            return self.stats.skip(SkipKind::QueueManager);
        }
        let Some(from) = rest.strip_prefix("from=") else {
            return self.stats.skip(SkipKind::QueueManager);
        };
        // `from=<sender>, status=expired, returned to sender` or
        // `from=<sender>, size=N, nrcpt=M (queue active)`; a sender in angle brackets
        // may itself hold ", ".
        let value_end = match from.strip_prefix('<') {
            Some(inner) => inner.find('>').map_or(from.len(), |i| i + 2),
            None => find2(from, b',', b' ').unwrap_or(from.len()),
        };
        let sender = from[..value_end].trim_start_matches('<').trim_end_matches('>');
        let after = from[value_end..].strip_prefix(", ").unwrap_or("");
        if after.starts_with("status=expired,") || after.starts_with("status=force-expired,") {
            return self.expire(f, instance, qid, origin, events);
        }
        if let Some(size) = after.strip_prefix("size=") {
            let mut buf = mem::take(&mut self.scratch.domain);
            let domain = sender.rsplit_once('@').map(|(_, d)| lower(d, &mut buf));
            let size = size.split(',').next().and_then(|s| s.parse().ok());
            let st = self.state.get_or_insert(f.host, qid);
            st.sender_domain = domain.filter(|d| !d.is_empty()).map(Into::into);
            st.size = size;
            self.scratch.domain = buf;
        }
        self.stats.skip(SkipKind::QueueManager)
    }

    /// One expiry per recipient still deferred, attributed to its last attempt; one with
    /// no MX when correlation state knows of no such recipient.
    fn expire(
        &mut self,
        f: &SyslogLine<'_>,
        instance: &str,
        qid: &str,
        origin: Origin<'_>,
        events: &mut dyn EventSink,
    ) {
        let no_recipient = EventRow {
            event_time_us: f.time_us,
            tenant: &self.tenant,
            mta: Mta::Postfix,
            mta_host: f.host,
            mta_instance: Some(instance),
            source_ip: self.egress.lookup(f.host, instance),
            queue_id: qid,
            message_id: None,
            sender_domain: None,
            recipient_domain: None,
            recipient_hash: None,
            mx_host: None,
            mx_ip: None,
            mx_group: "unknown",
            outcome: Outcome::Expired,
            class: Class::Expired,
            smtp_code: None,
            enhanced_status: None,
            response: None,
            attempt: None,
            delay_seconds: None,
            size_bytes: None,
            origin,
        };
        let mut emitted = 0u64;
        let mut no_recipient = no_recipient;
        if let Some(st) = self.state.get(f.host, qid) {
            no_recipient.message_id = st.message_id.as_deref();
            no_recipient.sender_domain = st.sender_domain.as_deref();
            no_recipient.size_bytes = st.size;
            for r in &st.rcpts {
                let Some(last) = &r.pending else { continue };
                events.push(&EventRow {
                    source_ip: last.source_ip(),
                    message_id: st.message_id.as_deref(),
                    sender_domain: st.sender_domain.as_deref(),
                    recipient_domain: r.domain.as_deref(),
                    recipient_hash: Some(r.hash),
                    mx_host: last.mx_host(),
                    mx_ip: last.mx_ip(),
                    mx_group: last.mx_group(),
                    size_bytes: st.size,
                    ..no_recipient
                });
                emitted += 1;
            }
            for r in &mut st.rcpts {
                r.pending = None;
            }
        }
        if emitted == 0 {
            events.push(&no_recipient);
            emitted = 1;
        }
        self.stats.events += emitted;
        self.stats.expiries += emitted;
        self.stats.expiry_lines += 1;
    }
}
