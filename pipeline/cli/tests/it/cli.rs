//! The commands as a user runs them: classify, check, gen, report errors.

use crate::support::{assert_same_rows, corpus, deferlog, generate, generate_as, ok, replay, report_csv, run};
use std::io::Write;
use std::process::Stdio;

#[test]
fn classify_answers_none_for_a_success_reply() {
    for reply in ["250 2.0.0 OK 1700000000 a1si123.45 - gsmtp", "250 Ok: queued as 4XYZ"] {
        assert_eq!(run(&["classify", reply]), "none\tsuccess-reply\n", "{reply}");
    }
    // A failure still goes to the rules.
    assert!(run(&["classify", "550 5.1.1 user unknown"]).starts_with("recipient\t"));
}

#[test]
fn classify_prints_class_and_rule() {
    let out = run(&[
        "classify",
        "421 4.7.0 Server is not currently available, possibly due to too many connections",
    ]);
    let (class, rule) = out.trim_end().split_once('\t').expect("class<TAB>rule");
    assert_eq!(class, "connection_limit");
    assert!(!rule.is_empty() && rule != "default", "{out}");
}

#[test]
fn classify_reads_one_reply_per_stdin_line() {
    let mut child = deferlog()
        .arg("classify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    // A blank line and one that is not UTF-8 keep their places in the answers.
    let replies: &[u8] = b"550 5.1.1 <x@example.com>: Recipient address rejected: User unknown\n\
                   \n\
                   421 4.7.0 too many connections from \xff\xfe\n\
                   450 4.2.0 <x@example.com>: Recipient address rejected: Greylisted\n";
    child.stdin.take().expect("stdin").write_all(replies).expect("write");
    let out = ok(child.wait_with_output().expect("wait"));
    let classes: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap_or("")).collect();
    assert_eq!(classes, ["recipient", "", "connection_limit", "greylist"]);
}

#[test]
fn classify_explain_shows_normalized_text_and_rules_tried() {
    let out = run(&[
        "classify",
        "--explain",
        "421-4.7.0 [192.0.2.1] Try again later, closing connection.",
    ]);
    assert!(out.contains("normalized:"), "{out}");
    assert!(!out.contains("192.0.2.1 ") || out.contains("<ip>"), "{out}");
    assert!(
        out.contains("MATCH") || out.lines().last().is_some_and(|l| l.ends_with("default")),
        "{out}"
    );
}

/// Runs `check` on `text` written to `bad.toml`; asserts it fails and returns stderr.
fn check_fails(dir: &std::path::Path, text: &str) -> String {
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, text).expect("write");
    let o = deferlog()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("check");
    assert!(!o.status.success(), "check accepted {text:?}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_names_the_file_and_key_of_a_bad_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = check_fails(
        dir.path(),
        "timezone = \"UTC\"\n[[egress]]\nhost = \"mta-out1\"\nip = \"not-an-ip\"\n",
    );
    assert!(err.contains("bad.toml") && err.contains("egress[0].ip"), "{err}");
    let err = check_fails(dir.path(), "[metrics]\nlisten = \"localhost\"\n");
    assert!(err.contains("bad.toml") && err.contains("metrics.listen"), "{err}");
    let err = check_fails(dir.path(), "[metrics]\nmx_host_top_k = 0\n");
    assert!(
        err.contains("bad.toml") && err.contains("metrics.mx_host_top_k"),
        "{err}"
    );

    let err = check_fails(dir.path(), "timezon = \"UTC\"\n");
    assert!(err.contains("bad.toml") && err.contains("timezon"), "{err}");

    let o = deferlog()
        .arg("check")
        .env("DEFERLOG_TIMEZONE", "Nowhere/City")
        .output()
        .expect("check");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("timezone"), "{err}");
}

#[test]
fn check_names_every_problem_of_a_config_not_just_the_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let problems = [
        ("timezone = \"Nowhere/City\"\n", "`timezone`"),
        ("[limits]\nmax_queue_ids = 1\n", "`limits.max_queue_ids`"),
        ("[[egress]]\nip = \"192.0.2.1\"\n", "`egress[0]`"),
        (
            "[metrics]\nlisten = \"localhost\"\nmx_host_top_k = 0\n",
            "`metrics.listen`",
        ),
        ("", "`metrics.mx_host_top_k`"),
        // `hourly_topic = ""` is off: not a second problem with the nameless topic.
        (
            "[kafka]\nbrokers = \"\"\ngroup_id = \"\"\nhourly_topic = \"\"\n\
             [[kafka.topics]]\nname = \"mail\"\nformat = \"sendmail\"\n[[kafka.topics]]\nname = \"\"\n",
            "`kafka.brokers`",
        ),
        ("", "`kafka.group_id`"),
        ("", "`kafka.topics[0].format`"),
        ("", "`kafka.topics[1].name`"),
        ("[stream]\nworkers = 0\n", "`stream.workers`"),
    ];
    let text: String = problems.iter().map(|(toml, _)| *toml).collect();
    let err = check_fails(dir.path(), &text);
    for (_, key) in problems {
        assert!(err.contains(key), "{key} not named in:\n{err}");
    }
    assert_eq!(err.matches("bad.toml").count(), problems.len(), "one line each:\n{err}");
    assert!(err.contains(&format!("{} problems:", problems.len())), "{err}");
}

#[test]
fn check_says_where_each_topics_tenant_and_host_come_from() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("topics.toml");
    std::fs::write(
        &cfg,
        "tenant = \"acme\"\ndefault_host = \"nohost\"\n[kafka]\nbrokers = \"127.0.0.1:9\"\ngroup_id = \"g\"\n\
         [[kafka.topics]]\nname = \"pmta\"\nformat = \"powermta\"\ntenant = { from = \"header\", name = \"t\" }\n\
         host = { from = \"key\" }\n\
         [[kafka.topics]]\nname = \"mail\"\nhost = { value = \"mx-out-9\" }\ntenant = { value = \"beta\" }\n",
    )
    .expect("write");
    let out = run(&["check", "--config", cfg.to_str().expect("utf-8 path")]);
    for line in [
        "topic pmta (powermta records; tenant from header t, else acme; where a record names no host, host from the \
         record key, else nohost)",
        "topic mail (auto records; tenant beta; where a record names no host, host mx-out-9)",
    ] {
        assert!(out.lines().any(|l| l.ends_with(line)), "{line:?} not in:\n{out}");
    }
}

#[test]
fn check_and_run_name_an_archive_path_that_cannot_be_a_directory() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let kafka = "[kafka]\nbrokers = \"127.0.0.1:9\"\ngroup_id = \"g\"\n[[kafka.topics]]\nname = \"mail\"\n";
    let err = check_fails(
        dir.path(),
        &format!("{kafka}[stream]\nout = {:?}\n", file.join("archive")),
    );
    assert!(
        err.contains("bad.toml") && err.contains("stream.out") && err.contains("a-file is a file"),
        "{err}"
    );
    // One `check` cannot see: a directory the system refuses to make.
    let cfg = dir.path().join("proc.toml");
    std::fs::write(
        &cfg,
        format!("{kafka}[stream]\nout = \"/proc/deferlog-test/archive\"\n"),
    )
    .expect("write");
    let o = deferlog().arg("run").arg("--config").arg(&cfg).output().expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("proc.toml") && err.contains("key `stream.out`"),
        "{err}"
    );
}

#[test]
fn check_notes_a_metrics_port_taken_now() {
    let dir = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let cfg = dir.path().join("port.toml");
    std::fs::write(&cfg, format!("[metrics]\nlisten = \"{addr}\"\n")).expect("write");
    let out = run(&["check", "--config", cfg.to_str().expect("utf-8 path")]);
    assert!(
        out.contains(&format!("note: metrics.listen {addr} cannot be listened on now")),
        "{out}"
    );
    drop(taken);
    let out = run(&["check", "--config", cfg.to_str().expect("utf-8 path")]);
    assert!(!out.contains("note:"), "{out}");
}

#[test]
fn the_shipped_config_validates_and_maps_the_generated_fleet() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/deferlog.toml");
    let out = run(&["check", "--config", shipped]);
    assert!(
        out.contains("ok") && out.contains("hand-off addresses 127.0.0.0/8 ::1"),
        "{out}"
    );
    let fleet = run(&["gen", "--print-config"]);
    let text = std::fs::read_to_string(shipped).expect("shipped config");
    for line in fleet
        .lines()
        .filter(|l| l.starts_with("ip =") || l.starts_with("instance ="))
    {
        assert!(text.contains(line), "deploy/config/deferlog.toml lacks `{line}`");
    }
}

/// Three deliveries to gmail.com and a deferral by outlook.com, each its MX's group:
/// `google` and `microsoft` (README, MX groups).
const FOUR_ATTEMPTS: &str = "\
2026-11-28T10:00:01.000000+00:00 mta1 postfix/smtp[2101]: 4A1B2C3D4E: to=<ann@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK  1764324001 a1si123 - gsmtp)
2026-11-28T10:00:02.000000+00:00 mta1 postfix/smtp[2101]: 5B2C3D4E5F: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK  1764324002 b2si456 - gsmtp)
2026-11-28T10:00:03.000000+00:00 mta1 postfix/smtp[2102]: 6C3D4E5F6A: to=<cy@outlook.com>, relay=outlook-com.olc.protection.outlook.com[52.101.0.1]:25, delay=2, delays=0.1/0/1/0.9, dsn=4.7.650, status=deferred (host outlook-com.olc.protection.outlook.com[52.101.0.1] said: 451 4.7.650 The mail server [198.51.100.11] has been temporarily rate limited due to IP reputation. (in reply to MAIL FROM command))
2026-11-28T10:00:04.000000+00:00 mta1 postfix/smtp[2101]: 7D4E5F6A7B: to=<dee@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 OK  1764324004 c3si789 - gsmtp)
";

#[test]
fn a_report_for_an_mx_group_with_no_events_names_the_groups_there_are() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("mail.log");
    std::fs::write(&log, FOUR_ATTEMPTS).expect("write");
    let out = dir.path().join("archive");
    ok(deferlog()
        .arg("replay")
        .arg("--out")
        .arg(&out)
        .arg(&log)
        .output()
        .expect("replay"));
    let report = |kind: &str, filters: &[&str]| {
        let o = deferlog()
            .args(["report", kind, "--data"])
            .arg(&out)
            .args(filters)
            .output()
            .expect("report");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (ok(o), err)
    };
    // The mailbox domain, not the MX's group: both reports empty, and the groups the
    // archive has named, busiest first.
    for kind in ["hourly", "deferrals"] {
        let (rows, err) = report(kind, &["--mx-group", "gmail"]);
        assert!(rows.trim_end().ends_with("(no rows)"), "{rows}");
        assert_eq!(
            err,
            "deferlog report: no event has mx_group \"gmail\"; the archive's events are in google (3 events), \
             microsoft (1)\n",
            "{kind}"
        );
    }
    // Under the other filters: only what they keep.
    let (_, err) = report("hourly", &["--mx-group", "gmail", "--source-ip", "unknown"]);
    assert_eq!(
        err,
        "deferlog report: no event under the other filters has mx_group \"gmail\"; the archive's events there are in \
         google (3 events), microsoft (1)\n"
    );
    // The group is there and the other filters leave nothing: no hint.
    let (rows, err) = report("hourly", &["--mx-group", "google", "--source-ip", "192.0.2.1"]);
    assert!(rows.trim_end().ends_with("(no rows)") && err.is_empty(), "{rows}{err}");
    // A group with rows: no hint either.
    let (rows, err) = report("hourly", &["--mx-group", "MICROSOFT"]);
    assert!(rows.contains("microsoft") && err.is_empty(), "{rows}{err}");
}

#[test]
fn report_on_a_missing_archive_says_what_to_do() {
    let o = deferlog()
        .args(["report", "hourly", "--data", "/nonexistent/archive"])
        .output()
        .expect("report");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no such directory") && err.contains("deferlog replay"),
        "{err}"
    );
    let report = |data: &std::path::Path| {
        deferlog()
            .args(["report", "hourly", "--data"])
            .arg(data)
            .output()
            .expect("report")
    };
    // A directory nothing was written into yet (a replay that found no events): no rows.
    let empty = tempfile::tempdir().expect("tmp");
    let out = ok(report(empty.path()));
    assert!(
        out.starts_with("hour ") && out.trim_end().ends_with("\n(no rows)"),
        "{out}"
    );
    // An archive with dead letters but no hours: no rows, and the warning says why.
    std::fs::create_dir(empty.path().join("rejects")).expect("mkdir");
    let o = report(empty.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("no hours written yet"), "{err}");
    // The deferrals report reads events, and says so.
    let o = deferlog()
        .args(["report", "deferrals", "--data"])
        .arg(empty.path())
        .output()
        .expect("report");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("no events/") && err.contains("no events written yet"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("median_retry_seconds"));
    // A directory that holds something else (say, an archive's events/ itself).
    let other = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(other.path().join("date=2026-11-01")).expect("mkdir");
    let o = report(other.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("not an archive"), "{err}");
}

/// A file every write to fails (ENOSPC), as a full disk or a closed pipe would.
fn full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    )
}

/// `replay --quiet` of one input, to be run as the test needs.
fn replay_cmd(config: &std::path::Path, out: &std::path::Path, input: &std::path::Path) -> std::process::Command {
    let mut c = deferlog();
    c.args(["replay", "--quiet", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .arg(input);
    c
}

#[test]
fn an_unwritable_stderr_loses_log_lines_not_the_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 3000, 7);
    let out = dir.path().join("archive");
    let o = replay_cmd(&g.config, &out, &g.log)
        .stderr(full())
        .output()
        .expect("replay");
    assert!(o.status.success(), "exit {:?}", o.status);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    assert_same_rows(&report_csv(&out, &[]), &truth, "replay with stderr full");
}

#[test]
fn check_reports_a_failed_write_and_prints_no_ok_before_an_error() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/deferlog.toml");
    let o = deferlog()
        .args(["check", "--config", shipped])
        .stdout(full())
        .output()
        .expect("check");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("writing to stdout") && !err.contains("panicked"), "{err}");
    // The normalizer's keys are fine, the metrics' are not: nothing is said to be ok.
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[metrics]\nlisten = \"nope\"\n").expect("write");
    let o = deferlog()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .expect("check");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("metrics.listen"), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
}

#[test]
fn a_replay_whose_input_breaks_off_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    // Enough lines that hours close and their files are written before it breaks off.
    let g = generate(dir.path(), 60_000, 7);
    let log = std::fs::read(&g.log).expect("log");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&log).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let cut = dir.path().join("mail.log.1.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).expect("write");
    let out = dir.path().join("archive");
    let o = replay_cmd(&g.config, &out, &cut).output().expect("replay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("mail.log.1.gz"), "{err}");
    let left: Vec<_> = walkdir(&out);
    assert!(left.is_empty(), "left behind: {left:?}");
    // Run again with the whole input, every line counts once.
    std::fs::write(&cut, &gz).expect("write");
    replay(&g.config, &out, &[&cut]);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    assert_same_rows(&report_csv(&out, &[]), &truth, "the replay after the failed one");
}

#[test]
fn a_log_the_archive_already_took_is_refused_under_any_name_unless_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 5000, 7);
    let out = dir.path().join("archive");
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    // The log as logrotate leaves it: renamed and compressed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&g.log).expect("log")).expect("gzip");
    let rotated = dir.path().join("mail.log.1.gz");
    std::fs::write(&rotated, gz.finish().expect("gzip")).expect("write");
    // Read whole, under any name and compressed or not, it holds nothing new.
    replay(&g.config, &out, &[&rotated]);
    assert_same_rows(&report_csv(&out, &[]), &truth, "the first replay");
    let said = replay(&g.config, &out, &[&g.log]);
    assert!(said.contains("sample.log: nothing new"), "{said}");
    assert_same_rows(&report_csv(&out, &[]), &truth, "the same log again");
    // One that begins as it did but ends before where it was read to (a copy taken
    // earlier) is refused.
    let log = std::fs::read(&g.log).expect("log");
    let cut = log[..3 * log.len() / 4]
        .iter()
        .rposition(|b| *b == b'\n')
        .expect("a line")
        + 1;
    let shorter = dir.path().join("mail.log");
    std::fs::write(&shorter, &log[..cut]).expect("write");
    let o = replay_cmd(&g.config, &out, &shorter)
        .args(["--reference-time", "2026-11-10T00:00:00Z"])
        .output()
        .expect("replay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mail.log begins as") && err.contains("but ends before it") && err.contains("--from-line"),
        "{err}"
    );
    assert_same_rows(&report_csv(&out, &[]), &truth, "after the refused replay");
    let again = |extra: &[&str]| {
        replay_cmd(&g.config, &out, &g.log)
            .args(["--reference-time", "2026-11-10T00:00:00Z"])
            .args(extra)
            .output()
            .expect("replay")
    };
    // With --again it is added: every count twice.
    ok(again(&["--again"]));
    let doubled: String = truth
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<String> = l.split(',').map(str::to_owned).collect();
            let counts = f[4..].iter().map(|n| match i {
                0 => n.clone(),
                _ => (2 * n.parse::<u64>().expect("count")).to_string(),
            });
            let row: Vec<String> = f[..4].iter().cloned().chain(counts).collect();
            row.join(",") + "\n"
        })
        .collect();
    assert_same_rows(&report_csv(&out, &[]), &doubled, "after --again");
}

/// Two logs in one replay, one read with the wrong format: that one is named, and
/// only the other is recorded as taken, so the first can be replayed with its own.
#[test]
fn a_log_that_gave_no_events_beside_others_is_named_and_not_recorded() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 5000, 7);
    let exim = generate_as(dir.path(), 5000, 8, "exim");
    let out = dir.path().join("archive");
    let replay = |log: &std::path::Path, extra: &[&std::path::Path], format: &str| {
        replay_cmd(&g.config, &out, log)
            .args(extra)
            .args(["--format", format, "--reference-time", "2026-11-10T00:00:00Z"])
            .output()
            .expect("replay")
    };
    let o = replay(&g.log, &[&exim.log], "postfix");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let named = format!("no delivery events in {}: ", exim.log.display());
    assert!(err.contains(&named) && !err.contains("sample.log:"), "{err}");
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    assert_same_rows(&report_csv(&out, &[]), &truth, "the Postfix log alone");
    // The Exim log with its own format is taken; the Postfix log was recorded.
    ok(replay(&exim.log, &[], "exim"));
    let o = replay(&g.log, &[], "postfix");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("sample.log: nothing new"), "{err}");
    // Given on stdin, it is named as its lines' origins name it.
    let o = replay_cmd(&g.config, &dir.path().join("other"), &g.log)
        .args(["-", "--format", "postfix", "--reference-time", "2026-11-10T00:00:00Z"])
        .stdin(std::fs::File::open(&exim.log).expect("exim log"))
        .output()
        .expect("replay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("no delivery events in stdin: "),
        "{err}"
    );
}

#[test]
fn a_replay_without_events_says_so_and_hints_at_the_format_only_for_unread_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let replay = |log: &std::path::Path, format: &str| {
        let o = deferlog()
            .args(["replay", "--format", format, "--out"])
            .arg(dir.path().join(format!("archive-{format}")))
            .arg(log)
            .output()
            .expect("replay");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    };
    // A PowerMTA file that is its header: right format, no hint, and no archive named.
    let header = dir.path().join("acct.csv");
    std::fs::write(&header, "type,timeLogged,timeQueued,orig,rcpt,dsnStatus,dsnDiag\n").expect("write");
    let err = replay(&header, "powermta");
    assert!(
        err.contains("nothing written (no delivery events, no rejects)"),
        "{err}"
    );
    assert!(!err.contains("give --format"), "{err}");
    // KumoMTA records read as Postfix: the hint.
    let err = replay(&corpus("kumomta.jsonl"), "postfix");
    assert!(err.contains("give --format"), "{err}");
}

#[test]
fn a_journald_export_replays_as_the_log_it_came_from() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 6000, 7);
    let text = String::from_utf8_lossy(&std::fs::read(&g.log).expect("log")).into_owned();
    // `STAMP HOST PROGRAM[PID]: CONTENT`, as journald keeps it (the generated junk
    // lines, which do not split so, are left out of both). The fleet writes RFC 3339
    // stamps and BSD ones (UTC, in the replay's year).
    fn stamp(l: &str) -> Option<(i64, &str)> {
        let (first, rest) = l.split_once(' ')?;
        match chrono::DateTime::parse_from_rfc3339(first) {
            Ok(t) => Some((t.timestamp_micros(), rest)),
            Err(_) => {
                let bsd = format!("2026 {}", l.get(..15)?);
                let t = chrono::NaiveDateTime::parse_from_str(&bsd, "%Y %b %e %H:%M:%S").ok()?;
                Some((t.and_utc().timestamp_micros(), l.get(16..)?))
            }
        }
    }
    let (mut plain, mut journal) = (String::new(), String::new());
    for l in text.lines() {
        let Some((t, rest)) = stamp(l) else { continue };
        let Some((host, rest)) = rest.split_once(' ') else {
            continue;
        };
        let Some((tag, content)) = rest.split_once(": ") else {
            continue;
        };
        let Some((program, pid)) = tag.strip_suffix(']').and_then(|t| t.split_once('[')) else {
            continue;
        };
        plain.push_str(l);
        plain.push('\n');
        let record = serde_json::json!({
            "MESSAGE": content, "_HOSTNAME": host, "SYSLOG_IDENTIFIER": program, "_PID": pid,
            "__REALTIME_TIMESTAMP": t.to_string(), "_TRANSPORT": "syslog",
        });
        journal.push_str(&record.to_string());
        journal.push('\n');
    }
    let journal_lines = journal.lines().count();
    assert!(journal_lines > 5000, "{journal_lines} of 6000 lines split");
    let (plain_log, journal_log) = (dir.path().join("plain.log"), dir.path().join("journal.json"));
    std::fs::write(&plain_log, plain).expect("write");
    std::fs::write(&journal_log, journal).expect("write");
    let config = dir.path().join("journald.toml");
    let fleet = std::fs::read_to_string(&g.config).expect("config");
    std::fs::write(
        &config,
        format!(
            "{fleet}\n[envelope]\nmessage = \"MESSAGE\"\nhost = \"_HOSTNAME\"\ntimestamp = \"__REALTIME_TIMESTAMP\"\n\
             program = \"SYSLOG_IDENTIFIER\"\n"
        ),
    )
    .expect("write");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let plain_summary = replay(&g.config, &a, &[&plain_log]);
    let summary = replay(&config, &b, &[&journal_log]);
    let want = report_csv(&a, &[]);
    assert!(want.lines().count() > 20, "{want}");
    assert_same_rows(&report_csv(&b, &[]), &want, "the journald export");
    // Every record read as a line, and the same lines skipped and rejected (the
    // generator's cut-off lines), by kind and reason.
    let counts = |s: &str| -> Vec<String> {
        s.lines()
            .skip_while(|l| !l.starts_with("lines read"))
            .take_while(|l| !l.starts_with("elapsed"))
            .map(str::to_owned)
            .collect()
    };
    let counted = counts(&summary);
    assert_eq!(counted, counts(&plain_summary), "{summary}");
    assert!(counted[0].ends_with(&format!(" {journal_lines}")), "{summary}");
}

#[test]
fn a_replay_that_fails_after_its_events_are_written_takes_them_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 5000, 7);
    let out = dir.path().join("archive");
    // The hourly rows cannot be written: their directory's name is a file's.
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("hourly"), "").expect("write");
    let o = replay_cmd(&g.config, &out, &g.log).output().expect("replay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(walkdir(&out), [out.join("hourly")], "only what was there before");
    // Once the directory can be made, the same log counts once, and is not refused.
    std::fs::remove_file(out.join("hourly")).expect("rm");
    replay(&g.config, &out, &[&g.log]);
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    assert_same_rows(&report_csv(&out, &[]), &truth, "the replay after the failed one");
}

/// Every file and directory under `p` (none if it is not there).
fn walkdir(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        out.push(e.path());
        out.extend(walkdir(&e.path()));
    }
    out
}

#[test]
fn replay_names_the_hosts_and_instances_whose_attempts_got_no_sending_ip() {
    let dir = tempfile::tempdir().expect("tmp");
    // The generated fleet's config leaves out one instance on purpose: mta-out3's
    // default `postfix`.
    let g = generate(dir.path(), 5000, 7);
    let nulls = |out: &std::path::Path| {
        ok(deferlog()
            .args(["sql", "--format", "csv", "--data"])
            .arg(out)
            .arg(
                "SELECT mta_host, mta_instance, count(*) AS n FROM events \
                 WHERE source_ip IS NULL AND outcome <> 'expired' GROUP BY 1, 2",
            )
            .output()
            .expect("sql"))
    };
    let out = dir.path().join("archive");
    let summary = replay(&g.config, &out, &[&g.log]);
    let mut lines = summary.lines().skip_while(|l| !l.starts_with("no sending IP"));
    let head: Vec<&str> = lines.next().expect("a no-sending-IP line").split_whitespace().collect();
    let n = head[3];
    assert_eq!(
        lines.next().map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["host", "mta-out3,", "instance", "postfix", n]),
        "{summary}"
    );
    assert!(
        lines.next().is_some_and(|l| !l.starts_with("  ")),
        "one host and instance: {summary}"
    );
    // The attempts the archive holds without a source_ip.
    assert_eq!(nulls(&out), format!("mta_host,mta_instance,n\nmta-out3,postfix,{n}\n"));

    // With the entry added, every attempt has its IP and the summary names nothing.
    let mut config = std::fs::read_to_string(&g.config).expect("config");
    config.push_str("\n[[egress]]\nhost = \"mta-out3\"\ninstance = \"postfix\"\nip = \"203.0.113.30\"\n");
    let mapped = dir.path().join("mapped.toml");
    std::fs::write(&mapped, config).expect("write");
    let out = dir.path().join("mapped");
    let summary = replay(&mapped, &out, &[&g.log]);
    assert!(!summary.contains("no sending IP"), "{summary}");
    assert_eq!(nulls(&out), "mta_host,mta_instance,n\n");
}

#[test]
fn sql_runs_the_query_files_and_the_users_own_over_the_archive() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 5000, 7);
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&g.log]);
    let sql = |args: &[&str]| {
        ok(deferlog()
            .args(["sql", "--format", "csv", "--data"])
            .arg(&out)
            .args(args)
            .output()
            .expect("sql"))
    };
    // The report's own file, run as any SQL: the report.
    let report_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../queries/hourly_report.sql");
    assert_eq!(
        sql(&["--file", report_file]),
        crate::support::report_csv_with_final(&out, &[])
    );
    // Every event row is an attempt or an expiry, as the truth counts them.
    let truth = std::fs::read_to_string(&g.truth).expect("truth");
    let want = crate::support::truth_events(&truth);
    assert_eq!(sql(&["SELECT count(*) AS n FROM events"]), format!("n\n{want}\n"));
    // The dead letters too, as the Parquet reader reads their files.
    let mut by_reason = std::collections::BTreeMap::<String, u64>::new();
    for r in crate::support::reject_reasons(&out.join("rejects")) {
        *by_reason.entry(r).or_default() += 1;
    }
    assert!(!by_reason.is_empty(), "the generated log has junk lines");
    let want: String = by_reason.iter().map(|(r, n)| format!("{r},{n}\n")).collect();
    assert_eq!(
        sql(&["SELECT reason, count(*) AS n FROM rejects GROUP BY 1 ORDER BY 1"]),
        format!("reason,n\n{want}")
    );
    // The functions people write ad-hoc SQL with.
    assert_eq!(
        sql(&[
            "SELECT substr('google', 1, 3) AS s, round(2.26, 1) AS r, regexp_like('mta5.am0', '^mta[0-9]') AS m, \
             encode('ab', 'hex') AS h"
        ]),
        "s,r,m,h\ngoo,2.3,true,6162\n"
    );
    // An archive without dead letters still has the table, empty.
    std::fs::remove_dir_all(out.join("rejects")).expect("remove rejects/");
    assert_eq!(
        sql(&["SELECT reason, count(*) AS n FROM rejects GROUP BY 1"]),
        "reason,n\n"
    );
    // A directory that is not an archive, and SQL that does not parse, are errors.
    let o = deferlog()
        .args(["sql", "--data"])
        .arg(dir.path())
        .arg("SELECT 1")
        .output()
        .expect("sql");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no events/, hourly/ or rejects/"),
        "{err}"
    );
    let o = deferlog()
        .args(["sql", "--data"])
        .arg(&out)
        .arg("SELEC 1")
        .output()
        .expect("sql");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("SELEC"), "{err}");
}

#[test]
fn replay_refuses_stdin_named_twice() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = deferlog()
        .args(["replay", "--quiet", "--out"])
        .arg(dir.path().join("archive"))
        .args(["-", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("replay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("named twice"), "{err}");
    assert!(!dir.path().join("archive").exists(), "nothing is written");
}

#[test]
fn gen_is_reproducible_from_its_seed() {
    // Raw bytes: the generated junk includes invalid UTF-8 on purpose.
    let gen_bytes = |seed: &str| {
        let o = deferlog()
            .args(["gen", "--lines", "2000", "--seed", seed, "--start", "2026-11-01"])
            .output()
            .expect("gen");
        assert!(o.status.success());
        o.stdout
    };
    let (a, b, c) = (gen_bytes("4"), gen_bytes("4"), gen_bytes("5"));
    assert!(a.len() > 100_000);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn corpus_logs_replay_without_error_and_count_the_truncated_line_as_a_reject() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = corpus("postfix.log");
    let o = deferlog()
        .arg("replay")
        .arg("--out")
        .arg(dir.path())
        .args(["--reference-time", "2026-12-31", "--quiet"])
        .arg(&log)
        .output()
        .expect("replay");
    let summary = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(o);
    assert!(summary.contains("truncated"), "{summary}");
    let report = report_csv(dir.path(), &[]);
    assert!(report.lines().count() > 3, "{report}");
}

#[test]
fn demo_streams_through_an_embedded_broker_prints_closed_hours_and_leaves_an_archive() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("demo");
    let o = deferlog()
        .args([
            "demo",
            "--lines",
            "20000",
            "--speed",
            "0",
            "--rows-per-hour",
            "3",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("demo");
    let stdout = ok(o);
    let hours = stdout.lines().filter(|l| l.starts_with("── ")).count();
    assert!(hours >= 2, "the demo should print each hour as it closes:\n{stdout}");
    assert!(stdout.contains("source_ip") && stdout.contains("deferred"), "{stdout}");
    // The stream stops with its last hours open: they are in the report, not final.
    let report = crate::support::report_csv_with_final(&out, &[]);
    let rows: Vec<&str> = report.lines().skip(1).collect();
    assert!(rows.len() > 20, "{report}");
    assert!(rows.first().is_some_and(|r| r.ends_with(",true")), "{report}");
    assert!(rows.last().is_some_and(|r| r.ends_with(",false")), "{report}");
    // Every source IP the demo reports comes from the generated fleet's egress map.
    let fleet = run(&["gen", "--print-config"]);
    for r in rows {
        let ip = r.split(',').nth(1).expect("source_ip column");
        assert!(ip.is_empty() || fleet.contains(&format!("ip = \"{ip}\"")), "{r}");
    }
}

#[test]
fn demo_stops_on_sigterm_writing_what_it_consumed() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("demo");
    let log = dir.path().join("demo.log");
    // Paced, so it is still streaming when the signal comes; its metrics where told.
    let addr = format!("127.0.0.1:{}", crate::broker::free_port());
    let mut demo = deferlog()
        .args(["demo", "--lines", "300000", "--listen", &addr, "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("demo");
    crate::broker::wait_for("partitions assigned", std::time::Duration::from_secs(120), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("assigned"))
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (code, metrics) = crate::prometheus::get(&addr, "/metrics");
    assert!(
        code == 200 && metrics.contains("deferlog_build_info"),
        "{code}: {metrics}"
    );
    let status = crate::stream::sigterm(&mut demo);
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(status.success(), "{status:?}\n{said}");
    let report = crate::support::report_csv_with_final(&out, &[]);
    assert!(
        report.lines().count() > 1,
        "what it consumed is in the archive: {report}"
    );
}

#[test]
fn produce_to_brokers_that_do_not_answer_fails_naming_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("mail.log");
    std::fs::write(
        &log,
        "Nov  1 07:10:00 mta-out1 postfix/qmgr[7]: 3mfHGL1r9gzyQP: removed\n",
    )
    .expect("write");
    // Nothing listens there.
    let addr = format!("127.0.0.1:{}", crate::broker::free_port());
    let o = deferlog()
        .args(["produce", "--brokers", &addr, "--topic", "mail"])
        .arg(&log)
        .output()
        .expect("produce");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&addr) && err.contains("no answer from the brokers"),
        "{err}"
    );
}

#[test]
fn gen_checks_its_truth_file_before_writing_the_log() {
    let o = deferlog()
        .args(["gen", "--lines", "10", "--truth", "/nonexistent/dir/truth.csv"])
        .output()
        .expect("gen");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--truth"), "{err}");
    assert!(o.stdout.is_empty(), "{} bytes of log written", o.stdout.len());
}

#[test]
fn a_replay_with_no_events_suggests_the_format() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 500, 7);
    let replay_as = |format: &str| {
        let o = deferlog()
            .args(["replay", "--quiet", "--format", format, "--out"])
            .arg(dir.path().join(format))
            .arg(&g.log)
            .output()
            .expect("replay");
        assert!(o.status.success(), "{format}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = replay_as("exim");
    assert!(err.contains("no delivery events") && err.contains("--format"), "{err}");
    // A log read as what it is gets no such line.
    let err = replay_as("postfix");
    assert!(!err.contains("no delivery events"), "{err}");
}

#[test]
fn a_log_of_another_format_or_no_mail_log_leaves_no_dead_letters() {
    let dir = tempfile::tempdir().expect("tmp");
    let kumo = generate_as(dir.path(), 300, 3, "kumomta");
    let app = dir.path().join("app.json.log");
    let lines: String = (0..50)
        .map(|i| format!("{{\"level\":\"info\",\"msg\":\"request {i} served\",\"user\":\"u{i}@example.com\"}}\n"))
        .collect();
    std::fs::write(&app, lines).expect("app log");
    for (input, format, hint) in [
        (&kumo.log, "postfix", "--format"),
        (&app, "auto", "no Postfix, Exim, KumoMTA or PowerMTA records"),
    ] {
        let out = dir.path().join(format!("archive-{format}"));
        let o = deferlog()
            .args(["replay", "--quiet", "--format", format, "--out"])
            .arg(&out)
            .arg(input)
            .output()
            .expect("replay");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("were not kept") && err.contains(hint), "{err}");
        // `auto` reads every format already: no flag to point at.
        assert_eq!(format != "auto", err.contains("give --format"), "{err}");
        assert!(!out.join("rejects").exists(), "every line copied into rejects/");
        assert!(!out.join("_state/replay-staging").exists(), "staging left behind");
    }
    // Beside a log of the format read: that one's dead letters are kept, not the other's.
    let postfix = generate(dir.path(), 3000, 4);
    let out = dir.path().join("archive-both");
    let o = deferlog()
        .args(["replay", "--quiet", "--format", "postfix", "--out"])
        .arg(&out)
        .args([&kumo.log, &postfix.log])
        .output()
        .expect("replay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("dead letters of it were not kept"),
        "{err}"
    );
    let origins = run(&[
        "sql",
        "--format",
        "csv",
        "--data",
        out.to_str().expect("utf-8 path"),
        "SELECT origin FROM rejects",
    ]);
    let name = kumo.log.display().to_string();
    assert!(
        origins.lines().count() > 1,
        "the Postfix log's own dead letters: {origins}"
    );
    assert!(!origins.contains(&format!("{name}:")), "{origins}");
    // A parser's refusals are kept, and said as what they are: Postfix lines whose
    // syslog header a shipper dropped (no time).
    let out = dir.path().join("archive-msgonly");
    let o = deferlog()
        .args(["replay", "--quiet", "--out"])
        .arg(&out)
        .arg(corpus("postfix_msgonly.log"))
        .output()
        .expect("replay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(out.join("rejects").exists() && !err.contains("not kept"), "{err}");
}

#[test]
fn a_damaged_archive_file_is_named_not_read_as_empty() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 3000, 5);
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&g.log]);
    let mut events: Vec<_> = std::fs::read_dir(out.join("events"))
        .expect("events")
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).expect("date").flatten())
        .flat_map(|h| std::fs::read_dir(h.path()).expect("hour").flatten())
        .map(|f| f.path())
        .collect();
    events.sort();
    let count = |what: &str| {
        let o = deferlog()
            .args(["sql", "--data"])
            .arg(&out)
            .arg(format!("SELECT count(DISTINCT origin) FROM {what}"))
            .output()
            .expect("sql");
        (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    assert!(count("events").0);
    // Its pages overwritten, the footer kept: the error names the file, not only the
    // decoder's complaint.
    let mut bytes = std::fs::read(&events[0]).expect("read");
    let n = bytes.len();
    let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().expect("4 bytes")) as usize;
    for b in &mut bytes[4..n - 8 - footer] {
        *b = 0x5a;
    }
    std::fs::write(&events[0], bytes).expect("damage");
    let (ok, err) = count("events");
    assert!(
        !ok && err.contains(&events[0].display().to_string()) && err.contains("damaged"),
        "{err}"
    );
    // A query's own error, beside that file, is not taken for it (nor makes every
    // file be read to look for one): the cast over `hourly` fails as cast.
    let o = deferlog()
        .args(["sql", "--data"])
        .arg(&out)
        .arg("SELECT CAST(source_ip AS INT) FROM hourly")
        .output()
        .expect("sql");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("Cast") && !err.contains("damaged"),
        "{err}"
    );
    std::fs::remove_file(&events[0]).expect("move away");
    assert!(count("events").0, "the rest reads");
    // A file of 0 bytes (an interrupted copy) is not a table of no rows.
    std::fs::write(&events[1], b"").expect("empty");
    let (ok, err) = count("events");
    assert!(
        !ok && err.contains(&events[1].display().to_string()) && err.contains("0 bytes"),
        "{err}"
    );
}

#[test]
fn a_replay_that_begins_in_the_repeated_hour_of_a_fall_back_places_it_after_the_last() {
    // New York, 2026-11-01: 01:xx happens twice, at 05:xxZ (EDT) and 06:xxZ (EST).
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("ny.toml");
    std::fs::write(&config, "timezone = \"America/New_York\"\n").expect("config");
    let line = |t: &str, id: &str| {
        let id = format!("4F2A{id}");
        format!(
            "Nov  1 {t} mta1 postfix/smtp[1]: {id}: to=<u{id}@x.org>, relay=mx.x.org[192.0.2.1]:25, delay=1, \
             delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n"
        )
    };
    let first = dir.path().join("first.log");
    std::fs::write(&first, [line("01:30:00", "A1"), line("01:55:00", "A2")].concat()).expect("log");
    let second = dir.path().join("second.log");
    std::fs::write(&second, [line("01:10:00", "A3"), line("01:20:00", "A4")].concat()).expect("log");
    let out = dir.path().join("archive");
    for log in [&first, &second] {
        let o = deferlog()
            .args([
                "replay",
                "--quiet",
                "--reference-time",
                "2026-11-02T00:00:00Z",
                "--config",
            ])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .arg(log)
            .output()
            .expect("replay");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let report = report_csv(&out, &[]);
    let attempts = |hour: &str| {
        report
            .lines()
            .filter(|r| r.starts_with(hour))
            .map(|r| r.split(',').nth(4).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        (attempts("2026-11-01T05"), attempts("2026-11-01T06")),
        (2, 2),
        "{report}"
    );
}

#[test]
fn bad_flag_values_are_named_as_flags() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("archive");
    let cases: [&[&str]; 13] = [
        &["replay", "--format", "sendmail", "-"],
        &["replay", "--reference-time", "2026-13-01", "-"],
        &["gen", "--messages-per-hour", "0"],
        &["gen", "--start", "1960-01-01"],
        &["gen", "--start", "9999-12-31T23:00:00Z"],
        &["report", "--from", "2026-11-09", "--to", "2026-11-08"],
        &["report", "--to", "2026-11-08", "--from", "2026-11-08"],
        &["report", "--source-ip", "198.51.100"],
        &["report", "--memory-limit", "0"],
        &["report", "--memory-limit", "12X"],
        &["demo", "--speed=-1"],
        &["demo", "--speed", "NaN"],
        &["demo", "--speed", "1e-300"],
    ];
    for args in cases {
        let mut c = deferlog();
        match args[0] {
            "gen" => c.args(args),
            // `report hourly`: the flags after the subcommand, over an empty archive.
            "report" => c.args(["report", "hourly", "--data"]).arg(dir.path()).args(&args[1..]),
            _ => c.args(args).arg("--out").arg(&out),
        };
        let o = c.stdin(Stdio::null()).output().expect("run");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}: {err}");
        let flag = args[1].split('=').next().unwrap_or_default();
        assert!(err.contains(flag) && !err.contains("key `"), "{args:?}: {err}");
    }
}
