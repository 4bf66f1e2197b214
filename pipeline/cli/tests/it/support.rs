//! Running the binary and making generated inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn deferlog() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deferlog"));
    // Tests must not pick up a developer's overrides.
    for (k, _) in std::env::vars() {
        if k.starts_with("DEFERLOG_") {
            c.env_remove(k);
        }
    }
    c
}

#[track_caller]
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn run(args: &[&str]) -> String {
    ok(deferlog()
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .expect("spawn deferlog"))
}

pub fn corpus(name: &str) -> PathBuf {
    let dir = std::env::var("DEFERLOG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    dir.join(name)
}

/// A generated log, its truth and the fleet config, in `dir`.
pub struct Generated {
    pub log: PathBuf,
    pub truth: PathBuf,
    pub config: PathBuf,
}

/// Several hosts and instances over about three days, with expiries (the generator's
/// queue lifetime is a few hours), at a rate low enough to cover many hours.
pub fn generate(dir: &Path, lines: u64, seed: u64) -> Generated {
    generate_as(dir, lines, seed, "postfix")
}

/// [`generate`] in another MTA's format, into files named after it.
pub fn generate_as(dir: &Path, lines: u64, seed: u64, format: &str) -> Generated {
    let (log, truth) = match format {
        "postfix" => (dir.join("sample.log"), dir.join("truth.csv")),
        f => (dir.join(format!("{f}.log")), dir.join(format!("{f}-truth.csv"))),
    };
    let config = dir.join("fleet.toml");
    let out = deferlog()
        .args(["gen", "--format", format, "--start", "2026-11-01"])
        .args([
            "--lines",
            &lines.to_string(),
            "--seed",
            &seed.to_string(),
            "--messages-per-hour",
            "300",
        ])
        .arg("--truth")
        .arg(&truth)
        .stdout(Stdio::from(std::fs::File::create(&log).expect("create log")))
        .output()
        .expect("gen");
    ok(out);
    std::fs::write(&config, run(&["gen", "--print-config"])).expect("write config");
    Generated { log, truth, config }
}

/// Replays `inputs` into `out` with the generated fleet's config; returns stderr (the summary).
pub fn replay(config: &Path, out: &Path, inputs: &[&Path]) -> String {
    replay_with_threads(config, out, inputs, None)
}

/// [`replay`] with `limits.parser_threads` set, if given.
pub fn replay_with_threads(config: &Path, out: &Path, inputs: &[&Path], threads: Option<&str>) -> String {
    let mut c = deferlog();
    if let Some(n) = threads {
        c.env("DEFERLOG_LIMITS__PARSER_THREADS", n);
    }
    let o = c
        .arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(["--reference-time", "2026-11-10T00:00:00Z", "--quiet"])
        .args(inputs)
        .output()
        .expect("replay");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(o);
    stderr
}

/// The event rows a truth CSV stands for: its attempts and its expiries.
pub fn truth_events(truth: &str) -> u64 {
    truth
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[4].parse::<u64>().expect("attempts") + f[8].parse::<u64>().expect("expired")
        })
        .sum()
}

/// `report hourly --format csv` as printed, with the trailing `final` column.
pub fn report_csv_with_final(data: &Path, extra: &[&str]) -> String {
    let mut c = deferlog();
    c.args(["report", "hourly", "--format", "csv", "--data"])
        .arg(data)
        .args(extra);
    ok(c.output().expect("report"))
}

/// The report of a replayed archive without the `final` column: the shape of `gen
/// --truth`. Its hours are final but for the last ones, which the input ends within
/// the allowed lateness of (the next replay closes them).
pub fn report_csv(data: &Path, extra: &[&str]) -> String {
    let full = report_csv_with_final(data, extra);
    let mut out = String::new();
    let mut open_seen = false;
    for (i, line) in full.lines().enumerate() {
        let (row, last) = line.rsplit_once(',').expect("a column");
        match (i, last) {
            (0, last) => assert_eq!(last, "final"),
            (_, "false") => open_seen = true,
            (_, "true") => assert!(!open_seen, "a final hour after an open one, line {i}: {line}"),
            _ => panic!("line {i}: {line}"),
        }
        out.push_str(row);
        out.push('\n');
    }
    out
}

/// The `reason` of every dead letter in the Parquet files under `dir`.
pub fn reject_reasons(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("rejects dir").flatten() {
        let file = std::fs::File::open(e.path()).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        for b in reader {
            let b = b.expect("batch");
            let col = b.column_by_name("reason").expect("reason column");
            let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).expect("cast");
            let col = col.as_any().downcast_ref::<arrow::array::StringArray>().expect("utf8");
            out.extend(col.iter().flatten().map(str::to_owned));
        }
    }
    out
}

/// Asserts two CSV texts are equal, showing only the rows that differ.
#[track_caller]
pub fn assert_same_rows(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let g: std::collections::BTreeSet<&str> = got.lines().collect();
    let w: std::collections::BTreeSet<&str> = want.lines().collect();
    let extra: Vec<_> = g.difference(&w).take(8).collect();
    let missing: Vec<_> = w.difference(&g).take(8).collect();
    panic!(
        "{what}: {} rows, expected {}\nunexpected (first 8): {extra:#?}\nmissing (first 8): {missing:#?}",
        got.lines().count(),
        want.lines().count()
    );
}
