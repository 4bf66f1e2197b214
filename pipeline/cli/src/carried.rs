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
//! A file that cannot be read is moved aside with a note, not a stop. Replays into
//! one archive take turns (`_state/replay.lock`): two at once would each start from
//! the same state and the last to store would drop the other's.
//!
//! A replay marks itself running (`_state/replay-running/RUN`) until its inputs are
//! recorded; the next replay takes back the files of a run whose mark is left (a
//! signal, `kill -9`): no record covers them, so the same inputs would be welcome
//! again and their rows counted twice.
//!
//! Owns those files, and removes the files of stopped runs; it never reads the
//! archive's data.

use crate::engine::remove_with_empty_dirs;
use anyhow::{Context, Result, bail};
use deferlog_archive::{EVENTS_DIR, HOURLY_DIR, REJECTS_DIR};
use deferlog_parse::NormalizerState;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carried {
    /// Which recipient-hash key the states' hashes are of ([`key_check`]).
    key_check: String,
    /// One per parser thread, in order.
    pub parsers: Vec<NormalizerState>,
}

fn state_dir(out: &Path) -> PathBuf {
    out.join("_state")
}

fn path(out: &Path) -> PathBuf {
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
    let bytes = std::fs::read(&p).ok()?;
    let (aside, why) = match serde_json::from_slice::<Carried>(&bytes) {
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

/// Stores the parsers' states, of recipients hashed with `key`, for the next replay
/// into `out`, counts left out. On failure the old state goes too.
pub fn store(out: &Path, key: &[u8; 16], run: &str, parsers: Vec<NormalizerState>) -> Result<()> {
    let p = path(out);
    let tmp = p.with_extension(format!("json.{run}.tmp"));
    let write = || -> Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(state_dir(out))?;
        let carried = Carried {
            key_check: key_check(key),
            parsers: parsers.into_iter().map(NormalizerState::without_counts).collect(),
        };
        let text = serde_json::to_vec(&carried).context("encoding the correlation state")?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        Ok(())
    };
    write()
        .with_context(|| format!("writing {}", p.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
            forget(out);
        })
}

/// Takes the state away: the next replay starts without it rather than from one
/// older than the last run.
pub fn forget(out: &Path) {
    let _ = std::fs::remove_file(path(out));
}

/// Where a replay marks that it is adding to the archive, until it has recorded its
/// inputs: a mark left there is a run stopped before that (a signal, `kill -9`, a
/// crash), whose files in the archive no record covers.
fn running_dir(out: &Path) -> PathBuf {
    state_dir(out).join("replay-running")
}

/// Marks `run` as adding to `out` ([`finished`] takes the mark away).
pub fn starting(out: &Path, run: &str) -> Result<()> {
    let dir = running_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mark = dir.join(run);
    std::fs::File::create(&mark)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", mark.display()))
}

/// `run` added what it adds and recorded it, or failed and took its files back.
pub fn finished(out: &Path, run: &str) {
    remove_with_empty_dirs(&running_dir(out).join(run), out);
}

/// Takes back what replays stopped midway added (every file named after their run:
/// events, dead letters, hourly rows, the unrecorded record of inputs). Their inputs
/// were never recorded, so replaying them again would count those files' rows twice.
/// Returns the runs and how many files each left.
pub fn undo_stopped(out: &Path) -> Result<Vec<(String, usize)>> {
    let dir = running_dir(out);
    let Ok(marks) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut undone = Vec::new();
    for mark in marks {
        let mark = mark.with_context(|| format!("reading {}", dir.display()))?;
        let run = mark.file_name().to_string_lossy().into_owned();
        let prefixes = [
            format!("part-{run}-"),
            format!("rejects-{run}."),
            format!("hourly-{run}."),
            format!("{run}.json"),
        ];
        let mut files = Vec::new();
        for sub in [EVENTS_DIR, REJECTS_DIR, HOURLY_DIR, "_state/replayed"] {
            files_named(&out.join(sub), &prefixes, &mut files);
        }
        for f in &files {
            remove_with_empty_dirs(f, out);
        }
        remove_with_empty_dirs(&mark.path(), out);
        undone.push((run, files.len()));
    }
    Ok(undone)
}

/// Every file under `dir` whose name starts with one of `prefixes`.
fn files_named(dir: &Path, prefixes: &[String], into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_named(&p, prefixes, into);
        } else if prefixes
            .iter()
            .any(|x| e.file_name().to_string_lossy().starts_with(x.as_str()))
        {
            into.push(p);
        }
    }
}

/// Held while a replay reads and stores the state (and records its inputs): one
/// replay into an archive at a time.
#[derive(Debug)]
pub struct Turn {
    file: std::fs::File,
    path: PathBuf,
    out: PathBuf,
}

/// Takes this archive's turn, or says that another replay has it.
pub fn take_turn(out: &Path) -> Result<Turn> {
    let dir = state_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("replay.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Turn {
            file,
            path,
            out: out.to_path_buf(),
        }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another replay into {} is running: replays into one archive take turns (each starts from where the \
             last left its recipients)",
            out.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Removed while still held, so that a failed first replay leaves nothing. A
        // replay that opened the file just before could then lock the removed file
        // beside one that makes a new one: a window of microseconds, accepted.
        remove_with_empty_dirs(&self.path, &self.out);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_read_back_only_under_the_key_its_recipients_were_hashed_with() {
        let dir = tempfile::tempdir().expect("tmp");
        let (k1, k2) = ([1u8; 16], [2u8; 16]);
        store(dir.path(), &k1, "run-1", vec![NormalizerState::default(); 3]).expect("store");
        assert_eq!(load(dir.path(), &k1).expect("same key").parsers.len(), 3);
        assert!(load(dir.path(), &k2).is_none(), "another key");
        assert!(!path(dir.path()).exists(), "set aside");
        assert!(path(dir.path()).with_extension("json.other-key").exists());
        assert!(load(dir.path(), &k1).is_none(), "gone for good");
    }

    #[test]
    fn a_stopped_runs_files_are_taken_back_and_no_others() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path();
        let touch = |rel: &str| {
            let p = out.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(&p, b"x").expect("write");
        };
        let stopped = [
            "events/date=2026-11-08/hour=07/part-R1-00001.parquet",
            "events/date=2026-11-08/hour=08/part-R1-00002.parquet.tmp",
            "rejects/rejects-R1.parquet.tmp",
            "_state/replayed/R1.json.tmp",
        ];
        let kept = [
            "events/date=2026-11-08/hour=07/part-R0-00001.parquet",
            "hourly/hourly-R0.parquet",
            "_state/replayed/R0.json",
        ];
        for f in stopped.iter().chain(&kept) {
            touch(f);
        }
        starting(out, "R1").expect("mark");
        starting(out, "R2").expect("mark");
        finished(out, "R2");
        assert_eq!(undo_stopped(out).expect("undo"), vec![("R1".to_owned(), 4)]);
        for f in stopped {
            assert!(!out.join(f).exists(), "{f}");
        }
        for f in kept {
            assert!(out.join(f).exists(), "{f}");
        }
        assert!(
            !out.join("events/date=2026-11-08/hour=08").exists(),
            "emptied directories go"
        );
        assert!(undo_stopped(out).expect("again").is_empty(), "once");
    }

    #[test]
    fn replays_into_one_archive_take_turns() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("archive");
        let first = take_turn(&out).expect("first");
        let err = take_turn(&out).expect_err("second").to_string();
        assert!(err.contains("another replay"), "{err}");
        drop(first);
        let again = take_turn(&out).expect("after the first");
        drop(again);
        let left: Vec<_> = std::fs::read_dir(&out).expect("archive").collect();
        assert!(left.is_empty(), "a turn leaves nothing behind: {left:?}");
    }
}
