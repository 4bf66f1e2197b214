//! The embedded default: a fleet of generated Postfix hosts producing to an in-process
//! Kafka broker, `run`'s stream consuming it through a consumer group, the hourly
//! table printed as each hour closes, the archive left for `report`.

use crate::cli::DemoArgs;
use crate::config::{Config, KafkaConfig, StreamSettings, TenantEntry, TopicEntry};
use crate::output::{self, Format};
use anyhow::{Context, Result, bail};
use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use deferlog_app::query::run_query;
use deferlog_app::say;
use deferlog_app::stream::{self, Hooks};
use deferlog_event::HOUR_US;
use deferlog_gen::{GenConfig, Generator, fleet_config_toml};
use deferlog_kafka::{ClientSettings, EmbeddedBroker, Producer};
use deferlog_query::schema::col;
use deferlog_query::{EventFilter, EventSource, Query};
use deferlog_stream::{EpochSink, StreamError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// About this many log lines per generated message, to size the simulated span.
const LINES_PER_MESSAGE: u64 = 7;
const TOPIC: &str = "mail";
const PARTITIONS: i32 = 6;
/// Marks an archive as the demo's own, so a second demo may replace it.
const MARKER: &str = ".deferlog-demo";
/// Hosts are few and partitions many: empty partitions must not hold hours open long.
const IDLE_SECS: u64 = 2;

pub fn run(a: DemoArgs) -> Result<()> {
    let now = super::now_us();
    prepare_out(&a.out)?;
    let broker = EmbeddedBroker::start(TOPIC, PARTITIONS)?;
    let mut cfg: Config = toml::from_str(&fleet_config_toml()).context("the generator's fleet config")?;
    cfg.limits.allowed_lateness_secs = 300;
    cfg.kafka = Some(KafkaConfig {
        brokers: broker.bootstrap(),
        group_id: "deferlog-demo".into(),
        topics: vec![TopicEntry {
            name: TOPIC.into(),
            format: "postfix".into(),
            tenant: TenantEntry::default(),
            host: Default::default(),
        }],
        properties: BTreeMap::new(),
        hourly_topic: None,
        dead_letter_topic: None,
    });
    cfg.stream = StreamSettings {
        out: a.out.clone(),
        checkpoint_interval_ms: 500,
        idle_timeout_secs: IDLE_SECS,
        // One consumer and one worker: every hour closes in one place (one
        // watermark), so it prints whole.
        consumers: Some(1),
        workers: Some(1),
        ..StreamSettings::default()
    };
    let mut settings = cfg.resolve_run("(demo)", now)?;
    match a.listen {
        // Asked for: a port taken is the error `run` gives.
        Some(addr) => settings.metrics.listen = Some(addr),
        // The demo runs anywhere: with the default port taken, it serves on a free one.
        None => {
            if let Some(addr) = settings.metrics.listen
                && std::net::TcpListener::bind(addr).is_err()
            {
                settings.metrics.listen = Some(std::net::SocketAddr::new(addr.ip(), 0));
            }
        }
    }

    // Start far enough back that new traffic and its retries (up to the queue
    // lifetime) end around now, so the hours shown are the last few real ones.
    let defaults = GenConfig::default();
    let traffic_hours = (a.lines / LINES_PER_MESSAGE / u64::from(defaults.messages_per_hour.max(1))).max(1) as i64;
    let retry_hours = defaults.queue_lifetime_secs / 3600;
    let generator = Generator::new(GenConfig {
        seed: a.seed,
        lines: a.lines,
        start_unix: (now / HOUR_US - traffic_hours - retry_hours) * 3600,
        ..GenConfig::default()
    });
    let pace = if a.speed > 0.0 {
        format!("{} simulated seconds per second", a.speed)
    } else {
        "as fast as it goes".to_owned()
    };
    say!(
        "deferlog demo: {} lines of generated Postfix traffic from 3 hosts into an embedded Kafka broker \
         ({} partitions, {}), {pace}",
        a.lines,
        PARTITIONS,
        broker.bootstrap(),
    );
    say!("archive: {}\n", a.out.display());

    let produced = Arc::new(AtomicU64::new(0));
    let produced_all = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (client, produced, done) = (settings.client.clone(), produced.clone(), produced_all.clone());
        let speed = a.speed;
        std::thread::Builder::new()
            .name("deferlog-demo-feed".into())
            .spawn(move || feed(generator, speed, &client, &produced, &done))
            .context("starting the feed")?
    };

    let cancel = CancellationToken::new();
    let screen = Arc::new(Mutex::new(BTreeMap::<i64, Vec<RecordBatch>>::new()));
    let rows = a.rows_per_hour;
    let hooks = Hooks {
        stop_after: None,
        sink: Some(Box::new(Screen(screen.clone()))),
        on_checkpoint: Some({
            let (cancel, produced, done) = (cancel.clone(), produced.clone(), produced_all.clone());
            let mut caught_up_since: Option<Instant> = None;
            Box::new(move |status| {
                let hours = std::mem::take(&mut *screen.lock().unwrap_or_else(PoisonError::into_inner));
                for (hour, batches) in hours {
                    if let Err(e) = print_hour(hour, batches, rows) {
                        say!("hour {hour}: {e:#}");
                    }
                }
                // Once everything is consumed, wait out the idle timeout so the hours the
                // watermark can close are closed (and printed) before stopping.
                let consumed: u64 = status.iter().map(|p| p.counters.records).sum();
                if done.load(Ordering::Acquire) && consumed >= produced.load(Ordering::Acquire) {
                    let since = *caught_up_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(IDLE_SECS + 1) {
                        cancel.cancel();
                    }
                }
            })
        }),
    };
    let stop_on_signal = cancel.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            let stopped = rt.block_on(async {
                super::StopSignals::new()?.recv().await;
                Ok::<(), anyhow::Error>(())
            });
            if stopped.is_ok() {
                stop_on_signal.cancel();
            }
        }
    });
    let summary = stream::run(settings, cancel, hooks)?;
    feeder
        .join()
        .map_err(|_| anyhow::anyhow!("the feed thread panicked"))??;
    say!(
        "\n{} records consumed in {:.1}s; the last hours are still open (a running stream \
         would close them as traffic goes on); `report` shows them with final=false.",
        summary.records,
        summary.elapsed.as_secs_f64()
    );
    say!(
        "next: deferlog report hourly --data {0}\n      deferlog report destinations --data {0}\n      \
         deferlog report deferrals --data {0}",
        a.out.display()
    );
    drop(broker);
    Ok(())
}

/// An empty directory, or a previous demo's archive (replaced: its embedded broker
/// and offsets are gone with it).
fn prepare_out(out: &Path) -> Result<()> {
    let used = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if used {
        if !out.join(MARKER).exists() {
            bail!(
                "{} is not empty and not a previous demo's archive; give another --out",
                out.display()
            );
        }
        // A replay added to it since (a record of its inputs, or, from stdin, only
        // the correlation it left): not the demo's to throw away.
        let state = out.join("_state");
        let replayed = state.join("replayed");
        let sign = [state.join("replay-correlation.json"), replayed.clone()]
            .into_iter()
            .find(|p| p.is_file() || std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some()));
        if let Some(sign) = sign {
            bail!(
                "{} is a previous demo's archive, but `replay` has added to it since ({}): not cleared; give \
                 another --out",
                out.display(),
                sign.display()
            );
        }
        std::fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join(MARKER), "").with_context(|| format!("writing into {}", out.display()))
}

/// Produces the generator's lines keyed by host, paced to `speed` simulated seconds per second.
fn feed(mut g: Generator, speed: f64, client: &ClientSettings, produced: &AtomicU64, done: &AtomicBool) -> Result<()> {
    let producer = Producer::new(client)?;
    let started = Instant::now();
    let mut first_us = None;
    let mut line = Vec::new();
    while {
        line.clear();
        g.next_line(&mut line)
    } {
        let t = g.last_time_us();
        let first = *first_us.get_or_insert(t);
        if speed > 0.0 && g.lines_emitted().is_multiple_of(512) {
            let due = Duration::from_secs_f64(((t - first) as f64 / 1e6 / speed).max(0.0));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let host = deferlog_parse::route_key(text);
        producer.send(TOPIC, (!host.is_empty()).then_some(host), text)?;
        produced.fetch_add(1, Ordering::Release);
        producer.poll();
    }
    producer.flush(Duration::from_secs(60))?;
    done.store(true, Ordering::Release);
    Ok(())
}

/// Collects the final hourly rows of each checkpoint, by hour, for printing.
struct Screen(Arc<Mutex<BTreeMap<i64, Vec<RecordBatch>>>>);

impl EpochSink for Screen {
    fn epoch(&mut self, _scope: &str, hourly: &[RecordBatch], _: &[RecordBatch]) -> Result<(), StreamError> {
        let mut hours = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for b in hourly {
            let is_final = b
                .column_by_name(col::FINAL)
                .map(|c| c.as_boolean().true_count() == b.num_rows());
            let hour = b
                .column_by_name(col::HOUR)
                .and_then(|c| c.as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>())
                .filter(|h| !h.is_empty())
                .map(|h| h.value(0));
            if let (Some(true), Some(hour)) = (is_final, hour) {
                // Keep the rows without scope, revision and final: `partials` for the merge.
                hours
                    .entry(hour)
                    .or_default()
                    .push(b.project(&(0..9).collect::<Vec<_>>())?);
            }
        }
        Ok(())
    }
}

/// Prints one final hour: totals over every partition, then the rows with most deferrals.
fn print_hour(hour_us: i64, partials: Vec<RecordBatch>, rows: usize) -> Result<()> {
    let batches = run_query(
        Query::HOURLY_MERGE,
        EventSource::Batches(partials),
        &EventFilter::default(),
    )?;
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let all = concat_batches(&first.schema(), &batches)?;
    let total = |name: &str| -> Result<i64> {
        let c = all.column_by_name(name).context("hourly column")?;
        Ok(arrow::compute::sum(c.as_primitive::<arrow::datatypes::Int64Type>()).unwrap_or(0))
    };
    let when = chrono::DateTime::from_timestamp_micros(hour_us).unwrap_or_default();
    println!(
        "── {} ── attempts {}  delivered {}  deferred {}  bounced {}  expired {}  ({} rows, the most deferred first)",
        when.format("%Y-%m-%dT%H:00Z"),
        total("attempts")?,
        total("delivered")?,
        total("deferred")?,
        total("bounced")?,
        total("expired")?,
        all.num_rows()
    );
    output::write(
        Format::Table,
        &[largest(&all, "deferred", rows)?],
        &mut std::io::stdout().lock(),
    )?;
    println!();
    Ok(())
}

/// The `n` rows with the largest `column`.
fn largest(b: &RecordBatch, column: &str, n: usize) -> Result<RecordBatch> {
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

#[cfg(test)]
mod tests {
    use super::{MARKER, prepare_out};

    #[test]
    fn a_previous_demos_archive_is_cleared_unless_a_replay_added_to_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("demo");
        prepare_out(&out).expect("new");
        std::fs::write(out.join("events.parquet"), "x").expect("write");
        prepare_out(&out).expect("a demo's again");
        assert!(!out.join("events.parquet").exists(), "cleared");
        assert!(out.join(MARKER).exists());
        let record = out.join("_state/replayed/R.json");
        std::fs::create_dir_all(record.parent().expect("dir")).expect("dir");
        std::fs::write(&record, "{}").expect("write");
        let err = prepare_out(&out).expect_err("replayed into").to_string();
        assert!(err.contains("replay"), "{err}");
        assert!(record.exists(), "kept");
        // From stdin a replay leaves no record, but its correlation.
        std::fs::remove_dir_all(out.join("_state/replayed")).expect("rm");
        std::fs::write(out.join("_state/replay-correlation.json"), "{}").expect("write");
        assert!(prepare_out(&out).is_err(), "a replay from stdin");
    }
}
