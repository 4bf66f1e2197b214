//! The whole `run` path against a local broker — tansu, 6 partitions, 1M records —
//! and, in the same process on the same broker and topic, a bare consumer that only
//! reads. Both are timed from their first record to their last (joining the group
//! is not throughput); `run` includes its final checkpoint and commit, and neither
//! includes leaving the group. After the samples, the last `run` says where its time
//! went, and pairs of the two run back to back give the ratio of their rates.
//!
//! Needs tansu: DEFERLOG_TANSU, or `scripts/install-tansu` is run. To explore:
//! `DEFERLOG_BENCH_RECORDS` (default 1M), `DEFERLOG_BENCH_CONSUMERS` and
//! `DEFERLOG_BENCH_WORKERS` (`run`'s `stream.consumers`, default 1, and
//! `stream.workers`, default one per core), `DEFERLOG_BENCH_BATCH_ROWS`
//! (`stream.batch_rows`), `DEFERLOG_BENCH_PAIRS` (pairs after criterion's samples,
//! default 10), `DEFERLOG_BENCH_RUN_PROPERTIES` (librdkafka properties for `run`'s
//! consumer alone, `key=value,key=value`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deferlog_app::config::Config;
use deferlog_app::stream::{self, Hooks, RunSummary};
use deferlog_gen::{GenConfig, Generator, fleet_config_toml};
use deferlog_kafka::{ClientSettings, Partitions, Producer, Source, TopicPartition, create_topic};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// 1M unless `DEFERLOG_BENCH_RECORDS` says otherwise.
fn lines() -> u64 {
    std::env::var("DEFERLOG_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

const TOPIC: &str = "mail";

struct Broker(Child, String);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tansu() -> PathBuf {
    if let Ok(p) = std::env::var("DEFERLOG_TANSU") {
        return p.into();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-tansu");
    let out = Command::new(script).output().expect("scripts/install-tansu");
    PathBuf::from(String::from_utf8(out.stdout).expect("path").trim())
}

fn start_broker() -> Broker {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu())
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "tansu did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker(child, addr)
}

fn client(broker: &Broker) -> ClientSettings {
    ClientSettings::new(&broker.1)
        .with("session.timeout.ms", "6000")
        .with("heartbeat.interval.ms", "500")
}

/// The generated fleet's lines, keyed by host; returns how many.
fn produce(broker: &Broker) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(create_topic(&client(broker), TOPIC, 6)).expect("topic");
    let p = Producer::new(&client(broker)).expect("producer");
    let mut g = Generator::new(GenConfig {
        lines: lines(),
        ..GenConfig::default()
    });
    let (mut line, mut n) = (Vec::new(), 0u64);
    while {
        line.clear();
        g.next_line(&mut line)
    } {
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let host = deferlog_parse::route_key(text);
        p.send(TOPIC, Some(host), text).expect("send");
        n += 1;
        if n.is_multiple_of(4096) {
            p.poll();
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    n
}

struct FromStart;

impl Partitions for FromStart {
    fn assigned(&self, parts: &[TopicPartition]) -> Vec<Option<i64>> {
        vec![Some(0); parts.len()]
    }
    fn revoked(&self, _: &[TopicPartition]) -> Vec<(String, i32, i64)> {
        Vec::new()
    }
}

/// Reads `n` records and nothing else; the time from the first to the last.
fn bare_consumer(broker: &Broker, group: &str, n: u64) -> Duration {
    let source = Source::new(&client(broker), group, &[TOPIC], Arc::new(FromStart)).expect("consumer");
    let (mut seen, mut first, mut bytes) = (0u64, None, 0usize);
    while seen < n {
        if let Some(m) = source.poll(Duration::from_millis(100)) {
            let m = m.expect("record");
            bytes += m.value().map_or(0, <[u8]>::len);
            first.get_or_insert_with(Instant::now);
            seen += 1;
        }
    }
    assert!(bytes > 0);
    first.map_or(Duration::ZERO, |f| f.elapsed())
}

/// `key = value` for `[stream]` when the environment variable `var` is set.
fn setting(var: &str, key: &str) -> String {
    std::env::var(var).map_or(String::new(), |v| format!("{key} = {v}\n"))
}

/// `DEFERLOG_BENCH_RUN_PROPERTIES` (`key=value,key=value`): librdkafka properties
/// for `run`'s consumer only, as `[kafka.properties]` would give them.
fn run_properties() -> String {
    let v = std::env::var("DEFERLOG_BENCH_RUN_PROPERTIES").unwrap_or_default();
    v.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| format!("\"{}\" = \"{}\"\n", k.trim(), v.trim()))
        .collect()
}

fn deferlog_run(broker: &Broker, group: &str, out: &Path, n: u64) -> RunSummary {
    let mut text = String::from("reference_time = \"2026-11-10T00:00:00Z\"\n");
    text.push_str(&fleet_config_toml());
    text.push_str(&format!(
        "\n[kafka]\nbrokers = \"{}\"\ngroup_id = \"{group}\"\n[[kafka.topics]]\nname = \"{TOPIC}\"\n\
         [kafka.properties]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 500\n{}\
         [stream]\nout = \"{}\"\nstatus_interval_secs = 3600\n{}{}{}[metrics]\nlisten = \"\"\n",
        broker.1,
        run_properties(),
        out.display(),
        setting("DEFERLOG_BENCH_CONSUMERS", "consumers"),
        setting("DEFERLOG_BENCH_WORKERS", "workers"),
        setting("DEFERLOG_BENCH_BATCH_ROWS", "batch_rows"),
    ));
    let cfg: Config = toml::from_str(&text).expect("config");
    let settings = cfg.resolve_run("(bench)", 0).expect("settings");
    let hooks = Hooks {
        stop_after: Some(n),
        ..Hooks::default()
    };
    stream::run(settings, CancellationToken::new(), hooks).expect("run")
}

fn bench(c: &mut Criterion) {
    let broker = start_broker();
    let n = produce(&broker);
    let dir = tempfile::tempdir().expect("tmp");
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(60));
    let mut i = 0;
    g.bench_function("bare_consumer_6_partitions", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    i += 1;
                    bare_consumer(&broker, &format!("bare-{i}"), n)
                })
                .sum()
        })
    });
    let mut last = None;
    g.bench_function("deferlog_run_6_partitions", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    i += 1;
                    let (took, s) = timed_run(&broker, i, dir.path(), n);
                    last = Some(s);
                    took
                })
                .sum()
        })
    });
    g.finish();
    if let Some(s) = last {
        eprintln!("last deferlog run: {s}");
    }
    paired(&broker, &mut i, dir.path(), n);
}

/// One `run` in a fresh group and archive: its time from the first record to
/// everything written and committed (not joining, not leaving).
fn timed_run(broker: &Broker, i: u32, dir: &Path, n: u64) -> (Duration, RunSummary) {
    let out = dir.join(format!("run-{i}"));
    let s = deferlog_run(broker, &format!("run-{i}"), &out, n);
    let took = s.elapsed
        - s.first_record.unwrap_or_default()
        - s.idle_tail.unwrap_or_default()
        - s.leaving.unwrap_or_default();
    let _ = std::fs::remove_dir_all(&out);
    (took, s)
}

/// The goal's figure, `run`'s rate as a share of the bare consumer's, from pairs
/// run back to back (the order alternating): criterion times all of one reader
/// before the other, and this machine's speed drifts by more than the difference
/// between builds within minutes. `DEFERLOG_BENCH_PAIRS` (default 10; 0: none).
fn paired(broker: &Broker, i: &mut u32, dir: &Path, n: u64) {
    let pairs: usize = std::env::var("DEFERLOG_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    if pairs == 0 {
        return;
    }
    let mut ratios = Vec::with_capacity(pairs);
    for p in 0..pairs {
        let mut one = |reader: usize| {
            *i += 1;
            match reader {
                0 => bare_consumer(broker, &format!("bare-{i}"), n),
                _ => timed_run(broker, *i, dir, n).0,
            }
        };
        let (bare, run) = if p % 2 == 0 {
            let bare = one(0);
            (bare, one(1))
        } else {
            let run = one(1);
            (one(0), run)
        };
        ratios.push(bare.as_secs_f64() / run.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize] * 100.0;
    eprintln!(
        "paired: run's rate / the bare consumer's over {pairs} pairs: median {:.0} %, quartiles {:.0}–{:.0} %, \
         range {:.0}–{:.0} %",
        at(0.5),
        at(0.25),
        at(0.75),
        at(0.0),
        at(1.0)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
