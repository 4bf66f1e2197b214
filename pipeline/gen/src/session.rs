//! One delivery session: an smtp (or error) agent run for the recipients of
//! one domain in one retry round. Turns the receiver's mood (behaviour.rs)
//! into the session's lines (TLS, earlier MXes given up on, one status line
//! per recipient) and updates each recipient's fate.

use crate::behaviour::Session;
use crate::fleet::is_v6;
use crate::message::{Agent, Attempt, AttemptResult, StepKind};
use crate::pids::Service;
use crate::plan::{Draft, MS, Planner, Trait};
use crate::providers::{DOMAINS, Domain, Kind, Mx};
use crate::replies::{GMAIL_RCPT_RATE_421, GREYLISTED, Stage};

impl Planner {
    fn ip(&mut self, instance: usize, mx: &'static Mx) -> &'static str {
        if !mx.v6.is_empty() && (is_v6(instance) || self.rng.chance(0.25)) {
            mx.v6[self.rng.index(mx.v6.len())]
        } else {
            mx.v4[self.rng.index(mx.v4.len())]
        }
    }

    /// Yahoo's MXes share one preference, so sessions spread evenly; elsewhere
    /// the primary takes most of them.
    fn pick_mx(&mut self, dom: &'static Domain) -> usize {
        let n = dom.mxs.len();
        if dom.kind == Kind::Yahoo {
            self.rng.index(n)
        } else if n == 1 || self.rng.chance(0.85) {
            0
        } else {
            1 + self.rng.index(n - 1)
        }
    }

    /// Plans one delivery session for the recipients in `group` (all of one
    /// domain); returns the time of its last line.
    pub(crate) fn session(&mut self, d: &mut Draft, dom_idx: usize, group: &[usize], round_t: i64) -> i64 {
        let dom = &DOMAINS[dom_idx];
        let inst = d.instance;
        let b = self.us(5 * MS, 400 * MS);
        let start = round_t + b;
        let outcome = self.behaviour.session(dom, dom_idx, inst, start, &mut self.rng);
        let mut results: Vec<(usize, AttemptResult)> = Vec::with_capacity(group.len());
        let (mx, ip, c, xfer, agent, pid) = match outcome {
            Session::Down(fail) => {
                if self.rng.chance(0.3) {
                    // smtp tries every MX in turn; only the last is in the status.
                    let pid = self.pids.take(inst, Service::Smtp, &mut self.rng);
                    let (lo, hi) = fail.cost_us();
                    let mut c = 0;
                    let last_k = dom.mxs.len() - 1;
                    for mx in &dom.mxs[..last_k] {
                        let ip = self.ip(inst, mx);
                        c += self.us(lo, hi);
                        d.push(start + c, pid, StepKind::ConnectInfo { mx, ip, fail });
                    }
                    c += self.us(lo, hi);
                    let last = (&dom.mxs[last_k], self.ip(inst, &dom.mxs[last_k]));
                    for &r in group {
                        results.push((r, AttemptResult::ConnFail(fail)));
                    }
                    (last.0, last.1, c, 0, Agent::Smtp, pid)
                } else {
                    // qmgr already marked the destination dead: the error agent
                    // answers at once, quoting the failure that did it.
                    let pid = self.pids.take(inst, Service::Error, &mut self.rng);
                    let mx = &dom.mxs[dom.mxs.len() - 1];
                    let ip = self.ip(inst, mx);
                    for &r in group {
                        results.push((r, AttemptResult::Suspended(fail)));
                    }
                    (mx, ip, 0, 0, Agent::Error, pid)
                }
            }
            Session::Refused(reply) => {
                let pid = self.pids.take(inst, Service::Smtp, &mut self.rng);
                let mut c = self.us(20 * MS, 400 * MS);
                let mut k = self.pick_mx(dom);
                if dom.mxs.len() > 1 && self.rng.chance(0.4) {
                    let mx = &dom.mxs[k];
                    let ip = self.ip(inst, mx);
                    d.push(
                        start + c,
                        pid,
                        StepKind::HostInfo {
                            rcpt: group[0],
                            mx,
                            ip,
                            reply,
                        },
                    );
                    k = (k + 1) % dom.mxs.len();
                    c += self.us(20 * MS, 400 * MS);
                }
                let mx = &dom.mxs[k];
                let ip = self.ip(inst, mx);
                for &r in group {
                    results.push((r, AttemptResult::Deferred(reply)));
                }
                (mx, ip, c, 0, Agent::Smtp, pid)
            }
            Session::Lost => {
                let pid = self.pids.take(inst, Service::Smtp, &mut self.rng);
                let k = self.pick_mx(dom);
                let mx = &dom.mxs[k];
                let ip = self.ip(inst, mx);
                let c = self.us(20 * MS, 600 * MS);
                let xfer = self.us(10 * MS, 5000 * MS);
                for &r in group {
                    results.push((r, AttemptResult::Lost));
                }
                (mx, ip, c, xfer, Agent::Smtp, pid)
            }
            Session::Connected(session_reply) => {
                let pid = self.pids.take(inst, Service::Smtp, &mut self.rng);
                let mut k = self.pick_mx(dom);
                let mut c = self.us(30 * MS, 900 * MS);
                let mut xfer = self.us(40 * MS, 1500 * MS);
                if let Some(reply) = session_reply {
                    if dom.mxs.len() > 1 && self.rng.chance(0.3) {
                        let mx = &dom.mxs[k];
                        let ip = self.ip(inst, mx);
                        d.push(
                            start + c + xfer,
                            pid,
                            StepKind::HostInfo {
                                rcpt: group[0],
                                mx,
                                ip,
                                reply,
                            },
                        );
                        k = (k + 1) % dom.mxs.len();
                        c += xfer + self.us(30 * MS, 900 * MS);
                        xfer = self.us(40 * MS, 1500 * MS);
                    }
                    if reply.stage != Stage::Data {
                        xfer /= 4;
                    }
                    for &r in group {
                        results.push((r, AttemptResult::Deferred(reply)));
                    }
                } else {
                    for &r in group {
                        let res = self.recipient_outcome(d, dom, r);
                        results.push((r, res));
                    }
                }
                let mx = &dom.mxs[k];
                let ip = self.ip(inst, mx);
                (mx, ip, c, xfer, Agent::Smtp, pid)
            }
        };

        // TLS is negotiated on connections that got past the greeting; a
        // reused cached connection logs no handshake.
        let connected = agent == Agent::Smtp
            && results.iter().all(|(_, r)| !matches!(r, AttemptResult::ConnFail(_)))
            && !matches!(outcome, Session::Refused(_));
        let cached = connected
            && matches!(dom.kind, Kind::Google | Kind::Microsoft | Kind::Yahoo)
            && results.iter().all(|(_, r)| matches!(r, AttemptResult::Sent))
            && self.rng.chance(0.25);
        let conn_use = if cached { self.rng.range(2, 12) as u8 } else { 0 };
        if connected && !cached && self.rng.chance(0.8) {
            d.push(start + c, pid, StepKind::Tls { mx, ip, kind: dom.kind });
        }

        let mut t = start + c + xfer;
        for (r, result) in results {
            let rc = &mut d.rcpts[r];
            if matches!(result, AttemptResult::Sent | AttemptResult::Bounced(_)) {
                rc.done = true;
            }
            d.push(
                t,
                pid,
                StepKind::Attempt(Attempt {
                    rcpt: r,
                    agent,
                    mx,
                    ip,
                    result,
                    b_us: b as u64,
                    c_us: c as u64,
                    d_us: xfer as u64,
                    conn_use,
                }),
            );
            t += self.us(0, 3 * MS);
        }
        t
    }

    /// What a connected receiver says about one recipient.
    fn recipient_outcome(&mut self, d: &mut Draft, dom: &Domain, r: usize) -> AttemptResult {
        let texts = dom.kind.texts();
        match d.traits[r] {
            Trait::NoUser => return AttemptResult::Bounced(texts.no_user),
            Trait::Full => return AttemptResult::Bounced(texts.full),
            Trait::Quota => {
                if self.rng.chance(0.15) {
                    d.traits[r] = Trait::Normal;
                } else {
                    return AttemptResult::Deferred(texts.quota);
                }
            }
            Trait::Normal => {}
        }
        if dom.greylist && !d.greylisted[r] {
            d.greylisted[r] = true;
            return AttemptResult::Deferred(&GREYLISTED);
        }
        if dom.kind == Kind::Google && self.rng.chance(0.003) {
            return AttemptResult::Deferred(&GMAIL_RCPT_RATE_421);
        }
        if let Some(content) = texts.content
            && self.rng.chance(0.002)
        {
            return AttemptResult::Bounced(content);
        }
        AttemptResult::Sent
    }
}
