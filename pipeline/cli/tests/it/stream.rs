//! `deferlog run` against a real broker: exact counts, SIGTERM, `kill -9` at random
//! points, two instances in one group, dead letters.

use crate::broker::{Broker, wait_for};
use crate::support::{assert_same_rows, deferlog, generate, ok, replay, report_csv, report_csv_with_final};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const TOPIC: &str = "mail";

/// The generated fleet's config plus the stream's settings, for one test.
fn stream_config(dir: &Path, fleet: &Path, broker: &Broker, group: &str) -> PathBuf {
    stream_config_with(dir, fleet, broker, group, "")
}

/// The same, with extra keys for the `[kafka]` table.
fn stream_config_with(dir: &Path, fleet: &Path, broker: &Broker, group: &str, kafka_extra: &str) -> PathBuf {
    // Top-level keys first: after the fleet's [[egress]] tables they would land in one.
    let mut text = String::from("reference_time = \"2026-11-10T00:00:00Z\"\n");
    text.push_str(&std::fs::read_to_string(fleet).expect("fleet config"));
    text.push_str(&format!(
        "\n[kafka]\nbrokers = \"{}\"\ngroup_id = \"{group}\"\n\
         {kafka_extra}\n\
         [[kafka.topics]]\nname = \"{TOPIC}\"\n\
         [kafka.properties]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 500\n\
         [stream]\nout = \"{}\"\ncheckpoint_interval_ms = 300\nbatch_rows = 4096\nstatus_interval_secs = 1\n\
         [privacy]\nhash_key = \"000102030405060708090a0b0c0d0e0f\"\n",
        broker.addr,
        dir.join("archive").display()
    ));
    let path = dir.join(format!("{group}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

fn produce(broker: &Broker, log: &Path) -> u64 {
    let o = deferlog()
        .args([
            "produce",
            "--brokers",
            &broker.addr,
            "--topic",
            TOPIC,
            "--create-partitions",
            "6",
        ])
        .arg(log)
        .output()
        .expect("produce");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(o);
    err.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {err:?}"))
}

fn start_run(config: &Path, log: &Path) -> Child {
    deferlog()
        .arg("run")
        .arg("--config")
        .arg(config)
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("run log"),
        ))
        .spawn()
        .expect("spawn run")
}

/// Records covered by the checkpoints under `archive`.
fn checkpointed(archive: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(archive.join("_state/checkpoints")) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|c| c["counters"]["records"].as_u64().unwrap_or(0))
        .sum()
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let s = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(s.success());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run did not stop within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_counts_a_topic_exactly_stops_on_sigterm_and_agrees_with_replay() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 30_000, 17);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let n = produce(&broker, &g.log);
    let config = stream_config(dir.path(), &g.config, &broker, "exact");
    let archive = dir.path().join("archive");
    let log = dir.path().join("run.log");
    let mut run = start_run(&config, &log);
    wait_for("every record checkpointed", Duration::from_secs(240), || {
        checkpointed(&archive) == n
    });
    let status = sigterm(&mut run);
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(
        stderr.contains("records (") && stderr.contains("lag"),
        "status lines: {stderr}"
    );
    assert!(stderr.contains("written and committed"), "{stderr}");

    // Everything consumed is in the report, the last hours not final yet.
    let with_final = report_csv_with_final(&archive, &[]);
    assert!(
        with_final.lines().last().is_some_and(|l| l.ends_with(",false")),
        "the last hour is open"
    );
    let without = report_csv_without_final(&archive);
    assert_same_rows(&without, &truth, "report after SIGTERM");

    // Stream and batch agree: replay of the same log gives the same rows.
    let batch = dir.path().join("batch");
    replay(&g.config, &batch, &[&g.log]);
    assert_same_rows(&report_csv(&batch, &[]), &without, "replay of the same log");
}

#[test]
fn kill_9_at_random_points_loses_nothing_and_counts_nothing_twice() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 60_000, 23);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let n = produce(&broker, &g.log);
    let config = stream_config(dir.path(), &g.config, &broker, "crashy");
    let archive = dir.path().join("archive");
    let log = dir.path().join("run.log");
    // Kill points spread over the run, chosen from the clock so each CI run differs.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u64);
    let mut kills = 0;
    for i in 0..4u64 {
        let target = n * (i + 1) / 6 + (seed.wrapping_mul(i + 7) % (n / 10));
        let mut run = start_run(&config, &log);
        wait_for("progress before the kill", Duration::from_secs(240), || {
            checkpointed(&archive) >= target.min(n - 1) || run.try_wait().ok().flatten().is_some()
        });
        // Somewhere between checkpoints, not just after one.
        std::thread::sleep(Duration::from_millis(seed.wrapping_mul(i + 3) % 400));
        run.kill().expect("kill -9");
        run.wait().expect("reap");
        kills += 1;
    }
    assert_eq!(kills, 4);
    assert!(checkpointed(&archive) < n, "the kills came too late to test anything");
    let mut run = start_run(&config, &log);
    wait_for("every record checkpointed", Duration::from_secs(240), || {
        checkpointed(&archive) == n
    });
    assert!(sigterm(&mut run).success());
    assert_same_rows(&report_csv_without_final(&archive), &truth, "report");
}

#[test]
fn two_instances_share_the_partitions_and_survive_one_being_killed() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 40_000, 29);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let config = stream_config(dir.path(), &g.config, &broker, "pair");
    let archive = dir.path().join("archive");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    // Both join before any record exists, so the partitions are split between them.
    ok(deferlog()
        .args([
            "produce",
            "--brokers",
            &broker.addr,
            "--topic",
            TOPIC,
            "--create-partitions",
            "6",
        ])
        .arg("/dev/null")
        .output()
        .expect("create topic"));
    let mut a = start_run(&config, &log_a);
    let mut b = start_run(&config, &log_b);
    wait_for("both instances assigned", Duration::from_secs(60), || {
        let has = |p: &Path| std::fs::read_to_string(p).is_ok_and(|s| s.contains("assigned"));
        has(&log_a) && has(&log_b)
    });
    let n = produce(&broker, &g.log);
    wait_for("some progress", Duration::from_secs(240), || {
        checkpointed(&archive) >= n / 4
    });
    a.kill().expect("kill -9 one instance");
    a.wait().expect("reap");
    wait_for("the survivor finishing", Duration::from_secs(240), || {
        checkpointed(&archive) == n
    });
    assert!(sigterm(&mut b).success());
    let b_log = std::fs::read_to_string(&log_b).expect("log");
    assert!(
        b_log.matches("assigned").count() >= 2,
        "the survivor took the killed instance's partitions over: {b_log}"
    );
    assert_same_rows(&report_csv_without_final(&archive), &truth, "report");
}

#[test]
fn bad_keys_and_values_go_to_the_dead_letter_output_and_the_stream_goes_on() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 10_000, 31);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    // A host field that is not UTF-8 becomes a key that is not either; a value that
    // is no log line at all.
    let bad = dir.path().join("bad.log");
    let mut bytes = b"Nov  1 08:00:00 \xff\xfehost postfix/smtp[1]: ABC: to=<x@y.example>, status=sent\n".to_vec();
    bytes.extend_from_slice(b"\x00\x01\x02 binary junk from a misrouted producer\n");
    std::fs::write(&bad, bytes).expect("write");
    let n = produce(&broker, &bad) + produce(&broker, &g.log);
    let config = stream_config(dir.path(), &g.config, &broker, "dlq");
    let archive = dir.path().join("archive");
    let mut run = start_run(&config, &dir.path().join("run.log"));
    wait_for("every record checkpointed", Duration::from_secs(240), || {
        checkpointed(&archive) == n
    });
    assert!(sigterm(&mut run).success());
    assert_same_rows(&report_csv_without_final(&archive), &truth, "report");

    let reasons = crate::support::reject_reasons(&archive.join("rejects"));
    assert_eq!(
        reasons.iter().filter(|r| r.as_str() == "bad_key").count(),
        1,
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r == "unrecognized_record"), "{reasons:?}");
}

fn report_csv_without_final(archive: &Path) -> String {
    report_csv_with_final(archive, &[])
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once(',').expect("final").0))
        .collect()
}
