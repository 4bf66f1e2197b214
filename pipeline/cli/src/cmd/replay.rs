//! `deferlog replay`: log files (or stdin) through the engine into the archive, the
//! hourly rows printed; with `--serve`, the counts published on `/metrics` until
//! stopped. The engine (`engine.rs`) does the work; this wires config, inputs and
//! output.

use crate::cli::ReplayArgs;
use crate::config::{self, Config, Problems};
use crate::engine::{self, EngineOptions, LineSource, Summary, hour_text};
use crate::input::{self, ByteCounter};
use crate::metrics::{Served, set_hour_gauges};
use crate::query;
use anyhow::{Context, Result};
use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use deferlog_app::replayed::{Pending, Prepared};
use deferlog_app::{carried, runs, say};
use deferlog_archive::run_id;
use deferlog_metrics::{Counts, Exporter};
use deferlog_parse::{RejectReason, SkipKind};
use deferlog_query::{EventFilter, EventSource, Query};
use deferlog_stream::{Counters, add_counter_rows, count_health};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;

pub fn run(a: ReplayArgs) -> Result<()> {
    let mut cfg = Config::load(a.config.config.as_deref())?;
    // Flags are judged as flags, before they stand in for the config's keys.
    if let Some(t) = &a.reference_time {
        config::parse_time(t).context("--reference-time")?;
        cfg.reference_time = Some(t.clone());
    }
    if let Some(f) = &a.format {
        f.parse::<deferlog_parse::Format>()
            .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
        cfg.format = f.clone();
    }
    let origin = cfg.origin(a.config.config.as_deref());
    let now = super::now_us();
    // Every problem of both sections at once, as `check` reports them.
    let mut p = Problems::default();
    let norm = p.take(cfg.resolve(&origin, now));
    let metrics = a.serve.then(|| p.take(cfg.resolve_metrics(&origin, None))).flatten();
    let mut norm = p.finish_with(norm)?;
    let served = if let Some(m) = metrics {
        if m.listen.is_none() {
            anyhow::bail!("{origin}: `replay --serve` needs key `metrics.listen` (an address, not \"\")");
        }
        Some(Served::start(&m)?)
    } else {
        None
    };
    let run_id = run_id(now);

    let inputs = input::oldest_first(&a.inputs)?;
    let from_line = match (a.from_line, inputs.as_slice()) {
        (None, _) => None,
        (Some(n), [only]) if only != "-" => Some((only.clone(), input::position_of_line(only, n)?)),
        (Some(_), _) => anyhow::bail!("--from-line reads one input file (not stdin): give only that one"),
    };
    // From here to its end, the archive's record of inputs, its key and the state
    // carried between replays are this run's alone.
    let turn = runs::take_turn(&a.out)?;
    for (run, files) in runs::undo_stopped(&a.out)? {
        say!(
            "deferlog replay: replay {run} into {} was stopped before it recorded its inputs; its {files} \
             file(s) were taken back: replay those inputs again",
            a.out.display()
        );
    }
    let mut pending =
        deferlog_app::replayed::check(&a.out, &run_id, &inputs, &cfg.format, a.again || from_line.is_some())?;
    if let Some((input, at)) = from_line {
        pending.resume.insert(input, at);
    }
    for note in &pending.notes {
        say!("deferlog replay: {note}");
    }
    let inputs: Vec<String> = inputs.into_iter().filter(|p| !pending.unchanged.contains(p)).collect();
    if inputs.is_empty() {
        say!("deferlog replay: nothing new to add to {}", a.out.display());
        return Ok(());
    }
    // Without a key of the user's, the archive's own: the recipients of earlier
    // replays (and of `run`) hash the same, so their deferrals meet their next tries
    // and the correlation carried from the last replay finds them. A new archive's is
    // kept once the run has succeeded.
    let new_key = if cfg.privacy.hash_key.is_none() {
        match config::archive_hash_key(&a.out)? {
            Some(k) => {
                norm.hash_key = k;
                None
            }
            None => Some(norm.hash_key),
        }
    } else {
        None
    };
    let key = norm.hash_key;
    let counter = ByteCounter::default();
    let sources = inputs
        .iter()
        .map(|p| {
            let from = pending.resume.get(p).copied().unwrap_or_default();
            input::open_from(p, &counter, from).map(|i| Box::new(i) as Box<dyn LineSource>)
        })
        .collect::<Result<Vec<_>>>()?;
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(input::total_bytes(&a.inputs));
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let tick_bar = bar.clone();
    let tick_counter = counter.clone();
    // Where the last replay into this archive left its recipients, with as many
    // parser threads as held them (`carried`).
    let (carried, newest_before, open_hours) = carried::load(&a.out, &key)
        .map_or((Vec::new(), None, Vec::new()), |c| {
            (c.parsers, c.newest_hour_us, c.open_hours)
        });
    let workers = match carried.len() {
        0 => cfg.limits.parser_threads(),
        n => {
            if n != cfg.limits.parser_threads() {
                say!(
                    "deferlog replay: {n} parser thread{}, as many as hold the recipients the last replay into {} \
                     left (not limits.parser_threads = {})",
                    if n == 1 { "" } else { "s" },
                    a.out.display(),
                    cfg.limits.parser_threads()
                );
            }
            n
        }
    };
    let running = runs::starting(&a.out, &run_id)?;
    let stage = runs::stage_dir(&a.out, &run_id);
    let summary = engine::run(
        norm,
        sources,
        EngineOptions {
            out: a.out.clone(),
            stage: Some(stage.clone()),
            run_id: run_id.clone(),
            batch_rows: cfg.limits.batch_rows,
            lateness_us: i64::try_from(cfg.limits.allowed_lateness_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000),
            workers,
            carried,
            open_hours,
            on_tick: Some(Box::new(move || {
                if let Some(b) = &tick_bar {
                    b.set_position(tick_counter.get());
                }
            })),
        },
    );
    let (summary, dropped) = match summary.and_then(|mut s| {
        // An input with no delivery in lines mostly not of the format read is in the
        // wrong `--format`, or no mail log: its dead letters of no MTA would be every
        // JSON line of it, copied (a KumoMTA log read as Postfix, an application's
        // log), and again beside its events once replayed right. Not kept.
        let foreign: Vec<&str> = s
            .by_input
            .iter()
            .filter(|(_, c)| c.is_foreign())
            .map(|(name, _)| name.as_str())
            .collect();
        let dropped = drop_dead_letters_of(s.rejects_file.as_deref(), &foreign, &a.out)?;
        if dropped.removed {
            s.rejects_file = None;
        }
        // What makes the run whole (the record of its inputs, the state its successor
        // starts from) is written before its files are published: a disk too full for
        // either fails the run, taking everything back, rather than leaving a run its
        // successor cannot continue.
        let whole = finish(&a.out, pending, &mut s, key, &run_id, newest_before)?;
        // Its files appear in the archive together, once it has read everything.
        engine::publish(&mut s, &stage, &a.out)?;
        Ok((s, whole, dropped.by_input))
    }) {
        Ok((s, whole, dropped)) => {
            whole.commit(&a.out, new_key, key);
            (s, dropped)
        }
        Err(e) => {
            // It took its files back, but for any it could not (a full disk).
            running.failed();
            return Err(e);
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for (name, end) in &summary.ends {
        if end.tail.is_none() && end.at.lines > 0 && name.as_str() != "stdin" {
            say!(
                "deferlog replay: {name}: read to line {}, whose last lines are too long to know it by (over {} \
                 KiB): a later replay of it is refused, and names that line for --from-line",
                end.at.lines,
                input::TAIL / 1024
            );
        }
        if end.held > 0 {
            say!(
                "deferlog replay: {name}: its last line has no end yet ({} bytes after line {}: still being \
                 written?); it is left for the next replay of {name}",
                end.held,
                end.at.lines
            );
        }
    }
    // Only now is the run whole: stopped before here, the next replay takes all of it
    // back (files, record), as the state it would have left is not stored.
    running.finished();
    drop(turn);
    print_summary(&summary, &a.out.display().to_string());
    let mut left_open: Vec<i64> = summary.open_hours.iter().map(|o| o.hour_us).collect();
    left_open.sort_unstable();
    left_open.dedup();
    let left_open: Vec<String> = left_open.into_iter().map(hour_text).collect();
    if !left_open.is_empty() {
        say!(
            "deferlog replay: open (not final): {}, as the inputs so far end within limits.allowed_lateness_secs \
             of that; the next replay into {} that reads past it (the log's next file) adds to it and closes it",
            left_open.join(", "),
            a.out.display(),
        );
    }
    // Correlation reads lines in the order given to it: older lines after newer ones
    // (a file copied without its modification time, a forgotten one) are numbered and
    // attributed from the newer state. An hour of slack for a log cut mid-hour.
    if let (Some(newest), Some((first, _))) = (newest_before, summary.hours)
        && first.saturating_add(deferlog_event::HOUR_US) < newest
    {
        say!(
            "deferlog replay: these inputs begin at {}, before {} that earlier replays into {} reached: read \
             after newer lines, their attempt numbers and expiry attribution may be off. Replay \
             older logs first; files are read oldest first by modification time",
            hour_text(first),
            hour_text(newest),
            a.out.display()
        );
    }
    // Only files are known again (`replayed`): say so where it matters, for a pipe
    // that gave events.
    for name in inputs
        .iter()
        .filter(|i| !std::fs::metadata(i).is_ok_and(|m| m.is_file()))
    {
        if summary.found_events_in(input::name_of(name)) {
            say!(
                "deferlog replay: {} is no file, so it is not recorded as taken: giving the same lines again \
                 counts them again",
                input::name_of(name)
            );
        }
    }
    let not_kept = |n: u64| match n {
        0 => String::new(),
        n => format!(" ({n} dead letters of it were not kept)"),
    };
    if foreign(&summary.stats) {
        let kept = not_kept(dropped.values().sum());
        if cfg.format == "auto" {
            let st = &summary.stats;
            // A parser's refusals are records of its MTA (a Postfix line without its
            // stamp, as a shipper that dropped the syslog header sends them).
            let refused = match st.total_rejected() - st.rejects[0].iter().sum::<u64>() {
                0 => String::new(),
                n => format!("; {n} were refused as records of their MTA (the rejects above)"),
            };
            say!(
                "deferlog replay: no delivery events in {} lines: {} of them are no Postfix, Exim, KumoMTA or \
                 PowerMTA records (as syslog lines, Exim's own log, PowerMTA's CSV or a shipper's JSON \
                 envelope){kept}{refused}",
                st.lines,
                st.foreign_lines(),
            );
        } else {
            say!(
                "deferlog replay: no delivery events in {} lines read as format `{}`{kept}: if they are another \
                 MTA's, give --format (postfix, exim, kumomta, powermta or auto)",
                summary.stats.lines,
                cfg.format
            );
        }
    } else {
        // Beside inputs that gave events, one in another format is easily missed in the
        // totals. A quiet one (a PowerMTA file that is its header, a host whose mail
        // all went to local delivery) is not named.
        for name in inputs.iter().map(|i| input::name_of(i)) {
            if let Some(c) = summary.by_input.get(name)
                && c.is_foreign()
            {
                say!(
                    "deferlog replay: no delivery events in {name}: {} of its {} lines are not records of format \
                     `{}`{}. If it is another MTA's log, replay it again with --format; it was not recorded as taken",
                    c.foreign,
                    c.lines,
                    cfg.format,
                    not_kept(dropped.get(name).copied().unwrap_or(0)),
                );
            }
        }
    }
    if let Some(served) = served {
        publish(&served.exporter, &summary, &run_id, cfg.metrics.scope_series_limit)?;
        served.exporter.set_ready(true);
        say!("deferlog replay: {}; SIGTERM or Ctrl-C stops", served.describe());
        super::wait_for_stop()?;
    }
    Ok(())
}

/// A run that found no delivery in lines mostly not records of the format read.
/// Lines of the format that are no delivery (a PowerMTA header, KumoMTA receptions,
/// inbound lines) are no sign of the wrong format, nor are an MTA parser's refusals.
fn foreign(st: &deferlog_parse::Stats) -> bool {
    st.events == 0 && st.foreign_lines() * 2 > st.lines
}

/// What [`drop_dead_letters_of`] did to the rejects file.
struct Dropped {
    /// No row was left: the file is gone.
    removed: bool,
    /// Rows dropped, by input.
    by_input: HashMap<String, u64>,
}

/// Rewrites the staged rejects `file` without the dead letters of no MTA whose origin
/// is a line of one of `inputs`, and removes it (and the directories made for it, up
/// to the archive `out`) if none is left.
fn drop_dead_letters_of(file: Option<&Path>, inputs: &[&str], out: &Path) -> Result<Dropped> {
    let mut by_input = HashMap::new();
    let Some(file) = file.filter(|_| !inputs.is_empty()) else {
        return Ok(Dropped {
            removed: false,
            by_input,
        });
    };
    let batches = deferlog_archive::read_parquet(file)?.unwrap_or_default();
    let mut kept = Vec::with_capacity(batches.len());
    for b in &batches {
        let (mta, origin) = match (b.column_by_name("mta"), b.column_by_name("origin")) {
            (Some(m), Some(o)) => (m, o.as_string::<i32>()),
            _ => anyhow::bail!("{}: not a rejects file", file.display()),
        };
        let keep: BooleanArray = (0..b.num_rows())
            .map(|i| {
                let line_of = |input: &&&str| {
                    origin
                        .value(i)
                        .strip_prefix(**input)
                        .is_some_and(|rest| rest.starts_with(':'))
                };
                match inputs.iter().find(line_of) {
                    Some(input) if mta.is_null(i) => {
                        *by_input.entry((*input).to_owned()).or_insert(0) += 1;
                        Some(false)
                    }
                    _ => Some(true),
                }
            })
            .collect();
        kept.push(filter_record_batch(b, &keep)?);
    }
    let removed = kept.iter().all(|b| b.num_rows() == 0);
    if removed {
        engine::remove_with_empty_dirs(file, out);
    } else if !by_input.is_empty() {
        deferlog_archive::write_parquet(file.to_path_buf(), deferlog_event::reject_schema(), &kept)?;
    }
    Ok(Dropped { removed, by_input })
}

/// What a run leaves besides its files, written and waiting to be named into place.
struct Whole {
    record: Prepared,
    state: carried::Written,
}

/// Writes the run's record of its inputs and the state carried to the next replay
/// without naming them into place.
fn finish(
    out: &Path,
    pending: Pending,
    summary: &mut Summary,
    key: [u8; 16],
    run_id: &str,
    newest_before: Option<i64>,
) -> Result<Whole> {
    let record = pending.prepare(|input: &str| {
        let counts = summary.by_input.get(input).copied().unwrap_or_default();
        (counts, summary.ends.get(input).cloned())
    })?;
    let state = carried::prepare(
        out,
        &key,
        run_id,
        std::mem::take(&mut summary.parsers),
        newest_before.max(summary.hours.map(|(_, last)| last)),
        summary.open_hours.clone(),
    )?;
    Ok(Whole { record, state })
}

impl Whole {
    /// Names the record and the state into place, once the run's files are published,
    /// and keeps a new archive's hash key (`new_key`, which hashed this run's
    /// recipients as `key`).
    fn commit(self, out: &Path, new_key: Option<[u8; 16]>, key: [u8; 16]) {
        if let Err(e) = self.record.commit() {
            say!(
                "deferlog replay: the inputs were added to {}, but could not be recorded as taken ({e:#}); \
                 until that file is named into place, replaying them again would count them twice",
                out.display()
            );
        }
        // The state is of recipients hashed with this run's key: without that key kept
        // as the archive's, the next run would hash them anew and find each twice.
        let key_kept = match new_key.map(|k| config::keep_hash_key(out, k)) {
            None => true,
            Some(Ok(kept)) if kept == key => true,
            Some(Ok(_)) => {
                say!(
                    "deferlog replay: `run` gave {} its recipient-hash key while this replay ran: this run's \
                     recipient_hash values do not match the archive's other runs",
                    out.display()
                );
                false
            }
            Some(Err(e)) => {
                say!(
                    "deferlog replay: the recipient-hash key could not be kept in {} ({e:#}); the next replay \
                     hashes recipients with another",
                    out.display()
                );
                false
            }
        };
        let stored = if key_kept {
            self.state.commit()
        } else {
            self.state.discard();
            Ok(())
        };
        if let Err(e) = stored {
            say!(
                "deferlog replay: the inputs were added to {}, but where their recipients stand could not be kept \
                 for the next replay ({e:#}); the next one starts without it",
                out.display()
            );
        }
    }
}

/// A finished replay as one committed scope: `counters.sql` over its event files, its
/// statistics, and the hour gauges over its hourly rows.
fn publish(exporter: &Exporter, s: &Summary, run_id: &str, limit: usize) -> Result<()> {
    let mut counts = Counts::default();
    if !s.event_files.is_empty() {
        let source = EventSource::Files(s.event_files.clone());
        for b in query::run_query(Query::COUNTERS, source, &EventFilter::default())? {
            add_counter_rows(&b, &mut counts, limit)?;
        }
    }
    let counters = Counters {
        records: s.stats.lines,
        ..Counters::default()
    };
    count_health(&mut counts, &counters, &s.stats);
    exporter.commit(&[(run_id, &counts)])?;
    if let Some(f) = &s.hourly_file {
        set_hour_gauges(exporter, EventSource::Files(vec![f.clone()]))?;
    }
    exporter.set_state(s.stats.state_size, s.open_hours.len() as u64, None);
    Ok(())
}

pub fn print_summary(s: &Summary, out: &str) {
    let st = &s.stats;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    say!("lines read     {:>12}", st.lines);
    say!("events         {:>12}  ({} expiries)", st.events, st.expiries);
    say!("skipped        {:>12}", st.total_skipped());
    for k in SkipKind::ALL {
        let n = st.skipped(*k);
        if n > 0 {
            say!("  {:<24}{n:>10}", k.as_str());
        }
    }
    say!("rejects        {:>12}", st.total_rejected());
    for r in RejectReason::ALL {
        let n = st.rejected(*r);
        if n > 0 {
            say!("  {:<24}{n:>10}", r.as_str());
        }
    }
    if st.cut_replies > 0 {
        say!(
            "cut replies     {:>11}  (events whose line was cut within the reply: classified by what is left)",
            st.cut_replies
        );
    }
    if st.evictions > 0 {
        say!("state evictions {:>11}", st.evictions);
    }
    if st.untracked_recipients > 0 {
        say!(
            "untracked rcpts {:>11}  (attempts to recipients past {} of one queue id: no attempt number, and no \
             expiry of their own)",
            st.untracked_recipients,
            deferlog_parse::MAX_RCPTS_PER_QUEUE_ID
        );
    }
    let no_ip = st.no_source_ip.attempts();
    if no_ip > 0 {
        say!("no sending IP  {no_ip:>12}  attempts (the records name none and no [[egress]] entry matches)");
        for s in &st.no_source_ip.sources {
            say!("  {:<36}{:>10}", s.to_string(), s.attempts);
        }
        if st.no_source_ip.others > 0 {
            say!("  {:<36}{:>10}", "other hosts and instances", st.no_source_ip.others);
        }
    }
    say!("elapsed        {:>11.3}s", secs);
    say!("lines/s        {:>12.0}", st.lines as f64 / secs);
    match (s.event_files.len(), &s.rejects_file) {
        // Nothing to report over: say so rather than name a directory not written.
        (0, None) => say!("archive        {out}: nothing written (no delivery events, no rejects)"),
        (files, _) => say!("archive        {out} ({files} event files, {} rows)", s.events_written),
    }
    if let Some(r) = &s.rejects_file {
        say!("rejects file   {}", r.display());
    }
}
