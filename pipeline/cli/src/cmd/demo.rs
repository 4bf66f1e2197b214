//! The embedded default: generated traffic from a fleet of Postfix hosts through the
//! same engine as `replay`, the hourly table printed as each hour closes.

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::engine::{self, EngineOptions, LineSource, hour_filter, run_query};
use crate::output::{self, Format};
use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use deferlog_archive::run_id;
use deferlog_event::HOUR_US;
use deferlog_gen::{GenConfig, Generator, fleet_config_toml};
use deferlog_query::{EventSource, Query};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// About this many log lines per generated message, to size the simulated span.
const LINES_PER_MESSAGE: u64 = 7;

struct Paced {
    generator: Generator,
    buf: Vec<u8>,
    speed: f64,
    started: Instant,
    first_us: Option<i64>,
}

impl LineSource for Paced {
    fn name(&self) -> &str {
        "gen"
    }

    fn next_line(&mut self) -> Result<Option<&[u8]>> {
        self.buf.clear();
        if !self.generator.next_line(&mut self.buf) {
            return Ok(None);
        }
        let t = self.generator.last_time_us();
        let first = *self.first_us.get_or_insert(t);
        if self.speed > 0.0 && self.generator.lines_emitted().is_multiple_of(512) {
            let due = Duration::from_secs_f64(((t - first) as f64 / 1e6 / self.speed).max(0.0));
            if let Some(wait) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(Some(&self.buf))
    }
}

pub fn run(a: DemoArgs) -> Result<()> {
    let now = super::now_us();
    let cfg: Config = toml::from_str(&fleet_config_toml()).context("the generator's fleet config")?;
    let norm = cfg.resolve("(demo fleet)", now)?;
    // Start far enough back that new traffic and its retries (up to the queue
    // lifetime) end around now, so the hours shown are the last few real ones.
    let defaults = GenConfig::default();
    let traffic_hours = (a.lines / LINES_PER_MESSAGE / u64::from(defaults.messages_per_hour.max(1))).max(1) as i64;
    let retry_hours = defaults.queue_lifetime_secs / 3600;
    let start_unix = (now / HOUR_US - traffic_hours - retry_hours) * 3600;
    let generator = Generator::new(GenConfig {
        seed: a.seed,
        lines: a.lines,
        start_unix,
        ..GenConfig::default()
    });
    eprintln!(
        "deferlog demo: {} lines of generated Postfix traffic from 3 hosts, {} simulated seconds per second",
        a.lines, a.speed
    );
    eprintln!("archive: {}\n", a.out.display());
    let rows = a.rows_per_hour;
    let summary = engine::run(
        norm,
        vec![Box::new(Paced {
            generator,
            buf: Vec::new(),
            speed: a.speed,
            started: Instant::now(),
            first_us: None,
        })],
        EngineOptions {
            out: a.out.clone(),
            run_id: run_id(now),
            batch_rows: cfg.limits.batch_rows,
            lateness_us: 5 * 60 * 1_000_000,
            workers: cfg.limits.parser_threads(),
            on_tick: None,
            on_hour_closed: Some(Box::new(move |hour, files| {
                if let Err(e) = print_hour(hour, files, rows) {
                    eprintln!("hour {hour}: {e:#}");
                }
            })),
        },
    )?;
    super::replay::print_summary(&summary, &a.out.display().to_string());
    eprintln!("\nnext: deferlog report hourly --data {} --format csv", a.out.display());
    Ok(())
}

fn print_hour(hour_us: i64, files: &[PathBuf], rows: usize) -> Result<()> {
    let batches = run_query(Query::HOURLY, EventSource::Files(files.to_vec()), &hour_filter(hour_us))?;
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let all = concat_batches(&first.schema(), &batches)?;
    let col = |name: &str| -> Result<i64> {
        let c = all.column_by_name(name).context("hourly column")?;
        Ok(arrow::compute::sum(
            c.as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .context("BIGINT")?,
        )
        .unwrap_or(0))
    };
    let when = chrono::DateTime::from_timestamp_micros(hour_us).unwrap_or_default();
    println!(
        "── {} ── attempts {}  delivered {}  deferred {}  bounced {}  expired {}  ({} rows)",
        when.format("%Y-%m-%dT%H:00Z"),
        col("attempts")?,
        col("delivered")?,
        col("deferred")?,
        col("bounced")?,
        col("expired")?,
        all.num_rows()
    );
    let busiest = busiest(&all, "deferred", rows)?;
    output::write(Format::Table, &[busiest], &mut std::io::stdout().lock())?;
    println!();
    Ok(())
}

/// The `n` rows with the largest `column`.
fn busiest(b: &RecordBatch, column: &str, n: usize) -> Result<RecordBatch> {
    let c = b.column_by_name(column).context("sort column")?;
    let idx = sort_to_indices(
        c,
        Some(SortOptions {
            descending: true,
            nulls_first: false,
        }),
        Some(n),
    )?;
    Ok(take_record_batch(b, &idx)?)
}
