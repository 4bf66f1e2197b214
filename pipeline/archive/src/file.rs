//! One Parquet file, written under a temporary name and renamed when closed.

use crate::ArchiveError;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, PageIndexPolicy, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::OffsetIndexMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Row groups big enough for good dictionary pages and statistics, small enough that
/// the writer's buffer stays a few MiB.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A piece's row group this big is copied into the file as it is encoded (see
/// [`ParquetFile::append_file`]); a smaller one is encoded again with the rows
/// around it, so a quiet hour's many small pieces do not become as many row groups.
const SPLICE_ROWS: usize = ROW_GROUP_ROWS / 8;

/// Rows are encoded a row group at a time, as `ArrowWriter` does, but on the file
/// writer underneath it: that one also takes row groups already encoded.
pub struct ParquetFile {
    path: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    file: SerializedFileWriter<BufWriter<File>>,
    factory: ArrowRowGroupWriterFactory,
    /// The row group being encoded: a writer per leaf column, and its rows so far.
    open: Option<(Vec<ArrowColumnWriter>, usize)>,
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

/// The writer's settings; the schema's metadata (the events' schema version) also as
/// the file's own key-value metadata, which readers that do not decode the embedded
/// Arrow schema (DuckDB's `parquet_kv_metadata`, Spark, parquet-tools) show.
fn props(schema: &SchemaRef) -> WriterProperties {
    let kv = schema
        .metadata()
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect::<Vec<_>>();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata((!kv.is_empty()).then_some(kv));
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
        // `ArrowWriter` sets the file up (the Arrow schema in its metadata) and hands
        // over the writers beneath it before anything is written.
        let (file, factory) = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema.clone(),
            Some(props(&schema)),
        )
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(|cause| ArchiveError::Parquet {
            path: path.clone(),
            cause,
        })?;
        Ok(ParquetFile {
            path,
            tmp,
            schema,
            file,
            factory,
            open: None,
            rows: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    fn parquet_err(&self) -> impl Fn(ParquetError) -> ArchiveError + '_ {
        |cause| ArchiveError::Parquet {
            path: self.path.clone(),
            cause,
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArchiveError> {
        if !self.takes(batch) {
            return Err(self.parquet_err()(other_schema()));
        }
        self.encode(batch).map_err(self.parquet_err())
    }

    /// Whether `batch` has this file's columns (`ArrowWriter` does not check).
    fn takes(&self, batch: &RecordBatch) -> bool {
        let theirs = batch.schema();
        let ours = self.schema.fields().iter().map(|f| f.data_type());
        theirs.fields().iter().map(|f| f.data_type()).eq(ours)
    }

    /// `batch` as this file takes it: as it is, or, for a piece staged by a build
    /// before this file's last nullable columns were added, with those columns null.
    fn widened(&self, batch: RecordBatch) -> Option<RecordBatch> {
        if self.takes(&batch) {
            return Some(batch);
        }
        let (have, ours) = (batch.num_columns(), self.schema.fields());
        let added = ours.get(have..)?;
        if added.is_empty() || added.iter().any(|f| !f.is_nullable()) {
            return None;
        }
        let mut columns = batch.columns().to_vec();
        columns.extend(
            added
                .iter()
                .map(|f| arrow::array::new_null_array(f.data_type(), batch.num_rows())),
        );
        let widened = RecordBatch::try_new(self.schema.clone(), columns).ok()?;
        self.takes(&widened).then_some(widened)
    }

    /// Encodes into the open row group, closing it at `ROW_GROUP_ROWS`. The caller
    /// has checked that the file [`takes`](ParquetFile::takes) the batch.
    fn encode(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        let mut at = 0;
        while at < batch.num_rows() {
            let (writers, rows) = match &mut self.open {
                Some(open) => open,
                open => open.insert((
                    self.factory
                        .create_column_writers(self.file.flushed_row_groups().len())?,
                    0,
                )),
            };
            let n = (ROW_GROUP_ROWS - *rows).min(batch.num_rows() - at);
            let slice = batch.slice(at, n);
            let mut leaves = writers.iter_mut();
            for (field, column) in self.schema.fields().iter().zip(slice.columns()) {
                for leaf in compute_leaves(field, column)? {
                    let writer = leaves
                        .next()
                        .ok_or_else(|| ParquetError::General("more leaf columns than writers".into()))?;
                    writer.write(&leaf)?;
                }
            }
            *rows += n;
            at += n;
            self.rows += n;
            if *rows >= ROW_GROUP_ROWS {
                self.close_row_group()?;
            }
        }
        Ok(())
    }

    fn close_row_group(&mut self) -> Result<(), ParquetError> {
        if let Some((writers, _)) = self.open.take() {
            let mut group = self.file.next_row_group()?;
            for w in writers {
                w.close()?.append_to_row_group(&mut group)?;
            }
            group.close()?;
        }
        Ok(())
    }

    /// Appends every row of a finished file of the same schema (a piece of the hour
    /// this file gathers). Its big row groups are copied as they are, not decoded
    /// and encoded again: a busy hour's rows were encoded once, into its pieces.
    pub fn append_file(&mut self, piece: &Path) -> Result<(), ArchiveError> {
        let read = |cause| ArchiveError::Read {
            path: piece.to_path_buf(),
            cause,
        };
        let file = File::open(piece).map_err(|e| read(ParquetError::External(Box::new(e))))?;
        let footer = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&file)
            .and_then(|m| ArrowReaderMetadata::try_new(m.into(), Default::default()))
            .map_err(read)?;
        let meta = footer.metadata();
        // Only bytes of the same columns, in the same order, can be copied, and only
        // with their page locations (the file's offset index covers every column
        // chunk or none); anything else is decoded into this file's schema, or
        // refused naming the piece.
        let same = meta.file_metadata().schema() == self.file.schema_descr().root_schema();
        for (i, group) in meta.row_groups().iter().enumerate() {
            let pages = meta
                .offset_index()
                .and_then(|o| o.get(i))
                .filter(|o| o.len() == group.num_columns());
            if let Some(pages) = pages.filter(|_| same && usize::try_from(group.num_rows()).unwrap_or(0) >= SPLICE_ROWS)
            {
                let stats = meta.column_index().and_then(|c| c.get(i));
                self.close_row_group().map_err(self.parquet_err())?;
                self.splice(&file, group, pages, stats).map_err(self.parquet_err())?;
                continue;
            }
            let handle = file
                .try_clone()
                .map_err(|e| read(ParquetError::External(Box::new(e))))?;
            // The footer read above, not read again per row group.
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(handle, footer.clone())
                .with_row_groups(vec![i])
                .build()
                .map_err(read)?;
            for batch in reader {
                let batch = batch.map_err(|e| read(e.into()))?;
                let Some(batch) = self.widened(batch) else {
                    return Err(read(other_schema()));
                };
                self.encode(&batch).map_err(self.parquet_err())?;
            }
        }
        Ok(())
    }

    /// Copies one encoded row group of `file` in as a row group of this file, with
    /// its page locations and, where the piece has them, page statistics.
    fn splice(
        &mut self,
        file: &File,
        group: &RowGroupMetaData,
        pages: &[OffsetIndexMetaData],
        stats: Option<&Vec<ColumnIndexMetaData>>,
    ) -> Result<(), ParquetError> {
        let rows = group.num_rows();
        let mut out = self.file.next_row_group()?;
        for (j, column) in group.columns().iter().enumerate() {
            let close = ColumnCloseResult {
                bytes_written: u64::try_from(column.compressed_size()).unwrap_or(0),
                rows_written: u64::try_from(rows).unwrap_or(0),
                metadata: column.clone(),
                bloom_filter: None,
                column_index: stats.and_then(|s| s.get(j)).cloned(),
                offset_index: pages.get(j).cloned(),
            };
            out.append_column(file, close)?;
        }
        out.close()?;
        self.rows += usize::try_from(rows).unwrap_or(0);
        Ok(())
    }

    /// Writes the footer, syncs and renames into place; returns the final path. A file
    /// that cannot be finished leaves nothing behind.
    pub fn close(self) -> Result<PathBuf, ArchiveError> {
        let tmp = self.tmp.clone();
        self.seal()
            .and_then(|staged| staged.publish().map(|()| staged.path))
            .inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })
    }

    /// Writes the footer and syncs, leaving the file at its temporary name: durable,
    /// but invisible to readers of the archive until published.
    pub fn seal(mut self) -> Result<Staged, ArchiveError> {
        self.close_row_group().map_err(self.parquet_err())?;
        let ParquetFile { path, tmp, file, .. } = self;
        let parquet = |cause| ArchiveError::Parquet {
            path: path.clone(),
            cause,
        };
        let buf = file.into_inner().map_err(parquet)?;
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

    /// Neither in staging nor in the archive: removed by hand, or lost with a disk.
    /// Publishing it would fail forever; recovery counts it instead.
    pub fn is_lost(&self) -> bool {
        !self.tmp.exists() && !self.path.exists()
    }

    /// Deletes the sealed file, never published.
    pub fn discard(self) {
        let _ = fs::remove_file(self.tmp);
    }
}

impl ParquetFile {
    /// Drops the unfinished file.
    pub fn abort(self) {
        let ParquetFile { tmp, file, .. } = self;
        drop(file);
        let _ = fs::remove_file(tmp);
    }
}

fn other_schema() -> ParquetError {
    ParquetError::General(crate::error::OTHER_SCHEMA.into())
}

/// Writes `batches` to one file at `path` (even when empty, so readers see the schema).
pub fn write_parquet(path: PathBuf, schema: SchemaRef, batches: &[RecordBatch]) -> Result<PathBuf, ArchiveError> {
    let mut f = ParquetFile::create(path, schema)?;
    for b in batches {
        if let Err(e) = f.write(b) {
            f.abort();
            return Err(e);
        }
    }
    f.close()
}

/// Every row of the file at `path`; `None` when there is no file.
pub fn read_parquet(path: &Path) -> Result<Option<Vec<RecordBatch>>, ArchiveError> {
    let read = |cause| ArchiveError::Read {
        path: path.to_path_buf(),
        cause,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read(ParquetError::External(Box::new(e)))),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(read)?;
    reader
        .map(|b| b.map_err(|e| read(e.into())))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("mx_group", dict, false),
            Field::new("response", DataType::Utf8, true),
        ]))
    }

    fn rows(from: i64, n: usize) -> RecordBatch {
        let ns: Vec<i64> = (from..from + n as i64).collect();
        let groups: DictionaryArray<Int32Type> =
            ns.iter().map(|i| if i % 3 == 0 { "google" } else { "yahoo" }).collect();
        let replies: StringArray = ns
            .iter()
            .map(|i| (i % 5 != 0).then(|| format!("421 4.7.0 try again later {i}")))
            .collect();
        RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from(ns)), Arc::new(groups), Arc::new(replies)],
        )
        .expect("batch")
    }

    fn piece(dir: &Path, name: &str, batch: &RecordBatch) -> PathBuf {
        let mut f = ParquetFile::create(dir.join(name), schema()).expect("create");
        f.write(batch).expect("write");
        f.close().expect("close")
    }

    #[test]
    fn pieces_are_gathered_whole_in_order_big_row_groups_copied_small_ones_merged() {
        let dir = tempfile::tempdir().expect("tmp");
        let small = rows(0, 10);
        let big = rows(10, SPLICE_ROWS + 5);
        let tail = rows((SPLICE_ROWS + 15) as i64, 3);
        let (a, b) = (
            piece(dir.path(), "a.parquet", &small),
            piece(dir.path(), "b.parquet", &big),
        );
        let mut out = ParquetFile::create(dir.path().join("hour.parquet"), schema()).expect("create");
        out.write(&rows(-4, 4)).expect("write");
        out.append_file(&a).expect("append a");
        out.append_file(&b).expect("append b");
        out.write(&tail).expect("write");
        assert_eq!(out.rows(), SPLICE_ROWS + 22);
        let path = out.close().expect("close");

        let indexed = |p: &Path| {
            ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Required)
                .parse_and_finish(&File::open(p).expect("open"))
                .expect("footer and page index")
        };
        let (meta, copied_from) = (indexed(&path), indexed(&b));
        let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(
            groups,
            vec![14, (SPLICE_ROWS + 5) as i64, 3],
            "the rows before and a merged, b's group as it was, the rest"
        );
        let sizes = |g: &RowGroupMetaData| g.columns().iter().map(|c| c.compressed_size()).collect::<Vec<_>>();
        assert_eq!(
            sizes(&meta.row_groups()[1]),
            sizes(&copied_from.row_groups()[0]),
            "copied, not encoded again"
        );
        // The page locations moved with the bytes: each column's first data page is
        // where its chunk says, in this file, not where it was in the piece.
        for (j, c) in meta.row_groups()[1].columns().iter().enumerate() {
            let first = meta.offset_index().expect("offset index")[1][j].page_locations()[0].offset;
            assert_eq!(first, c.data_page_offset(), "column {j}");
            assert_ne!(
                first,
                copied_from.row_groups()[0].column(j).data_page_offset(),
                "column {j}"
            );
        }

        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open")).expect("reader");
        assert_eq!(
            builder.schema().fields(),
            schema().fields(),
            "the Arrow schema, dictionaries included"
        );
        let read: Vec<RecordBatch> = builder.build().expect("build").collect::<Result<_, _>>().expect("rows");
        let read = arrow::compute::concat_batches(&schema(), &read).expect("concat");
        let expected = arrow::compute::concat_batches(&schema(), &[rows(-4, 4), small, big, tail]).expect("concat");
        assert_eq!(read, expected);
        assert!(read.column(2).null_count() > 0);
    }

    #[test]
    fn a_piece_staged_before_a_nullable_column_was_added_gets_it_null() {
        let dir = tempfile::tempdir().expect("tmp");
        let full = rows(0, 6);
        let older = Arc::new(full.schema().project(&[0, 1]).expect("project"));
        let old_rows = full.project(&[0, 1]).expect("project");
        let mut f = ParquetFile::create(dir.path().join("old.parquet"), older).expect("create");
        f.write(&old_rows).expect("write");
        let old = f.close().expect("close");
        let mut out = ParquetFile::create(dir.path().join("hour.parquet"), schema()).expect("create");
        out.append_file(&old).expect("an older piece is taken");
        let path = out.close().expect("close");
        let read = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
            .expect("reader")
            .build()
            .expect("build")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        let read = arrow::compute::concat_batches(&schema(), &read).expect("concat");
        assert_eq!(read.project(&[0, 1]).expect("project"), old_rows);
        assert_eq!(read.column(2).null_count(), 6, "the added column is null");
    }

    #[test]
    fn a_piece_of_another_schema_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let other = Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(other.clone(), vec![Arc::new(StringArray::from(vec!["x"]))]).expect("batch");
        let mut f = ParquetFile::create(dir.path().join("other.parquet"), other).expect("create");
        f.write(&batch).expect("write");
        let odd = f.close().expect("close");
        let mut out = ParquetFile::create(dir.path().join("hour.parquet"), schema()).expect("create");
        let err = out.append_file(&odd).expect_err("another schema").to_string();
        assert!(err.contains("other.parquet"), "{err}");
    }
}
