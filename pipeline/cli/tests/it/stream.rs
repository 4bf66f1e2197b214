//! `deferlog run` against a real broker: exact counts, SIGTERM, `kill -9` at random
//! points, two instances in one group, dead letters.

use crate::broker::{Broker, wait_for};
use crate::external_reader::assert_duckdb_agrees;
use crate::support::{assert_same_rows, deferlog, generate, ok, replay, report_csv, report_csv_with_final};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const TOPIC: &str = "mail";

/// A broker, a generated log with its truth, and where the archive goes.
pub struct Case {
    pub broker: Broker,
    pub dir: tempfile::TempDir,
    pub g: crate::support::Generated,
    pub truth: String,
    pub archive: PathBuf,
}

impl Case {
    pub fn new(lines: u64, seed: u64) -> Case {
        let broker = Broker::start();
        let dir = tempfile::tempdir().expect("tmp");
        let g = generate(dir.path(), lines, seed);
        let truth = std::fs::read_to_string(&g.truth).expect("truth");
        let archive = dir.path().join("archive");
        Case {
            broker,
            dir,
            g,
            truth,
            archive,
        }
    }

    pub fn config(&self, group: &str, consumers: usize, kafka_extra: &str) -> PathBuf {
        stream_config_with(
            self.dir.path(),
            &self.g.config,
            &self.broker,
            group,
            consumers,
            kafka_extra,
        )
    }

    /// Waits until `n` records are checkpointed, then stops `run` with SIGTERM.
    fn finish(&self, run: &mut Child, n: u64) -> std::process::ExitStatus {
        wait_for("every record checkpointed", Duration::from_secs(240), || {
            checkpointed(&self.archive) == n
        });
        sigterm(run)
    }
}

/// The generated fleet's config plus the stream's settings (and extra `[kafka]` keys).
fn stream_config_with(
    dir: &Path,
    fleet: &Path,
    broker: &Broker,
    group: &str,
    consumers: usize,
    kafka_extra: &str,
) -> PathBuf {
    // Top-level keys first: after the fleet's [[egress]] tables they would land in one.
    let mut text = String::from("reference_time = \"2026-11-10T00:00:00Z\"\n");
    text.push_str(&std::fs::read_to_string(fleet).expect("fleet config"));
    text.push_str(&format!(
        "\n[kafka]\nbrokers = \"{}\"\ngroup_id = \"{group}\"\n\
         {kafka_extra}\n\
         [[kafka.topics]]\nname = \"{TOPIC}\"\n\
         [kafka.properties]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 500\n\
         [stream]\nout = \"{}\"\ncheckpoint_interval_ms = 300\nbatch_rows = 4096\nstatus_interval_secs = 1\nconsumers = {consumers}\nworkers = 2\n\
         [privacy]\nhash_key = \"000102030405060708090a0b0c0d0e0f\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
        broker.addr,
        dir.join("archive").display()
    ));
    let path = dir.join(format!("{group}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

pub fn produce(broker: &Broker, log: &Path) -> u64 {
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

pub fn start_run(config: &Path, log: &Path) -> Child {
    start_run_with(config, log, &[])
}

/// `run` with extra environment (configuration overrides).
pub fn start_run_with(config: &Path, log: &Path, env: &[(&str, &str)]) -> Child {
    deferlog()
        .envs(env.iter().copied())
        .arg("run")
        .arg("--config")
        .arg(config)
        // Not the harness's: a `run` left behind by a failed test would hold it open.
        .stdout(Stdio::null())
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

pub fn sigterm(child: &mut Child) -> std::process::ExitStatus {
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
    // Over 32 768 records: the poller looks at the workers' loads once by then.
    let c = Case::new(40_000, 17);
    let n = produce(&c.broker, &c.g.log);
    // One member, two processing workers. Its six partitions start three to a worker;
    // the generated fleet's three hosts land on partitions 1, 3 and 5, all on worker
    // 1, so the poller moves one of them to worker 0 at its first look.
    let config = c.config("exact", 1, "");
    let log = c.dir.path().join("run.log");
    let mut run = start_run(&config, &log);
    // One status line a second for the whole process: every record of both workers,
    // and the partitions of both.
    let every_record = format!("deferlog run: {n} records processed (");
    wait_for(
        "a status line with every record and partition",
        Duration::from_secs(240),
        || {
            std::fs::read_to_string(&log).is_ok_and(|t| {
                t.lines().any(|l| {
                    l.starts_with(&every_record)
                        && (0..6).all(|p| l.contains(&format!("mail/{p} ")))
                        && l.contains(" lag ")
                })
            })
        },
    );
    let status = c.finish(&mut run, n);
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("written and committed"), "{stderr}");
    assert!(
        stderr.contains("deferlog run: moved mail/"),
        "a partition moved: {stderr}"
    );
    // The fleet's config leaves mta-out3's default instance out: named once, alone.
    let no_ip: Vec<&str> = stderr.lines().filter(|l| l.contains("get no source_ip")).collect();
    assert_eq!(no_ip.len(), 1, "{stderr}");
    assert!(
        no_ip[0].contains("attempts of host mta-out3, instance postfix get"),
        "{stderr}"
    );

    // Everything consumed is in the report, the last hours not final yet.
    let with_final = report_csv_with_final(&c.archive, &[]);
    assert!(
        with_final.lines().last().is_some_and(|l| l.ends_with(",false")),
        "the last hour is open"
    );
    let without = report_csv_without_final(&c.archive);
    assert_same_rows(&without, &c.truth, "report after SIGTERM");
    // And every event, the open hours' held pieces included, is in `events/`.
    assert_duckdb_agrees(&c.archive, &c.g.truth);

    // Stream and batch agree: replay of the same log gives the same rows.
    let batch = c.dir.path().join("batch");
    replay(&c.g.config, &batch, &[&c.g.log]);
    assert_same_rows(&report_csv(&batch, &[]), &without, "replay of the same log");
}

#[test]
fn kill_9_at_random_points_loses_nothing_and_counts_nothing_twice() {
    let c = Case::new(150_000, 23);
    let n = produce(&c.broker, &c.g.log);
    let config = c.config("crashy", 2, "");
    let log = c.dir.path().join("run.log");
    // Kill points spread over the run, chosen from the clock so each CI run differs.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u64);
    // Each incarnation is killed once it has made progress of its own, a little
    // (random) while after one of its checkpoints: mid-epoch, files staged.
    let mut mid_run_kills = 0;
    for i in 0..4u64 {
        let before = checkpointed(&c.archive);
        let mut run = start_run(&config, &log);
        wait_for("progress before the kill", Duration::from_secs(240), || {
            checkpointed(&c.archive) > before || run.try_wait().ok().flatten().is_some()
        });
        std::thread::sleep(Duration::from_millis(seed.wrapping_mul(i + 3) % 250));
        run.kill().expect("kill -9");
        run.wait().expect("reap");
        if checkpointed(&c.archive) < n {
            mid_run_kills += 1;
        }
    }
    assert!(mid_run_kills >= 2, "only {mid_run_kills} kills came before the end");
    let mut run = start_run(&config, &log);
    assert!(c.finish(&mut run, n).success());
    assert_same_rows(&report_csv_without_final(&c.archive), &c.truth, "report");
    // The events archive too: what a killed run staged was either published with its
    // checkpoint or written again by the next run, never both.
    assert_duckdb_agrees(&c.archive, &c.g.truth);
}

#[test]
fn two_instances_share_the_partitions_and_survive_one_being_killed() {
    let c = Case::new(40_000, 29);
    let config = c.config("pair", 1, "");
    let (log_a, log_b) = (c.dir.path().join("a.log"), c.dir.path().join("b.log"));
    // Both join before any record exists, so the partitions are split between them.
    assert_eq!(produce(&c.broker, Path::new("/dev/null")), 0, "the topic, empty");
    let mut a = start_run(&config, &log_a);
    let mut b = start_run(&config, &log_b);
    wait_for("both instances assigned", Duration::from_secs(60), || {
        let has = |p: &Path| std::fs::read_to_string(p).is_ok_and(|s| s.contains("assigned"));
        has(&log_a) && has(&log_b)
    });
    // The log in two halves: the second arrives after one instance is gone, so its
    // partitions have records the survivor must take over from its checkpoints.
    let log = std::fs::read(&c.g.log).expect("log");
    let mid = log[log.len() / 2..].iter().position(|b| *b == b'\n').expect("newline") + log.len() / 2 + 1;
    let (first, second) = (c.dir.path().join("first.log"), c.dir.path().join("second.log"));
    std::fs::write(&first, &log[..mid]).expect("write");
    std::fs::write(&second, &log[mid..]).expect("write");
    let half = produce(&c.broker, &first);
    wait_for("some progress", Duration::from_secs(240), || {
        checkpointed(&c.archive) > 0
    });
    a.kill().expect("kill -9 one instance");
    a.wait().expect("reap");
    let n = half + produce(&c.broker, &second);
    wait_for("the survivor finishing", Duration::from_secs(240), || {
        checkpointed(&c.archive) == n
    });
    assert!(sigterm(&mut b).success());
    let b_log = std::fs::read_to_string(&log_b).expect("log");
    assert!(
        b_log.matches("assigned").count() >= 2,
        "the survivor took the killed instance's partitions over: {b_log}"
    );
    assert_same_rows(&report_csv_without_final(&c.archive), &c.truth, "report");
    assert_duckdb_agrees(&c.archive, &c.g.truth);
}

/// A member stopped for longer than its session timeout finds its partitions gone
/// when it wakes: it says so, answers `/readyz` with 503 until the group assigns
/// them again, and the run still counts every record once.
#[test]
fn a_member_out_of_the_group_too_long_is_not_ready_until_assigned_again() {
    let c = Case::new(20_000, 31);
    let config = c.config("lost", 1, "");
    let log = c.dir.path().join("run.log");
    let addr = format!("127.0.0.1:{}", crate::broker::free_port());
    let mut run = start_run_with(&config, &log, &[("DEFERLOG_METRICS__LISTEN", &addr)]);
    let n = produce(&c.broker, &c.g.log);
    let ready = || std::net::TcpStream::connect(&addr).is_ok() && crate::prometheus::get(&addr, "/readyz").0 == 200;
    wait_for("ready", Duration::from_secs(60), ready);
    wait_for("some progress", Duration::from_secs(240), || {
        checkpointed(&c.archive) > 0
    });
    let signal = |sig: &str| {
        let s = std::process::Command::new("kill")
            .args([sig, &run.id().to_string()])
            .status()
            .expect("kill");
        assert!(s.success(), "kill {sig}");
    };
    // Twice the session timeout (6 s): the broker drops the member meanwhile.
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(12));
    signal("-CONT");
    // `/readyz` and the gauge an alert watches say the same.
    let gauge = || {
        let (_, text) = crate::prometheus::get(&addr, "/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix("deferlog_ready "))
            .map(str::to_owned)
    };
    wait_for("not ready once the loss is seen", Duration::from_secs(30), || {
        crate::prometheus::get(&addr, "/readyz").0 == 503 && gauge().as_deref() == Some("0")
    });
    wait_for("ready again", Duration::from_secs(60), ready);
    assert_eq!(gauge().as_deref(), Some("1"));
    let (_, text) = crate::prometheus::get(&addr, "/metrics");
    let lost = text
        .lines()
        .find_map(|l| l.strip_prefix("deferlog_partitions_lost_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(lost.is_some_and(|n| n >= 1), "{lost:?}");
    assert!(c.finish(&mut run, n).success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("deferlog run: lost "), "{text}");
    assert_same_rows(&report_csv_without_final(&c.archive), &c.truth, "report");
}

/// SIGTERM while the broker hangs (it neither answers nor refuses: a dead network)
/// and the partitions are still held: everything read is in the final checkpoints, so
/// `run` goes without the commit and the leave it cannot get an answer to, and exits
/// 0 in bounded time (an orchestrator's grace period would kill it first).
#[test]
fn a_stop_while_the_broker_hangs_ends_promptly_and_loses_nothing() {
    let c = Case::new(5_000, 37);
    let config = c.config("hung", 1, "");
    let log = c.dir.path().join("run.log");
    let mut run = start_run_with(&config, &log, &[]);
    let n = produce(&c.broker, &c.g.log);
    wait_for("every record checkpointed", Duration::from_secs(240), || {
        checkpointed(&c.archive) == n
    });
    c.broker.signal("-STOP");
    // Well within the session timeout (6 s): the partitions are still this member's.
    std::thread::sleep(Duration::from_secs(1));
    let asked = std::time::Instant::now();
    let status = sigterm(&mut run);
    let took = asked.elapsed();
    c.broker.signal("-CONT");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(status.success(), "{status:?}: {text}");
    assert!(took < Duration::from_secs(30), "{took:?}: {text}");
    assert!(text.contains("committing: no answer from the brokers"), "{text}");
    assert!(text.contains("the last commit got no answer"), "{text}");
    assert_same_rows(&report_csv_without_final(&c.archive), &c.truth, "report");
}

/// A broker address nothing listens on: the log says librdkafka's own reason, not
/// only that all brokers are down.
#[test]
fn run_says_why_it_cannot_reach_the_brokers() {
    let c = Case::new(100, 41);
    let config = c.config("refused", 1, "");
    let nobody = format!("127.0.0.1:{}", crate::broker::free_port());
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains(&c.broker.addr), "{text}");
    std::fs::write(&config, text.replace(&c.broker.addr, &nobody)).expect("config");
    let log = c.dir.path().join("run.log");
    let addr = format!("127.0.0.1:{}", crate::broker::free_port());
    let mut run = start_run_with(&config, &log, &[("DEFERLOG_METRICS__LISTEN", &addr)]);
    wait_for("librdkafka's reason", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Connection refused"))
    });
    // And the errors are counted, by code, for an alert or a graph.
    wait_for("the errors counted", Duration::from_secs(30), || {
        let (_, text) = crate::prometheus::get(&addr, "/metrics");
        text.lines().any(|l| {
            l.strip_prefix("deferlog_kafka_errors_total{code=\"")
                .and_then(|r| r.split_once("\"} "))
                .is_some_and(|(code, n)| !code.is_empty() && n.parse::<u64>().is_ok_and(|n| n > 0))
        })
    });
    assert!(sigterm(&mut run).success());
}

/// A topic the brokers do not have: the log names the topics read (the broker's
/// error names none).
#[test]
fn run_names_the_topic_the_brokers_do_not_have() {
    let c = Case::new(100, 43);
    let config = c.config("no-topic", 1, "");
    let log = c.dir.path().join("run.log");
    let mut run = start_run_with(&config, &log, &[]);
    wait_for("the topic named", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("reading mail: a topic not on these brokers"))
    });
    assert!(sigterm(&mut run).success());
}

/// A member that finds at a checkpoint that another member stored the partition's
/// checkpoint since (it was out of the group, and the group's word had not reached
/// it) drops the partition unwritten and goes on; it leaves the group and joins again,
/// and the new assignment resumes from the checkpoint on disk: every record once.
#[test]
fn a_member_that_finds_its_partitions_taken_over_rejoins_and_counts_every_record_once() {
    let c = Case::new(20_000, 37);
    let config = c.config("fenced", 1, "");
    let log = c.dir.path().join("run.log");
    // Bytes: the generated log has junk lines that are not UTF-8.
    let raw = std::fs::read(&c.g.log).expect("log");
    let lines: Vec<&[u8]> = raw.split_inclusive(|b| *b == b'\n').collect();
    let (a, b) = lines.split_at(lines.len() / 2);
    let half = |name: &str, lines: &[&[u8]]| {
        let path = c.dir.path().join(name);
        std::fs::write(&path, lines.concat()).expect("write");
        path
    };
    let (first, second) = (half("first.log", a), half("second.log", b));
    let mut run = start_run_with(&config, &log, &[]);
    let n1 = produce(&c.broker, &first);
    wait_for("the first half checkpointed", Duration::from_secs(240), || {
        checkpointed(&c.archive) == n1
    });
    // Another member's store, as this one sees it: the checkpoint file is another file.
    let dir = c.archive.join("_state/checkpoints");
    for e in std::fs::read_dir(&dir).expect("checkpoints").flatten() {
        let copy = dir.join("copy.tmp");
        std::fs::copy(e.path(), &copy).expect("copy");
        std::fs::rename(&copy, e.path()).expect("rename");
    }
    let n2 = produce(&c.broker, &second);
    assert!(c.finish(&mut run, n1 + n2).success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("was taken over by another member of the group"), "{text}");
    assert!(text.contains("leaving the group and joining it again"), "{text}");
    assert_same_rows(&report_csv_without_final(&c.archive), &c.truth, "report");
}

#[test]
fn bad_keys_and_values_go_to_the_dead_letter_output_and_the_stream_goes_on() {
    let c = Case::new(10_000, 31);
    // A host field that is not UTF-8 becomes a key that is not either; a value that
    // is no log line at all.
    let bad = c.dir.path().join("bad.log");
    let mut bytes = b"Nov  1 08:00:00 \xff\xfehost postfix/smtp[1]: ABC: to=<x@y.example>, status=sent\n".to_vec();
    bytes.extend_from_slice(b"\x00\x01\x02 binary junk from a misrouted producer\n");
    std::fs::write(&bad, bytes).expect("write");
    let n = produce(&c.broker, &bad) + produce(&c.broker, &c.g.log);
    let topics = "hourly_topic = \"deferlog-hourly\"\ndead_letter_topic = \"deferlog-dlq\"";
    let config = c.config("dlq", 1, topics);
    let mut run = start_run(&config, &c.dir.path().join("run.log"));
    assert!(c.finish(&mut run, n).success());
    assert_same_rows(&report_csv_without_final(&c.archive), &c.truth, "report");

    // The dead-letter file output...
    let reasons = crate::support::reject_reasons(&c.archive.join("rejects"));
    assert_eq!(
        reasons.iter().filter(|r| r.as_str() == "bad_key").count(),
        1,
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r == "unrecognized_record"), "{reasons:?}");
    // ...and the topic outputs, read back from the broker.
    let tail = |topic: &str| -> Vec<serde_json::Value> {
        ok(deferlog()
            .args([
                "tail",
                "--brokers",
                &c.broker.addr,
                "--topic",
                topic,
                "--idle-ms",
                "3000",
            ])
            .args(["-X", "session.timeout.ms=6000"])
            .output()
            .expect("tail"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
    };
    let dlq = tail("deferlog-dlq");
    let bad_key: Vec<_> = dlq.iter().filter(|r| r["headers"]["reason"] == "bad_key").collect();
    assert_eq!(bad_key.len(), 1, "{dlq:?}");
    assert_eq!(bad_key[0]["headers"]["mta"], "unknown", "a bad key is no MTA's record");
    assert_eq!(
        bad_key[0]["headers"]["refused"],
        b"\xff\xfehost".iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "the refused key, kept (as hex: it is no UTF-8)"
    );
    assert!(
        bad_key[0]["key"].as_str().is_some_and(|k| k.starts_with("mail/")),
        "origin as key"
    );
    assert!(
        !bad_key[0]["value"].to_string().contains("x@y"),
        "local part masked: {}",
        bad_key[0]
    );
    assert!(
        dlq.iter().any(|r| r["headers"]["reason"] == "unrecognized_record"),
        "{dlq:?}"
    );
    assert_same_rows(
        &hourly_topic_report(&tail("deferlog-hourly"), &c.truth),
        &c.truth,
        "hourly rows from the topic",
    );
}

#[test]
fn a_trickle_of_records_is_checkpointed_on_the_interval() {
    use std::io::Write;
    let c = Case::new(2_000, 41);
    // The topic exists before `run` joins, so its first assignment has the partitions.
    let empty = c.dir.path().join("empty.log");
    std::fs::write(&empty, "").expect("write");
    produce(&c.broker, &empty);
    let config = c.config("trickle", 1, "");
    // Each fetch answered as soon as a record is there, as a busy broker would.
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "[kafka.properties]\n",
        "[kafka.properties]\n\"fetch.wait.max.ms\" = 5\n",
    );
    std::fs::write(&config, text).expect("config");
    let log = c.dir.path().join("run.log");
    // One worker: every record reaches it, so its channel is never quiet for long.
    let mut run = start_run_with(&config, &log, &[("DEFERLOG_STREAM__WORKERS", "1")]);
    wait_for("the partitions assigned", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("assigned"))
    });
    let mut producer = deferlog()
        .args(["produce", "--brokers", &c.broker.addr, "--topic", TOPIC, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn produce");
    let mut stdin = producer.stdin.take().expect("stdin");
    // A record every 10 ms for up to 8 s: far below the 4096 records the worker
    // otherwise waits for between looks at the clock, and never a 100 ms pause.
    let lines = std::fs::read_to_string(&c.g.log).expect("log");
    let started = std::time::Instant::now();
    let mut first_checkpoint = None;
    for line in lines.lines().take(800) {
        writeln!(stdin, "{line}").expect("write to produce");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(10));
        if checkpointed(&c.archive) > 0 {
            first_checkpoint = Some(started.elapsed());
            break;
        }
    }
    drop(stdin);
    let out = producer.wait_with_output().expect("produce");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let sent: u64 = err
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {err:?}"));
    // The checkpoint interval is 300 ms; what is allowed on top is delivery and the
    // broker's pace, not thousands of records.
    if first_checkpoint.is_none() {
        // Not left running when the test fails.
        let _ = run.kill();
        let _ = run.wait();
    }
    let first = first_checkpoint.unwrap_or_else(|| {
        panic!(
            "no checkpoint while {sent} records trickled in over {:.1}s",
            started.elapsed().as_secs_f64()
        )
    });
    assert!(first < Duration::from_secs(5), "first checkpoint after {first:?}");
    assert!(c.finish(&mut run, sent).success());
}

#[test]
fn a_checkpoint_that_cannot_be_read_stops_run_naming_it_and_leaves_it_alone() {
    let c = Case::new(5_000, 37);
    let n = produce(&c.broker, &c.g.log);
    let config = c.config("broken", 1, "");
    let mut run = start_run(&config, &c.dir.path().join("first.log"));
    assert!(c.finish(&mut run, n).success());

    // One partition's checkpoint damaged on disk, as a bad disk or a hand edit would.
    let dir = c.archive.join("_state/checkpoints");
    let broken = std::fs::read_dir(&dir)
        .expect("checkpoints")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a checkpoint");
    std::fs::write(&broken, b"{\"version\": 1, \"scope\": tru").expect("damage it");
    let records_before = checkpointed(&c.archive);
    // New records on every partition: a run that went on would count them.
    assert_eq!(produce(&c.broker, &c.g.log), n);

    // The failure happens inside the assignment callback; run must not go on
    // without that partition's state, nor start it from scratch. A new group, so the
    // one assignment holds all six partitions: in the old group the broker may still
    // count the first run as a member for up to a session timeout, and this run would
    // first get (and rightly count) only some of them. Checkpoints are per partition,
    // not per group.
    let config = c.config("broken-again", 1, "");
    let log = c.dir.path().join("second.log");
    let mut again = start_run(&config, &log);
    wait_for("run to stop on its own", Duration::from_secs(60), || {
        again.try_wait().expect("wait").is_some()
    });
    let status = again.wait().expect("status");
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(!status.success(), "{stderr}");
    let name = broken.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(stderr.contains(name), "the error names {name}: {stderr}");
    assert_eq!(
        stderr.matches("EOF while parsing").count(),
        1,
        "the cause once: {stderr}"
    );
    assert_eq!(
        std::fs::read(&broken).expect("still there"),
        b"{\"version\": 1, \"scope\": tru",
        "the damaged checkpoint is left for the operator"
    );
    assert_eq!(
        checkpointed(&c.archive),
        records_before,
        "nothing new counted: {stderr}"
    );
}

/// What a reader of the hourly topic computes: per (scope, hour) the rows of the
/// highest revision, summed over scopes, as CSV in the truth's shape and order.
fn hourly_topic_report(records: &[serde_json::Value], truth: &str) -> String {
    type Latest = std::collections::BTreeMap<(String, String), (i64, Vec<serde_json::Value>)>;
    let mut latest = Latest::new();
    type Numbered = std::collections::BTreeMap<(String, String, i64), (usize, std::collections::BTreeSet<usize>)>;
    let mut numbered = Numbered::new();
    for r in records {
        let row: serde_json::Value = serde_json::from_str(r["value"].as_str().expect("text")).expect("row json");
        let key = (
            row["scope"].as_str().expect("scope").to_owned(),
            row["hour"].as_str().expect("hour").to_owned(),
        );
        let rev = row["revision"].as_i64().expect("revision");
        // Headers number the rows of a revision: a reader knows when it has all.
        let header = |h: &str| -> usize {
            r["headers"][h]
                .as_str()
                .and_then(|v| v.parse().ok())
                .expect("row and rows headers")
        };
        let (n, of) = (header("row"), header("rows"));
        assert!((1..=of).contains(&n), "{r}");
        numbered
            .entry((key.0.clone(), key.1.clone(), rev))
            .or_insert_with(|| (of, std::collections::BTreeSet::new()))
            .1
            .insert(n);
        let e = latest.entry(key).or_insert((rev, Vec::new()));
        if rev > e.0 {
            *e = (rev, Vec::new());
        }
        if rev == e.0 {
            e.1.push(row);
        }
    }
    for ((scope, hour, rev), (of, seen)) in &numbered {
        assert_eq!(
            seen.len(),
            *of,
            "{scope} {hour} revision {rev}: rows 1..={of}, got {seen:?}"
        );
    }
    let mut sums: std::collections::BTreeMap<(String, String, String, String), [i64; 5]> = Default::default();
    for (_, rows) in latest.values() {
        for row in rows {
            let s = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
            let c = sums
                .entry((s("hour"), s("source_ip"), s("mx_host"), s("mx_group")))
                .or_default();
            for (i, k) in ["attempts", "delivered", "deferred", "bounced", "expired"]
                .iter()
                .enumerate()
            {
                c[i] += row[*k].as_i64().expect("count");
            }
        }
    }
    let mut out = format!("{}\n", truth.lines().next().expect("header"));
    for ((h, ip, mx, g), c) in &sums {
        out.push_str(&format!(
            "{h},{ip},{mx},{g},{},{},{},{},{}\n",
            c[0], c[1], c[2], c[3], c[4]
        ));
    }
    out
}

fn report_csv_without_final(archive: &Path) -> String {
    report_csv_with_final(archive, &[])
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once(',').expect("final").0))
        .collect()
}
