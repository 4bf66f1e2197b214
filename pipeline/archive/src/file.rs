//! One Parquet file, written under a temporary name and renamed when closed.

use crate::ArchiveError;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Row groups big enough for good dictionary pages and statistics, small enough that
/// the writer's buffer stays a few MiB.
const ROW_GROUP_ROWS: usize = 128 * 1024;

pub struct ParquetFile {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: usize,
}

impl std::fmt::Debug for ParquetFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFile")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

/// Columns that are (nearly) unique per row: a dictionary page would only overflow
/// and fall back after paying for the interning, and min/max statistics on them prune
/// nothing.
const UNIQUE_COLUMNS: [&str; 6] = ["queue_id", "message_id", "recipient_hash", "response", "origin", "raw"];

/// Pages of the unique columns (the bulk of a file's bytes) close at this size, so
/// they are encoded and compressed as batches are written rather than all at once
/// when the file is sealed (at a checkpoint, often the last thing before a commit).
/// Snappy compresses in 64 KiB blocks anyway: smaller pages lose nothing.
const UNIQUE_PAGE_BYTES: usize = 64 * 1024;

fn props() -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for c in UNIQUE_COLUMNS {
        let path = ColumnPath::from(c);
        b = b
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_data_page_size_limit(path.clone(), UNIQUE_PAGE_BYTES)
            .set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    b.build()
}

impl ParquetFile {
    pub fn create(path: PathBuf, schema: SchemaRef) -> Result<Self, ArchiveError> {
        let tmp = path.with_extension("parquet.tmp");
        Self::create_staged(tmp, path, schema)
    }

    /// A file written at `tmp` (e.g. in a staging directory) that [`ParquetFile::seal`]
    /// finishes there and [`Staged::publish`] later moves to `path`.
    pub fn create_staged(tmp: PathBuf, path: PathBuf, schema: SchemaRef) -> Result<Self, ArchiveError> {
        let create = |cause| ArchiveError::Create {
            path: path.clone(),
            cause,
        };
        if let Some(dir) = tmp.parent() {
            fs::create_dir_all(dir).map_err(create)?;
        }
        let file = File::create(&tmp).map_err(create)?;
        let writer =
            ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema, Some(props())).map_err(|cause| {
                ArchiveError::Parquet {
                    path: path.clone(),
                    cause,
                }
            })?;
        Ok(ParquetFile {
            path,
            tmp,
            writer,
            rows: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArchiveError> {
        self.rows += batch.num_rows();
        self.writer.write(batch).map_err(|cause| ArchiveError::Parquet {
            path: self.path.clone(),
            cause,
        })
    }

    /// Appends every row of a finished file of the same schema, a batch at a time (a
    /// piece of the hour this file gathers).
    pub fn append_file(&mut self, piece: &Path) -> Result<(), ArchiveError> {
        let read = |cause| ArchiveError::Read {
            path: piece.to_path_buf(),
            cause,
        };
        let file = File::open(piece).map_err(|e| read(ParquetError::External(Box::new(e))))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(read)?;
        for batch in reader {
            self.write(&batch.map_err(|e| read(e.into()))?)?;
        }
        Ok(())
    }

    /// Writes the footer, syncs and renames into place; returns the final path.
    pub fn close(self) -> Result<PathBuf, ArchiveError> {
        let staged = self.seal()?;
        staged.publish()?;
        Ok(staged.path)
    }

    /// Writes the footer and syncs, leaving the file at its temporary name: durable,
    /// but invisible to readers of the archive until published.
    pub fn seal(self) -> Result<Staged, ArchiveError> {
        let ParquetFile { path, tmp, writer, .. } = self;
        let parquet = |cause| ArchiveError::Parquet {
            path: path.clone(),
            cause,
        };
        let buf = writer.into_inner().map_err(parquet)?;
        let file = buf.into_inner().map_err(|e| ArchiveError::Rename {
            path: path.clone(),
            cause: e.into_error(),
        })?;
        file.sync_all().map_err(|cause| ArchiveError::Rename {
            path: path.clone(),
            cause,
        })?;
        Ok(Staged { tmp, path })
    }
}

/// A sealed file waiting to be moved into the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub tmp: PathBuf,
    pub path: PathBuf,
}

impl Staged {
    /// Moves the file into place. Idempotent, so recovery can repeat it: a file
    /// already published (no `tmp`, `path` present) is fine.
    pub fn publish(&self) -> Result<(), ArchiveError> {
        let err = |cause| ArchiveError::Rename {
            path: self.path.clone(),
            cause,
        };
        if !self.tmp.exists() && self.path.exists() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(err)?;
        }
        fs::rename(&self.tmp, &self.path).map_err(err)
    }

    /// Deletes the sealed file, never published.
    pub fn discard(self) {
        let _ = fs::remove_file(self.tmp);
    }
}

impl ParquetFile {
    /// Drops the unfinished file.
    pub fn abort(self) {
        let ParquetFile { tmp, writer, .. } = self;
        drop(writer);
        let _ = fs::remove_file(tmp);
    }
}

/// Writes `batches` to one file at `path` (even when empty, so readers see the schema).
pub fn write_parquet(path: PathBuf, schema: SchemaRef, batches: &[RecordBatch]) -> Result<PathBuf, ArchiveError> {
    let mut f = ParquetFile::create(path, schema)?;
    for b in batches {
        f.write(b)?;
    }
    f.close()
}
