//! The correlation state one `replay` leaves for the next into the same archive, so
//! that logs added day by day (rotated files, replayed as they rotate) read as one log:
//! a recipient deferred in Monday's file and expired in Friday's has its expiry on the
//! MX and IP it was last tried at, and its attempts are numbered on.
//!
//! `OUT/_state/replay-correlation.json` holds each parser thread's state, in thread
//! order. Lines go to a thread by their route key, so a thread's state is only right
//! for the thread that routes the same way: the next replay runs as many parser
//! threads as wrote it, whatever `limits.parser_threads` says. Counts are kept out
//! (each replay reports its own). Recipients are in it by hash, so it also names the
//! key they were hashed with (a hash of a constant under it): under another key the
//! same recipient would be a second one, pending twice, and a Postfix expiry counts
//! one per pending recipient. A state of another key is set aside, not used.
//!
//! Written, synced and named into place after the run and its record; a run that
//! fails leaves the file as it was, and a state that cannot be stored takes the old
//! one away, so that the next run never starts from a state older than the last run.
//! A file that cannot be read is moved aside with a note, not a stop. It names the
//! run that stored it, so that a run stopped after storing it is known to have
//! finished (`runs`). Replays into one archive take turns (`runs::take_turn`).
//!
//! Owns that file only; it never reads or writes the archive's data.

use anyhow::{Context, Result};
use deferlog_parse::NormalizerState;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carried {
    /// The replay that stored it.
    pub run: String,
    /// Which recipient-hash key the states' hashes are of ([`key_check`]).
    key_check: String,
    /// One per parser thread, in order.
    pub parsers: Vec<NormalizerState>,
    /// The latest hour the replays into the archive have reached (µs): one that reads
    /// lines before it reads them after newer ones.
    #[serde(default)]
    pub newest_hour_us: Option<i64>,
    /// Hours replays left open, for the next to close (`engine::finish`).
    #[serde(default)]
    pub open_hours: Vec<OpenHour>,
}

/// An hour a replay left open: its input ended less than the allowed lateness after
/// the hour did (a log rotated mid-hour), so the next replay into the archive may add
/// to it. The first later replay that reads past it writes its rows again, final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenHour {
    /// The replay run whose rows they are.
    pub scope: String,
    pub hour_us: i64,
}

fn state_dir(out: &Path) -> PathBuf {
    out.join("_state")
}

pub(crate) fn path(out: &Path) -> PathBuf {
    state_dir(out).join("replay-correlation.json")
}

/// Names a key without giving it away: SipHash-1-3 of a constant under it.
fn key_check(key: &[u8; 16]) -> String {
    let mut h = SipHasher13::new_with_key(key);
    h.write(b"deferlog replay correlation");
    format!("{:032x}", h.finish128().as_u128())
}

/// What the last replay into `out` left, if it is of `key`. A file that cannot be
/// read, or is of another key, is renamed aside (`.unreadable`, `.other-key`) with a
/// note, and the run starts without it.
pub fn load(out: &Path, key: &[u8; 16]) -> Option<Carried> {
    let p = path(out);
    let bytes = match std::fs::read(&p) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => Err(e.to_string()),
    };
    let (aside, why) = match bytes.and_then(|b| serde_json::from_slice::<Carried>(&b).map_err(|e| e.to_string())) {
        Ok(c) if c.key_check == key_check(key) => return Some(c).filter(|c| !c.parsers.is_empty()),
        Ok(_) => (
            p.with_extension("json.other-key"),
            "its recipients were hashed with another key than this run's (privacy.hash_key changed, or \
             _state/hash_key lost?)"
                .to_owned(),
        ),
        Err(e) => (
            p.with_extension("json.unreadable"),
            format!("it could not be read ({e})"),
        ),
    };
    let _ = std::fs::rename(&p, &aside);
    crate::say!(
        "deferlog replay: {} set aside as {}: {why}. Recipients tried before this run are new to it: \
         their attempts number from 1, their expiries count with no MX, and `report deferrals` does not pair \
         their tries across the two runs",
        p.display(),
        aside.display()
    );
    None
}

/// Writes the parsers' states, of recipients hashed with `key`, for the next replay
/// into `out`, counts left out, beside where they belong: before the run's files are
/// published, so that a disk too full for them fails the run instead of leaving its
/// successor without them (the file left on an error is the run's to take back).
pub fn prepare(
    out: &Path,
    key: &[u8; 16],
    run: &str,
    parsers: Vec<NormalizerState>,
    newest_hour_us: Option<i64>,
    open_hours: Vec<OpenHour>,
) -> Result<Written> {
    let tmp = tmp_path(out, run);
    let write = || -> Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(state_dir(out))?;
        let carried = Carried {
            run: run.to_owned(),
            key_check: key_check(key),
            parsers: parsers.into_iter().map(NormalizerState::without_counts).collect(),
            newest_hour_us,
            open_hours,
        };
        let text = serde_json::to_vec(&carried).context("encoding the correlation state")?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        Ok(())
    };
    write().with_context(|| format!("writing {}", tmp.display()))?;
    Ok(Written {
        tmp,
        out: out.to_owned(),
    })
}

/// A state written by [`prepare`], to be named into place once the run's files are.
#[derive(Debug)]
pub struct Written {
    tmp: PathBuf,
    out: PathBuf,
}

impl Written {
    /// Takes the state away, the old one too: the next replay starts without it.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
        forget(&self.out);
    }

    /// Stores the state: the run is whole from here. On failure the old state goes too.
    pub fn commit(self) -> Result<()> {
        let p = path(&self.out);
        std::fs::rename(&self.tmp, &p)
            .with_context(|| format!("renaming {} to {}", self.tmp.display(), p.display()))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&self.tmp);
                forget(&self.out);
            })
    }
}

/// Where `run` writes the state before naming it into place.
pub(crate) fn tmp_path(out: &Path, run: &str) -> PathBuf {
    path(out).with_extension(format!("json.{run}.tmp"))
}

/// The run that stored the state, if there is one to read.
pub(crate) fn stored_by(out: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Run {
        run: String,
    }
    let bytes = std::fs::read(path(out)).ok()?;
    serde_json::from_slice::<Run>(&bytes).ok().map(|r| r.run)
}

/// Takes the state away: the next replay starts without it rather than from one
/// older than the last run.
pub fn forget(out: &Path) {
    let _ = std::fs::remove_file(path(out));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_read_back_only_under_the_key_its_recipients_were_hashed_with() {
        let dir = tempfile::tempdir().expect("tmp");
        let (k1, k2) = ([1u8; 16], [2u8; 16]);
        let open = vec![OpenHour {
            scope: "run-1".into(),
            hour_us: 3_600_000_000,
        }];
        prepare(
            dir.path(),
            &k1,
            "run-1",
            vec![NormalizerState::default(); 3],
            None,
            open.clone(),
        )
        .and_then(Written::commit)
        .expect("store");
        let back = load(dir.path(), &k1).expect("same key");
        assert_eq!((back.parsers.len(), back.open_hours), (3, open));
        assert!(load(dir.path(), &k2).is_none(), "another key");
        assert!(!path(dir.path()).exists(), "set aside");
        assert!(path(dir.path()).with_extension("json.other-key").exists());
        assert!(load(dir.path(), &k1).is_none(), "gone for good");
    }

    #[test]
    fn a_state_the_system_will_not_read_is_set_aside_too_not_dropped_in_silence() {
        let dir = tempfile::tempdir().expect("tmp");
        // A read that fails below the JSON (here EISDIR; EACCES or EIO as well).
        std::fs::create_dir_all(path(dir.path())).expect("dir");
        assert!(load(dir.path(), &[1u8; 16]).is_none());
        assert!(!path(dir.path()).exists(), "set aside");
        assert!(path(dir.path()).with_extension("json.unreadable").is_dir());
    }
}
