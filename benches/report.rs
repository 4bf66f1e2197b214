//! The reports over an archive: `report deferrals` (`deferrals.sql` over the events,
//! one sort and a walk of windows) and `report hourly` (`hourly_report.sql` over the
//! hourly rows), each on its private runtime as the CLI runs them (events/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deferlog_app::config::Config;
use deferlog_app::engine::{self, EngineOptions, LineSource};
use deferlog_app::input::{self, ByteCounter};
use deferlog_app::query::{run_narrowed, run_query};
use deferlog_gen::{GenConfig, fleet_config_toml, write_log};
use deferlog_query::{EventFilter, EventSource, Query};

const LINES: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    // The archive of a 1M-line replay, made once: the reports only read it.
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("sample.log");
    let file = std::fs::File::create(&log).expect("create");
    let generated = GenConfig {
        lines: LINES,
        ..GenConfig::default()
    };
    write_log(generated.clone(), std::io::BufWriter::new(file)).expect("gen");
    let cfg: Config = toml::from_str(&fleet_config_toml()).expect("fleet config");
    let out = dir.path().join("archive");
    let src = input::open(&log.display().to_string(), &ByteCounter::default()).expect("open");
    let summary = engine::run(
        cfg.resolve("bench", generated.start_unix * 1_000_000).expect("resolve"),
        vec![Box::new(src) as Box<dyn LineSource>],
        EngineOptions {
            out: out.clone(),
            stage: None,
            run_id: "bench".into(),
            batch_rows: 65_536,
            lateness_us: 600_000_000,
            workers: 2,
            carried: Vec::new(),
            open_hours: Vec::new(),
            on_tick: None,
        },
    )
    .expect("replay");
    let events = summary.stats.events;

    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events));
    g.bench_function("deferrals_1m_lines", |b| {
        b.iter(|| {
            let source = EventSource::Dir(out.join("events"));
            let rows = run_narrowed(Query::DEFERRALS, source, &EventFilter::default(), None).expect("report");
            assert!(rows.iter().map(|b| b.num_rows()).sum::<usize>() > 0);
        })
    });
    g.bench_function("hourly_1m_lines", |b| {
        b.iter(|| {
            let source = EventSource::Dir(out.join("hourly"));
            let rows = run_query(Query::HOURLY_REPORT, source, &EventFilter::default()).expect("report");
            assert!(rows.iter().map(|b| b.num_rows()).sum::<usize>() > 0);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
