//! Rendering planned steps as Exim main-log lines, sent through syslog as Exim does
//! by default (`syslog_timestamp`: Exim's own stamp, which has the year, leads the
//! message): `STAMP HOST exim[PID]: YYYY-MM-DD HH:MM:SS ID FLAG ...`.
//!
//! The same plan as Postfix, in Exim's words: the arrival is `<=`, attempts are
//! `=>` `==` `**` with the instance as the transport (`T=`, which the egress map
//! resolves, as multi-IP Exim setups bind an IP per transport), hosts tried before
//! the last are message-level `H=host [ip] ...` lines, an expiry is one
//! `** rcpt: retry timeout exceeded` per recipient still deferred, and removal is
//! `Completed`. Postfix's `error` agent (a destination already marked dead) becomes
//! `retry time not reached for any host`, which names no host.

use crate::fleet::INSTANCES;
use crate::message::{AttemptResult, Msg, Step, StepKind};
use crate::out::push_u64;
use crate::postfix::Writer;
use crate::providers::{DOMAINS, SENDERS};
use crate::qid::Qid;
use crate::replies::{Stage, push_rcpt, render};
use crate::stamp::{US_PER_SEC, push_ymd_hms};

/// An Exim message id (`XXXXXX-XXXXXX-XX`, base 62) standing for a Postfix queue id:
/// the same message, named the way Exim names it.
pub(crate) fn exim_id(qid: &Qid) -> [u8; 16] {
    const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut h = qid.as_bytes().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut id = [b'-'; 16];
    for (i, slot) in id.iter_mut().enumerate() {
        if i == 6 || i == 13 {
            continue;
        }
        *slot = B62[(h % 62) as usize];
        h /= 62;
        if h == 0 {
            h = 0x9E37_79B9_7F4A_7C15;
        }
    }
    id
}

/// `STAMP HOST exim[PID]: YYYY-MM-DD HH:MM:SS `
fn prefix(w: &mut Writer, out: &mut Vec<u8>, msg: &Msg, step: &Step) {
    w.stamp_host(out, step.t, INSTANCES[msg.instance].host);
    out.extend_from_slice(b"exim[");
    push_u64(out, u64::from(step.pid));
    out.extend_from_slice(b"]: ");
    push_ymd_hms(out, step.t);
    out.push(b' ');
}

/// `Exim's QT=`: `1h2m3s`.
fn push_qt(out: &mut Vec<u8>, us: i64) {
    let mut s = (us / US_PER_SEC).max(0);
    out.extend_from_slice(b" QT=");
    for (unit, n) in [(b'd', 86_400), (b'h', 3_600), (b'm', 60)] {
        if s >= n {
            push_u64(out, (s / n) as u64);
            out.push(unit);
            s %= n;
        }
    }
    push_u64(out, s as u64);
    out.push(b's');
}

/// Appends the line(s) for `step` of `msg`.
pub(crate) fn step(w: &mut Writer, out: &mut Vec<u8>, msg: &Msg, step: &Step) {
    prefix(w, out, msg, step);
    let id = exim_id(&msg.qid);
    let sender = &SENDERS[msg.sender];
    let inst = &INSTANCES[msg.instance];
    match &step.kind {
        StepKind::Pickup => {
            out.extend_from_slice(b"cwd=/var/spool/exim 3 args: /usr/sbin/exim -Mc ");
            out.extend_from_slice(&id);
        }
        StepKind::SmtpdConnect | StepKind::SmtpdClient => {
            let (name, ip) = sender.client.unwrap_or(("localhost", "127.0.0.1"));
            out.extend_from_slice(b"SMTP connection from ");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b" [");
            out.extend_from_slice(ip.as_bytes());
            out.extend_from_slice(b"]:41234 (TCP/IP connection count = 1)");
        }
        StepKind::SmtpdDisconnect => {
            let (name, ip) = sender.client.unwrap_or(("localhost", "127.0.0.1"));
            out.extend_from_slice(b"SMTP connection from ");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b" [");
            out.extend_from_slice(ip.as_bytes());
            out.extend_from_slice(b"]:41234 closed by QUIT");
        }
        StepKind::Cleanup => {
            out.extend_from_slice(&id);
            out.extend_from_slice(b" <= ");
            out.extend_from_slice(sender.address.as_bytes());
            match sender.client {
                Some((name, ip)) => {
                    out.extend_from_slice(b" H=");
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b" [");
                    out.extend_from_slice(ip.as_bytes());
                    out.extend_from_slice(b"]:41234 P=esmtps");
                }
                None => out.extend_from_slice(b" U=mailer P=local"),
            }
            out.extend_from_slice(b" S=");
            push_u64(out, msg.size);
            out.extend_from_slice(b" id=");
            out.extend_from_slice(
                msg.msgid
                    .strip_prefix(b"<")
                    .unwrap_or(&msg.msgid)
                    .strip_suffix(b">")
                    .unwrap_or(&msg.msgid),
            );
        }
        StepKind::QmgrActive { .. } => {
            out.extend_from_slice(b"Start queue run: pid=");
            push_u64(out, u64::from(step.pid));
        }
        StepKind::Tls { .. } => {
            out.extend_from_slice(b"End queue run: pid=");
            push_u64(out, u64::from(step.pid));
        }
        StepKind::ConnectInfo { mx, ip, fail } => {
            out.extend_from_slice(&id);
            host(out, mx.host, ip);
            out.push(b' ');
            out.extend_from_slice(fail.text().as_bytes());
        }
        StepKind::HostInfo { rcpt, mx, ip, reply } => {
            out.extend_from_slice(&id);
            host(out, mx.host, ip);
            out.extend_from_slice(b": ");
            let r = &msg.rcpts[*rcpt];
            smtp_error(
                w,
                out,
                msg,
                r.local,
                DOMAINS[r.domain].name,
                reply.stage,
                reply.text,
                step.t,
            );
        }
        StepKind::Attempt(a) => {
            let r = &msg.rcpts[a.rcpt];
            let domain = DOMAINS[r.domain].name;
            out.extend_from_slice(&id);
            out.extend_from_slice(match a.result {
                AttemptResult::Sent => b" => ".as_slice(),
                AttemptResult::Bounced(_) => b" ** ",
                _ => b" == ",
            });
            push_rcpt(out, r.local, domain);
            if let Some(o) = r.orig_to {
                out.extend_from_slice(b" <fwd");
                push_u64(out, u64::from(o));
                out.extend_from_slice(b"@lists.");
                out.extend_from_slice(sender.domain.as_bytes());
                out.push(b'>');
            }
            out.extend_from_slice(b" R=dnslookup T=");
            out.extend_from_slice(inst.name.as_bytes());
            match a.result {
                AttemptResult::Sent => {
                    host(out, a.mx.host, a.ip);
                    out.extend_from_slice(b" X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"");
                    let start = out.len();
                    let vars = msg.vars(r.local, domain, step.t);
                    render(DOMAINS[r.domain].kind.texts().sent, &vars, w.rng(), out);
                    // A quote inside would end the field early.
                    for b in &mut out[start..] {
                        if *b == b'"' {
                            *b = b'\'';
                        }
                    }
                    out.push(b'"');
                    push_qt(out, step.t - msg.t0);
                }
                AttemptResult::Deferred(rep) | AttemptResult::Bounced(rep) => {
                    if matches!(a.result, AttemptResult::Deferred(_)) {
                        out.extend_from_slice(b" defer (-44)");
                    }
                    host(out, a.mx.host, a.ip);
                    out.extend_from_slice(b": ");
                    smtp_error(w, out, msg, r.local, domain, rep.stage, rep.text, step.t);
                }
                AttemptResult::ConnFail(f) => {
                    out.extend_from_slice(b" defer (111): ");
                    out.extend_from_slice(f.text().as_bytes());
                    host(out, a.mx.host, a.ip);
                }
                AttemptResult::Suspended(_) => {
                    out.extend_from_slice(b" defer (-53): retry time not reached for any host for '");
                    out.extend_from_slice(domain.as_bytes());
                    out.push(b'\'');
                }
                AttemptResult::Lost => {
                    out.extend_from_slice(b" defer (-18)");
                    host(out, a.mx.host, a.ip);
                    out.extend_from_slice(b": Remote host closed connection in response to RCPT TO:<");
                    push_rcpt(out, r.local, domain);
                    out.push(b'>');
                }
            }
        }
        StepKind::Expired => {
            // One line per recipient still deferred; the first has its prefix.
            let mut first = true;
            for r in msg.rcpts.iter().filter(|r| !r.done && r.last_written.is_some()) {
                if !first {
                    out.push(b'\n');
                    prefix(w, out, msg, step);
                }
                first = false;
                out.extend_from_slice(&id);
                out.extend_from_slice(b" ** ");
                push_rcpt(out, r.local, DOMAINS[r.domain].name);
                out.extend_from_slice(b": retry timeout exceeded");
            }
            if first {
                out.extend_from_slice(&id);
                out.extend_from_slice(b" Frozen (delivery error message)");
            }
        }
        StepKind::Ndr { qid2 } => {
            out.extend_from_slice(&exim_id(qid2));
            out.extend_from_slice(b" <= <> R=");
            out.extend_from_slice(&id);
            out.extend_from_slice(b" U=Debian-exim P=local S=");
            push_u64(out, msg.size / 2 + 1200);
        }
        StepKind::Removed => {
            out.extend_from_slice(&id);
            out.extend_from_slice(b" Completed");
        }
    }
    out.push(b'\n');
}

/// ` H=host [ip]`
fn host(out: &mut Vec<u8>, name: &str, ip: &str) {
    out.extend_from_slice(b" H=");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" [");
    out.extend_from_slice(ip.as_bytes());
    out.push(b']');
}

/// `SMTP error from remote mail server after COMMAND: REPLY`
#[allow(clippy::too_many_arguments)]
fn smtp_error(
    w: &mut Writer,
    out: &mut Vec<u8>,
    msg: &Msg,
    local: u32,
    domain: &str,
    stage: Stage,
    text: &str,
    t: i64,
) {
    out.extend_from_slice(b"SMTP error from remote mail server after ");
    match stage {
        Stage::Greeting => out.extend_from_slice(b"initial connection"),
        Stage::MailFrom => {
            out.extend_from_slice(b"MAIL FROM:<");
            out.extend_from_slice(SENDERS[msg.sender].address.as_bytes());
            out.extend_from_slice(b"> SIZE=");
            push_u64(out, msg.size);
        }
        Stage::RcptTo => {
            out.extend_from_slice(b"RCPT TO:<");
            push_rcpt(out, local, domain);
            out.push(b'>');
        }
        Stage::Data => out.extend_from_slice(b"end of data"),
    }
    out.extend_from_slice(b": ");
    let v = msg.vars(local, domain, t);
    render(text, &v, w.rng(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_ids_have_exim_shapes() {
        let mut out = Vec::new();
        push_ymd_hms(
            &mut out,
            (crate::config::DEFAULT_START_UNIX + 8 * 3600 + 14 * 60 + 1) * US_PER_SEC,
        );
        assert_eq!(out, b"2026-11-01 08:14:01");
        let mut g = crate::qid::QidGen::new(crate::fleet::QidStyle::Short, 1, 0);
        let (a, b) = (exim_id(&g.next(0)), exim_id(&g.next(0)));
        assert_ne!(a, b);
        let id = std::str::from_utf8(&a).expect("ascii");
        assert!(
            id.len() == 16 && id.as_bytes()[6] == b'-' && id.as_bytes()[13] == b'-',
            "{id}"
        );
        let mut qt = Vec::new();
        push_qt(&mut qt, 3_723 * US_PER_SEC);
        assert_eq!(qt, b" QT=1h2m3s");
    }
}
