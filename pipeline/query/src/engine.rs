//! A DataFusion session with the input tables of the query files registered.

use crate::error::QueryError;
use crate::filter::EventFilter;
use crate::queries::Query;
use crate::schema::{hourly_schema, partial_schema};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::Expr;
use datafusion::prelude::{SessionConfig, SessionContext};
use deferlog_event::event_schema;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The tables query files read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// DeliveryEvent rows.
    Events,
    /// Results of `hourly.sql`, not yet merged.
    Partials,
    /// Stored hourly rows with scope, revision and final.
    Hourly,
    /// Dead letters (`rejects/`): MTA, reason, origin and raw bytes; no time, no
    /// sender, so a filter on those keeps none of them.
    Rejects,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Partials => "partials",
            Table::Hourly => "hourly",
            Table::Rejects => "rejects",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Events => event_schema(),
            Table::Partials => partial_schema(),
            Table::Hourly => hourly_schema(),
            Table::Rejects => deferlog_event::reject_schema(),
        }
    }
}

/// Where a table's rows come from.
#[derive(Debug, Clone)]
pub enum EventSource {
    /// Every `*.parquet` under a directory (e.g. the archive's `events/`), recursively.
    Dir(PathBuf),
    /// These files only.
    Files(Vec<PathBuf>),
    /// Batches in memory (tests, and windows in the stream).
    Batches(Vec<RecordBatch>),
}

/// How many of the biggest memory holders an out-of-memory error names, so a user
/// sees what needed it.
const NAMED_HOLDERS: NonZeroUsize = NonZeroUsize::new(3).expect("3 is not 0");

/// Partitions every plan is split into. Two cores here: more than that only adds
/// repartition overhead.
pub const TARGET_PARTITIONS: usize = 2;

pub struct Engine {
    ctx: SessionContext,
    /// The archive files each table registered reads: where to look for a damaged
    /// file when reading them fails.
    read: std::sync::Mutex<std::collections::HashMap<&'static str, Vec<PathBuf>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("session", &self.ctx.session_id())
            .finish()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn df_err(query: &'static str) -> impl Fn(datafusion::error::DataFusionError) -> QueryError {
    move |cause| QueryError::DataFusion { query, cause }
}

impl Engine {
    /// An engine whose queries take what memory they need.
    pub fn new() -> Self {
        Self::on(config(), Arc::new(RuntimeEnv::default()))
    }

    /// An engine whose operators reserve at most `bytes` at once: sorts and grouping
    /// spill past their share (uncompressed Arrow IPC, in a `datafusion-*` directory
    /// under the OS temp directory, `TMPDIR`, removed when the engine is dropped), and
    /// what cannot spill fails with an error whose [`QueryError::out_of_memory`]
    /// says what ran short. What the process holds besides (Parquet's reads, the allocator's slack)
    /// is not counted. `deferrals.sql` sorts every event it reads.
    pub fn bounded(bytes: usize) -> Result<Self, QueryError> {
        let pool = TrackConsumersPool::new(FairSpillPool::new(bytes), NAMED_HOLDERS);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_temp_file_path(std::env::temp_dir())
            .build_arc()
            .map_err(QueryError::Setup)?;
        // Each sort, per partition, sets this much aside up front to merge what it
        // spills (10 MiB by default); an eighth of the limit over the partitions leaves
        // a small limit room for the rows themselves.
        let config = config();
        let merge = config.options().execution.sort_spill_reservation_bytes;
        let config = config.with_sort_spill_reservation_bytes(merge.min(bytes / (8 * TARGET_PARTITIONS)));
        Ok(Self::on(config, runtime))
    }

    fn on(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> Self {
        Engine {
            ctx: SessionContext::new_with_config_rt(config, runtime),
            read: std::sync::Mutex::default(),
        }
    }

    /// Registers `events` from `source`, narrowed by `filter`.
    pub async fn register_events(&self, source: EventSource, filter: &EventFilter) -> Result<(), QueryError> {
        self.register(Table::Events, source, filter).await
    }

    /// Registers `table` from `source`, narrowed by `filter`, replacing an earlier one.
    pub async fn register(&self, table: Table, source: EventSource, filter: &EventFilter) -> Result<(), QueryError> {
        let (name, schema) = (table.name(), table.schema());
        let raw = format!("{name}_source");
        let _ = self.ctx.deregister_table(name);
        let _ = self.ctx.deregister_table(raw.as_str());
        let err = df_err("register input");
        let provider: Arc<dyn datafusion::catalog::TableProvider> = match source {
            EventSource::Batches(batches) => {
                self.reading(name, Vec::new());
                Arc::new(MemTable::try_new(schema, vec![batches]).map_err(&err)?)
            }
            EventSource::Dir(dir) => {
                if !dir.exists() {
                    return Err(QueryError::EmptyArchive(dir.display().to_string()));
                }
                let files = parquet_files(&dir);
                no_empty_file(&files)?;
                self.reading(name, files);
                Arc::new(listing(vec![url_of_dir(&dir)?], schema)?)
            }
            EventSource::Files(files) => {
                no_empty_file(&files)?;
                let urls = files.iter().map(|f| url_of_file(f)).collect::<Result<Vec<_>, _>>()?;
                self.reading(name, files);
                Arc::new(listing(urls, schema)?)
            }
        };
        self.ctx.register_table(raw.as_str(), provider).map_err(&err)?;
        let mut df = self.ctx.table(raw.as_str()).await.map_err(&err)?;
        for e in filter.exprs_for(table) {
            df = df.filter(e).map_err(&err)?;
        }
        self.ctx.register_table(name, df.into_view()).map_err(&err)?;
        Ok(())
    }

    /// Runs a query file over the registered tables and collects the result; an empty
    /// result is one empty batch, so callers always have the schema.
    pub async fn run(&self, q: Query) -> Result<Vec<RecordBatch>, QueryError> {
        self.collect(q.name, q.sql, Vec::new()).await
    }

    /// Registers `source` as the query's input and runs it, keeping the rows `filter`
    /// selects by their `hour`, `source_ip`, `mx_group` and `class` columns (hours that
    /// overlap the range, as for stored hourly rows). For a query whose rows depend on
    /// events the filter would drop from its input (a deferral's next try comes later,
    /// maybe from another IP, to another MX group or with another class): only the
    /// filter's start narrows the input, to its hour, and its end only as far as its
    /// `lookahead_us` lets it.
    pub async fn run_narrowed(
        &self,
        q: Query,
        source: EventSource,
        filter: &EventFilter,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        self.register(q.input, source, &filter.narrowed_input()).await?;
        self.collect(q.name, q.sql, filter.row_exprs(q.input)).await
    }

    /// Runs SQL a user wrote (`deferlog sql`) over the registered tables, as
    /// [`Engine::run`] runs a query file.
    pub async fn run_sql(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        self.collect("given to `deferlog sql`", sql, Vec::new()).await
    }

    /// Runs `sql`, keeping the result rows every one of `keep` holds for.
    async fn collect(&self, name: &'static str, sql: &str, keep: Vec<Expr>) -> Result<Vec<RecordBatch>, QueryError> {
        let err = df_err(name);
        let mut df = self.ctx.sql(sql).await.map_err(&err)?;
        for e in keep {
            df = df.filter(e).map_err(&err)?;
        }
        let schema = Arc::new(df.schema().as_arrow().clone());
        match df.collect().await {
            Ok(batches) => Ok(nonempty(batches, schema)),
            Err(e) => Err(self.damaged(&e).unwrap_or_else(|| err(e))),
        }
    }

    /// `table` reads `files` now (replacing what it read before).
    fn reading(&self, table: &'static str, files: Vec<PathBuf>) {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(table, files);
    }

    /// After reading the archive failed with `e`: the first registered file that
    /// cannot be read whole, if `e` is of reading files (DataFusion does not say
    /// which file a bad page is in). Reads every file, but only on this failure; not
    /// on the Arrow errors of a query's own computing (a cast a user wrote).
    fn damaged(&self, e: &datafusion::error::DataFusionError) -> Option<QueryError> {
        use datafusion::arrow::error::ArrowError;
        use datafusion::error::DataFusionError as E;
        let reading = match e.find_root() {
            E::ParquetError(_) | E::External(_) | E::IoError(_) => true,
            E::ArrowError(a, _) => matches!(**a, ArrowError::ParquetError(_) | ArrowError::IoError(..)),
            _ => false,
        };
        if !reading {
            return None;
        }
        let files: Vec<PathBuf> = self
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .flatten()
            .cloned()
            .collect();
        files.into_iter().find_map(|path| {
            unreadable(&path).map(|reason| QueryError::Damaged {
                path,
                reason: reason.to_string(),
            })
        })
    }

    /// Plans a query file without running it (tests plan every file).
    pub async fn plan(&self, q: Query) -> Result<String, QueryError> {
        let df = self.ctx.sql(q.sql).await.map_err(df_err(q.name))?;
        let plan = df.into_optimized_plan().map_err(df_err(q.name))?;
        Ok(plan.display_indent().to_string())
    }
}

fn config() -> SessionConfig {
    // Table-level statistics would make the planner read every file's footer before
    // the scan reads it again; row groups are still pruned by their own statistics at
    // scan time.
    SessionConfig::new()
        .with_target_partitions(TARGET_PARTITIONS)
        .with_information_schema(false)
        .with_collect_statistics(false)
}

/// A query's batches without the empty ones; one empty batch when that leaves none,
/// so callers always have the schema.
pub(crate) fn nonempty(batches: Vec<RecordBatch>, schema: SchemaRef) -> Vec<RecordBatch> {
    let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    }
}

fn listing(urls: Vec<ListingTableUrl>, schema: SchemaRef) -> Result<ListingTable, QueryError> {
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    ListingTable::try_new(config).map_err(df_err("register events"))
}

/// Every `.parquet` file under `dir` (links not followed).
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let p = e.path();
        if kind.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out
}

/// A file of 0 bytes is no table of no rows: deferlog publishes a file only sealed
/// and synced, so it is what an interrupted copy or restore leaves, and reading it as
/// empty would drop its rows from every report in silence.
fn no_empty_file(files: &[PathBuf]) -> Result<(), QueryError> {
    match files.iter().find(|f| std::fs::metadata(f).is_ok_and(|m| m.len() == 0)) {
        Some(f) => Err(QueryError::Damaged {
            path: f.clone(),
            reason: "0 bytes".to_owned(),
        }),
        None => Ok(()),
    }
}

/// Why the Parquet file at `path` cannot be read to its end, if it cannot.
fn unreadable(path: &Path) -> Option<datafusion::parquet::errors::ParquetError> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(e.into()),
    };
    let reader = match ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()) {
        Ok(r) => r,
        Err(e) => return Some(e),
    };
    reader.into_iter().find_map(|b| b.err().map(|e| e.into()))
}

fn url_of_dir(dir: &Path) -> Result<ListingTableUrl, QueryError> {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut s = abs.to_string_lossy().into_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    ListingTableUrl::parse(&s).map_err(|cause| QueryError::Path { path: s, cause })
}

fn url_of_file(file: &Path) -> Result<ListingTableUrl, QueryError> {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let s = abs.to_string_lossy().into_owned();
    ListingTableUrl::parse(&s).map_err(|cause| QueryError::Path { path: s, cause })
}
