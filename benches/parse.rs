//! Parse + normalize throughput (lines/s) on a generated Postfix log, into Arrow
//! builders, without I/O.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deferlog_event::{HourBatcher, Origin, RejectBuilder};
use deferlog_gen::{GenConfig, Generator, fleet_config_toml};
use deferlog_parse::Normalizer;
use std::hint::black_box;

const LINES: u64 = 200_000;

fn generated() -> Vec<Vec<u8>> {
    let mut g = Generator::new(GenConfig {
        lines: LINES,
        ..GenConfig::default()
    });
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while g.next_line(&mut buf) {
        out.push(std::mem::take(&mut buf));
    }
    out
}

fn normalizer() -> Normalizer {
    let cfg: deferlog_app::config::Config = toml::from_str(&fleet_config_toml()).expect("fleet config");
    let reference = GenConfig::default().start_unix * 1_000_000;
    Normalizer::new(cfg.resolve("bench", reference).expect("resolve"))
}

fn bench(c: &mut Criterion) {
    let lines = generated();
    let mut g = c.benchmark_group("postfix");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);
    g.bench_function("parse_normalize_to_arrow", |b| {
        b.iter(|| {
            let mut n = normalizer();
            let mut batcher = HourBatcher::new(65_536);
            let mut rejects = RejectBuilder::default();
            for (i, l) in lines.iter().enumerate() {
                n.process_line(
                    l,
                    Origin::Line {
                        file: "bench",
                        line: i as u64,
                    },
                    &mut batcher,
                    &mut rejects,
                );
            }
            batcher.flush_all();
            black_box(batcher.take_ready().count())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
