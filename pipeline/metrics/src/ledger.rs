//! What one instance exports, and why it is exactly what it counted.
//!
//! Each scope (a Kafka partition, or a replay run) keeps cumulative counts in its own
//! checkpoint. The instance's counters are the sum, over every scope it has held, of
//! how much each scope grew while this instance held it: a scope handed to another
//! instance in a rebalance keeps counting there, not twice. The ledger is stored
//! after the scopes' checkpoints, so after a crash it may lag one of them; the scope's
//! checkpoint names its owner, and when that was this instance the lag is caught up
//! on the next acquire (never counted twice, never lost).
//!
//! Folding decisions (admitted MX hosts, series inside the tenant budget) are part
//! of the ledger: they must never be undone, or a counter would go backwards.

use crate::counts::Counts;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    pub version: u32,
    /// What this instance exports, before folding.
    pub totals: Counts,
    /// Per scope: the scope's cumulative counts already added to `totals`.
    pub seen: BTreeMap<String, Counts>,
    /// Per MX group: hosts with their own `mx_host` series, each with the counts its
    /// series had (under `other`) when it was admitted.
    pub admitted: BTreeMap<String, BTreeMap<String, Counts>>,
    /// Delivery series (after host folding) that got a place in their tenant's budget.
    pub budgeted: BTreeSet<String>,
    /// Attempt series of hosts not admitted: what they have put under `other`.
    pub folded: Counts,
}

impl Ledger {
    pub fn new() -> Self {
        Ledger {
            version: VERSION,
            ..Ledger::default()
        }
    }

    /// A scope arrives with the cumulative counts of its checkpoint, written by
    /// `owner`. When this instance wrote it, what the ledger has not seen yet was
    /// counted here before a crash; otherwise it was counted elsewhere.
    pub fn acquire(&mut self, scope: &str, cum: &Counts, owned_here: bool) {
        if owned_here && let Some(seen) = self.seen.get(scope) {
            for (k, d) in cum.above(seen) {
                self.totals.add(k, d);
            }
        }
        self.seen.insert(scope.to_owned(), cum.clone());
    }

    /// A scope's checkpoint landed with `cum`: its growth since is this instance's.
    pub fn commit(&mut self, scope: &str, cum: &Counts) {
        let empty = Counts::default();
        let seen = self.seen.get(scope).unwrap_or(&empty);
        let grown: Vec<(String, u64)> = cum.above(seen).map(|(k, d)| (k.to_owned(), d)).collect();
        for (k, d) in grown {
            self.totals.add(&k, d);
        }
        self.seen.insert(scope.to_owned(), cum.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64) -> Counts {
        let mut c = Counts::default();
        c.add("records", n);
        c
    }

    #[test]
    fn commits_add_only_growth() {
        let mut l = Ledger::new();
        l.commit("p0", &counts(5));
        l.commit("p0", &counts(8));
        l.commit("p1", &counts(2));
        assert_eq!(l.totals.get("records"), 10);
    }

    #[test]
    fn a_scope_taken_over_counts_only_what_grew_here() {
        let mut l = Ledger::new();
        l.acquire("p0", &counts(100), false);
        l.commit("p0", &counts(130));
        assert_eq!(l.totals.get("records"), 30);
    }

    #[test]
    fn after_a_crash_the_own_checkpoint_is_caught_up_once() {
        let mut l = Ledger::new();
        l.commit("p0", &counts(10));
        // The scope's checkpoint reached 15 but the ledger was not stored again.
        let mut restarted = l.clone();
        restarted.acquire("p0", &counts(15), true);
        assert_eq!(restarted.totals.get("records"), 15);
        restarted.commit("p0", &counts(15));
        assert_eq!(restarted.totals.get("records"), 15);
        // Had another instance written it, its growth is not ours.
        l.acquire("p0", &counts(15), false);
        assert_eq!(l.totals.get("records"), 10);
    }
}
