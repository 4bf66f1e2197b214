//! Per-(host, queue id) state that lines of one message share: sender, size,
//! Message-ID, and per recipient the attempt count and, while it is deferred, where
//! its last attempt went (an expiry is attributed there).
//!
//! Bounded with two generations: new queue ids go into `young`; when `young` reaches
//! half the limit, `old` is dropped (each entry in it counted as an eviction) and
//! `young` becomes `old`. An id touched while in `old` moves back to `young`. So a
//! message survives at least one full generation of new messages after its last line,
//! and the state never holds more than the limit, whatever the input.

use crate::stats::Stats;
use deferlog_event::Outcome;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;
use std::mem;

/// One generation: queue states by `host\0queue id`. Both generations hash with one
/// hasher, so a lookup hashes its key once whichever generation holds it.
type Table = HashTable<(Box<str>, QueueState)>;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct QueueState {
    pub sender_domain: Option<Box<str>>,
    pub size: Option<u64>,
    pub message_id: Option<Box<str>>,
    pub rcpts: Vec<RcptState>,
    /// Exim: the host (name, IP) of the message's last connection-level error line,
    /// where a following `==` without `H=` went.
    #[serde(default)]
    pub last_hop: Option<Hop>,
    /// Exim: when the message's `<=` line was logged, for the time in queue of lines
    /// without `QT=` (Exim logs it on deliveries, and only with `+queue_time`). It
    /// counts from the end of reception, where `QT=` counts from its start.
    #[serde(default)]
    pub arrived_us: Option<i64>,
}

/// A receiving host: name and IP, either possibly unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub host: Option<Box<str>>,
    pub ip: Option<Box<str>>,
    /// Exim: the reason of the first `==` that went there; the other addresses of that
    /// delivery repeat it.
    #[serde(default)]
    pub reason: Option<Box<str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RcptState {
    pub hash: u64,
    pub domain: Option<Box<str>>,
    pub attempts: u32,
    /// Where the last attempt went, while the recipient is deferred.
    pub pending: Option<LastAttempt>,
    /// Exim: delivered by a local transport (a mailbox on this host), so neither its
    /// deferrals nor its expiry are outbound ones.
    #[serde(default)]
    pub local: bool,
}

/// Where a deferred recipient's last attempt went: source IP, MX host and IP, and the
/// MX group. Kept until the recipient finishes, so one for every deferral in flight:
/// the four strings share one allocation rather than four. Checkpoints store them as
/// four fields ([`AttemptFields`]), written from borrowed slices of `text`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "AttemptFields<Box<str>>")]
pub struct LastAttempt {
    /// The four, one after another.
    text: Box<str>,
    /// Where the source IP, the MX host and the MX IP end in `text`; the group is the rest.
    ends: [u32; 3],
    /// Which of the first three are known (bit 0: the source IP), as an empty one may
    /// be a known empty value.
    known: u8,
}

impl LastAttempt {
    pub fn new(source_ip: Option<&str>, mx_host: Option<&str>, mx_ip: Option<&str>, mx_group: &str) -> Self {
        let parts = [source_ip, mx_host, mx_ip];
        let mut text = String::with_capacity(parts.iter().flatten().map(|p| p.len()).sum::<usize>() + mx_group.len());
        let (mut ends, mut known) = ([0u32; 3], 0u8);
        for (i, p) in parts.into_iter().enumerate() {
            if let Some(p) = p {
                text.push_str(p);
                known |= 1 << i;
            }
            // Values come from one record, itself bounded far below 4 GiB.
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        text.push_str(mx_group);
        LastAttempt {
            text: text.into_boxed_str(),
            ends,
            known,
        }
    }

    fn part(&self, i: usize) -> Option<&str> {
        if self.known & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    pub fn source_ip(&self) -> Option<&str> {
        self.part(0)
    }
    pub fn mx_host(&self) -> Option<&str> {
        self.part(1)
    }
    pub fn mx_ip(&self) -> Option<&str> {
        self.part(2)
    }
    /// Whether the attempt named the host or address it went to.
    pub fn has_receiver(&self) -> bool {
        self.mx_host().is_some() || self.mx_ip().is_some()
    }
    pub fn mx_group(&self) -> &str {
        self.text.get(self.ends[2] as usize..).unwrap_or_default()
    }
}

/// A [`LastAttempt`] as checkpoints store it.
#[derive(Serialize, Deserialize)]
struct AttemptFields<S> {
    source_ip: Option<S>,
    mx_host: Option<S>,
    mx_ip: Option<S>,
    mx_group: S,
}

/// Written from `text` in place: a checkpoint stores every pending recipient's last
/// attempt, and a copy of each would be four allocations apiece.
impl Serialize for LastAttempt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AttemptFields {
            source_ip: self.source_ip(),
            mx_host: self.mx_host(),
            mx_ip: self.mx_ip(),
            mx_group: self.mx_group(),
        }
        .serialize(s)
    }
}

impl From<AttemptFields<Box<str>>> for LastAttempt {
    fn from(f: AttemptFields<Box<str>>) -> Self {
        LastAttempt::new(
            f.source_ip.as_deref(),
            f.mx_host.as_deref(),
            f.mx_ip.as_deref(),
            &f.mx_group,
        )
    }
}

/// Recipients tracked per queue id. A list message past this is still counted; its
/// further recipients just get no attempt number and no expiry attribution.
pub const MAX_RCPTS_PER_QUEUE_ID: usize = 1024;

impl QueueState {
    /// Seconds from the message's arrival to `time_us`, if its arrival was seen
    /// (`None` for a time before it: one clock or the other is off).
    pub fn queued_for(&self, time_us: i64) -> Option<f64> {
        let since = time_us.checked_sub(self.arrived_us?)?;
        (since >= 0).then(|| since as f64 / 1e6)
    }

    /// Counts an attempt for a recipient and, while it is deferred, where the attempt
    /// went (`deferred_to`: an expiry is attributed there). A deferral that names no
    /// receiver (the MTA's own hold, `retry time not reached`; a DNS failure) keeps the
    /// receiver tried before, if any: that is where the recipient was last refused.
    /// Returns its attempt number; `None` once the queue id holds the most recipients
    /// tracked.
    pub fn attempt(&mut self, hash: u64, domain: Option<&str>, deferred_to: Option<LastAttempt>) -> Option<u32> {
        let r = self.rcpt_mut(hash, domain)?;
        r.attempts += 1;
        r.pending = match (deferred_to, r.pending.take()) {
            (Some(now), Some(before)) if !now.has_receiver() && before.has_receiver() => Some(before),
            (now, _) => now,
        };
        Some(r.attempts)
    }

    /// The state of one recipient; `None` once the queue id holds the maximum.
    pub fn rcpt_mut(&mut self, hash: u64, domain: Option<&str>) -> Option<&mut RcptState> {
        let i = match self.rcpts.iter().position(|r| r.hash == hash) {
            Some(i) => i,
            None if self.rcpts.len() >= MAX_RCPTS_PER_QUEUE_ID => return None,
            None => {
                self.rcpts.push(RcptState {
                    hash,
                    domain: domain.map(Into::into),
                    attempts: 0,
                    pending: None,
                    local: false,
                });
                self.rcpts.len() - 1
            }
        };
        Some(&mut self.rcpts[i])
    }
}

#[derive(Debug)]
pub struct Correlator {
    young: Table,
    old: Table,
    hasher: RandomState,
    generation: usize,
    evictions: u64,
    key: String,
}

impl Correlator {
    /// `limit` is the most queue ids held at once (at least 2).
    pub fn new(limit: usize) -> Self {
        Correlator {
            young: Table::default(),
            old: Table::default(),
            hasher: RandomState::default(),
            generation: (limit / 2).max(1),
            evictions: 0,
            key: String::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Sets the key to look up and returns its hash.
    fn set_key(&mut self, host: &str, qid: &str) -> u64 {
        self.key.clear();
        self.key.push_str(host);
        self.key.push('\0');
        self.key.push_str(qid);
        self.hasher.hash_one(self.key.as_str())
    }

    /// The state of a queue id, promoted to the young generation if found in the old.
    pub fn get(&mut self, host: &str, qid: &str) -> Option<&mut QueueState> {
        let h = self.set_key(host, qid);
        if self.in_young(h) {
            return self.young_mut(h);
        }
        let entry = self.take_old(h)?;
        Some(self.put_young(h, entry))
    }

    pub fn get_or_insert(&mut self, host: &str, qid: &str) -> &mut QueueState {
        let h = self.set_key(host, qid);
        if self.in_young(h) {
            return self.young_mut(h).expect("present: checked just above");
        }
        let entry = self
            .take_old(h)
            .unwrap_or_else(|| (self.key.as_str().into(), QueueState::default()));
        self.put_young(h, entry)
    }

    pub fn remove(&mut self, host: &str, qid: &str) -> Option<QueueState> {
        let h = self.set_key(host, qid);
        let key = self.key.as_str();
        [&mut self.young, &mut self.old]
            .into_iter()
            .find_map(|t| t.find_entry(h, |e| *e.0 == *key).ok().map(|found| found.remove().0.1))
    }

    // `in_young` then `young_mut`, not one `find_mut`: returning the found entry from
    // one branch and inserting in the other does not borrow-check. The hash is taken
    // once (`set_key`); the second probe is a compare.
    fn in_young(&self, h: u64) -> bool {
        let key = self.key.as_str();
        self.young.find(h, |e| *e.0 == *key).is_some()
    }

    fn young_mut(&mut self, h: u64) -> Option<&mut QueueState> {
        let key = self.key.as_str();
        self.young.find_mut(h, |e| *e.0 == *key).map(|e| &mut e.1)
    }

    fn take_old(&mut self, h: u64) -> Option<(Box<str>, QueueState)> {
        let key = self.key.as_str();
        let found = self.old.find_entry(h, |e| *e.0 == *key).ok()?;
        Some(found.remove().0)
    }

    /// Puts an entry (not in young) into young, making room first.
    fn put_young(&mut self, h: u64, entry: (Box<str>, QueueState)) -> &mut QueueState {
        self.make_room();
        let hasher = &self.hasher;
        &mut self
            .young
            .insert_unique(h, entry, |e| hasher.hash_one(&*e.0))
            .into_mut()
            .1
    }

    /// Everything needed to continue exactly where this state is, generations included.
    pub fn snapshot(&self) -> CorrelatorState {
        let entries = |t: &Table| t.iter().cloned().collect();
        CorrelatorState {
            young: entries(&self.young),
            old: entries(&self.old),
            evictions: self.evictions,
        }
    }

    /// Replaces this state with a snapshot (the limit stays this correlator's own).
    pub fn restore(&mut self, s: CorrelatorState) {
        self.young = self.table(s.young);
        self.old = self.table(s.old);
        self.evictions = s.evictions;
    }

    /// A generation from stored entries; a key stored twice keeps its last state.
    fn table(&self, entries: Vec<(Box<str>, QueueState)>) -> Table {
        let mut t = Table::default();
        let hash = |k: &str| self.hasher.hash_one(k);
        for (k, v) in entries {
            let h = hash(&k);
            match t.find_mut(h, |e| e.0 == k) {
                Some(e) => e.1 = v,
                None => {
                    t.insert_unique(h, (k, v), |e| hash(&e.0));
                }
            }
        }
        t
    }

    fn make_room(&mut self) {
        if self.young.len() >= self.generation {
            self.evictions += self.old.len() as u64;
            // The old table's allocation becomes the new young one: a fresh table
            // would grow again by rehashing, on pages the kernel must zero first.
            mem::swap(&mut self.old, &mut self.young);
            self.young.clear();
            // A table restored from a checkpoint of a larger limit would otherwise
            // keep its size for good.
            if self.young.capacity() > 2 * self.generation {
                self.young = Table::default();
            }
        }
    }
}

/// A [`Correlator`] at rest, for checkpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CorrelatorState {
    young: Vec<(Box<str>, QueueState)>,
    old: Vec<(Box<str>, QueueState)>,
    evictions: u64,
}

impl CorrelatorState {
    pub(crate) fn forget_evictions(&mut self) {
        self.evictions = 0;
    }
}

/// For MTAs that log each recipient's try as a record of its own (KumoMTA,
/// PowerMTA): the attempt's number (`counted`, the MTA's own count, else ours) and,
/// for an expiry, the recipient's last attempt to attribute it to. A finished
/// recipient leaves the message's state, and a message with none left is dropped;
/// most messages are delivered at their first attempt, so a finished recipient of a
/// message with no state is counted without creating (and at once dropping) any.
/// The recipient's domain is not kept: an expiry record names its recipient.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_attempt(
    state: &mut Correlator,
    stats: &mut Stats,
    host: &str,
    id: &str,
    outcome: Outcome,
    rcpt_hash: Option<u64>,
    counted: Option<u32>,
    deferred_to: Option<LastAttempt>,
) -> (Option<u32>, Option<LastAttempt>) {
    let expired = outcome == Outcome::Expired;
    let finished = matches!(outcome, Outcome::Delivered | Outcome::Bounced | Outcome::Expired);
    let st = if finished {
        state.get(host, id)
    } else {
        Some(state.get_or_insert(host, id))
    };
    // Its first attempt seen, unless the MTA counted others; an expiry with no
    // attempt seen has nowhere to be attributed.
    let Some(st) = st else {
        return ((!expired).then(|| counted.unwrap_or(1)), None);
    };
    let hash = rcpt_hash.unwrap_or(0);
    let (attempt, last) = if expired {
        match st.rcpt_mut(hash, None) {
            Some(r) => (None, r.pending.take()),
            None => {
                stats.untracked_recipients += 1;
                (None, None)
            }
        }
    } else {
        let n = st.attempt(hash, None, deferred_to);
        if n.is_none() {
            stats.untracked_recipients += 1;
        }
        (counted.or(n), None)
    };
    if finished {
        st.rcpts.retain(|r| r.hash != hash);
        if st.rcpts.is_empty() {
            state.remove(host, id);
        }
    }
    (attempt, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_found_by_host_and_queue_id_and_dropped_on_remove() {
        let mut c = Correlator::new(100);
        c.get_or_insert("h1", "AB").size = Some(5);
        assert!(c.get("h2", "AB").is_none());
        assert_eq!(c.get("h1", "AB").and_then(|s| s.size), Some(5));
        assert!(c.remove("h1", "AB").is_some());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn state_stays_bounded_and_evictions_are_counted() {
        let mut c = Correlator::new(1000);
        for i in 0..100_000 {
            c.get_or_insert("h", &format!("Q{i}"));
            assert!(c.len() <= 1000);
        }
        assert_eq!(c.evictions() + c.len() as u64, 100_000);
    }

    #[test]
    fn recipients_per_queue_id_are_bounded() {
        let mut st = QueueState::default();
        for h in 0..(MAX_RCPTS_PER_QUEUE_ID as u64 + 10) {
            let tracked = st.rcpt_mut(h, None).is_some();
            assert_eq!(tracked, h < MAX_RCPTS_PER_QUEUE_ID as u64);
        }
        assert!(st.rcpt_mut(3, None).is_some(), "known recipients stay reachable");
    }

    #[test]
    fn a_last_attempt_gives_back_its_parts_and_stores_them_as_four_fields() {
        let l = LastAttempt::new(Some("198.51.100.7"), None, Some(""), "gmail");
        assert_eq!(
            (l.source_ip(), l.mx_host(), l.mx_ip(), l.mx_group()),
            (Some("198.51.100.7"), None, Some(""), "gmail")
        );
        let json = serde_json::to_string(&l).expect("serialize");
        assert_eq!(
            json,
            r#"{"source_ip":"198.51.100.7","mx_host":null,"mx_ip":"","mx_group":"gmail"}"#
        );
        assert_eq!(serde_json::from_str::<LastAttempt>(&json).expect("deserialize"), l);
        let none = LastAttempt::new(None, Some("mx.example"), None, "");
        assert_eq!(
            (none.source_ip(), none.mx_host(), none.mx_ip(), none.mx_group()),
            (None, Some("mx.example"), None, "")
        );
    }

    #[test]
    fn tables_restored_from_a_larger_limit_shrink_to_this_limit() {
        let mut big = Correlator::new(100_000);
        for i in 0..60_000 {
            big.get_or_insert("h", &format!("Q{i}"));
        }
        let mut c = Correlator::new(100);
        c.restore(big.snapshot());
        assert!(c.young.capacity() + c.old.capacity() > 60_000);
        // Two generation changes pass both restored tables through `make_room`.
        for i in 0..120 {
            c.get_or_insert("h", &format!("N{i}"));
        }
        assert!(c.len() <= 100);
        assert!(
            c.young.capacity() + c.old.capacity() < 1000,
            "{} + {}",
            c.young.capacity(),
            c.old.capacity()
        );
    }

    #[test]
    fn recently_touched_ids_survive_a_generation_change() {
        let mut c = Correlator::new(4);
        c.get_or_insert("h", "keep").size = Some(1);
        c.get_or_insert("h", "a");
        // "keep" and "a" fill young; the next insert moves them to old.
        c.get_or_insert("h", "b");
        assert_eq!(c.get("h", "keep").and_then(|s| s.size), Some(1));
        c.get_or_insert("h", "c");
        c.get_or_insert("h", "d");
        assert!(c.get("h", "keep").is_some());
        assert!(c.get("h", "a").is_none());
    }
}
