//! Parse + normalize throughput (records/s), one core, into Arrow builders, without
//! I/O: a generated Postfix, Exim and KumoMTA log each, and PowerMTA accounting CSV.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use deferlog_event::{HourBatcher, Origin, RejectBuilder};
use deferlog_gen::{GenConfig, Generator, LogFormat, fleet_config_toml};
use deferlog_parse::Normalizer;
use std::hint::black_box;

const LINES: u64 = 200_000;

fn generated(format: LogFormat, seed: u64) -> Vec<Vec<u8>> {
    let mut g = Generator::new(GenConfig {
        lines: LINES,
        format,
        seed,
        ..GenConfig::default()
    });
    let mut all = Vec::new();
    while g.next_line(&mut all) {}
    // One record per line; KumoMTA logs nothing for some steps, Exim several lines
    // for an expiry.
    all.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn normalizer() -> Normalizer {
    let cfg: deferlog_app::config::Config = toml::from_str(&fleet_config_toml()).expect("fleet config");
    let reference = GenConfig::default().start_unix * 1_000_000;
    Normalizer::new(cfg.resolve("bench", reference).expect("resolve"))
}

/// PowerMTA accounting records (no generator writes them): a header, then
/// deliveries, deferrals and bounces with quoted diagnostics, numbered from `first`.
fn powermta(first: u64) -> Vec<Vec<u8>> {
    let start = GenConfig::default().start_unix;
    let mut out = vec![
        b"type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId".to_vec(),
    ];
    let mx = [
        ("gmail.com", "gmail-smtp-in.l.google.com", "142.250.102.27"),
        ("outlook.com", "outlook-com.olc.protection.outlook.com", "52.101.0.1"),
        ("yahoo.com", "mta5.am0.yahoodns.net", "67.195.204.72"),
    ];
    for i in first..first + LINES {
        let (domain, host, ip) = mx[(i % 3) as usize];
        let (kind, status, diag) = match i % 10 {
            0..=6 => ("d", "2.0.0 (success)", "smtp;250 2.0.0 OK"),
            7 | 8 => (
                "t",
                "4.7.28 (other)",
                "\"smtp;421-4.7.28 [198.51.100.11] Our system has detected an unusual rate of unsolicited mail, \"\"try later\"\"\"",
            ),
            _ => (
                "b",
                "5.1.1 (bad destination mailbox address)",
                "smtp;550 5.1.1 user unknown",
            ),
        };
        let t = start + (i / 50) as i64;
        out.push(
            format!(
                "{kind},{t},{},bounce@news.example,u{i}@{domain},,relayed,{status},{diag},dns;{host} ({ip}),,smtp,app,smtp,198.51.100.{},{ip},PIPELINING,{},vmta-{},job-{},",
                t - 30,
                11 + i % 4,
                2000 + i % 5000,
                i % 4,
                i / 1000
            )
            .into_bytes(),
        );
    }
    out
}

/// A normalizer that has seen `warm_up` traffic: a running pipeline's classifier has
/// built its lazy DFA states (a cold one builds them on its first few thousand distinct
/// replies), and its maps hold what that traffic left.
fn warmed(warm_up: &[Vec<u8>]) -> Normalizer {
    let mut n = normalizer();
    run(&mut n, warm_up);
    n
}

fn run(n: &mut Normalizer, lines: &[Vec<u8>]) -> usize {
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
    batcher.take_ready().count()
}

fn bench(c: &mut Criterion) {
    // Each measured log, and one of the same kind with other ids to warm up on.
    let inputs = [
        (
            "postfix",
            generated(LogFormat::Postfix, 7),
            generated(LogFormat::Postfix, 8),
        ),
        ("exim", generated(LogFormat::Exim, 7), generated(LogFormat::Exim, 8)),
        (
            "kumomta",
            generated(LogFormat::KumoMta, 7),
            generated(LogFormat::KumoMta, 8),
        ),
        ("powermta", powermta(0), powermta(LINES)),
    ];
    for (name, lines, warm_up) in &inputs {
        let mut g = c.benchmark_group(*name);
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.sample_size(10);
        // A normalizer lives as long as its process or partition: the bench measures
        // what each record costs it once running, not its start.
        g.bench_function("parse_normalize_to_arrow", |b| {
            b.iter_batched_ref(
                || warmed(warm_up),
                |n| black_box(run(n, lines)),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
