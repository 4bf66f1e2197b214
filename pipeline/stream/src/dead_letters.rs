//! A partition's dead letters: the rows of this epoch, and the pieces of earlier epochs
//! held in staging until their hour (by the partition's clock) is over, then published
//! together as one `rejects/` file. A steady trickle of bad lines would otherwise
//! publish a file every checkpoint. Owns no checkpoint and no counts: the partition
//! lists the held pieces in its checkpoint and counts what it dead-letters.

use crate::StreamError;
use crate::checkpoint::ScopeDirs;
use crate::writer::{Sealed, write_file};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use deferlog_archive::REJECTS_DIR;
use deferlog_event::{RejectBuilder, RejectRow, reject_schema};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub(crate) struct DeadLetters {
    rows: RejectBuilder,
    /// This epoch's rows finished early, each when `rows` was full (a flood between
    /// two checkpoints).
    full: Vec<Result<RecordBatch, ArrowError>>,
    /// Staged pieces by the hour of the partition's clock they were written in.
    held: BTreeMap<i64, Vec<PathBuf>>,
}

/// What one epoch's dead letters came to.
pub(crate) struct Staging {
    /// This epoch's rows, for the sinks.
    pub batches: Vec<RecordBatch>,
    /// The `rejects/` file to publish with the checkpoint, if an hour is over.
    pub sealed: Option<Sealed>,
    /// The pieces that file took in: deleted once it is published.
    pub gathered: Vec<PathBuf>,
}

impl DeadLetters {
    pub(crate) fn restore(held: BTreeMap<i64, Vec<PathBuf>>) -> Self {
        DeadLetters {
            rows: RejectBuilder::default(),
            full: Vec::new(),
            held,
        }
    }

    /// Where the normalizer puts the lines it refuses; call [`DeadLetters::settle`]
    /// after each line.
    pub(crate) fn sink(&mut self) -> &mut RejectBuilder {
        &mut self.rows
    }

    pub(crate) fn append(&mut self, row: &RejectRow<'_>) {
        self.rows.append(row);
        self.settle();
    }

    /// Finishes the rows when they are full, so that a flood stays in bounded batches.
    pub(crate) fn settle(&mut self) {
        if self.rows.is_full() {
            self.full.push(self.rows.finish());
        }
    }

    /// Pieces held for an hour before `from`: a checkpoint has a file to write.
    pub(crate) fn due_before(&self, from: i64) -> bool {
        self.held.range(..from).next().is_some()
    }

    pub(crate) fn held(&self) -> &BTreeMap<i64, Vec<PathBuf>> {
        &self.held
    }

    /// This epoch's rows go to a piece held under `clock_hour` (when `stopping`, into
    /// the file instead); the pieces of hours before `from` are sealed into one
    /// `rejects/` file named `name`.
    pub(crate) fn stage(
        &mut self,
        dirs: &ScopeDirs,
        name: &str,
        clock_hour: i64,
        from: i64,
        stopping: bool,
    ) -> Result<Staging, StreamError> {
        let mut batches = std::mem::take(&mut self.full)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        if !self.rows.is_empty() {
            batches.push(self.rows.finish()?);
        }
        if !batches.is_empty() && !stopping {
            // Never published: its final path is its staged one.
            let tmp = dirs.staged_tmp(&format!("held-rejects-{name}"));
            let piece = write_file(reject_schema(), tmp.clone(), tmp, &[], &batches)?;
            self.held.entry(clock_hour).or_default().push(piece.file.tmp);
        }
        let later = self.held.split_off(&from);
        let gathered: Vec<PathBuf> = std::mem::replace(&mut self.held, later)
            .into_values()
            .flatten()
            .collect();
        let unheld: &[RecordBatch] = if stopping { &batches } else { &[] };
        let sealed = if gathered.is_empty() && unheld.is_empty() {
            None
        } else {
            Some(write_file(
                reject_schema(),
                dirs.staged_tmp(&format!("rejects-{name}")),
                dirs.root.join(REJECTS_DIR).join(name),
                &gathered,
                unheld,
            )?)
        };
        Ok(Staging {
            batches,
            sealed,
            gathered,
        })
    }
}
