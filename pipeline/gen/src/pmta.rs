//! Rendering planned steps as PowerMTA accounting CSV: a header line naming the
//! columns (in an order of our own, so readers must map by name), then one record
//! per recipient event: `r` on arrival, `d` delivered, `t` transient, `b` bounced, and
//! `b` with status 4.4.7 for each recipient still deferred at expiry, naming the MTA
//! of its last attempt. A hold for a destination marked dead (Postfix's `error`
//! agent) is a `t` naming no MTA. `dlvSourceIp` is written where the fleet maps the
//! instance (`vmta`).

use crate::fleet::INSTANCES;
use crate::message::{AttemptResult, Msg, Step, StepKind};
use crate::out::push_u64;
use crate::postfix::Writer;
use crate::providers::{DOMAINS, SENDERS};
use crate::replies::{push_rcpt, render};
use crate::stamp::{US_PER_SEC, push_ymd_hms};

pub(crate) const HEADER: &[u8] =
    b"type,timeLogged,timeQueued,orig,rcpt,vmta,dlvSourceIp,dsnAction,dsnStatus,dsnDiag,dsnMta,dlvDestinationIp,dlvSize,jobId\n";

/// A CSV field, always quoted (replies hold commas and quotes).
fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// One record: the fields up to `dsnAction`, then the caller's.
fn record(out: &mut Vec<u8>, kind: &str, msg: &Msg, rcpt: usize, t: i64) {
    let r = &msg.rcpts[rcpt];
    out.extend_from_slice(kind.as_bytes());
    out.push(b',');
    push_ymd_hms(out, t);
    out.extend_from_slice(b"+0000");
    out.push(b',');
    push_u64(out, msg.t0.div_euclid(US_PER_SEC).max(0) as u64);
    out.push(b',');
    out.extend_from_slice(SENDERS[msg.sender].address.as_bytes());
    out.push(b',');
    push_rcpt(out, r.local, DOMAINS[r.domain].name);
    let inst = &INSTANCES[msg.instance];
    out.push(b',');
    out.extend_from_slice(inst.name.as_bytes());
    out.push(b',');
    if let Some(ip) = inst.egress_ip {
        out.extend_from_slice(ip.as_bytes());
    }
    out.push(b',');
}

/// `,dsnMta,dlvDestinationIp,dlvSize,jobId\n`
fn tail(out: &mut Vec<u8>, msg: &Msg, mx: Option<(&str, &str)>) {
    out.push(b',');
    if let Some((host, ip)) = mx {
        out.extend_from_slice(b"dns;");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b" (");
        out.extend_from_slice(ip.as_bytes());
        out.extend_from_slice(b"),");
        out.extend_from_slice(ip.as_bytes());
    } else {
        out.push(b',');
    }
    out.push(b',');
    push_u64(out, msg.size);
    out.extend_from_slice(b",job-");
    out.extend_from_slice(msg.qid.as_bytes());
    out.push(b'\n');
}

/// Appends the record(s) for `step` of `msg`.
pub(crate) fn step(w: &mut Writer, out: &mut Vec<u8>, msg: &Msg, step: &Step) {
    match &step.kind {
        StepKind::Cleanup => {
            record(out, "r", msg, 0, step.t);
            // Empty dsnAction, dsnStatus, dsnDiag.
            out.extend_from_slice(b",,");
            tail(out, msg, None);
        }
        StepKind::Attempt(a) => {
            let r = &msg.rcpts[a.rcpt];
            let domain = DOMAINS[r.domain].name;
            let (kind, action, status) = match a.result {
                AttemptResult::Sent => ("d", "relayed", "2.0.0 (success)"),
                AttemptResult::Bounced(rep) => ("b", "failed", rep.dsn),
                AttemptResult::Deferred(rep) => ("t", "delayed", rep.dsn),
                AttemptResult::ConnFail(_) | AttemptResult::Suspended(_) => ("t", "delayed", "4.4.1"),
                AttemptResult::Lost => ("t", "delayed", "4.4.2"),
            };
            record(out, kind, msg, a.rcpt, step.t);
            out.extend_from_slice(action.as_bytes());
            out.push(b',');
            out.extend_from_slice(status.as_bytes());
            out.push(b',');
            let mut diag = b"smtp;".to_vec();
            let v = msg.vars(r.local, domain, step.t);
            match a.result {
                AttemptResult::Sent => render(DOMAINS[r.domain].kind.texts().sent, &v, w.rng(), &mut diag),
                AttemptResult::Deferred(rep) | AttemptResult::Bounced(rep) => render(rep.text, &v, w.rng(), &mut diag),
                AttemptResult::ConnFail(f) => diag.extend_from_slice(f.text().as_bytes()),
                AttemptResult::Suspended(_) => diag.extend_from_slice(b"no MX could be reached (queue in backoff)"),
                AttemptResult::Lost => diag.extend_from_slice(b"451 4.4.2 connection lost"),
            }
            quoted(out, &diag);
            let mx = (!matches!(a.result, AttemptResult::Suspended(_))).then_some((a.mx.host, a.ip));
            tail(out, msg, mx);
        }
        StepKind::Expired => {
            for (i, r) in msg.rcpts.iter().enumerate() {
                let Some((host, _)) = r.last_written.filter(|_| !r.done) else {
                    continue;
                };
                record(out, "b", msg, i, step.t);
                out.extend_from_slice(
                    b"failed,4.4.7 (delivery time expired),\"smtp;message expired, too long in queue\"",
                );
                let ip = r.last_ip.unwrap_or("");
                tail(out, msg, (!host.is_empty()).then_some((host, ip)));
            }
        }
        _ => {}
    }
}
