//! The private runtimes every command runs query files and SQL on (`report`, `sql`,
//! the end of `replay`, `demo`'s table), held to `--memory-limit` where one is given.
//! Owns no SQL text: the query files are `deferlog-query`'s, the ad-hoc SQL the user's.

use crate::size::Size;
use crate::stop::StopSignals;
use anyhow::{Context, Result, anyhow};
use arrow::record_batch::RecordBatch;
use deferlog_archive::{EVENTS_DIR, HOURLY_DIR, REJECTS_DIR};
use deferlog_query::{Engine, EventFilter, EventSource, Query, QueryError, Table};
use std::path::{Path, PathBuf};

/// Runs a query file over `source` (as the query's input table) on a private
/// runtime with a worker per partition of the session (`Engine::new`): after a
/// replay this query is all that runs, and one thread would leave a core idle.
pub fn run_query(query: Query, source: EventSource, filter: &EventFilter) -> Result<Vec<RecordBatch>> {
    run_query_within(query, source, filter, None)
}

/// [`run_query`] held to `memory` (`--memory-limit`), if given.
pub fn run_query_within(
    query: Query,
    source: EventSource,
    filter: &EventFilter,
    memory: Option<&Size>,
) -> Result<Vec<RecordBatch>> {
    query_runtime()?.block_on(within(memory, |engine| async move {
        engine.register(query.input, source, filter).await?;
        engine.run(query).await
    }))
}

/// Runs a query file whose rows depend on events `filter` would drop from its input
/// (`deferrals.sql`), narrowing its rows instead (`Engine::run_narrowed`), held to
/// `memory` (`--memory-limit`), if given.
pub fn run_narrowed(
    query: Query,
    source: EventSource,
    filter: &EventFilter,
    memory: Option<&Size>,
) -> Result<Vec<RecordBatch>> {
    query_runtime()?.block_on(within(memory, |engine| async move {
        engine.run_narrowed(query, source, filter).await
    }))
}

/// Runs `work` on an engine held to `memory`, if given. A query that needed more says
/// which flag to raise. SIGTERM or Ctrl-C stops it with an error rather than killing
/// the process, so that what it spilled is removed as the engine drops.
async fn within<F, Fut>(memory: Option<&Size>, work: F) -> Result<Vec<RecordBatch>>
where
    F: FnOnce(Engine) -> Fut,
    Fut: Future<Output = Result<Vec<RecordBatch>, QueryError>>,
{
    let Some(m) = memory else {
        return Ok(work(Engine::new()).await?);
    };
    let engine = Engine::bounded(m.bytes)?;
    let mut stop = StopSignals::new()?;
    let result = tokio::select! {
        r = work(engine) => r,
        _ = stop.recv() => anyhow::bail!("stopped (SIGTERM or Ctrl-C); its spill files are removed"),
    };
    result.map_err(|e| match e.out_of_memory() {
        Some(short) => anyhow!(
            "the query needs more memory than --memory-limit {m} lets its sorts and grouping reserve: raise \
             it, or read less (report: --from, --to): {short}"
        ),
        None => e.into(),
    })
}

fn query_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(deferlog_query::TARGET_PARTITIONS)
        .enable_all()
        .build()
        .context("starting tokio")
}

/// `--data`, if it is a directory; else what it is instead.
pub fn archive_dir(data: &Path) -> Result<()> {
    if data.is_dir() {
        return Ok(());
    }
    let why = if data.exists() {
        "not a directory"
    } else {
        "no such directory"
    };
    anyhow::bail!(
        "--data {}: {why}; an archive is what `deferlog replay`, `run` or `demo` write",
        data.display()
    )
}

/// SQL a user wrote, over an archive's tables: `events`, `hourly` and `rejects` (its
/// `events/`, `hourly/` and `rejects/`), each empty while the archive has none.
pub fn run_sql(archive: &Path, sql: &str, memory: Option<&Size>) -> Result<Vec<RecordBatch>> {
    let tables: Vec<(Table, PathBuf)> = [
        (Table::Events, EVENTS_DIR),
        (Table::Hourly, HOURLY_DIR),
        (Table::Rejects, REJECTS_DIR),
    ]
    .into_iter()
    .map(|(t, d)| (t, archive.join(d)))
    .collect();
    archive_dir(archive)?;
    if tables.iter().all(|(_, d)| !d.is_dir()) {
        anyhow::bail!(
            "--data {}: no {EVENTS_DIR}/, {HOURLY_DIR}/ or {REJECTS_DIR}/ in it; an archive is what `deferlog replay`, \
             `run` or `demo` write",
            archive.display()
        );
    }
    query_runtime()?.block_on(within(memory, |engine| async move {
        // A table the archive has no files of yet (no dead letters) is there, empty.
        for (table, dir) in tables {
            let source = if dir.is_dir() {
                EventSource::Dir(dir)
            } else {
                EventSource::Batches(Vec::new())
            };
            engine.register(table, source, &EventFilter::default()).await?;
        }
        engine.run_sql(sql).await
    }))
}
