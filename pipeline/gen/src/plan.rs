//! Planning a message's whole life at arrival: submission, every retry round
//! with Postfix's backoff, and the end (removed, or expired past the queue
//! lifetime). Planning up front is what makes the line budget exact: the
//! generator knows how many lines every in-flight message still owes.

use std::collections::VecDeque;

use crate::behaviour::Behaviour;
use crate::config::MAX_QUEUE_LIFETIME_SECS;
use crate::fleet::{HOSTS, INSTANCES};
use crate::message::{Attempt, AttemptResult, Msg, Rcpt, Step, StepKind};
use crate::pids::{Pids, Service};
use crate::providers::{DOMAINS, SENDERS};
use crate::qid::QidGen;
use crate::rng::{Rng, cumulative};
use crate::stamp::US_PER_SEC;

pub(crate) const MS: u64 = 1000;

/// Postfix `minimal_backoff_time` and `maximal_backoff_time`.
const MIN_BACKOFF_SECS: u64 = 300;
const MAX_BACKOFF_SECS: u64 = 4000;

/// Per-recipient facts decided once, at arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trait {
    Normal,
    NoUser,
    Full,
    /// Temporarily over quota: deferred until it clears (or the message expires).
    Quota,
}

#[derive(Debug)]
pub(crate) struct Planner {
    pub(crate) rng: Rng,
    pub(crate) behaviour: Behaviour,
    pub(crate) pids: Pids,
    pub(crate) qids: Vec<QidGen>,
    domain_weights: Vec<u32>,
    sender_weights: Vec<u32>,
    lifetime_us: i64,
}

/// The state of one message while its plan is built.
pub(crate) struct Draft {
    pub(crate) instance: usize,
    pub(crate) steps: Vec<Step>,
    pub(crate) rcpts: Vec<Rcpt>,
    pub(crate) traits: Vec<Trait>,
    /// Whether the recipient already met its greylist.
    pub(crate) greylisted: Vec<bool>,
}

impl Draft {
    pub(crate) fn push(&mut self, t: i64, pid: u32, kind: StepKind) {
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
            lifetime_us: lifetime_secs.clamp(0, MAX_QUEUE_LIFETIME_SECS) * US_PER_SEC,
        }
    }

    pub(crate) fn us(&mut self, lo: u64, hi: u64) -> i64 {
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
            let orig_to = self.rng.chance(0.03).then(|| self.rng.range(1, 99_999) as u32);
            d.rcpts.push(Rcpt {
                local,
                domain,
                orig_to,
                done: false,
                last_written: None,
                written_attempts: 0,
                last_ip: None,
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
                let group: Vec<usize> = pending.iter().copied().filter(|&j| d.rcpts[j].domain == dom).collect();
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
