//! The events files' writer: one thread per processor that encodes an hour's rows
//! (after the rows of the hour's held pieces, see `checkpoint.rs`) into a staged
//! Parquet file and seals it, while the processing thread goes on reading. Parquet is
//! 13 % of a worker's samples in `perf`; a worker whose partitions carry more than its
//! share of the traffic would otherwise do it on the run's critical path. It owns no
//! partition state: a partition hands over rows and file names and lists the sealed
//! file in its checkpoint only once it has it back.

use crate::StreamError;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use deferlog_archive::{ArchiveError, ParquetFile, Staged};
use deferlog_event::event_schema;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Files handed over and not yet written, before handing over waits: a few hours'
/// rows of a backlog, not every hour of it.
const QUEUE: usize = 16;

/// A sealed file, the writer's time on it, and how many of its pieces were missing.
type Written = Result<Sealed, ArchiveError>;

#[derive(Debug)]
pub(crate) struct Sealed {
    pub file: Staged,
    pub took: Duration,
    /// Held pieces listed for the file but not in staging (see `Counters::missing_pieces`).
    pub missing_pieces: u64,
    /// Held pieces that could not be read, set aside (see `Counters::set_aside_pieces`).
    pub set_aside_pieces: u64,
}

enum Job {
    File {
        tmp: PathBuf,
        path: PathBuf,
        pieces: Vec<PathBuf>,
        batches: Vec<RecordBatch>,
        done: SyncSender<Written>,
    },
    /// Answered once every job before it is done.
    Barrier(SyncSender<()>),
}

pub(crate) struct Writer {
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// A file handed to the writer: sealed in staging once [`Pending::wait`] returns it.
#[derive(Debug)]
pub(crate) struct Pending(Receiver<Written>);

impl Pending {
    pub fn wait(self) -> Result<Sealed, StreamError> {
        match self.0.recv() {
            Ok(written) => Ok(written?),
            Err(_) => Err(StreamError::WriterStopped),
        }
    }
}

impl Writer {
    pub fn new() -> Result<Self, StreamError> {
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("deferlog-write".into())
            .spawn(move || {
                for job in queue {
                    // The partition may be gone (a processor dropped as `kill -9`
                    // leaves it): its file stays unlisted, and recovery deletes it.
                    match job {
                        Job::File {
                            tmp,
                            path,
                            pieces,
                            batches,
                            done,
                        } => {
                            let _ = done.send(write_file(event_schema(), tmp, path, &pieces, &batches));
                        }
                        Job::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(StreamError::WriterThread)?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Hands over the rows of one file, to be written at `tmp` and published at `path`:
    /// the rows of the staged `pieces`, then `batches`.
    pub fn write(
        &self,
        tmp: PathBuf,
        path: PathBuf,
        pieces: Vec<PathBuf>,
        batches: Vec<RecordBatch>,
    ) -> Result<Pending, StreamError> {
        let (done, written) = sync_channel(1);
        self.send(Job::File {
            tmp,
            path,
            pieces,
            batches,
            done,
        })?;
        Ok(Pending(written))
    }

    /// Waits until every file handed over so far is written.
    pub fn flush(&self) -> Result<(), StreamError> {
        let (done, flushed) = sync_channel(1);
        self.send(Job::Barrier(done))?;
        flushed.recv().map_err(|_| StreamError::WriterStopped)
    }

    fn send(&self, job: Job) -> Result<(), StreamError> {
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => Ok(()),
            _ => Err(StreamError::WriterStopped),
        }
    }
}

/// Writes one file of `schema` at `tmp` (to be published at `path`): the rows of the
/// staged `pieces`, then `batches`. On the writer thread for events; on the caller's
/// for dead letters, which are few.
pub(crate) fn write_file(
    schema: SchemaRef,
    tmp: PathBuf,
    path: PathBuf,
    pieces: &[PathBuf],
    batches: &[RecordBatch],
) -> Written {
    let started = Instant::now();
    // A scope's staging is made with its checkpoint and kept: gone, the archive was
    // moved or deleted (see `ScopeDirs::check`), and nothing is to be made in its place.
    if let Some(dir) = tmp.parent()
        && !dir.is_dir()
    {
        return Err(ArchiveError::Create {
            path: tmp.clone(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "staging is gone: was the archive moved?"),
        });
    }
    // A piece the checkpoint lists but staging lacks cannot come back, and one that
    // cannot be read will not read later: stopping on either would stop the scope for
    // good (at every restart), so each is counted, a damaged one set aside, and the
    // hour written without it.
    let (mut present, missing): (Vec<_>, Vec<_>) = pieces.iter().partition(|p| p.exists());
    let mut set_aside = 0;
    loop {
        let mut file = ParquetFile::create_staged(tmp.clone(), path.clone(), schema.clone())?;
        let copied = present.iter().try_for_each(|p| file.append_file(p));
        match copied.and_then(|()| batches.iter().try_for_each(|b| file.write(b))) {
            Ok(()) => {
                return Ok(Sealed {
                    file: file.seal()?,
                    took: started.elapsed(),
                    missing_pieces: missing.len() as u64,
                    set_aside_pieces: set_aside,
                });
            }
            Err(ArchiveError::Read { path: bad, cause })
                if present.contains(&&bad) && ArchiveError::is_damage(&cause) =>
            {
                file.abort();
                present.retain(|p| **p != bad);
                crate::checkpoint::set_aside(&bad).map_err(|cause| ArchiveError::Rename {
                    path: bad.clone(),
                    cause,
                })?;
                set_aside += 1;
            }
            Err(e) => {
                file.abort();
                return Err(e);
            }
        }
    }
}

impl Drop for Writer {
    /// Writes what was handed over before the thread ends: no write outlives the
    /// processor (a successor recovering the same scopes would race it).
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
