//! The hourly report equals the generator's truth, row for row.

use crate::support::{generate, generate_as, replay, report_csv};
use std::collections::BTreeMap;
use std::io::Write;

#[test]
fn report_hourly_equals_the_truth_of_a_multi_host_multi_day_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 120_000, 11);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    // The input this test relies on: several hosts, days, and expiries in the truth.
    let rows: Vec<&str> = truth.lines().skip(1).collect();
    let days: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[..10]).collect();
    assert!(days.len() >= 3, "{days:?}");
    assert!(rows.iter().any(|r| !r.ends_with(",0")), "no expiries in the truth");
    assert!(
        rows.iter().any(|r| r.split(',').nth(1) == Some("")),
        "no unmapped instance in the truth"
    );

    let out = dir.path().join("archive");
    let summary = replay(&g.config, &out, &[&g.log]);
    assert!(summary.contains("lines/s"), "{summary}");
    assert_eq!(report_csv(&out, &[]), truth);

    // The run's hourly rows file holds the same rows.
    let hourly: Vec<_> = std::fs::read_dir(out.join("hourly"))
        .expect("hourly dir")
        .flatten()
        .collect();
    assert_eq!(hourly.len(), 1);
    let file = std::fs::File::open(hourly[0].path()).expect("open");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let (mut n, mut attempts, mut expired) = (0, 0, 0);
    for b in reader {
        let b = b.expect("batch");
        let sum = |c: &str| {
            let col = b.column_by_name(c).expect("column");
            let col = col.as_any().downcast_ref::<arrow::array::Int64Array>().expect("BIGINT");
            col.iter().flatten().sum::<i64>()
        };
        n += b.num_rows();
        attempts += sum("attempts");
        expired += sum("expired");
    }
    let col_sum = |i: usize| {
        rows.iter()
            .map(|r| r.split(',').nth(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
            .sum::<i64>()
    };
    assert_eq!((n, attempts, expired), (rows.len(), col_sum(4), col_sum(8)));
}

/// `report deferrals` against the generator: its deferrals add up to the truth's per
/// hour, sending IP and MX group, and each wait before a retry is at least the
/// generator's shortest Postfix backoff (300 s) and shorter than its queue lifetime
/// (4 h): rounds in which the destination was only held (`delivery temporarily
/// suspended`) are not tries, so one wait may span several backoffs.
#[test]
fn report_deferrals_add_up_to_the_truth_and_wait_as_the_generator_backs_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 60_000, 17);
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&g.log]);
    let mut truth: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for row in std::fs::read_to_string(&g.truth).expect("truth").lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let deferred: u64 = f[6].parse().expect("deferred");
        if deferred > 0 {
            *truth.entry((f[0].into(), f[1].into(), f[3].into())).or_default() += deferred;
        }
    }
    let report = crate::support::run(&[
        "report",
        "deferrals",
        "--format",
        "csv",
        "--data",
        &out.to_string_lossy(),
    ]);
    let mut lines = report.lines();
    assert_eq!(
        lines.next(),
        Some("hour,source_ip,mx_group,class,deferrals,retried,median_retry_seconds,max_retry_seconds")
    );
    let (mut got, mut retried_rows) = (BTreeMap::new(), 0);
    for row in lines {
        let f: Vec<&str> = row.split(',').collect();
        let (deferrals, retried): (u64, u64) = (f[4].parse().expect("deferrals"), f[5].parse().expect("retried"));
        *got.entry((f[0].to_string(), f[1].to_string(), f[2].to_string()))
            .or_default() += deferrals;
        assert!(retried <= deferrals, "{row}");
        if retried > 0 {
            retried_rows += 1;
            let (median, max): (f64, f64) = (f[6].parse().expect("median"), f[7].parse().expect("max"));
            assert!(median >= 300.0 && median <= max && max < 4.0 * 3600.0, "{row}");
        } else {
            assert_eq!((f[6], f[7]), ("", ""), "{row}");
        }
    }
    assert_eq!(got, truth);
    assert!(retried_rows > 10, "{report}");

    // `--class` (any case) keeps exactly that cause's rows of the whole report.
    let only = |class: &str| {
        crate::support::run(&[
            "report",
            "deferrals",
            "--format",
            "csv",
            "--class",
            class,
            "--data",
            &out.to_string_lossy(),
        ])
    };
    let whole: Vec<&str> = report.lines().skip(1).collect();
    for class in ["rate_limit", "CONNECTION_LIMIT"] {
        let want: Vec<&str> = whole
            .iter()
            .copied()
            .filter(|r| r.split(',').nth(3) == Some(&*class.to_lowercase()))
            .collect();
        assert!(!want.is_empty(), "the generator defers with {class}");
        let got = only(class);
        assert_eq!(got.lines().skip(1).collect::<Vec<_>>(), want, "--class {class}");
    }
    let o = crate::support::deferlog()
        .args(["report", "deferrals", "--class", "expired", "--data"])
        .arg(&out)
        .output()
        .expect("report");
    let err = String::from_utf8_lossy(&o.stderr);
    // Not a cause of deferrals: clap names the ones there are.
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid value 'expired' for '--class") && err.contains("rate_limit"),
        "{err}"
    );

    // `--retry-horizon`: the default (7 days) finds every retry the generator makes (its
    // queue lifetime is 4 hours), as reading to the end does; none past `--to`'s hour
    // finds fewer, of the same deferrals.
    let until = |horizon: &str| {
        crate::support::run(&[
            "report",
            "deferrals",
            "--format",
            "csv",
            "--to",
            "2026-11-01T12:00:00Z",
            "--retry-horizon",
            horizon,
            "--data",
            &out.to_string_lossy(),
        ])
    };
    let sums = |report: &str| {
        report.lines().skip(1).fold((0u64, 0u64), |(d, r), row| {
            let f: Vec<&str> = row.split(',').collect();
            (
                d + f[4].parse::<u64>().expect("deferrals"),
                r + f[5].parse::<u64>().expect("retried"),
            )
        })
    };
    let to_the_end = until("none");
    assert_eq!(until("7d"), to_the_end);
    let ((all, retried), (all_now, retried_now)) = (sums(&to_the_end), sums(&until("0h")));
    assert!(all > 0 && all_now == all && retried_now < retried, "{to_the_end}");
    // `--memory-limit`: a roomy bound changes no row (the query crate's tests show the
    // sort spilling under a tight one); one too small for a batch stops the report,
    // naming the flag and what ran short.
    let bounded = |limit: &str| {
        crate::support::deferlog()
            .args([
                "report",
                "deferrals",
                "--format",
                "csv",
                "--memory-limit",
                limit,
                "--data",
            ])
            .arg(&out)
            .output()
            .expect("report")
    };
    assert_eq!(crate::support::ok(bounded("1G")), report);
    let o = bounded("1M");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("needs more memory than --memory-limit 1M lets its sorts and grouping reserve")
            && err.contains("Resources exhausted")
            && !err.contains("datafusion.runtime.memory_limit"),
        "{err}"
    );
    let o = crate::support::deferlog()
        .args(["report", "deferrals", "--retry-horizon", "7x", "--data"])
        .arg(&out)
        .output()
        .expect("report");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(2) && err.contains("\"7x\" is not a horizon"),
        "{err}"
    );
}

#[test]
fn a_line_longer_than_any_mta_writes_is_one_reject_and_the_rest_counts() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 20_000, 13);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let log = std::fs::read(&g.log).expect("log");
    // 17 MiB of junk with no newline, halfway through.
    let half = log.len() / 2;
    let at = half + log[half..].iter().position(|b| *b == b'\n').expect("a line end") + 1;
    let mut spliced = log[..at].to_vec();
    spliced.extend(std::iter::repeat_n(b'z', 17 << 20));
    spliced.push(b'\n');
    spliced.extend_from_slice(&log[at..]);
    let input = dir.path().join("spliced.log");
    std::fs::write(&input, spliced).expect("write");
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&input]);
    assert_eq!(report_csv(&out, &[]), truth);
    let reasons = crate::support::reject_reasons(&out.join("rejects"));
    assert_eq!(
        reasons.iter().filter(|r| r.as_str() == "too_long").count(),
        1,
        "{reasons:?}"
    );
}

#[test]
fn gzip_split_files_and_stdin_give_the_same_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 30_000, 5);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let log = std::fs::read(&g.log).expect("log");
    // Split on a line boundary near the middle: older half gzipped, as logrotate leaves it.
    let mid = log[log.len() / 2..].iter().position(|b| *b == b'\n').expect("newline") + log.len() / 2 + 1;
    let older = dir.path().join("mail.log.1.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&older).expect("gz"), flate2::Compression::fast());
    gz.write_all(&log[..mid]).expect("write gz");
    gz.finish().expect("finish gz");
    let newer = dir.path().join("mail.log");
    std::fs::write(&newer, &log[mid..]).expect("write");

    // Given newest first, as `replay /var/log/mail.log /var/log/mail.log.1.gz` would be:
    // files are read oldest first (by mtime), so expiries find their earlier attempts.
    let now = std::time::SystemTime::now();
    let set_mtime = |p: &std::path::Path, ago: u64| {
        let f = std::fs::File::options().write(true).open(p).expect("open");
        f.set_modified(now - std::time::Duration::from_secs(ago))
            .expect("mtime");
    };
    set_mtime(&older, 86_400);
    set_mtime(&newer, 60);
    let out = dir.path().join("split");
    replay(&g.config, &out, &[&newer, &older]);
    assert_eq!(report_csv(&out, &[]), truth);

    let out = dir.path().join("stdin");
    let o = crate::support::deferlog()
        .arg("replay")
        .arg("--config")
        .arg(&g.config)
        .arg("--out")
        .arg(&out)
        .args(["--reference-time", "2026-11-10", "--quiet", "-"])
        .stdin(std::fs::File::open(&g.log).expect("open"))
        .output()
        .expect("replay stdin");
    crate::support::ok(o);
    assert_eq!(report_csv(&out, &[]), truth);
}

#[test]
fn filters_select_exactly_the_matching_truth_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 30_000, 3);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&g.log]);
    let header = truth.lines().next().expect("header");
    let expect = |keep: &dyn Fn(&[&str]) -> bool| -> String {
        let mut s = format!("{header}\n");
        for l in truth.lines().skip(1) {
            if keep(&l.split(',').collect::<Vec<_>>()) {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    };
    assert_eq!(
        report_csv(&out, &["--source-ip", "198.51.100.11"]),
        expect(&|r| r[1] == "198.51.100.11")
    );
    assert_eq!(report_csv(&out, &["--mx-group", "yahoo"]), expect(&|r| r[3] == "yahoo"));
    // Filters match what is stored, however the user spelled it.
    assert_eq!(report_csv(&out, &["--mx-group", "Yahoo"]), expect(&|r| r[3] == "yahoo"));
    let v6 = expect(&|r| r[1] == "2001:db8:25::22");
    assert!(v6.lines().count() > 1, "the fleet sends over IPv6");
    assert_eq!(report_csv(&out, &["--source-ip", "2001:DB8:25:0::22"]), v6);
    assert_eq!(
        report_csv(&out, &["--from", "2026-11-02", "--to", "2026-11-02T06:00:00Z"]),
        expect(&|r| r[0] >= "2026-11-02T00" && r[0] < "2026-11-02T06")
    );
}

#[test]
fn the_count_does_not_depend_on_the_number_of_parser_threads() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 30_000, 8);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    for threads in ["1", "3"] {
        let out = dir.path().join(format!("archive-{threads}"));
        crate::support::replay_with_threads(&g.config, &out, &[&g.log], Some(threads));
        assert_eq!(report_csv(&out, &[]), truth, "{threads} parser threads");
    }
}

/// A replay killed midway (`kill -9`: no handler runs) leaves hours it had closed in
/// the archive and records nothing. The next replay takes those files back, so
/// replaying the same log again counts every row once.
#[test]
fn a_replay_killed_midway_is_taken_back_by_the_next() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 60_000, 16);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let out = dir.path().join("archive");
    let log = std::fs::read(&g.log).expect("log");
    // Half the log through a pipe left open: the run cannot finish before the kill.
    let mut child = crate::support::deferlog()
        .arg("replay")
        .arg("--config")
        .arg(&g.config)
        .arg("--out")
        .arg(&out)
        .args(["--reference-time", "2026-11-10", "--quiet", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("replay");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&log[..log.len() / 2]).expect("feed");
    // Parquet files under `root`.
    let files_under = |root: &std::path::Path| {
        let mut n = 0;
        let mut dirs = vec![root.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    n += 1;
                }
            }
        }
        n
    };
    let staging = out.join("_state").join("replay-staging");
    let started = std::time::Instant::now();
    while files_under(&staging) == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no hour closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    drop(stdin);
    assert!(files_under(&staging) > 0, "the killed run had closed hours");
    // A reader of the archive (an ingester listing new files) sees none of them.
    assert_eq!(files_under(&out.join("events")), 0);
    assert_eq!(files_under(&out.join("rejects")), 0);

    replay(&g.config, &out, &[&g.log]);
    assert_eq!(report_csv(&out, &[]), truth);
    let events = crate::support::ok(
        crate::support::deferlog()
            .args(["sql", "--format", "csv", "--data"])
            .arg(&out)
            .arg("SELECT count(*) AS n FROM events")
            .output()
            .expect("sql"),
    );
    let want = crate::support::truth_events(&truth);
    assert_eq!(events, format!("n\n{want}\n"), "every event once");
    assert!(!staging.exists(), "the killed run's staged files were taken back");
}

/// `report destinations` counts as the truth does, summed over each group's MX hosts.
#[test]
fn destinations_count_what_the_truth_counts_per_ip_and_group() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 30_000, 14);
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&g.log]);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let mut want: BTreeMap<(String, String, String), [i64; 5]> = BTreeMap::new();
    for l in truth.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let sums = want.entry((f[0].into(), f[1].into(), f[3].into())).or_default();
        for (s, v) in sums.iter_mut().zip(&f[4..9]) {
            *s += v.parse::<i64>().expect("count");
        }
    }
    let o = crate::support::deferlog()
        .args(["report", "destinations", "--format", "csv", "--data"])
        .arg(&out)
        .output()
        .expect("report");
    let text = crate::support::ok(o);
    let mut got: BTreeMap<(String, String, String), [i64; 5]> = BTreeMap::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        // attempts, delivered, deferred, (held), bounced, expired
        let n = |i: usize| f[i].parse::<i64>().expect("count");
        got.insert((f[0].into(), f[1].into(), f[2].into()), [n(3), n(4), n(5), n(7), n(8)]);
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

/// Rotated logs replayed as they rotate, one run each, read as one log: a recipient
/// deferred in one file and expired in a later one keeps the MX and IP of its last
/// try, attempts are numbered on, and deferrals meet their next tries.
#[test]
fn logs_replayed_one_run_each_read_as_one_log() {
    let dir = tempfile::tempdir().expect("tmp");
    for format in ["postfix", "kumomta"] {
        let g = generate_as(dir.path(), 30_000, 12, format);
        let truth = std::fs::read_to_string(&g.truth).expect("truth");
        let log = std::fs::read(&g.log).expect("log");
        let cut = |at: usize| log[at..].iter().position(|b| *b == b'\n').expect("newline") + at + 1;
        let (a, b) = (cut(log.len() / 3), cut(2 * log.len() / 3));
        let parts: Vec<_> = [&log[..a], &log[a..b], &log[b..]]
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let p = dir.path().join(format!("{format}.{i}.log"));
                std::fs::write(&p, bytes).expect("write");
                p
            })
            .collect();
        let out = dir.path().join(format!("{format}-by-day"));
        for (i, part) in parts.iter().enumerate() {
            // The middle run asks for another thread count: the carried state's wins,
            // as lines must meet the state of the thread they are routed to.
            let threads = if i == 1 { "1" } else { "3" };
            let said = crate::support::replay_with_threads(&g.config, &out, &[part], Some(threads));
            assert!(!said.contains("earlier replays"), "in order: {said}");
        }
        assert_eq!(report_csv(&out, &[]), truth, "{format}");
        let whole = dir.path().join(format!("{format}-whole"));
        replay(&g.config, &whole, &[&g.log]);
        let deferrals = |data: &std::path::Path| {
            crate::support::ok(
                crate::support::deferlog()
                    .args(["report", "deferrals", "--format", "csv", "--data"])
                    .arg(data)
                    .output()
                    .expect("report"),
            )
        };
        assert_eq!(deferrals(&out), deferrals(&whole), "{format}: retry cadence");
        // The last part first, then the first: said.
        let backwards = dir.path().join(format!("{format}-backwards"));
        replay(&g.config, &backwards, &[&parts[2]]);
        let said = replay(&g.config, &backwards, &[&parts[0]]);
        assert!(said.contains("before") && said.contains("earlier replays"), "{said}");
    }
}

/// A live log replayed as it grows (cron), then its rotated copy gzipped: each run
/// adds only what the log gained, and together they give the truth.
#[test]
fn a_log_replayed_as_it_grows_adds_only_its_new_lines_and_its_rotated_copy_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 20_000, 14);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let log = std::fs::read(&g.log).expect("log");
    let cut = |at: usize| log[at..].iter().position(|b| *b == b'\n').expect("newline") + at + 1;
    let (a, b) = (cut(log.len() / 3), cut(2 * log.len() / 3));
    let live = dir.path().join("mail.log");
    let out = dir.path().join("archive");
    std::fs::write(&live, &log[..a]).expect("write");
    replay(&g.config, &out, &[&live]);
    let lines_before = |end: usize| log[..end].iter().filter(|b| **b == b'\n').count();
    for end in [b, log.len()] {
        std::fs::write(&live, &log[..end]).expect("grown");
        let said = replay(&g.config, &out, &[&live]);
        let from = if end == b { a } else { b };
        assert!(
            said.contains(&format!("continuing after line {}", lines_before(from))),
            "{said}"
        );
    }
    assert_eq!(report_csv(&out, &[]), truth, "the three runs are the whole log once");
    // Origins number lines in the whole file, across runs: as one replay of it does.
    let line_numbers = |data: &std::path::Path| {
        crate::support::run(&[
            "sql",
            "--data",
            data.to_str().expect("utf-8"),
            "--format",
            "csv",
            "SELECT count(*), sum(CAST(split_part(origin, ':', 2) AS BIGINT)) FROM events",
        ])
    };
    let whole = dir.path().join("whole");
    replay(&g.config, &whole, &[&g.log]);
    assert_eq!(line_numbers(&out), line_numbers(&whole));
    // Unchanged, or rotated and compressed: nothing to add, and no error.
    let said = replay(&g.config, &out, &[&live]);
    assert!(said.contains("nothing new"), "{said}");
    let gz = dir.path().join("mail.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).expect("gz"), flate2::Compression::fast());
    enc.write_all(&log).expect("gz");
    enc.finish().expect("gz");
    let said = replay(&g.config, &out, &[&gz]);
    assert!(said.contains("nothing new"), "{said}");
    assert_eq!(report_csv(&out, &[]), truth);
    // A log rewritten where it was read to is no continuation: refused, naming the
    // line to go on from, which --from-line then does (and records).
    let mut other = log[..b].to_vec();
    other.extend_from_slice(&log[a..]);
    std::fs::write(&live, &other).expect("rewritten");
    let replay_live = |extra: &[&str]| {
        crate::support::deferlog()
            .args([
                "replay",
                "--quiet",
                "--reference-time",
                "2026-11-10T00:00:00Z",
                "--config",
            ])
            .arg(&g.config)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .arg(&live)
            .output()
            .expect("replay")
    };
    let o = replay_live(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    let whole = lines_before(log.len()).to_string();
    assert!(
        !o.status.success() && err.contains(&format!("--from-line {whole}")) && !err.contains("--again"),
        "{err}"
    );
    let o = replay_live(&["--from-line", &whole]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    let o = replay_live(&[]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && said.contains("nothing new"), "{said}");
}

/// A log cut mid-hour (logrotate) leaves that hour open: not final until the replay
/// of the next file, which adds to it, reads past it.
#[test]
fn a_replay_leaves_the_hour_its_input_ends_in_open_until_the_next_reads_past_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "").expect("config");
    let sent = |at: &str, qid: &str| {
        format!(
            "Nov 10 {at} mta-out1 postfix/smtp[31]: {qid}: to=<u@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 OK)\n"
        )
    };
    let write = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.concat()).expect("write");
        p
    };
    // Allowed lateness is 10 minutes: a log ending at 11:55 has not closed 11:00.
    let monday = write(
        "mail.log.1",
        &[
            sent("10:05:00", "AAAAA1"),
            sent("10:30:00", "AAAAA2"),
            sent("11:55:00", "AAAAA3"),
        ],
    );
    let tuesday = write("mail.log", &[sent("11:58:00", "AAAAA4"), sent("12:20:00", "AAAAA5")]);
    let out = dir.path().join("archive");
    let hours = || -> Vec<(String, String, String)> {
        crate::support::report_csv_with_final(&out, &[])
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_owned(), f[4].to_owned(), f[9].to_owned())
            })
            .collect()
    };
    let row =
        |h: &str, attempts: &str, fin: &str| (format!("2026-11-10T{h}:00:00Z"), attempts.to_owned(), fin.to_owned());
    let said = replay(&config, &out, &[&monday]);
    assert!(said.contains("open (not final): 2026-11-10T11:00Z"), "{said}");
    assert_eq!(hours(), [row("10", "2", "true"), row("11", "1", "false")]);
    let said = replay(&config, &out, &[&tuesday]);
    assert!(said.contains("open (not final): 2026-11-10T12:00Z"), "{said}");
    assert_eq!(
        hours(),
        [row("10", "2", "true"), row("11", "2", "true"), row("12", "1", "false")],
        "11:00 has Tuesday's attempt too, and is closed"
    );
    // Monday's hourly file damaged: Tuesday still goes in, and 11:00 stays open.
    let broken = dir.path().join("broken");
    replay(&config, &broken, &[&monday]);
    let hourly = std::fs::read_dir(broken.join("hourly"))
        .expect("hourly")
        .flatten()
        .next()
        .expect("a file");
    std::fs::write(hourly.path(), b"not parquet").expect("damage");
    let said = replay(&config, &broken, &[&tuesday]);
    assert!(said.contains("2026-11-10T11:00Z stays open"), "{said}");
    assert!(
        said.contains("open (not final): 2026-11-10T11:00Z, 2026-11-10T12:00Z"),
        "{said}"
    );
}

/// Sums truth CSVs row by row, in the report's order (an empty field sorts first).
fn merged_truth(csvs: &[String]) -> String {
    let mut rows: BTreeMap<Vec<String>, [i64; 5]> = BTreeMap::new();
    for csv in csvs {
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let key = f[..4].iter().map(|s| (*s).to_owned()).collect();
            let counts = rows.entry(key).or_default();
            for (i, v) in f[4..9].iter().enumerate() {
                counts[i] += v.parse::<i64>().expect("count");
            }
        }
    }
    let mut out = format!("{}\n", deferlog_gen::CSV_HEADER);
    for (k, c) in rows {
        let c: Vec<String> = c.iter().map(i64::to_string).collect();
        out.push_str(&format!("{},{}\n", k.join(","), c.join(",")));
    }
    out
}

#[test]
fn exim_kumomta_and_powermta_logs_and_a_mixed_fleet_give_their_truth() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut truths = Vec::new();
    let mut logs = Vec::new();
    for (format, seed, marks) in [
        ("exim", 12, [" exim[", " == ", "retry timeout exceeded"]),
        (
            "kumomta",
            14,
            ["\"type\":\"Delivery\"", "\"TransientFailure\"", "\"Expiration\""],
        ),
        (
            "powermta",
            15,
            ["type,timeLogged,", "\nd,", "4.4.7 (delivery time expired)"],
        ),
    ] {
        let g = generate_as(dir.path(), 60_000, seed, format);
        let truth = std::fs::read_to_string(&g.truth).expect("truth");
        // Junk lines hold invalid UTF-8 on purpose.
        let text = String::from_utf8_lossy(&std::fs::read(&g.log).expect("log")).into_owned();
        assert!(marks.iter().all(|m| text.contains(m)), "{format}: {marks:?}");
        assert!(
            truth.lines().skip(1).any(|r| !r.ends_with(",0")),
            "{format}: no expiries in the truth"
        );
        let out = dir.path().join(format!("{format}-archive"));
        replay(&g.config, &out, &[&g.log]);
        assert_eq!(report_csv(&out, &[]), truth, "{format} alone");
        truths.push(truth);
        logs.push(g.log);
    }

    // Every MTA in one archive: format auto tells their lines apart.
    let postfix = generate(dir.path(), 40_000, 13);
    truths.push(std::fs::read_to_string(&postfix.truth).expect("truth"));
    let all = dir.path().join("all");
    replay(&postfix.config, &all, &[&postfix.log, &logs[0], &logs[1], &logs[2]]);
    assert_eq!(report_csv(&all, &[]), merged_truth(&truths), "every MTA in one archive");
}
