//! Planning a message's whole life at arrival: submission, every retry round
//! with Postfix's backoff, and the end (removed, or expired past the queue
//! lifetime). Planning up front is what makes the line budget exact: the
//! generator knows how many lines every in-flight message still owes.

use std::collections::VecDeque;

use crate::behaviour::{Behaviour, Session};
use crate::fleet::{HOSTS, INSTANCES, is_v6};
use crate::message::{Agent, Attempt, AttemptResult, Msg, Rcpt, Step, StepKind};
use crate::pids::{Pids, Service};
use crate::providers::{DOMAINS, Domain, Kind, Mx, SENDERS};
use crate::qid::QidGen;
use crate::replies::{GMAIL_RCPT_RATE_421, GREYLISTED, Stage};
use crate::rng::{Rng, cumulative};
use crate::stamp::US_PER_SEC;

const MS: u64 = 1000;

/// Postfix `minimal_backoff_time` and `maximal_backoff_time`.
const MIN_BACKOFF_SECS: u64 = 300;
const MAX_BACKOFF_SECS: u64 = 4000;

/// Per-recipient facts decided once, at arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trait {
    Normal,
    NoUser,
    Full,
    /// Temporarily over quota: deferred until it clears (or the message expires).
    Quota,
}

#[derive(Debug)]
pub(crate) struct Planner {
    rng: Rng,
    behaviour: Behaviour,
    pub(crate) pids: Pids,
    pub(crate) qids: Vec<QidGen>,
    domain_weights: Vec<u32>,
    sender_weights: Vec<u32>,
    lifetime_us: i64,
}

/// The state of one message while its plan is built.
struct Draft {
    instance: usize,
    steps: Vec<Step>,
    rcpts: Vec<Rcpt>,
    traits: Vec<Trait>,
    greylisted: Vec<bool>,
}

impl Draft {
    fn push(&mut self, t: i64, pid: u32, kind: StepKind) {
        self.steps.push(Step { t, pid, kind });
    }
}

impl Planner {
    pub(crate) fn new(seed: u64, lifetime_secs: i64, pid_rng: &mut Rng) -> Planner {
        Planner {
            rng: Rng::new(seed, 2),
            behaviour: Behaviour::new(seed),
            pids: Pids::new(pid_rng),
            qids: HOSTS
                .iter()
                .enumerate()
                .map(|(i, h)| QidGen::new(h.qid, seed, i))
                .collect(),
            domain_weights: cumulative(DOMAINS.iter().map(|d| d.weight)),
            sender_weights: cumulative(SENDERS.iter().map(|s| s.weight)),
            lifetime_us: lifetime_secs.saturating_mul(US_PER_SEC),
        }
    }

    fn us(&mut self, lo: u64, hi: u64) -> i64 {
        self.rng.range(lo, hi) as i64
    }

    pub(crate) fn plan(&mut self, t0: i64) -> Msg {
        let sender_idx = self.rng.weighted(&self.sender_weights);
        let sender = &SENDERS[sender_idx];
        let instance = *self.rng.pick(sender.instances);
        let host = INSTANCES[instance].host;
        let qid = self.qids[host].next(t0);
        let nrcpt = match self.rng.below(100) {
            0..=84 => 1,
            85..=95 => 2,
            _ => 3,
        };
        let mut d = Draft {
            instance,
            steps: Vec::with_capacity(8 + 3 * nrcpt),
            rcpts: Vec::with_capacity(nrcpt),
            traits: Vec::with_capacity(nrcpt),
            greylisted: vec![false; nrcpt],
        };
        for _ in 0..nrcpt {
            let domain = self.rng.weighted(&self.domain_weights);
            let local = self.rng.range(1, 999_999) as u32;
            let orig_to = self
                .rng
                .chance(0.03)
                .then(|| self.rng.range(1, 99_999) as u32);
            d.rcpts.push(Rcpt {
                local,
                domain,
                orig_to,
                done: false,
                last_mx: None,
            });
            let roll = self.rng.below(1000);
            d.traits.push(match roll {
                0..=17 => Trait::NoUser,
                18..=20 => Trait::Full,
                21..=24 => Trait::Quota,
                _ => Trait::Normal,
            });
        }
        let size = self.rng.range(sender.size.0, sender.size.1);
        let msgid = self.msgid(t0, sender.domain);

        // Submission.
        let mut t = t0;
        let smtpd_pid = if sender.client.is_some() {
            let pid = self.pids.take(instance, Service::Smtpd, &mut self.rng);
            d.push(t, pid, StepKind::SmtpdConnect);
            t += self.us(3 * MS, 60 * MS);
            d.push(t, pid, StepKind::SmtpdClient);
            Some(pid)
        } else {
            d.push(t, self.pids.pickup(instance), StepKind::Pickup);
            None
        };
        t += self.us(MS, 25 * MS);
        let cleanup = self.pids.take(instance, Service::Cleanup, &mut self.rng);
        d.push(t, cleanup, StepKind::Cleanup);
        t += self.us(2 * MS, 150 * MS);
        let qmgr = self.pids.qmgr(instance);
        d.push(t, qmgr, StepKind::QmgrActive { nrcpt });
        if let Some(pid) = smtpd_pid {
            let dt = self.us(MS, 40 * MS);
            d.push(t + dt, pid, StepKind::SmtpdDisconnect);
        }

        // Delivery rounds.
        let mut round_t = t;
        let mut round = 0u32;
        let mut expired = false;
        let mut end;
        loop {
            end = round_t;
            let pending: Vec<usize> = (0..nrcpt).filter(|&i| !d.rcpts[i].done).collect();
            let mut handled = vec![false; nrcpt];
            for &i in &pending {
                if handled[i] {
                    continue;
                }
                // One session per destination domain, as Postfix groups them.
                let dom = d.rcpts[i].domain;
                let group: Vec<usize> = pending
                    .iter()
                    .copied()
                    .filter(|&j| d.rcpts[j].domain == dom)
                    .collect();
                for &j in &group {
                    handled[j] = true;
                }
                end = end.max(self.session(&mut d, dom, &group, round_t));
            }
            let left = d.rcpts.iter().filter(|r| !r.done).count();
            if left == 0 {
                break;
            }
            let base = (MIN_BACKOFF_SECS << round.min(8)).min(MAX_BACKOFF_SECS) * US_PER_SEC as u64;
            // Queue-run granularity and scheduling noise.
            let backoff = base + self.rng.below(base / 5) + self.rng.below(30 * US_PER_SEC as u64);
            let next = end + backoff as i64;
            if next - t0 >= self.lifetime_us {
                d.push(next, qmgr, StepKind::Expired);
                end = next;
                expired = true;
                break;
            }
            round += 1;
            round_t = next;
            d.push(round_t, qmgr, StepKind::QmgrActive { nrcpt: left });
        }
        if expired || d.steps.iter().any(is_bounce) {
            end += self.us(2 * MS, 60 * MS);
            let pid = self.pids.take(instance, Service::Bounce, &mut self.rng);
            let qid2 = self.qids[host].next(end);
            d.push(end, pid, StepKind::Ndr { qid2 });
        }
        end += self.us(MS, 30 * MS);
        d.push(end, qmgr, StepKind::Removed);

        d.steps.sort_by_key(|s| s.t);
        Msg {
            instance,
            qid,
            t0,
            sender: sender_idx,
            size,
            msgid,
            rcpts: d.rcpts,
            steps: VecDeque::from(d.steps),
        }
    }

    fn msgid(&mut self, t0: i64, domain: &str) -> Vec<u8> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut v = Vec::with_capacity(48);
        v.push(b'<');
        crate::out::push_u64(&mut v, (t0 / US_PER_SEC).max(0) as u64);
        v.push(b'.');
        for _ in 0..16 {
            v.push(HEX[self.rng.index(16)]);
        }
        v.push(b'@');
        v.extend_from_slice(domain.as_bytes());
        v.push(b'>');
        v
    }

    fn ip(&mut self, instance: usize, mx: &'static Mx) -> &'static str {
        if !mx.v6.is_empty() && (is_v6(instance) || self.rng.chance(0.25)) {
            *self.rng.pick(mx.v6)
        } else {
            *self.rng.pick(mx.v4)
        }
    }

    fn pick_mx(&mut self, dom: &'static Domain) -> usize {
        if dom.kind == Kind::Yahoo || dom.mxs.len() == 1 || self.rng.chance(0.85) {
            if dom.kind == Kind::Yahoo {
                self.rng.index(dom.mxs.len())
            } else {
                0
            }
        } else {
            1 + self.rng.index(dom.mxs.len() - 1)
        }
    }

    /// Plans one delivery session for the recipients in `group` (all of one
    /// domain); returns the time of its last line.
    fn session(&mut self, d: &mut Draft, dom_idx: usize, group: &[usize], round_t: i64) -> i64 {
        let dom = &DOMAINS[dom_idx];
        let inst = d.instance;
        let b = self.us(5 * MS, 400 * MS);
        let start = round_t + b;
        let outcome = self
            .behaviour
            .session(dom, dom_idx, inst, start, &mut self.rng);
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
                    d.push(start + c, pid, StepKind::HostInfo { rcpt: group[0], mx, ip, reply });
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
                            StepKind::HostInfo { rcpt: group[0], mx, ip, reply },
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
            && results
                .iter()
                .all(|(_, r)| !matches!(r, AttemptResult::ConnFail(_)))
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
            rc.last_mx = Some(mx);
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

fn is_bounce(s: &Step) -> bool {
    matches!(
        s.kind,
        StepKind::Attempt(Attempt {
            result: AttemptResult::Bounced(_),
            ..
        })
    )
}
