//! The batch pipeline under `replay`:
//!
//! ```text
//! reader ──chunks of lines, split by MTA host──▶ parser threads ──hour batches──▶ writer
//! ```
//!
//! then `hourly.sql` over what was written. Channels are bounded: the reader blocks
//! when parsers fall behind, parsers block when the writer does. Splitting by host
//! keeps each queue id's lines on one parser, in order.
//!
//! Shutdown order: the reader finishes its input and drops the chunk senders; each
//! parser flushes every open hour and its rejects and reports "done with all hours";
//! once all parsers joined without error the engine sends Commit; the writer drains
//! the channel, closes (renames) every file and returns the list — or, with no Commit,
//! removes them; then `hourly.sql` runs over exactly those files. The hourly rows are
//! final up to the run's newest event minus the allowed lateness; rows of hours an
//! earlier replay left open that this run read past are read from that run's hourly
//! file (the only earlier data a run reads) and written again, final, beside them.

use crate::carried::OpenHour;
use crate::input::{Input, InputEnd};
use crate::query::run_query;
use anyhow::{Context, Result, anyhow};
use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use arrow::record_batch::RecordBatch;
use deferlog_archive::{EventArchive, HOURLY_DIR, ParquetFile, REJECTS_DIR, write_parquet};
use deferlog_event::Origin;
use deferlog_event::{HourBatch, HourBatcher, RejectBuilder, hour_of, reject_schema};
use deferlog_parse::{Normalizer, NormalizerConfig, NormalizerState, Stats};
use deferlog_query::schema::{hourly_schema, partial_schema, to_hourly};
use deferlog_query::{EventFilter, EventSource, Query};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::{Duration, Instant};

/// A source of lines: a file, stdin, or the generator.
pub trait LineSource {
    fn name(&self) -> &str;
    /// The next line (its `\n` may be included), or `None` at the end.
    fn next_line(&mut self) -> Result<Option<&[u8]>>;
    /// Whether the last line is only the start of one too long to read whole.
    fn cut(&self) -> bool {
        false
    }
    /// Lines of the input before the first one it gives (a log continued where an
    /// earlier replay stopped): origins number lines in the whole input.
    fn lines_before(&self) -> u64 {
        0
    }
    /// Where reading it ended (a file's: to record how far it was read).
    fn end(&self) -> Option<InputEnd> {
        None
    }
}

impl LineSource for Input {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_line(&mut self) -> Result<Option<&[u8]>> {
        // The io::Error already names the input.
        Ok(Input::next_line(self)?)
    }

    fn cut(&self) -> bool {
        Input::cut(self)
    }

    fn lines_before(&self) -> u64 {
        self.lines_before
    }

    fn end(&self) -> Option<InputEnd> {
        Some(Input::end(self))
    }
}

impl EngineOptions {
    fn written_to(&self) -> &Path {
        self.stage.as_deref().unwrap_or(&self.out)
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

/// Called every few thousand lines (progress bars).
pub type OnTick = Box<dyn FnMut()>;

pub struct EngineOptions {
    pub out: PathBuf,
    /// Where the run writes its files (a directory laid out as `out`), when not into
    /// `out` itself: [`publish`] moves them there once the run has succeeded, so that
    /// readers of the archive never see a run that may yet be taken back.
    pub stage: Option<PathBuf>,
    pub run_id: String,
    pub batch_rows: usize,
    pub lateness_us: i64,
    /// Parser threads; lines are split between them by MTA host.
    pub workers: usize,
    /// Each parser thread's correlation state to start from, in thread order (an
    /// earlier replay's, `carried`); empty: from none.
    pub carried: Vec<NormalizerState>,
    /// Hours earlier replays into the archive left open (`carried`): this run writes
    /// those it reads past again, final.
    pub open_hours: Vec<OpenHour>,
    pub on_tick: Option<OnTick>,
}

#[derive(Debug)]
pub struct Summary {
    pub stats: Stats,
    pub elapsed: Duration,
    pub event_files: Vec<PathBuf>,
    pub hourly_file: Option<PathBuf>,
    /// The first and last hour of its events (µs), if it had any.
    pub hours: Option<HourSpan>,
    pub rejects_file: Option<PathBuf>,
    pub events_written: u64,
    /// Per input (by its name): lines read and events found.
    pub by_input: HashMap<String, InputCounts>,
    /// Per input (by its name): where reading it ended.
    pub ends: HashMap<String, InputEnd>,
    /// Each parser thread's state at the end, in thread order.
    pub parsers: Vec<NormalizerState>,
    /// The hours left open for the next replay to close: this run's last ones (its
    /// input ends less than the allowed lateness after them), and earlier runs' it
    /// did not read past.
    pub open_hours: Vec<OpenHour>,
}

/// The first and last hour (µs) of a run's events.
pub type HourSpan = (i64, i64);

/// What one input gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputCounts {
    pub lines: u64,
    pub events: u64,
    /// Lines that are no record of any MTA read (`Stats::foreign_lines`).
    pub foreign: u64,
}

impl InputCounts {
    /// No delivery in lines mostly not records of the format read: the wrong
    /// `--format`, or no mail log.
    pub fn is_foreign(&self) -> bool {
        self.events == 0 && self.foreign * 2 > self.lines
    }
}

impl Summary {
    /// Whether `input` gave any event (inputs read no line of count as none).
    pub fn found_events_in(&self, input: &str) -> bool {
        self.by_input.get(input).is_some_and(|c| c.events > 0)
    }
}

enum ToWriter {
    Events {
        worker: usize,
        batch: HourBatch,
    },
    /// The worker has nothing more for hours before `hour` (its watermark).
    CloseBefore {
        worker: usize,
        hour: i64,
    },
    Rejects(RecordBatch),
    /// All input was read: keep the files. Without it the writer removes them.
    Commit,
}

/// Lines for one parser thread: their bytes, and per line its end in `data` and its
/// number in `file`.
struct Chunk {
    file: Arc<str>,
    data: Vec<u8>,
    lines: Vec<(usize, u64)>,
    /// Line numbers of the lines their reader cut (nearly always none).
    cut: Vec<u64>,
}

/// A downstream thread hung up; its own error says why.
#[derive(Debug)]
struct Stopped(&'static str);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} stopped", self.0)
    }
}

impl std::error::Error for Stopped {}

const TICK_LINES: u64 = 16_384;
/// Big enough that channel traffic is a few hundred messages per million lines.
const CHUNK_BYTES: usize = 256 * 1024;

pub fn run(cfg: NormalizerConfig, sources: Vec<Box<dyn LineSource>>, mut opts: EngineOptions) -> Result<Summary> {
    let started = Instant::now();
    let workers = opts.workers.max(1);
    let (tx, rx) = sync_channel::<ToWriter>(8 * workers);
    let (out, run_id) = (opts.written_to().to_path_buf(), opts.run_id.clone());
    let writer = std::thread::Builder::new()
        .name("deferlog-writer".into())
        .spawn(move || write_loop(&out, &run_id, workers, rx))
        .context("starting the writer thread")?;

    let (recycle_tx, recycle_rx) = channel::<Chunk>();
    let mut to_workers = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    let mut carried = std::mem::take(&mut opts.carried).into_iter();
    for worker in 0..workers {
        let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(4);
        let (cfg, tx, recycle) = (cfg.clone(), tx.clone(), recycle_tx.clone());
        let (batch_rows, lateness_us) = (opts.batch_rows, opts.lateness_us);
        let from = carried.next();
        let handle = std::thread::Builder::new()
            .name(format!("deferlog-parse-{worker}"))
            .spawn(move || {
                let mut norm = Normalizer::new(cfg);
                if let Some(state) = from {
                    norm.restore(state);
                }
                parse_chunks(norm, worker, chunk_rx, recycle, &tx, batch_rows, lateness_us)
            })
            .context("starting a parser thread")?;
        to_workers.push(chunk_tx);
        handles.push(handle);
    }
    drop(recycle_tx);

    let read = read_all(sources, &to_workers, &recycle_rx, opts.on_tick.as_mut());
    drop(to_workers);
    let mut stats = Stats::default();
    let mut by_input: HashMap<String, InputCounts> = HashMap::new();
    let mut parsers = Vec::with_capacity(workers);
    let mut newest_us: Option<i64> = None;
    let mut failures = Vec::new();
    for h in handles {
        match h
            .join()
            .map_err(|_| anyhow!("a parser thread panicked"))
            .and_then(|r| r)
        {
            Ok((state, inputs, newest)) => {
                newest_us = newest_us.max(newest);
                stats.merge(&state.stats);
                parsers.push(state);
                for (name, c) in inputs {
                    let total = by_input.entry(name.to_string()).or_default();
                    total.lines += c.lines;
                    total.events += c.events;
                    total.foreign += c.foreign;
                }
            }
            Err(e) => failures.push(e),
        }
    }
    let ends = match read {
        Ok(ends) => ends,
        Err(e) => {
            failures.push(e);
            HashMap::new()
        }
    };
    // A writer that failed after the last batch hangs up on the commit: its own error,
    // joined below, says why.
    if failures.is_empty() && tx.send(ToWriter::Commit).is_err() {
        failures.push(anyhow::Error::new(Stopped("archive writer")));
    }
    drop(tx);
    let written = writer.join().map_err(|_| anyhow!("the writer thread panicked"))?;
    // The first failure that is not just "the next thread hung up" is the cause; a
    // writer that saw no commit only reports the files it removed.
    let (event_files, rejects_file, events_written) = match (failures.is_empty(), written) {
        (true, w) => w?,
        (false, Err(w)) if failures.iter().all(|f| f.is::<Stopped>()) => return Err(w),
        (false, _) => {
            let first = failures.iter().position(|f| !f.is::<Stopped>()).unwrap_or(0);
            return Err(failures.swap_remove(first));
        }
    };
    // Past the writer's commit, a failure takes its files back too: a failed run adds
    // nothing, so running it again counts nothing twice.
    let (hourly_file, hours, open_hours) =
        finish(&opts, &stats, events_written, &event_files, newest_us).inspect_err(|_| {
            for f in event_files.iter().chain(&rejects_file) {
                remove_with_empty_dirs(f, &opts.out);
            }
        })?;
    Ok(Summary {
        stats,
        elapsed: started.elapsed(),
        event_files,
        hourly_file,
        hours,
        rejects_file,
        events_written,
        by_input,
        ends,
        parsers,
        open_hours,
    })
}

/// Moves a run's files from `stage` to the same places under `out`, durably, and
/// names them so in `summary`; the stage's directories go as they empty.
pub fn publish(summary: &mut Summary, stage: &Path, out: &Path) -> Result<()> {
    let mut dirs = std::collections::BTreeSet::new();
    let files = summary
        .event_files
        .iter_mut()
        .chain(summary.hourly_file.as_mut())
        .chain(summary.rejects_file.as_mut());
    for f in files {
        let Ok(rel) = f.strip_prefix(stage) else { continue };
        let to = out.join(rel);
        let dir = to.parent().unwrap_or(out);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::rename(&*f, &to).with_context(|| format!("moving {} to {}", f.display(), to.display()))?;
        remove_with_empty_dirs(f, out);
        // The directories made for it too, up to the archive's own.
        dirs.extend(
            dir.ancestors()
                .take_while(|d| d.starts_with(out))
                .map(Path::to_path_buf),
        );
        *f = to;
    }
    for d in dirs {
        std::fs::File::open(&d)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", d.display()))?;
    }
    Ok(())
}

/// An hour (µs) as `YYYY-MM-DDTHH:00Z`.
pub fn hour_text(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map_or_else(|| us.to_string(), |t| t.format("%Y-%m-%dT%H:00Z").to_string())
}

/// Removes `f`, and the directories between it and `out` that it leaves empty (a
/// failed run's files, the replay record of one: nothing left behind).
pub fn remove_with_empty_dirs(f: &Path, out: &Path) {
    let _ = std::fs::remove_file(f);
    for d in f.ancestors().skip(1).take_while(|d| *d != out && d.starts_with(out)) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// The run's hourly rows, from its committed event files; and earlier runs' open hours
/// it read past, written final. An hour is final once the run's newest event is the
/// allowed lateness past its end, as the stream's watermark has it: a log cut by
/// logrotate mid-hour leaves that hour open, and the next replay into the archive
/// (the next file) adds to it and closes it.
fn finish(
    opts: &EngineOptions,
    stats: &Stats,
    events_written: u64,
    event_files: &[PathBuf],
    newest_us: Option<i64>,
) -> Result<(Option<PathBuf>, Option<HourSpan>, Vec<OpenHour>)> {
    // Every event the parsers produced must be in the archive; anything else is a bug
    // in this engine, and the run's output should not be trusted.
    if events_written != stats.events {
        anyhow::bail!(
            "internal error: {} events parsed but {events_written} written",
            stats.events
        );
    }
    if event_files.is_empty() {
        return Ok((None, None, opts.open_hours.clone()));
    }
    let batches = run_query(
        Query::HOURLY,
        EventSource::Files(event_files.to_vec()),
        &EventFilter::default(),
    )?;
    let final_before = newest_us.map_or(i64::MIN, |n| hour_of(n.saturating_sub(opts.lateness_us)));
    // A replay is its own scope, written once: revision 0.
    let mut rows = batches
        .iter()
        .map(|b| to_hourly(b, &opts.run_id, 0, true).and_then(|r| final_before_hour(&r, final_before)))
        .collect::<Result<Vec<_>, _>>()?;
    let path = opts
        .written_to()
        .join(HOURLY_DIR)
        .join(deferlog_archive::hourly_file_name(&opts.run_id));
    let own_hours: Vec<i64> = rows
        .iter()
        .filter_map(|b| b.column(0).as_primitive_opt::<TimestampMicrosecondType>())
        .flat_map(|hours| hours.iter().flatten())
        .collect();
    let hours = own_hours.iter().fold(None, |span: Option<HourSpan>, &h| {
        Some(span.map_or((h, h), |(lo, hi)| (lo.min(h), hi.max(h))))
    });
    let mut open = Vec::new();
    for o in &opts.open_hours {
        match (o.hour_us < final_before).then(|| closed_copy(&opts.out, o)) {
            Some(Ok(copies)) => rows.extend(copies),
            Some(Err(e)) => {
                // The earlier run's rows stay as they are, open: the new logs still go in.
                crate::say!("deferlog replay: {} stays open: {e:#}", hour_text(o.hour_us));
                open.push(o.clone());
            }
            None => open.push(o.clone()),
        }
    }
    let mut own_open: Vec<i64> = own_hours.into_iter().filter(|h| *h >= final_before).collect();
    own_open.sort_unstable();
    own_open.dedup();
    open.extend(own_open.into_iter().map(|hour_us| OpenHour {
        scope: opts.run_id.clone(),
        hour_us,
    }));
    Ok((Some(write_parquet(path, hourly_schema(), &rows)?), hours, open))
}

/// Hourly rows with `final` set for the hours before `final_before` only.
fn final_before_hour(rows: &RecordBatch, final_before: i64) -> Result<RecordBatch, arrow::error::ArrowError> {
    let hours = rows.column(0).as_primitive::<TimestampMicrosecondType>();
    let is_final: arrow::array::BooleanArray = hours
        .iter()
        .map(|h| Some(h.is_some_and(|h| h < final_before)))
        .collect();
    let mut cols = rows.columns().to_vec();
    if let Some(last) = cols.last_mut() {
        *last = Arc::new(is_final);
    }
    RecordBatch::try_new(rows.schema(), cols)
}

/// An earlier replay's rows of an hour it left open, as the next revision of its
/// scope, final: the hour's latest rows then say it is closed. Nothing when its file is
/// gone (nothing left to close); an error when it cannot be read as hourly rows.
fn closed_copy(out: &Path, open: &OpenHour) -> Result<Vec<RecordBatch>> {
    let path = out
        .join(HOURLY_DIR)
        .join(deferlog_archive::hourly_file_name(&open.scope));
    let copy = || -> Result<Vec<RecordBatch>> {
        let Some(batches) = deferlog_archive::read_parquet(&path)? else {
            return Ok(Vec::new());
        };
        let partial: Vec<usize> = (0..partial_schema().fields().len()).collect();
        let mut copies = Vec::new();
        for batch in batches {
            anyhow::ensure!(batch.num_columns() == hourly_schema().fields().len(), "not hourly rows");
            let hours = batch
                .column(0)
                .as_primitive_opt::<TimestampMicrosecondType>()
                .context("not hourly rows")?;
            let of_hour: arrow::array::BooleanArray = hours.iter().map(|h| Some(h == Some(open.hour_us))).collect();
            let rows = arrow::compute::filter_record_batch(&batch, &of_hour)?.project(&partial)?;
            if rows.num_rows() > 0 {
                copies.push(to_hourly(&rows, &open.scope, 1, true)?);
            }
        }
        Ok(copies)
    };
    copy().with_context(|| format!("{} (the run that left it open)", path.display()))
}

/// The parser thread a line goes to: by its syslog host (Exim's own log: message id),
/// so every line of one queue id meets the same correlation state, in order.
fn worker_of(line: &[u8], workers: usize) -> usize {
    if workers == 1 {
        return 0;
    }
    // FNV-1a: stable, and plenty for spreading a handful of host names.
    let h = deferlog_parse::route_key(line)
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    (h % workers as u64) as usize
}

fn read_all(
    sources: Vec<Box<dyn LineSource>>,
    to_workers: &[SyncSender<Chunk>],
    recycled: &Receiver<Chunk>,
    mut on_tick: Option<&mut OnTick>,
) -> Result<HashMap<String, InputEnd>> {
    let mut ends = HashMap::new();
    let fresh = |file: &Arc<str>| match recycled.try_recv() {
        Ok(mut c) => {
            c.data.clear();
            c.lines.clear();
            c.cut.clear();
            c.file = file.clone();
            c
        }
        Err(_) => Chunk {
            file: file.clone(),
            data: Vec::with_capacity(CHUNK_BYTES + 4096),
            lines: Vec::new(),
            cut: Vec::new(),
        },
    };
    let send = |w: usize, c: Chunk| {
        to_workers[w]
            .send(c)
            .map_err(|_| anyhow::Error::new(Stopped("parser thread")))
    };
    let mut total = 0u64;
    for mut src in sources {
        let file: Arc<str> = src.name().into();
        let mut pending: Vec<Chunk> = to_workers.iter().map(|_| fresh(&file)).collect();
        let mut line = src.lines_before();
        while let Some(raw) = src.next_line()? {
            line += 1;
            let w = worker_of(raw, to_workers.len());
            let c = &mut pending[w];
            c.data.extend_from_slice(raw);
            if src.cut() {
                c.cut.push(line);
            }
            c.lines.push((c.data.len(), line));
            if c.data.len() >= CHUNK_BYTES {
                let full = std::mem::replace(c, fresh(&file));
                send(w, full)?;
            }
            total += 1;
            if total.is_multiple_of(TICK_LINES)
                && let Some(tick) = on_tick.as_mut()
            {
                tick();
            }
        }
        for (w, c) in pending.into_iter().enumerate() {
            if !c.lines.is_empty() {
                send(w, c)?;
            }
        }
        if let Some(end) = src.end() {
            ends.insert(file.to_string(), end);
        }
    }
    Ok(ends)
}

fn parse_chunks(
    mut norm: Normalizer,
    worker: usize,
    chunks: Receiver<Chunk>,
    recycle: Sender<Chunk>,
    tx: &SyncSender<ToWriter>,
    batch_rows: usize,
    lateness_us: i64,
) -> Result<(NormalizerState, ByInput, Option<i64>)> {
    let send = |m: ToWriter| tx.send(m).map_err(|_| anyhow::Error::new(Stopped("archive writer")));
    let mut batcher = HourBatcher::new(batch_rows);
    let mut rejects = RejectBuilder::default();
    let mut closed_before = i64::MIN;
    let mut by_input = ByInput::new();
    for chunk in chunks {
        let (events_before, foreign_before) = (norm.stats_ref().events, norm.stats_ref().foreign_lines());
        let mut start = 0;
        for &(end, line) in &chunk.lines {
            let origin = Origin::Line {
                file: &chunk.file,
                line,
            };
            if chunk.cut.contains(&line) {
                norm.process_cut_line(&chunk.data[start..end], origin, &mut rejects);
            } else {
                norm.process_line(&chunk.data[start..end], origin, &mut batcher, &mut rejects);
            }
            start = end;
            for batch in batcher.take_ready() {
                send(ToWriter::Events { worker, batch: batch? })?;
            }
        }
        let i = match by_input.iter().position(|(f, _)| *f == chunk.file) {
            Some(i) => i,
            None => {
                by_input.push((chunk.file.clone(), InputCounts::default()));
                by_input.len() - 1
            }
        };
        let counts = &mut by_input[i].1;
        counts.lines += chunk.lines.len() as u64;
        counts.events += norm.stats_ref().events - events_before;
        counts.foreign += norm.stats_ref().foreign_lines() - foreign_before;
        let _ = recycle.send(chunk);
        if rejects.is_full() {
            send(ToWriter::Rejects(rejects.finish()?))?;
        }
        // Watermark: hours ending before (latest event - lateness) are done. Late rows
        // for hours already closed are flushed at every chunk, so they never pile up.
        if let Some(max) = batcher.max_time_us() {
            let close = closed_before.max(hour_of(max.saturating_sub(lateness_us)));
            batcher.flush_before(close);
            let mut flushed = false;
            for batch in batcher.take_ready() {
                send(ToWriter::Events { worker, batch: batch? })?;
                flushed = true;
            }
            if flushed || close > closed_before {
                send(ToWriter::CloseBefore { worker, hour: close })?;
                closed_before = close;
            }
        }
    }
    let newest_us = batcher.max_time_us();
    batcher.flush_all();
    for batch in batcher.take_ready() {
        send(ToWriter::Events { worker, batch: batch? })?;
    }
    if !rejects.is_empty() {
        send(ToWriter::Rejects(rejects.finish()?))?;
    }
    send(ToWriter::CloseBefore { worker, hour: i64::MAX })?;
    let mut state = norm.snapshot();
    state.stats = norm.stats();
    Ok((state, by_input, newest_us))
}

/// A parser thread's counts per input: a handful of inputs, so a list found by name.
type ByInput = Vec<(Arc<str>, InputCounts)>;

type Written = (Vec<PathBuf>, Option<PathBuf>, u64);

fn write_loop(out: &Path, run_id: &str, workers: usize, rx: Receiver<ToWriter>) -> Result<Written> {
    let mut archive = EventArchive::new(out, run_id);
    let mut rejects: Option<ParquetFile> = None;
    // Per parser thread: None until it sends events (an idle thread holds nothing
    // back), then the hour before which it is done.
    let mut marks: Vec<Option<i64>> = vec![None; workers];
    let mut committed = false;
    let result = (|| -> Result<()> {
        for msg in rx {
            match msg {
                ToWriter::Events { worker, batch } => {
                    marks[worker].get_or_insert(i64::MIN);
                    archive.write(&batch)?;
                }
                ToWriter::Rejects(b) => {
                    let file = match rejects.as_mut() {
                        Some(f) => f,
                        None => {
                            let path = out.join(REJECTS_DIR).join(deferlog_archive::rejects_file_name(run_id));
                            rejects.insert(ParquetFile::create(path, reject_schema())?)
                        }
                    };
                    file.write(&b)?;
                }
                ToWriter::CloseBefore { worker, hour } => {
                    marks[worker] = Some(hour);
                    let close = marks.iter().flatten().copied().min().unwrap_or(hour);
                    archive.close_before(close)?;
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
            // Left only if another run's dead letters are in it.
            let _ = std::fs::remove_dir(out.join(REJECTS_DIR));
        }
        result?;
        anyhow::bail!("input ended with an error; this run's archive files were removed");
    }
    let rows = archive.rows();
    let files = archive.finish()?.into_iter().map(|(_, p)| p).collect();
    let rejects_file = rejects.map(ParquetFile::close).transpose()?;
    Ok((files, rejects_file, rows))
}

#[cfg(test)]
mod tests {
    use super::worker_of;

    #[test]
    fn lines_of_one_host_go_to_one_parser_whatever_the_stamp() {
        let hosts = ["mta-out1", "mta-out2", "mta-out3", "mx", "relay-7.example"];
        for h in hosts {
            let bsd = format!("Nov  8 08:14:01 {h} postfix/smtp[1]: X: to=<a@b>");
            let bsd_unpadded = format!("Jan 6 08:39:06 {h} postfix/qmgr[2]: X: removed");
            let rfc = format!("2026-11-08T08:14:01.123456+00:00 {h} postfix/smtp[1]: X: to=<a@b>");
            let w = worker_of(bsd.as_bytes(), 3);
            assert_eq!(worker_of(bsd_unpadded.as_bytes(), 3), w, "{h}");
            assert_eq!(worker_of(rfc.as_bytes(), 3), w, "{h}");
        }
        let spread: std::collections::BTreeSet<usize> = hosts
            .iter()
            .map(|h| worker_of(format!("Nov  8 08:14:01 {h} x").as_bytes(), 2))
            .collect();
        assert_eq!(spread.len(), 2, "five hosts should use both parsers");
        assert_eq!(worker_of(b"", 2), worker_of(b"garbage", 2));
    }
}
