//! Rendering planned steps as Postfix syslog lines.
//!
//! Every line is `STAMP HOST PROGRAM[PID]: TEXT\n`, where PROGRAM is
//! `INSTANCE/SERVICE` and STAMP follows the host's style.

use crate::fleet::{HOSTS, INSTANCES, StampStyle};
use crate::message::{Agent, AttemptResult, Msg, Step, StepKind};
use crate::out::{push_delay, push_u64};
use crate::providers::{DOMAINS, Kind, Mx, SENDERS};
use crate::replies::{Reply, Stage, push_rcpt, render};
use crate::rng::Rng;
use crate::stamp::Stamper;

#[derive(Debug)]
pub(crate) struct Writer {
    stamper: Stamper,
    /// Receiver-side ids inside reply texts; drawn at write time since they
    /// change nothing but bytes.
    rng: Rng,
}

impl Writer {
    pub(crate) fn new(seed: u64) -> Writer {
        Writer {
            stamper: Stamper::new(),
            rng: Rng::new(seed, 3),
        }
    }

    /// Receiver-side ids in reply texts (the Exim rendering shares them).
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// `Nov  1 08:14:01`, for times quoted inside a text.
    pub(crate) fn bsd_time(&mut self, out: &mut Vec<u8>, t: i64) {
        self.stamper.bsd(out, t);
    }

    /// `STAMP HOST ` for a host.
    pub(crate) fn stamp_host(&mut self, out: &mut Vec<u8>, t: i64, host: usize) {
        let h = &HOSTS[host];
        match h.stamp {
            StampStyle::Bsd => self.stamper.bsd(out, t),
            StampStyle::Rfc3339 => self.stamper.rfc3339(out, t),
        }
        out.push(b' ');
        out.extend_from_slice(h.name.as_bytes());
        out.push(b' ');
    }

    /// `STAMP HOST INSTANCE/SERVICE[PID]: `
    pub(crate) fn prefix(&mut self, out: &mut Vec<u8>, t: i64, instance: usize, service: &str, pid: u32) {
        let inst = &INSTANCES[instance];
        self.stamp_host(out, t, inst.host);
        out.extend_from_slice(inst.name.as_bytes());
        out.push(b'/');
        out.extend_from_slice(service.as_bytes());
        out.push(b'[');
        push_u64(out, u64::from(pid));
        out.extend_from_slice(b"]: ");
    }

    /// Appends the line for `step` of `msg`.
    pub(crate) fn step(&mut self, out: &mut Vec<u8>, msg: &Msg, step: &Step) {
        let service = match &step.kind {
            StepKind::Pickup => "pickup",
            StepKind::SmtpdConnect | StepKind::SmtpdClient | StepKind::SmtpdDisconnect => "smtpd",
            StepKind::Cleanup => "cleanup",
            StepKind::QmgrActive { .. } | StepKind::Expired | StepKind::Removed => "qmgr",
            StepKind::Tls { .. } | StepKind::ConnectInfo { .. } | StepKind::HostInfo { .. } => "smtp",
            StepKind::Attempt(a) => match a.agent {
                Agent::Smtp => "smtp",
                Agent::Error => "error",
            },
            StepKind::Ndr { .. } => "bounce",
        };
        self.prefix(out, step.t, msg.instance, service, step.pid);
        let sender = &SENDERS[msg.sender];
        let qid = msg.qid.as_bytes();
        let client = sender.client.unwrap_or(("localhost", "127.0.0.1"));
        match &step.kind {
            StepKind::Pickup => {
                out.extend_from_slice(qid);
                out.extend_from_slice(if sender.address.starts_with("monitoring@") {
                    b": uid=0 from=<"
                } else {
                    b": uid=1001 from=<"
                });
                out.extend_from_slice(sender.address.as_bytes());
                out.push(b'>');
            }
            StepKind::SmtpdConnect => {
                out.extend_from_slice(b"connect from ");
                host_ip(out, client.0, client.1);
            }
            StepKind::SmtpdClient => {
                out.extend_from_slice(qid);
                out.extend_from_slice(b": client=");
                host_ip(out, client.0, client.1);
            }
            StepKind::SmtpdDisconnect => {
                out.extend_from_slice(b"disconnect from ");
                host_ip(out, client.0, client.1);
                out.extend_from_slice(b" ehlo=1 mail=1 rcpt=");
                push_u64(out, msg.rcpts.len() as u64);
                out.extend_from_slice(b" data=1 quit=1 commands=");
                push_u64(out, msg.rcpts.len() as u64 + 4);
            }
            StepKind::Cleanup => {
                out.extend_from_slice(qid);
                out.extend_from_slice(b": message-id=");
                out.extend_from_slice(&msg.msgid);
            }
            StepKind::QmgrActive { nrcpt } => {
                out.extend_from_slice(qid);
                out.extend_from_slice(b": from=<");
                out.extend_from_slice(sender.address.as_bytes());
                out.extend_from_slice(b">, size=");
                push_u64(out, msg.size);
                out.extend_from_slice(b", nrcpt=");
                push_u64(out, *nrcpt as u64);
                out.extend_from_slice(b" (queue active)");
            }
            StepKind::Tls { mx, ip, kind } => {
                let (trust, suite) = match kind {
                    Kind::Google | Kind::Microsoft => ("Verified", TLS13),
                    Kind::Company | Kind::Dead => ("Untrusted", TLS12),
                    Kind::Yahoo | Kind::Apple | Kind::Proofpoint | Kind::Mimecast => ("Trusted", TLS13),
                    _ => ("Trusted", TLS12),
                };
                out.extend_from_slice(trust.as_bytes());
                out.extend_from_slice(b" TLS connection established to ");
                host_ip(out, mx.host, ip);
                out.extend_from_slice(b":25: ");
                out.extend_from_slice(suite.as_bytes());
            }
            StepKind::ConnectInfo { mx, ip, fail } => {
                out.extend_from_slice(b"connect to ");
                host_ip(out, mx.host, ip);
                out.extend_from_slice(b":25: ");
                out.extend_from_slice(fail.text().as_bytes());
            }
            StepKind::HostInfo { rcpt, mx, ip, reply } => {
                out.extend_from_slice(qid);
                out.extend_from_slice(b": ");
                let r = &msg.rcpts[*rcpt];
                self.host_said(out, mx, ip, reply, msg, r.local, DOMAINS[r.domain].name, step.t);
            }
            StepKind::Attempt(a) => {
                let r = &msg.rcpts[a.rcpt];
                let domain = DOMAINS[r.domain].name;
                out.extend_from_slice(qid);
                out.extend_from_slice(b": to=<");
                push_rcpt(out, r.local, domain);
                if let Some(o) = r.orig_to {
                    out.extend_from_slice(b">, orig_to=<fwd");
                    push_u64(out, u64::from(o));
                    out.extend_from_slice(b"@lists.");
                    out.extend_from_slice(sender.domain.as_bytes());
                }
                out.extend_from_slice(b">, relay=");
                let relay_none = matches!(a.result, AttemptResult::ConnFail(_) | AttemptResult::Suspended(_));
                if relay_none {
                    out.extend_from_slice(b"none");
                } else {
                    host_ip(out, a.mx.host, a.ip);
                    out.extend_from_slice(b":25");
                }
                if a.conn_use > 0 {
                    out.extend_from_slice(b", conn_use=");
                    push_u64(out, u64::from(a.conn_use));
                }
                let total = step.t - msg.t0;
                let (b, c, d) = (a.b_us as i64, a.c_us as i64, a.d_us as i64);
                out.extend_from_slice(b", delay=");
                push_delay(out, total);
                out.extend_from_slice(b", delays=");
                push_delay(out, total - b - c - d);
                out.push(b'/');
                push_delay(out, b);
                out.push(b'/');
                push_delay(out, c);
                out.push(b'/');
                push_delay(out, d);
                out.extend_from_slice(b", dsn=");
                let dsn = match a.result {
                    AttemptResult::Sent => {
                        if DOMAINS[r.domain].kind == Kind::Microsoft {
                            "2.6.0"
                        } else {
                            "2.0.0"
                        }
                    }
                    AttemptResult::Deferred(rep) | AttemptResult::Bounced(rep) => rep.dsn,
                    AttemptResult::ConnFail(_) | AttemptResult::Suspended(_) => "4.4.1",
                    AttemptResult::Lost => "4.4.2",
                };
                out.extend_from_slice(dsn.as_bytes());
                match a.result {
                    AttemptResult::Sent => {
                        out.extend_from_slice(b", status=sent (");
                        let vars = msg.vars(r.local, domain, step.t);
                        render(DOMAINS[r.domain].kind.texts().sent, &vars, &mut self.rng, out);
                    }
                    AttemptResult::Deferred(rep) => {
                        out.extend_from_slice(b", status=deferred (");
                        self.host_said(out, a.mx, a.ip, rep, msg, r.local, domain, step.t);
                    }
                    AttemptResult::Bounced(rep) => {
                        out.extend_from_slice(b", status=bounced (");
                        self.host_said(out, a.mx, a.ip, rep, msg, r.local, domain, step.t);
                    }
                    AttemptResult::ConnFail(f) => {
                        out.extend_from_slice(b", status=deferred (connect to ");
                        host_ip(out, a.mx.host, a.ip);
                        out.extend_from_slice(b":25: ");
                        out.extend_from_slice(f.text().as_bytes());
                    }
                    AttemptResult::Suspended(f) => {
                        out.extend_from_slice(b", status=deferred (delivery temporarily suspended: connect to ");
                        host_ip(out, a.mx.host, a.ip);
                        out.extend_from_slice(b":25: ");
                        out.extend_from_slice(f.text().as_bytes());
                    }
                    AttemptResult::Lost => {
                        out.extend_from_slice(b", status=deferred (lost connection with ");
                        host_ip(out, a.mx.host, a.ip);
                        out.extend_from_slice(match (a.d_us / 1000) % 3 {
                            0 => b" while receiving the initial server greeting".as_slice(),
                            1 => b" while sending RCPT TO",
                            _ => b" while sending end of data -- message may be sent more than once",
                        });
                    }
                }
                out.push(b')');
            }
            StepKind::Expired => {
                out.extend_from_slice(qid);
                out.extend_from_slice(b": from=<");
                out.extend_from_slice(sender.address.as_bytes());
                out.extend_from_slice(b">, status=expired, returned to sender");
            }
            StepKind::Ndr { qid2 } => {
                out.extend_from_slice(qid);
                out.extend_from_slice(b": sender non-delivery notification: ");
                out.extend_from_slice(qid2.as_bytes());
            }
            StepKind::Removed => {
                out.extend_from_slice(qid);
                out.extend_from_slice(b": removed");
            }
        }
        out.push(b'\n');
    }

    /// `host H[IP] said: REPLY (in reply to X command)` or
    /// `host H[IP] refused to talk to me: REPLY`.
    #[allow(clippy::too_many_arguments)]
    fn host_said(
        &mut self,
        out: &mut Vec<u8>,
        mx: &Mx,
        ip: &str,
        reply: &Reply,
        msg: &Msg,
        local: u32,
        domain: &str,
        t: i64,
    ) {
        out.extend_from_slice(b"host ");
        host_ip(out, mx.host, ip);
        out.extend_from_slice(if reply.stage == Stage::Greeting {
            b" refused to talk to me: ".as_slice()
        } else {
            b" said: "
        });
        let vars = msg.vars(local, domain, t);
        render(reply.text, &vars, &mut self.rng, out);
        if let Some(suffix) = reply.stage.in_reply_to() {
            out.extend_from_slice(suffix.as_bytes());
        }
    }
}

const TLS13: &str = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256";
const TLS12: &str = "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)";

/// `host[ip]`
pub(crate) fn host_ip(out: &mut Vec<u8>, host: &str, ip: &str) {
    out.extend_from_slice(host.as_bytes());
    out.push(b'[');
    out.extend_from_slice(ip.as_bytes());
    out.push(b']');
}
