//! One scope's checkpoint: everything needed to resume a Kafka partition exactly.
//!
//! ```text
//! OUT/_state/checkpoints/<scope>.json     the checkpoint (replaced atomically)
//! OUT/_state/staging/<scope>/*.tmp        sealed output files not yet published, and
//!                                         the held pieces of open hours
//! ```
//!
//! Commit protocol, per scope: output files of the epoch are written and synced in
//! staging; then the checkpoint naming them as `pending` replaces the old one
//! (write, sync, rename, sync the directory); then they are published (renamed into
//! the archive); only then may the Kafka offset be committed. Recovery publishes the
//! pending files of the checkpoint (publishing is idempotent) and deletes everything
//! else in the scope's staging directory but the held pieces: output of an epoch
//! whose checkpoint never landed, which the records after the checkpoint's offset will
//! produce again. The leading underscore keeps `_state` out of Hive-style readers of
//! the archive.
//!
//! Held pieces are the events of hours still open, staged at a checkpoint and kept
//! there across checkpoints and restarts; the hour's file gathers them once the hour
//! is passed or the partition has gone quiet, and the checkpoint that lists that file
//! no longer lists them. Dead letters are held the same way, by the hour of the
//! partition's clock (its records' broker timestamps), until that clock leaves the
//! hour. So a steady stream publishes one events file and at most one dead-letter
//! file per partition and hour, not one per checkpoint.
//!
//! One writer per scope: a member that was out of the group too long may still hold
//! a partition that another member already resumed. Each holder remembers which
//! checkpoint file it loaded or stored last ([`FileId`]) and stores only while that
//! is still the one on disk; a holder that finds another's checkpoint there stops
//! with [`StreamError::TakenOver`] before publishing anything. Staged files carry
//! the holder's token in their names, so two holders never write one file.

use crate::StreamError;
use crate::window::WindowsState;
use deferlog_archive::Staged;
use deferlog_metrics::Counts;
use deferlog_parse::NormalizerState;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_DIR: &str = "_state";
/// 2 added `held`, 3 `held_rejects`: a deferlog that reads only older versions
/// refuses a newer one, naming it, rather than deleting the pieces as leftovers.
/// This one reads all three.
pub(crate) const VERSION: u32 = 3;

/// Which checkpoint file is on disk: every store writes a new file and renames it
/// over the old one, so a file another holder stored differs in inode, size or
/// modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    modified_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub scope: String,
    /// The offset of the next record to read.
    pub next_offset: i64,
    /// Counts checkpoints of this scope; revisions of hourly rows are epochs.
    pub epoch: i64,
    /// Largest event time seen, µs.
    pub max_event_us: Option<i64>,
    pub normalizer: NormalizerState,
    pub windows: WindowsState,
    pub counters: crate::Counters,
    /// Cumulative metric counts of the scope (see `deferlog-metrics`).
    #[serde(default)]
    pub counts: Counts,
    /// The exporter instance that stored this checkpoint.
    #[serde(default)]
    pub owner: Option<String>,
    /// Files of this epoch, relative to the archive root: (staged, final).
    pub pending: Vec<(PathBuf, PathBuf)>,
    /// Staged events of hours still open, relative to the archive root: (hour in µs,
    /// piece). Not published on their own: the hour's file gathers them.
    #[serde(default)]
    pub held: Vec<(i64, PathBuf)>,
    /// Staged dead letters, relative to the archive root: (the hour of the scope's
    /// clock, its records' broker timestamps, at the checkpoint that staged them, µs;
    /// piece). The hour's dead-letter file gathers them.
    #[serde(default)]
    pub held_rejects: Vec<(i64, PathBuf)>,
    /// The scope's clock (see `Partition::clock_us`) when this was stored, µs: a
    /// restarted holder runs it on from there, so a partition that stays quiet after a
    /// restart still publishes its held hours once they are over.
    #[serde(default)]
    pub clock_us: Option<i64>,
}

impl Checkpoint {
    pub fn new(scope: &str) -> Self {
        Checkpoint {
            version: VERSION,
            scope: scope.to_owned(),
            next_offset: -1,
            epoch: 0,
            max_event_us: None,
            normalizer: NormalizerState::default(),
            windows: WindowsState {
                closed_before: i64::MIN,
                forgotten_before: i64::MIN,
                hours: Vec::new(),
            },
            counters: crate::Counters::default(),
            counts: Counts::default(),
            owner: None,
            pending: Vec::new(),
            held: Vec::new(),
            held_rejects: Vec::new(),
            clock_us: None,
        }
    }
}

/// Where one scope's state lives under the archive root.
#[derive(Debug, Clone)]
pub struct ScopeDirs {
    pub root: PathBuf,
    pub checkpoint: PathBuf,
    pub staging: PathBuf,
    /// This holder's mark in the names of its staged files.
    token: String,
}

impl ScopeDirs {
    pub fn new(root: &Path, scope: &str) -> Self {
        let state = root.join(STATE_DIR);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        ScopeDirs {
            root: root.to_path_buf(),
            checkpoint: state.join("checkpoints").join(format!("{scope}.json")),
            staging: state.join("staging").join(scope),
            token: format!("{}-{nanos:09}", std::process::id()),
        }
    }

    /// Where this holder stages the file it will publish as `name`.
    pub fn staged_tmp(&self, name: &str) -> PathBuf {
        self.staging.join(format!("{name}.{}.tmp", self.token))
    }

    /// The checkpoint file now on disk, if any.
    pub fn current(&self) -> Result<Option<FileId>, StreamError> {
        use std::os::unix::fs::MetadataExt;
        match fs::metadata(&self.checkpoint) {
            Ok(m) => Ok(Some(FileId {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                modified_ns: m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&self.checkpoint, e)),
        }
    }

    pub fn load(&self) -> Result<Option<Checkpoint>, StreamError> {
        let bytes = match fs::read(&self.checkpoint) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&self.checkpoint, e)),
        };
        let c: Checkpoint = serde_json::from_slice(&bytes).map_err(|cause| StreamError::Checkpoint {
            path: self.checkpoint.clone(),
            cause,
        })?;
        if !(1..=VERSION).contains(&c.version) {
            return Err(StreamError::CheckpointVersion {
                path: self.checkpoint.clone(),
                found: c.version,
                newest: VERSION,
            });
        }
        Ok(Some(c))
    }

    /// `Err(TakenOver)` unless the checkpoint on disk is still `held` (the one this
    /// holder loaded or stored last); `Err(Vanished)` if it is gone: a new holder
    /// stores one, it never removes one, so the archive was moved or deleted.
    pub fn check(&self, held: Option<FileId>) -> Result<(), StreamError> {
        let path = || self.checkpoint.clone();
        match (self.current()?, held) {
            (now, held) if now == held => Ok(()),
            (None, Some(_)) => Err(StreamError::Vanished { path: path() }),
            _ => Err(StreamError::TakenOver { path: path() }),
        }
    }

    /// Replaces the checkpoint atomically and durably, if the one on disk is still
    /// `held`. Returns the new one's id.
    pub fn store(&self, c: &Checkpoint, held: Option<FileId>) -> Result<FileId, StreamError> {
        self.check(held)?;
        let dir = self.checkpoint.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        fs::create_dir_all(&self.staging).map_err(|e| io(&self.staging, e))?;
        // In staging (same file system, cleared by recovery), under this holder's name.
        let tmp = self.staged_tmp("checkpoint.json");
        let bytes = serde_json::to_vec(c).map_err(|cause| StreamError::Checkpoint {
            path: self.checkpoint.clone(),
            cause,
        })?;
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        // Again right before the rename: the write and sync above take milliseconds.
        if let Err(e) = self.check(held) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &self.checkpoint).map_err(|e| io(&self.checkpoint, e))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))?;
        self.current()?.ok_or_else(|| {
            io(
                &self.checkpoint,
                std::io::Error::new(std::io::ErrorKind::NotFound, "gone right after it was stored"),
            )
        })
    }

    pub fn staged(&self, pending: &[(PathBuf, PathBuf)]) -> Vec<Staged> {
        pending
            .iter()
            .map(|(tmp, path)| Staged {
                tmp: self.root.join(tmp),
                path: self.root.join(path),
            })
            .collect()
    }

    /// Moves every file in staging to `_state/set-aside/SCOPE/`; returns how many. For
    /// a scope without a checkpoint: a holder stores one before it stages anything, so
    /// these are a lost checkpoint's (held pieces keep their staging names).
    pub fn set_aside(&self) -> Result<u64, StreamError> {
        let entries = match fs::read_dir(&self.staging) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(&self.staging, e)),
        };
        let mut n = 0;
        for e in entries.flatten() {
            let p = e.path();
            set_aside(&p).map_err(|e| io(&p, e))?;
            n += 1;
        }
        Ok(n)
    }

    /// Publishes the checkpoint's pending files and removes every other staged file
    /// but its held pieces. Returns how many pending files were lost (in neither
    /// staging nor the archive): counted rather than refused, since refusing would stop
    /// the scope at every start for good, as for a missing held piece.
    pub fn recover(&self, c: Option<&Checkpoint>) -> Result<u64, StreamError> {
        let pending = c.map(|c| self.staged(&c.pending)).unwrap_or_default();
        let mut lost = 0;
        for s in &pending {
            if s.is_lost() {
                lost += 1;
            } else {
                s.publish()?;
            }
        }
        let held: std::collections::HashSet<PathBuf> = c
            .map(|c| {
                c.held
                    .iter()
                    .chain(&c.held_rejects)
                    .map(|(_, p)| self.root.join(p))
                    .collect()
            })
            .unwrap_or_default();
        match fs::read_dir(&self.staging) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let p = e.path();
                    if held.contains(&p) {
                        continue;
                    }
                    fs::remove_file(&p).map_err(|e| io(&p, e))?;
                }
                Ok(lost)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(lost),
            Err(e) => Err(io(&self.staging, e)),
        }
    }
}

/// Moves a file of `_state/staging/SCOPE/` to `_state/set-aside/SCOPE/`.
pub(crate) fn set_aside(staged: &Path) -> std::io::Result<()> {
    let not_staged = || std::io::Error::other("not a staged file");
    let scope_dir = staged.parent().ok_or_else(not_staged)?;
    let state = scope_dir.parent().and_then(Path::parent).ok_or_else(not_staged)?;
    let to = state
        .join("set-aside")
        .join(scope_dir.file_name().ok_or_else(not_staged)?);
    fs::create_dir_all(&to)?;
    fs::rename(staged, to.join(staged.file_name().ok_or_else(not_staged)?))
}

fn io(path: &Path, cause: std::io::Error) -> StreamError {
    StreamError::Io {
        path: path.to_path_buf(),
        cause,
    }
}
