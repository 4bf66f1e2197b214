//! Which replays are adding to an archive, and taking back what a stopped one added.
//!
//! Replays into one archive take turns (`_state/replay.lock`): each reads and stores
//! the record of inputs (`replayed`) and the carried correlation (`carried`), and two
//! at once would each start from the same ones.
//!
//! A replay marks itself running (`_state/replay-running/RUN`, locked while it runs)
//! until its record and carried state are stored. A mark nobody holds is a run
//! stopped outright (a signal, `kill -9`, a crash), whose files no record covers: the
//! same inputs would be welcome again and their rows counted twice. The next replay
//! takes all of them back (events, dead letters, hourly rows, the record), unless the
//! carried state names that run: then it had finished but for taking its mark away.
//! A run that fails takes its files back the same way, by name. A run writes its
//! files under `_state/replay-staging/RUN` (`run`'s staging is its own) and moves them into the archive once it has read
//! everything, so readers see a stopped one's only if it stopped while moving them.
//!
//! Owns those files, and removes the files of runs that did not finish; it never reads
//! the archive's data.

use crate::engine::remove_with_empty_dirs;
use anyhow::{Context, Result, bail};
use deferlog_archive::{EVENTS_DIR, HOURLY_DIR, REJECTS_DIR, run_file_prefixes};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

fn state_dir(out: &Path) -> PathBuf {
    out.join("_state")
}

/// An exclusive lock on `path`, made if missing: `Ok(None)` while another holds it.
fn lock(path: &Path) -> Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Held while a replay reads and stores the state (and records its inputs): one
/// replay into an archive at a time.
#[derive(Debug)]
pub struct Turn {
    file: File,
    path: PathBuf,
    out: PathBuf,
}

/// Takes this archive's turn, or says that another replay has it.
pub fn take_turn(out: &Path) -> Result<Turn> {
    let dir = state_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("replay.lock");
    match lock(&path)? {
        Some(file) => Ok(Turn {
            file,
            path,
            out: out.to_path_buf(),
        }),
        None => bail!(
            "another replay into {} is running: replays into one archive take turns (each starts from where the \
             last left its recipients)",
            out.display()
        ),
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Removed while still held, so that a failed first replay leaves nothing. A
        // replay that opened the file just before could then lock the removed file
        // beside one that makes a new one: a window of microseconds, in which the
        // running marks still keep each from undoing the other.
        remove_with_empty_dirs(&self.path, &self.out);
        let _ = self.file.unlock();
    }
}

/// Where replay `run` writes its files until it publishes them into the archive
/// (`engine::publish`): under `_state`, which readers of the archive pass over.
pub fn stage_dir(out: &Path, run: &str) -> PathBuf {
    state_dir(out).join("replay-staging").join(run)
}

fn running_dir(out: &Path) -> PathBuf {
    state_dir(out).join("replay-running")
}

/// Makes a directory entry's change durable: a mark must not come back, or vanish,
/// after a power loss.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `run`'s mark, held while it adds to the archive.
#[derive(Debug)]
pub struct Running {
    file: File,
    path: PathBuf,
    out: PathBuf,
}

/// Marks `run` as adding to `out` until [`Running::finished`].
pub fn starting(out: &Path, run: &str) -> Result<Running> {
    let dir = running_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(run);
    let marked = lock(&path).and_then(|f| f.with_context(|| format!("{} is locked already", path.display())));
    let file = marked.inspect_err(|_| remove_with_empty_dirs(&path, out))?;
    sync_dir(&dir);
    Ok(Running {
        file,
        path,
        out: out.to_path_buf(),
    })
}

impl Running {
    /// The run added what it adds, recorded it and stored its state, or failed and
    /// took its files back: the mark goes. A mark that stays would have the next
    /// replay take back a finished run, so failing to remove it is said.
    pub fn finished(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            crate::say!(
                "deferlog replay: {} could not be removed ({e}); remove it by hand, or the next replay into {} \
                 takes this run's files back",
                self.path.display(),
                self.out.display()
            );
            return;
        }
        sync_dir(self.path.parent().unwrap_or(&self.out));
        remove_with_empty_dirs(&self.path, &self.out);
        let _ = self.file.unlock();
    }

    /// The run failed: its files (those it could not remove itself) and its mark go.
    pub fn failed(self) {
        let run = self.path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(run) = run {
            undo_run(&self.out, &run);
        }
        self.finished();
    }
}

/// Every file `run` wrote into the archive, and the record and state it had not named
/// into place; returns how many there were.
fn undo_run(out: &Path, run: &str) -> usize {
    let mut files = Vec::new();
    let prefixes = run_file_prefixes(run);
    let stage = stage_dir(out, run);
    for sub in [EVENTS_DIR, REJECTS_DIR, HOURLY_DIR] {
        files_named(&out.join(sub), &prefixes, &mut files);
        files_named(&stage.join(sub), &prefixes, &mut files);
    }
    files.extend(crate::replayed::record_files(out, run));
    let state_tmp = crate::carried::tmp_path(out, run);
    files.extend(state_tmp.exists().then_some(state_tmp));
    for f in &files {
        remove_with_empty_dirs(f, out);
    }
    // Directories its writers made and left empty.
    let _ = std::fs::remove_dir_all(&stage);
    if let Some(staging) = stage.parent() {
        let _ = std::fs::remove_dir(staging);
        remove_with_empty_dirs(staging, out);
    }
    files.len()
}

/// Takes back what replays stopped midway added: runs whose mark nobody holds and
/// whose state was never stored. Returns the runs and how many files each left.
pub fn undo_stopped(out: &Path) -> Result<Vec<(String, usize)>> {
    let dir = running_dir(out);
    let Ok(marks) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let stored_by = crate::carried::stored_by(out);
    let mut undone = Vec::new();
    for mark in marks {
        let mark = mark.with_context(|| format!("reading {}", dir.display()))?;
        let path = mark.path();
        // Held: that replay is still running (two came in together; see `Turn`).
        let Some(held) = lock(&path)? else { continue };
        let run = mark.file_name().to_string_lossy().into_owned();
        if stored_by.as_deref() != Some(run.as_str()) {
            undone.push((run.clone(), undo_run(out, &run)));
        }
        remove_with_empty_dirs(&path, out);
        drop(held);
    }
    sync_dir(&dir);
    Ok(undone)
}

/// Every file under `dir` whose name starts with one of `prefixes`; links are not
/// followed.
fn files_named(dir: &Path, prefixes: &[String], into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            files_named(&e.path(), prefixes, into);
        } else if prefixes
            .iter()
            .any(|x| e.file_name().to_string_lossy().starts_with(x.as_str()))
        {
            into.push(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(out: &Path, rel: &str) {
        let p = out.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
        std::fs::write(&p, b"x").expect("write");
    }

    #[test]
    fn a_stopped_runs_files_are_taken_back_and_no_others() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path();
        let stopped = [
            "events/date=2026-11-08/hour=07/part-R1-00001.parquet",
            "events/date=2026-11-08/hour=08/part-R1-00002.parquet.tmp",
            "rejects/rejects-R1.parquet.tmp",
            "_state/replayed/R1.json.tmp",
            "_state/replay-correlation.json.R1.tmp",
            // Written but not yet published into the archive.
            "_state/replay-staging/R1/events/date=2026-11-08/hour=09/part-R1-00003.parquet",
            "_state/replay-staging/R1/hourly/hourly-R1.parquet",
        ];
        let kept = [
            "events/date=2026-11-08/hour=07/part-R0-00001.parquet",
            "events/date=2026-11-08/hour=07/part-R10-00001.parquet",
            "hourly/hourly-R0.parquet",
            "_state/replayed/R0.json",
        ];
        for f in stopped.iter().chain(&kept) {
            touch(out, f);
        }
        // R1 stopped (its mark left, nobody holding it); R2 finished; R3 still runs.
        drop(starting(out, "R1").expect("mark"));
        starting(out, "R2").expect("mark").finished();
        let r3 = starting(out, "R3").expect("mark");
        assert_eq!(undo_stopped(out).expect("undo"), vec![("R1".to_owned(), 7)]);
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
        assert!(!out.join("_state/replay-staging").exists(), "staging too");
        assert!(running_dir(out).join("R3").exists(), "a running replay's mark stays");
        r3.finished();
        assert!(undo_stopped(out).expect("again").is_empty(), "once");
    }

    #[test]
    fn a_run_stopped_after_storing_its_state_had_finished() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path();
        touch(out, "events/date=2026-11-08/hour=07/part-R1-00001.parquet");
        crate::carried::prepare(out, &[0; 16], "R1", Vec::new(), None, Vec::new())
            .and_then(crate::carried::Written::commit)
            .expect("store");
        drop(starting(out, "R1").expect("mark"));
        assert!(undo_stopped(out).expect("undo").is_empty());
        assert!(
            out.join("events/date=2026-11-08/hour=07/part-R1-00001.parquet")
                .exists()
        );
        assert!(!running_dir(out).exists(), "its mark went");
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
