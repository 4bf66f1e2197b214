//! Exim main log: which lines are attempts, and what they mean for the counts.
//!
//! `=>`, `->` (further addresses of the same delivery) and `>>` (cutthrough) are
//! deliveries, `==` deferrals, `**` bounces, and `**` past the retry cutoff (`retry
//! timeout exceeded`, and its host-level forms) the expiry of that recipient (not an
//! attempt; attributed to its last attempt, as for Postfix). `<=` (arrival) feeds
//! correlation state with the sender, size, Message-ID and arrival time (the time in
//! queue of lines without `QT=`, which Exim logs only with `+queue_time`);
//! `Completed` drops it; a message-level `H=host [ip]: ...` (or `Remote host host
//! [ip] closed connection ...`) error line is remembered as the host a following `==`
//! without `H=` went to (and every further `==` of that delivery, which repeats its
//! reason). A delivery with no `H=` (to a mailbox, a pipe, a file, `:blackhole:`) is
//! local and skipped, and so are a local transport's deferrals and failures, and the
//! expiry of their recipient.
//!
//! The sending IP is `I=[ip]:port` when `+outgoing_interface` is logged, else the
//! `[[egress]]` map with the transport (`T=`) as the instance: multi-IP Exim setups
//! bind each IP in a transport of its own.

mod fields;

use crate::correlate::{Hop, LastAttempt};
use crate::normalizer::{Normalizer, lower};
use crate::recipient::split_recipient;
use crate::redact::redact_reply;
use crate::stats::{RejectReason, SkipKind};
use crate::text::bounded;
use deferlog_classify::split_reply;
use deferlog_event::{Class, EventRow, EventSink, Mta, Origin, Outcome, RejectSink};
use std::mem;

/// Message ids: `1ajLoq-0001wC-Pk` (before 4.97) and `10HmaX-000000005vi-0000`.
pub fn is_message_id(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |r: &[u8]| r.iter().all(u8::is_ascii_alphanumeric);
    match b.len() {
        16 => b[6] == b'-' && b[13] == b'-' && alnum(&b[..6]) && alnum(&b[7..13]) && alnum(&b[14..]),
        23 => b[6] == b'-' && b[18] == b'-' && alnum(&b[..6]) && alnum(&b[7..18]) && alnum(&b[19..]),
        _ => false,
    }
}

/// A `**` whose reason is the retry cutoff passed for every host: Exim's words for
/// `retry timeout exceeded` (an address), and the two for when no host was left to
/// try once the cutoff had passed (smtp.c).
fn is_expiry(reason: &str) -> bool {
    reason.starts_with("retry timeout exceeded")
        || reason.contains("after a long failure period")
        || reason.contains("have been failing for a long time")
}

/// A local transport's failure, to a mailbox on this host rather than a receiver:
/// the retry hold of a local delivery (remote holds say `retry time not reached`),
/// appendfile's quota (`mailbox is full (MTA-imposed quota exceeded while writing to
/// ...)`), and the pipe transport's program failing (`Child process of
/// mailman_transport transport returned 75 ...`). Only for lines that name no host: a
/// receiver may quote the same words.
fn is_local_failure(reason: &str) -> bool {
    reason.starts_with("Retry time not yet reached")
        || reason.starts_with("Child process of ")
        || reason.contains("quota exceeded while writing to ")
}

/// How much of the reason of a failed connection's first `==` is kept to match the
/// other addresses of that delivery by.
const HOP_REASON_MAX: usize = 200;

/// A piece of a line Exim's syslog writer cut (over 870 bytes, `[1/2] ...`, or
/// `[1\\2]` where it cut at a newline): which piece of how many, and its text.
pub(crate) fn syslog_piece(message: &str) -> Option<(u32, u32, &str)> {
    let (tag, rest) = message.strip_prefix('[')?.split_once("] ")?;
    let (i, n) = tag.split_once(['/', '\\'])?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten();
    Some((digits(i)?, digits(n)?, rest))
}

/// Skips `[pid] ` that `+pid` puts after the stamp.
fn skip_pid(s: &str) -> &str {
    match s.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => s,
    }
}

impl Normalizer {
    /// One Exim line, its stamp (and `[pid]`) already taken off: `MSGID FLAG ...` or
    /// a line about no message (queue runs, connections, daemon start).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exim(
        &mut self,
        time_us: i64,
        host: &str,
        line: &str,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        let line = skip_pid(line);
        let (id, body) = line.split_once(' ').unwrap_or((line, ""));
        if !is_message_id(id) {
            return self.stats.skip(SkipKind::OtherService);
        }
        let (flag, rest) = body.split_at(body.find(' ').unwrap_or(body.len()));
        let rest = rest.trim_start_matches(' ');
        let outcome = match flag {
            // `>>`: a cutthrough delivery, made while the message was being received.
            "=>" | "->" | ">>" => Outcome::Delivered,
            "==" => Outcome::Deferred,
            "**" => Outcome::Bounced,
            "<=" => return self.arrival(time_us, host, id, rest),
            "Completed" => {
                self.state.remove(host, id);
                return self.stats.skip(SkipKind::QueueManager);
            }
            _ => {
                if let Some(h) = flag.strip_prefix("H=") {
                    self.remember_hop(host, id, h, rest);
                } else if flag == "Remote"
                    && let Some((h, after)) = rest.strip_prefix("host ").and_then(|r| r.split_once(' '))
                {
                    // `Remote host HOST [ip] closed connection ...`: as an `H=` line.
                    self.remember_hop(host, id, h, after);
                }
                return self.stats.skip(SkipKind::SmtpInfo);
            }
        };
        let Some(d) = fields::parse(rest) else {
            return self.reject(Mta::Exim, RejectReason::BadRecipient, raw, origin, rejects);
        };
        // The first piece of a line syslog got in pieces is whole but for its reply's
        // end, unless the cut fell before the reply: then its last field is cut too.
        if self.cut_piece && d.reason.is_none() {
            return self.reject(Mta::Exim, RejectReason::Truncated, raw, origin, rejects);
        }
        let no_host = d.host.is_none() && d.host_ip.is_none();
        let reason = d.reason.unwrap_or("");
        if d.address.starts_with([':', '|', '/']) || (outcome == Outcome::Delivered && no_host) {
            return self.stats.skip(SkipKind::LocalDelivery);
        }
        if no_host && is_local_failure(reason) {
            // Remembered, so that the recipient's expiry is not counted either.
            let mut buf = mem::take(&mut self.scratch.domain);
            let (hash, _) = split_recipient(&self.hasher, d.address, &mut buf);
            self.scratch.domain = buf;
            if let Some(r) = self.state.get_or_insert(host, id).rcpt_mut(hash.unwrap_or(0), None) {
                r.local = true;
            }
            return self.stats.skip(SkipKind::LocalDelivery);
        }
        self.stats.cut_replies += u64::from(self.cut_piece);
        if outcome == Outcome::Bounced && is_expiry(reason) {
            return self.exim_expiry(time_us, host, id, &d, origin, events);
        }
        self.exim_attempt(time_us, host, id, outcome, &d, origin, events);
    }

    /// `<= sender ... S=size id=message-id`: what later lines of the message need,
    /// and when it arrived (Exim logs `QT=` only with `+queue_time`, not by default).
    fn arrival(&mut self, time_us: i64, host: &str, id: &str, rest: &str) {
        let sender = rest.split(' ').next().unwrap_or("");
        let mut size = None;
        let mut message_id = None;
        for t in rest.split(' ') {
            if let Some(v) = t.strip_prefix("S=") {
                size = v.parse().ok();
            } else if let Some(v) = t.strip_prefix("id=") {
                message_id = Some(v);
            }
        }
        let mut buf = mem::take(&mut self.scratch.domain);
        let domain = sender.rsplit_once('@').map(|(_, d)| lower(d, &mut buf));
        let st = self.state.get_or_insert(host, id);
        st.sender_domain = domain.filter(|d| !d.is_empty()).map(Into::into);
        st.size = size;
        st.message_id = message_id.map(|m| bounded(m, crate::postfix::MESSAGE_ID_MAX).into());
        st.arrived_us = Some(time_us);
        self.scratch.domain = buf;
        self.stats.skip(SkipKind::Submission)
    }

    /// `H=host [ip]: SMTP error ...` before a `==`: the host that deferral went to.
    fn remember_hop(&mut self, host: &str, id: &str, mx: &str, rest: &str) {
        let mx = mx.trim_end_matches(':');
        let ip = rest.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(ip, _)| ip);
        let mut buf = mem::take(&mut self.scratch.mx_host);
        let (name, ip) = match mx.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((ip, _)) => (None, Some(ip)),
            None => (Some(lower(mx, &mut buf)), ip),
        };
        let st = self.state.get_or_insert(host, id);
        st.last_hop = Some(Hop {
            host: name.map(Into::into),
            ip: ip.map(Into::into),
            reason: None,
        });
        self.scratch.mx_host = buf;
    }

    #[allow(clippy::too_many_arguments)]
    fn exim_attempt(
        &mut self,
        time_us: i64,
        host: &str,
        id: &str,
        outcome: Outcome,
        d: &fields::Delivery<'_>,
        origin: Origin<'_>,
        events: &mut dyn EventSink,
    ) {
        let reply = match (outcome, d.confirmation, d.reason) {
            (Outcome::Delivered, Some(c), _) => c,
            (_, _, Some(r)) => fields::reply_of(r),
            _ => "",
        };
        let (code, enhanced) = split_reply(reply);
        let class = match outcome {
            Outcome::Delivered => Class::None,
            _ => self.classify(code, enhanced, reply),
        };
        let mut mx_buf = mem::take(&mut self.scratch.mx_host);
        let mut domain_buf = mem::take(&mut self.scratch.domain);
        // Without `H=`, the host of the message's error line just before. Exim logs
        // every address of that delivery after it with the same reason, so the host
        // goes to the lines that repeat the first one's reason. Not for Exim's own
        // holds (`retry time not reached`), which tried no host.
        // Bounded: it is kept in checkpointed state, and its start tells deliveries apart.
        let reason = bounded(d.reason.unwrap_or(""), HOP_REASON_MAX);
        let remembered = match (d.host, d.host_ip) {
            (None, None) if class != Class::Local => self
                .state
                .get(host, id)
                .and_then(|st| st.last_hop.as_mut())
                .and_then(|hop| match &hop.reason {
                    Some(first) if **first != *reason => None,
                    Some(_) => Some(hop.clone()),
                    None => {
                        hop.reason = Some(reason.into());
                        Some(hop.clone())
                    }
                }),
            _ => None,
        };
        let (mx_host, mx_ip) = match &remembered {
            Some(hop) => (hop.host.as_deref(), hop.ip.as_deref()),
            None => (d.host.map(|h| lower(h, &mut mx_buf)), d.host_ip),
        };
        if self.is_handoff(mx_ip) {
            self.scratch.mx_host = mx_buf;
            self.scratch.domain = domain_buf;
            return self.stats.skip(SkipKind::Handoff);
        }
        let (rcpt_hash, rcpt_domain) = split_recipient(&self.hasher, d.address, &mut domain_buf);
        let group = match (mx_host, mx_ip) {
            (Some(h), _) => self.group_of_host(h),
            (None, None) => self.mailbox_group(rcpt_domain),
            // A hop seen by its IP alone is not the provider's (`MxGroups::mx_group`).
            (None, Some(_)) => None,
        };
        let mx_group = group.as_deref().or(rcpt_domain).unwrap_or("unknown");
        let instance = d.transport;
        let source_ip = d.interface.or_else(|| self.egress.lookup(host, instance.unwrap_or("")));
        let masked = redact_reply(reply, d.address);
        let stored = bounded(&masked, self.response_max_bytes);

        let st = self.state.get_or_insert(host, id);
        if remembered.is_none() {
            st.last_hop = None;
        }
        let deferred_to = (outcome == Outcome::Deferred).then(|| LastAttempt::new(source_ip, mx_host, mx_ip, mx_group));
        // No domain kept: Exim's `**` names its recipient.
        let attempt = st.attempt(rcpt_hash.unwrap_or(0), None, deferred_to);
        if attempt.is_none() {
            self.stats.untracked_recipients += 1;
        }
        events.push(&EventRow {
            event_time_us: time_us,
            tenant: &self.tenant,
            mta: Mta::Exim,
            mta_host: host,
            mta_instance: instance,
            source_ip,
            queue_id: id,
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
            response: (!stored.is_empty()).then_some(stored),
            attempt,
            delay_seconds: d.queue_time.or_else(|| st.queued_for(time_us)),
            size_bytes: d.size.or(st.size),
            origin,
        });
        self.stats.events += 1;
        self.scratch.mx_host = mx_buf;
        self.scratch.domain = domain_buf;
    }

    /// `** addr: retry timeout exceeded`: that recipient given up, attributed to where
    /// its last attempt went (with no MX when none was seen).
    fn exim_expiry(
        &mut self,
        time_us: i64,
        host: &str,
        id: &str,
        d: &fields::Delivery<'_>,
        origin: Origin<'_>,
        events: &mut dyn EventSink,
    ) {
        let mut domain_buf = mem::take(&mut self.scratch.domain);
        let (rcpt_hash, rcpt_domain) = split_recipient(&self.hasher, d.address, &mut domain_buf);
        let fallback_ip = d
            .interface
            .or_else(|| self.egress.lookup(host, d.transport.unwrap_or("")));
        let mailbox_group = self.mailbox_group(rcpt_domain);
        let st = self.state.get_or_insert(host, id);
        let rcpt = st.rcpts.iter_mut().find(|r| Some(r.hash) == rcpt_hash);
        if rcpt.as_ref().is_some_and(|r| r.local) {
            self.scratch.domain = domain_buf;
            return self.stats.skip(SkipKind::LocalDelivery);
        }
        let last = rcpt.and_then(|r| r.pending.take());
        events.push(&EventRow {
            event_time_us: time_us,
            tenant: &self.tenant,
            mta: Mta::Exim,
            mta_host: host,
            mta_instance: d.transport,
            source_ip: last.as_ref().map_or(fallback_ip, |l| l.source_ip()),
            queue_id: id,
            message_id: st.message_id.as_deref(),
            sender_domain: st.sender_domain.as_deref(),
            recipient_domain: rcpt_domain,
            recipient_hash: rcpt_hash,
            mx_host: last.as_ref().and_then(|l| l.mx_host()),
            mx_ip: last.as_ref().and_then(|l| l.mx_ip()),
            mx_group: last
                .as_ref()
                .map_or(mailbox_group.as_deref().or(rcpt_domain).unwrap_or("unknown"), |l| {
                    l.mx_group()
                }),
            outcome: Outcome::Expired,
            class: Class::Expired,
            smtp_code: None,
            enhanced_status: None,
            response: None,
            attempt: None,
            delay_seconds: d.queue_time.or_else(|| st.queued_for(time_us)),
            size_bytes: st.size,
            origin,
        });
        self.stats.events += 1;
        self.stats.expiries += 1;
        self.stats.expiry_lines += 1;
        self.scratch.domain = domain_buf;
    }
}
