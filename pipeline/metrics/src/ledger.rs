//! What one instance exports, and why it is exactly what it counted; the ledger's
//! file (one per `metrics.instance`, locked while a process holds it).
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
use crate::error::MetricsError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// A file name for an instance name.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn ledger_path(dir: &Path, instance: &str) -> PathBuf {
    dir.join(format!("{}.json", file_safe(instance)))
}

/// An exclusive lock beside the ledger: two processes with one `instance` would
/// each add their partitions' counts to the other's ledger, and both export the sum.
/// `None` on a filesystem without locks (some FUSE and SMB mounts), which worked
/// before there was a lock and still does, unguarded.
pub(crate) fn lock_ledger(ledger: &Path, instance: &str) -> Result<Option<std::fs::File>, MetricsError> {
    let path = ledger.with_extension("lock");
    let io = |cause| MetricsError::Io {
        path: path.clone(),
        cause,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(MetricsError::InstanceInUse {
            instance: instance.to_owned(),
            path,
        }),
        Err(std::fs::TryLockError::Error(cause)) if cause.kind() == std::io::ErrorKind::Unsupported => Ok(None),
        Err(std::fs::TryLockError::Error(cause)) => Err(io(cause)),
    }
}

pub(crate) fn load(path: &Path) -> Result<Ledger, MetricsError> {
    let text = std::fs::read(path).map_err(|cause| MetricsError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let ledger: Ledger = serde_json::from_slice(&text).map_err(|cause| MetricsError::Ledger {
        path: path.to_path_buf(),
        cause,
    })?;
    if ledger.version != VERSION {
        return Err(MetricsError::LedgerVersion {
            path: path.to_path_buf(),
            found: ledger.version,
            known: VERSION,
        });
    }
    Ok(ledger)
}

/// Write, sync, rename: a crash leaves the old ledger or the new one.
pub(crate) fn store(path: &Path, ledger: &Ledger) -> Result<(), MetricsError> {
    use std::io::Write;
    let io = |cause| MetricsError::Io {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec(ledger).map_err(|cause| MetricsError::Ledger {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&json).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
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
    fn a_ledger_reads_back_as_stored_and_one_of_another_version_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = ledger_path(dir.path(), "a b");
        let mut l = Ledger::new();
        l.commit("p0", &counts(5));
        store(&path, &l).expect("store");
        assert_eq!(load(&path).expect("load"), l);
        l.version = VERSION + 1;
        store(&path, &l).expect("store");
        let err = load(&path).expect_err("a newer build's ledger");
        assert!(matches!(err, MetricsError::LedgerVersion { found, .. } if found == VERSION + 1));
        assert!(err.to_string().contains("a_b.json"), "{err}");
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
