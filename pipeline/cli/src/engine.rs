//! The batch pipeline under `replay` and `demo`: lines → normalizer → hour batches →
//! Parquet archive, on two threads joined by a bounded channel (the parser blocks
//! when the writer falls behind), then the hourly query over what was written.
//!
//! Shutdown order: the parser finishes its input, flushes every open hour and its
//! rejects, drops the sender; the writer drains the channel, closes every file
//! (rename = commit), and returns the list; then `hourly.sql` runs over those files.

use crate::input::Input;
use anyhow::{Context, Result, anyhow};
use deferlog_archive::{EventArchive, HOURLY_DIR, ParquetFile, REJECTS_DIR, write_parquet};
use deferlog_event::Origin;
use deferlog_event::{HOUR_US, HourBatch, HourBatcher, RejectBuilder, hour_of, reject_schema};
use deferlog_parse::{Normalizer, NormalizerConfig, Stats};
use deferlog_query::{Engine, EventFilter, EventSource, Query};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant};

/// A source of lines: a file, stdin, or the generator.
pub trait LineSource {
    fn name(&self) -> &str;
    /// The next line (its `\n` may be included), or `None` at the end.
    fn next_line(&mut self) -> Result<Option<&[u8]>>;
}

impl LineSource for Input {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_line(&mut self) -> Result<Option<&[u8]>> {
        // The io::Error already names the input.
        Ok(Input::next_line(self)?)
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("out", &self.out)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

/// Called every few thousand lines with the counts so far (progress bars).
pub type OnTick = Box<dyn FnMut(&Stats)>;
/// Called on the writer thread with an hour whose files were just closed, and those files.
pub type OnHourClosed = Box<dyn FnMut(i64, &[PathBuf]) + Send>;

pub struct EngineOptions {
    pub out: PathBuf,
    pub run_id: String,
    pub batch_rows: usize,
    pub lateness_us: i64,
    pub on_tick: Option<OnTick>,
    pub on_hour_closed: Option<OnHourClosed>,
}

#[derive(Debug)]
pub struct Summary {
    pub stats: Stats,
    pub elapsed: Duration,
    pub event_files: Vec<PathBuf>,
    pub hourly_file: Option<PathBuf>,
    pub rejects_file: Option<PathBuf>,
    pub events_written: u64,
}

enum ToWriter {
    Events(HourBatch),
    CloseBefore(i64),
    Rejects(arrow::record_batch::RecordBatch),
    /// All input was read: keep the files. Without it the writer removes them.
    Commit,
}

/// The writer hung up; its own error says why.
#[derive(Debug)]
struct WriterStopped;

impl std::fmt::Display for WriterStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the archive writer stopped")
    }
}

impl std::error::Error for WriterStopped {}

const TICK_LINES: u64 = 16_384;
const REJECT_BATCH: usize = 4_096;

pub fn run(cfg: NormalizerConfig, sources: Vec<Box<dyn LineSource>>, mut opts: EngineOptions) -> Result<Summary> {
    let started = Instant::now();
    let (tx, rx) = sync_channel::<ToWriter>(8);
    let out = opts.out.clone();
    let run_id = opts.run_id.clone();
    let on_hour_closed = opts.on_hour_closed.take();
    let writer = std::thread::Builder::new()
        .name("deferlog-writer".into())
        .spawn(move || write_loop(&out, &run_id, rx, on_hour_closed))
        .context("starting the writer thread")?;

    let parsed = parse_all(cfg, sources, &mut opts, &tx);
    drop(tx);
    let written = writer.join().map_err(|_| anyhow!("the writer thread panicked"))?;
    // Whichever side failed first is the cause: a parser that only saw the channel
    // close defers to the writer's error; a writer that only saw no commit defers to
    // the parser's.
    let (stats, (event_files, rejects_file, events_written)) = match (parsed, written) {
        (Ok(s), Ok(w)) => (s, w),
        (Err(p), Err(w)) if p.is::<WriterStopped>() => return Err(w),
        (Err(p), _) => return Err(p),
        (Ok(_), Err(w)) => return Err(w),
    };

    let hourly_file = if event_files.is_empty() {
        None
    } else {
        let batches = run_hourly(EventSource::Files(event_files.clone()), &EventFilter::default())?;
        let path = opts
            .out
            .join(HOURLY_DIR)
            .join(format!("hourly-{}.parquet", opts.run_id));
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| anyhow!("hourly query returned no schema"))?;
        Some(write_parquet(path, schema, &batches)?)
    };
    Ok(Summary {
        stats,
        elapsed: started.elapsed(),
        event_files,
        hourly_file,
        rejects_file,
        events_written,
    })
}

fn parse_all(
    cfg: NormalizerConfig,
    sources: Vec<Box<dyn LineSource>>,
    opts: &mut EngineOptions,
    tx: &SyncSender<ToWriter>,
) -> Result<Stats> {
    let send = |m: ToWriter| {
        tx.send(m)
            .map_err(|_| anyhow!("the archive writer stopped (see its error)"))
    };
    let mut norm = Normalizer::new(cfg);
    let mut batcher = HourBatcher::new(opts.batch_rows);
    let mut rejects = RejectBuilder::default();
    let mut closed_before = i64::MIN;
    for mut src in sources {
        let name = src.name().to_owned();
        let mut line = 0u64;
        while let Some(raw) = src.next_line()? {
            line += 1;
            norm.process_line(raw, Origin::Line { file: &name, line }, &mut batcher, &mut rejects);
            for hb in batcher.take_ready() {
                send(ToWriter::Events(hb?))?;
            }
            if line.is_multiple_of(TICK_LINES) {
                if rejects.len() >= REJECT_BATCH {
                    send(ToWriter::Rejects(rejects.finish()?))?;
                }
                // Watermark: hours ending before (latest event - lateness) are done. Late
                // rows for hours already closed are flushed on every tick, so they never
                // pile up until the end of input.
                if let Some(max) = batcher.max_time_us() {
                    let close = closed_before.max(hour_of(max.saturating_sub(opts.lateness_us)));
                    batcher.flush_before(close);
                    let mut flushed = false;
                    for hb in batcher.take_ready() {
                        send(ToWriter::Events(hb?))?;
                        flushed = true;
                    }
                    if flushed || close > closed_before {
                        send(ToWriter::CloseBefore(close))?;
                        closed_before = close;
                    }
                }
                if let Some(tick) = opts.on_tick.as_mut() {
                    tick(&norm.stats());
                }
            }
        }
    }
    batcher.flush_all();
    for hb in batcher.take_ready() {
        send(ToWriter::Events(hb?))?;
    }
    if !rejects.is_empty() {
        send(ToWriter::Rejects(rejects.finish()?))?;
    }
    send(ToWriter::CloseBefore(i64::MAX))?;
    send(ToWriter::Commit)?;
    Ok(norm.stats())
}

type Written = (Vec<PathBuf>, Option<PathBuf>, u64);

fn write_loop(
    out: &Path,
    run_id: &str,
    rx: std::sync::mpsc::Receiver<ToWriter>,
    mut on_hour_closed: Option<OnHourClosed>,
) -> Result<Written> {
    let mut archive = EventArchive::new(out, run_id);
    let mut rejects: Option<ParquetFile> = None;
    let mut notified = 0;
    let mut committed = false;
    let result = (|| -> Result<()> {
        for msg in rx {
            match msg {
                ToWriter::Events(hb) => archive.write(&hb)?,
                ToWriter::Rejects(b) => {
                    if rejects.is_none() {
                        let path = out.join(REJECTS_DIR).join(format!("rejects-{run_id}.parquet"));
                        rejects = Some(ParquetFile::create(path, reject_schema())?);
                    }
                    if let Some(f) = rejects.as_mut() {
                        f.write(&b)?;
                    }
                }
                ToWriter::CloseBefore(h) => {
                    archive.close_before(h)?;
                    let files = archive.files();
                    if let Some(cb) = on_hour_closed.as_mut() {
                        let mut hours: Vec<i64> = files[notified..].iter().map(|(h, _)| *h).collect();
                        hours.sort_unstable();
                        hours.dedup();
                        for hour in hours {
                            let of_hour: Vec<PathBuf> = files
                                .iter()
                                .filter(|(fh, _)| *fh == hour)
                                .map(|(_, p)| p.clone())
                                .collect();
                            cb(hour, &of_hour);
                        }
                    }
                    notified = files.len();
                }
                ToWriter::Commit => committed = true,
            }
        }
        Ok(())
    })();
    if result.is_err() || !committed {
        archive.abort();
        if let Some(f) = rejects {
            f.abort();
        }
        result?;
        anyhow::bail!("input ended with an error; this run's archive files were removed");
    }
    let rows = archive.rows();
    let files = archive.finish()?.into_iter().map(|(_, p)| p).collect();
    let rejects_file = rejects.map(ParquetFile::close).transpose()?;
    Ok((files, rejects_file, rows))
}

/// Runs `hourly.sql` over `source` on a private single-threaded runtime.
pub fn run_hourly(source: EventSource, filter: &EventFilter) -> Result<Vec<arrow::record_batch::RecordBatch>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    rt.block_on(async {
        let engine = Engine::new();
        engine.register_events(source, filter).await?;
        Ok(engine.run(Query::HOURLY).await?)
    })
}

/// The half-open hour `[hour, hour + 1h)` as a filter.
pub fn hour_filter(hour_us: i64) -> EventFilter {
    EventFilter {
        from_us: Some(hour_us),
        to_us: Some(hour_us + HOUR_US),
        ..EventFilter::default()
    }
}
