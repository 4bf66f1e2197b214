//! Process ids: per instance, long-lived daemons (qmgr, pickup, anvil,
//! scache) keep theirs; delivery agents and smtpd come from small pools whose
//! members are now and then replaced by a fresh process (Postfix's
//! `max_use`/`max_idle`), taking the next pid of their host.

use crate::fleet::{HOSTS, INSTANCES};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Smtp,
    Smtpd,
    Cleanup,
    Error,
    Bounce,
}

const POOLS: [(Service, usize); 5] = [
    (Service::Smtp, 10),
    (Service::Smtpd, 3),
    (Service::Cleanup, 2),
    (Service::Error, 2),
    (Service::Bounce, 2),
];

#[derive(Debug)]
struct InstancePids {
    qmgr: u32,
    pickup: u32,
    anvil: u32,
    scache: u32,
    pools: Vec<Vec<u32>>,
}

#[derive(Debug)]
pub(crate) struct Pids {
    next: Vec<u32>,
    instances: Vec<InstancePids>,
}

/// Linux's default pid_max.
const PID_MAX: u32 = 4_194_304;

impl Pids {
    pub(crate) fn new(rng: &mut Rng) -> Pids {
        let mut next: Vec<u32> = HOSTS.iter().map(|_| rng.range(1500, 40_000) as u32).collect();
        let mut fresh = |host: usize, rng: &mut Rng| {
            let p = next[host];
            next[host] = advance(p, rng);
            p
        };
        let instances = INSTANCES
            .iter()
            .map(|inst| InstancePids {
                qmgr: fresh(inst.host, rng),
                pickup: fresh(inst.host, rng),
                anvil: fresh(inst.host, rng),
                scache: fresh(inst.host, rng),
                pools: POOLS
                    .iter()
                    .map(|&(_, n)| (0..n).map(|_| fresh(inst.host, rng)).collect())
                    .collect(),
            })
            .collect();
        Pids { next, instances }
    }

    pub(crate) fn qmgr(&self, inst: usize) -> u32 {
        self.instances[inst].qmgr
    }

    pub(crate) fn pickup(&self, inst: usize) -> u32 {
        self.instances[inst].pickup
    }

    pub(crate) fn anvil(&self, inst: usize) -> u32 {
        self.instances[inst].anvil
    }

    pub(crate) fn scache(&self, inst: usize) -> u32 {
        self.instances[inst].scache
    }

    /// A process of a pooled service; about one use in 150 replaces it first.
    pub(crate) fn take(&mut self, inst: usize, service: Service, rng: &mut Rng) -> u32 {
        let pool_idx = POOLS.iter().position(|&(s, _)| s == service).unwrap_or(0);
        let host = INSTANCES[inst].host;
        let pool_len = self.instances[inst].pools[pool_idx].len();
        let i = rng.index(pool_len);
        if rng.below(150) == 0 {
            let p = self.next[host];
            self.next[host] = advance(p, rng);
            self.instances[inst].pools[pool_idx][i] = p;
        }
        self.instances[inst].pools[pool_idx][i]
    }

    /// A short-lived process outside Postfix (cron jobs and the like).
    pub(crate) fn transient(&mut self, host: usize, rng: &mut Rng) -> u32 {
        let p = self.next[host];
        self.next[host] = advance(p, rng);
        p
    }
}

/// Other processes on the box take pids too, so steps are irregular.
fn advance(p: u32, rng: &mut Rng) -> u32 {
    let n = p + rng.range(1, 40) as u32;
    if n >= PID_MAX { 300 + n % 1000 } else { n }
}
