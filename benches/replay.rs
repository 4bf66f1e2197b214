//! The whole replay: read a generated log file, parse, write the Parquet archive and
//! the hourly rows (lines/s end to end).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use deferlog_app::config::Config;
use deferlog_app::engine::{self, EngineOptions, LineSource};
use deferlog_app::input::{self, ByteCounter};
use deferlog_gen::{GenConfig, fleet_config_toml, write_log};

const LINES: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("sample.log");
    let file = std::fs::File::create(&log).expect("create");
    write_log(
        GenConfig {
            lines: LINES,
            ..GenConfig::default()
        },
        std::io::BufWriter::new(file),
    )
    .expect("gen");
    let lines = std::fs::read(&log)
        .expect("read")
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64;
    let cfg: Config = toml::from_str(&fleet_config_toml()).expect("fleet config");
    let reference = GenConfig::default().start_unix * 1_000_000;

    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(lines));
    g.sample_size(10);
    let mut run = 0;
    g.bench_function("postfix_1m_lines_to_parquet", |b| {
        // Removing the previous run's archive is set-up, not replay.
        let setup = || {
            if run > 0 {
                std::fs::remove_dir_all(dir.path().join(format!("archive-{run}"))).expect("clean");
            }
            run += 1;
            run
        };
        b.iter_batched(
            setup,
            |run| {
                let out = dir.path().join(format!("archive-{run}"));
                let src = input::open(&log.display().to_string(), &ByteCounter::default()).expect("open");
                let summary = engine::run(
                    cfg.resolve("bench", reference).expect("resolve"),
                    vec![Box::new(src) as Box<dyn LineSource>],
                    EngineOptions {
                        out: out.clone(),
                        stage: None,
                        run_id: format!("bench{run}"),
                        batch_rows: 65_536,
                        lateness_us: 600_000_000,
                        workers: 2,
                        carried: Vec::new(),
                        open_hours: Vec::new(),
                        on_tick: None,
                    },
                )
                .expect("replay");
                assert_eq!(summary.stats.lines, lines);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
