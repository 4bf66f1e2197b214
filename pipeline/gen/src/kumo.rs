//! Rendering planned steps as KumoMTA JSON log records, one object per line.
//!
//! KumoMTA logs records about a message, not a dialogue: the arrival is a
//! `Reception`, each attempt a `Delivery`, `TransientFailure` or `Bounce` naming the
//! peer it talked to, and an expiry one `Expiration` per recipient still deferred.
//! Steps KumoMTA does not log (smtpd, queue manager, TLS, other MXs tried) write
//! nothing. Records name no host; the sending IP is `source_address` where the
//! fleet maps the instance, and `egress_source` is the instance. A hold for a
//! destination marked dead (Postfix's `error` agent) is a `TransientFailure` from
//! KumoMTA itself, with no peer.

use crate::fleet::INSTANCES;
use crate::message::{AttemptResult, Msg, Step, StepKind};
use crate::out::push_u64;
use crate::postfix::Writer;
use crate::providers::{DOMAINS, SENDERS};
use crate::qid::Qid;
use crate::replies::{push_rcpt, render};
use crate::stamp::US_PER_SEC;

/// A 32-hex-digit spool id standing for a Postfix queue id.
fn spool_id(out: &mut Vec<u8>, qid: &Qid) {
    let mut h = qid.as_bytes().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    for round in 0..2u64 {
        h = (h ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        for i in (0..16).rev() {
            out.push(b"0123456789abcdef"[((h >> (i * 4)) & 0xf) as usize]);
        }
    }
}

/// `"text"` with JSON escapes.
fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A rendered reply split as KumoMTA logs it: code, enhanced code, the rest.
fn response(out: &mut Vec<u8>, reply: &[u8]) {
    let text = String::from_utf8_lossy(reply);
    let (code, rest) = match text.get(..3).and_then(|c| c.parse::<u16>().ok()) {
        Some(c) => (Some(c), text[3..].trim_start_matches([' ', '-'])),
        None => (None, text.as_ref()),
    };
    let enhanced = rest.split(' ').next().and_then(|e| {
        let p: Vec<u16> = e.split('.').filter_map(|n| n.parse().ok()).collect();
        (p.len() == 3 && e.split('.').count() == 3).then_some((e.len(), p))
    });
    out.extend_from_slice(b"{\"code\":");
    match code {
        Some(c) => push_u64(out, u64::from(c)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"enhanced_code\":");
    let content = match &enhanced {
        Some((len, p)) => {
            out.extend_from_slice(b"{\"class\":");
            push_u64(out, u64::from(p[0]));
            out.extend_from_slice(b",\"subject\":");
            push_u64(out, u64::from(p[1]));
            out.extend_from_slice(b",\"detail\":");
            push_u64(out, u64::from(p[2]));
            out.push(b'}');
            rest[*len..].trim_start()
        }
        None => {
            out.extend_from_slice(b"null");
            rest
        }
    };
    out.extend_from_slice(b",\"content\":");
    json_str(out, content.as_bytes());
    out.extend_from_slice(b",\"command\":\".\"}");
}

/// The fields before the response, in KumoMTA's order (its `JsonLogRecord`).
fn head(out: &mut Vec<u8>, kind: &str, msg: &Msg, rcpt: usize) {
    let r = &msg.rcpts[rcpt];
    let domain = DOMAINS[r.domain].name;
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"id\":\"");
    spool_id(out, &msg.qid);
    out.extend_from_slice(b"\",\"sender\":");
    json_str(out, SENDERS[msg.sender].address.as_bytes());
    out.extend_from_slice(b",\"recipient\":\"");
    push_rcpt(out, r.local, domain);
    out.extend_from_slice(b"\",\"queue\":\"");
    out.extend_from_slice(domain.as_bytes());
    out.extend_from_slice(b"\",\"site\":\"\",\"size\":");
    push_u64(out, msg.size);
}

/// The fields after the peer, in KumoMTA's order, and the line's end. The sending IP
/// is only there when the fleet maps the instance; `nodeid` is the instance's.
fn tail(out: &mut Vec<u8>, msg: &Msg, t: i64, num_attempts: u32, delivery_protocol: &str) {
    out.extend_from_slice(b",\"timestamp\":");
    push_u64(out, t.div_euclid(US_PER_SEC).max(0) as u64);
    out.extend_from_slice(b",\"created\":");
    push_u64(out, msg.t0.div_euclid(US_PER_SEC).max(0) as u64);
    out.extend_from_slice(b",\"num_attempts\":");
    push_u64(out, u64::from(num_attempts));
    let inst = &INSTANCES[msg.instance];
    out.extend_from_slice(
        b",\"bounce_classification\":\"Uncategorized\",\"egress_pool\":\"pool\",\"egress_source\":\"",
    );
    out.extend_from_slice(inst.name.as_bytes());
    out.push(b'"');
    if let Some(ip) = inst.egress_ip {
        out.extend_from_slice(b",\"source_address\":{\"address\":\"");
        if ip.contains(':') {
            out.push(b'[');
            out.extend_from_slice(ip.as_bytes());
            out.push(b']');
        } else {
            out.extend_from_slice(ip.as_bytes());
        }
        out.extend_from_slice(b":41000\",\"protocol\":\"tcp\"}");
    }
    out.extend_from_slice(b",\"feedback_report\":null,\"meta\":{},\"headers\":{},\"delivery_protocol\":");
    out.extend_from_slice(delivery_protocol.as_bytes());
    out.extend_from_slice(b",\"reception_protocol\":\"ESMTP\",\"nodeid\":\"4eb22880-dc03-44dc-a4d1-");
    push_u64(out, 100_000_000_000 + msg.instance as u64);
    out.extend_from_slice(b"\"}\n");
}

/// Appends the record(s) for `step` of `msg`.
pub(crate) fn step(w: &mut Writer, out: &mut Vec<u8>, msg: &Msg, step: &Step) {
    match &step.kind {
        StepKind::Cleanup => {
            head(out, "Reception", msg, 0);
            out.extend_from_slice(b",\"response\":{\"code\":250,\"enhanced_code\":null,\"content\":\"\",\"command\":null},\"peer_address\":{\"name\":\"\",\"addr\":\"127.0.0.1\"}");
            tail(out, msg, step.t, 0, "null");
        }
        StepKind::Attempt(a) => {
            let kind = match a.result {
                AttemptResult::Sent => "Delivery",
                AttemptResult::Bounced(_) => "Bounce",
                _ => "TransientFailure",
            };
            head(out, kind, msg, a.rcpt);
            let r = &msg.rcpts[a.rcpt];
            let domain = DOMAINS[r.domain].name;
            let mut reply = Vec::with_capacity(256);
            let v = msg.vars(r.local, domain, step.t);
            match a.result {
                AttemptResult::Sent => render(DOMAINS[r.domain].kind.texts().sent, &v, w.rng(), &mut reply),
                AttemptResult::Deferred(rep) | AttemptResult::Bounced(rep) => render(rep.text, &v, w.rng(), &mut reply),
                AttemptResult::ConnFail(f) => {
                    reply.extend_from_slice(b"451 4.4.1 KumoMTA internal: failed to connect: ");
                    reply.extend_from_slice(f.text().as_bytes());
                }
                AttemptResult::Suspended(_) => {
                    reply.extend_from_slice(b"451 4.4.1 KumoMTA internal: ready queue suspended for this site");
                }
                AttemptResult::Lost => {
                    reply.extend_from_slice(b"451 4.4.2 KumoMTA internal: connection closed by peer");
                }
            }
            out.extend_from_slice(b",\"response\":");
            response(out, &reply);
            out.extend_from_slice(b",\"peer_address\":");
            if matches!(a.result, AttemptResult::Suspended(_)) {
                out.extend_from_slice(b"null");
            } else {
                out.extend_from_slice(b"{\"name\":\"");
                out.extend_from_slice(a.mx.host.as_bytes());
                out.extend_from_slice(b".\",\"addr\":\"");
                out.extend_from_slice(a.ip.as_bytes());
                out.extend_from_slice(b"\"}");
            }
            // Logged before KumoMTA counts it: 0 at the first.
            tail(out, msg, step.t, r.written_attempts.saturating_sub(1), "\"ESMTP\"");
        }
        StepKind::Expired => {
            for (i, r) in msg
                .rcpts
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.done && r.last_written.is_some())
            {
                head(out, "Expiration", msg, i);
                out.extend_from_slice(b",\"response\":{\"code\":551,\"enhanced_code\":{\"class\":5,\"subject\":4,\"detail\":7},\"content\":\"Next delivery time would be after the expiry time\",\"command\":null},\"peer_address\":null");
                tail(out, msg, step.t, r.written_attempts, "null");
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_split_into_code_enhanced_code_and_content() {
        let mut out = Vec::new();
        response(&mut out, b"421-4.7.28 [x] rate limited \"now\" 421 4.7.28 more");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["code"], 421);
        assert_eq!(v["enhanced_code"]["subject"], 7);
        assert_eq!(v["enhanced_code"]["detail"], 28);
        assert_eq!(v["content"], "[x] rate limited \"now\" 421 4.7.28 more");
        let mut out = Vec::new();
        response(&mut out, b"250 Ok");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!((v["code"].as_u64(), v["enhanced_code"].is_null()), (Some(250), true));
    }
}
