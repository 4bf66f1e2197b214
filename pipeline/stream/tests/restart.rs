//! The stream core without a broker: records of a generated fleet log, split into
//! partitions by MTA host as producers key them, processed by a processor that is
//! dropped without warning (as `kill -9` leaves it) at random points and restarted
//! from its checkpoints. The archive's hourly report and its events must equal the
//! generator's truth: nothing lost, nothing counted twice.
//! (The same with a real broker and a real `kill -9` is in the CLI's tests.)

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use deferlog_gen::{GenConfig, Generator, fleet_egress};
use deferlog_metrics::{Counts, Exporter, ExporterConfig, Family, split};
use deferlog_parse::{Egress, NormalizerConfig, RejectReason};
use deferlog_query::{Engine, EventFilter, EventSource, Query};
use deferlog_stream::{HostFrom, Processor, Record, StreamConfig, StreamError, TenantFrom, TopicConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOPIC: &str = "mail";
const PARTITIONS: i32 = 3;
/// 2026-11-10: the ingest time the generated BSD stamps take their year from.
const INGEST_MS: i64 = 1_794_268_800_000;

/// A record of the generated log as a producer keyed it.
fn record(partition: usize, offset: usize, value: &[u8]) -> Record<'_> {
    Record {
        topic: TOPIC,
        partition: partition as i32,
        offset: offset as i64,
        key: Some(b"mta"),
        value: Some(value),
        tenant_header: None,
        timestamp_ms: Some(INGEST_MS),
    }
}

fn config(out: &Path) -> StreamConfig {
    let mut n = NormalizerConfig::new(INGEST_MS * 1000);
    n.egress = fleet_egress()
        .into_iter()
        .map(|(h, i, ip)| Egress {
            host: Some(h.into()),
            instance: Some(i.into()),
            ip: ip.into(),
        })
        .collect();
    StreamConfig {
        out: out.to_path_buf(),
        normalizer: n,
        topics: vec![TopicConfig {
            name: TOPIC.into(),
            tenant: TenantFrom::Key,
            host: HostFrom::Default,
            format: deferlog_parse::Format::Auto,
        }],
        batch_rows: 2_000,
        batch_interval: Duration::from_secs(3600),
        lateness_us: 600_000_000,
        idle_timeout: Duration::from_secs(3600),
        keep_closed_hours: 48,
        series_limit: 20_000,
    }
}

/// The partitions a producer keyed by host would fill, in order.
fn partitioned(lines: u64, seed: u64) -> (Vec<Vec<Vec<u8>>>, String, deferlog_gen::Counts) {
    let mut g = Generator::new(GenConfig {
        seed,
        lines,
        messages_per_hour: 300,
        ..GenConfig::default()
    });
    let mut parts = vec![Vec::new(); PARTITIONS as usize];
    let mut line = Vec::new();
    while {
        line.clear();
        g.next_line(&mut line)
    } {
        let text = String::from_utf8_lossy(&line);
        // The host follows the stamp (BSD: 3 fields, RFC 3339: 1).
        let fields: Vec<&str> = text.split_whitespace().collect();
        let host = if text.as_bytes()[0].is_ascii_digit() {
            fields.get(1)
        } else {
            fields.get(3)
        };
        let p = host.map_or(0, |h| h.bytes().map(usize::from).sum::<usize>() % PARTITIONS as usize);
        parts[p].push(line.clone());
    }
    let mut truth = Vec::new();
    g.truth().write_csv(&mut truth).expect("truth");
    (parts, String::from_utf8(truth).expect("utf8"), g.truth().totals())
}

fn csv(batches: &[RecordBatch], drop_last: bool) -> String {
    let opts = FormatOptions::new()
        .with_null("")
        .with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%SZ"));
    let mut out = String::from(deferlog_gen::CSV_HEADER);
    out.push('\n');
    for b in batches {
        let cols = if drop_last {
            b.num_columns() - 1
        } else {
            b.num_columns()
        };
        let f: Vec<_> = b.columns()[..cols]
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("fmt"))
            .collect();
        for i in 0..b.num_rows() {
            let row: Vec<String> = f.iter().map(|f| f.value(i).to_string()).collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

fn query(q: Query, dir: &Path) -> Vec<RecordBatch> {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
    rt.block_on(async {
        let e = Engine::new();
        e.register(q.input, EventSource::Dir(dir.to_path_buf()), &EventFilter::default())
            .await
            .expect("register");
        e.run(q).await.expect("run")
    })
}

/// xorshift: the crash points differ per seed but each run is repeatable.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// An exporter as a restarted process gets it: the same instance, its stored ledger.
fn exporter(out: &Path) -> Arc<Exporter> {
    Arc::new(
        Exporter::new(ExporterConfig {
            instance: "test:9898".into(),
            top_k: 10,
            tenant_series_budget: 100_000,
            hour_pairs_top_k: 1000,
            state_dir: Some(out.join("_state/metrics")),
        })
        .expect("exporter"),
    )
}

/// Consumes every partition, dropping the processor (a crash) `crashes` times.
/// Returns the exported counters at the end.
fn run_with_crashes(parts: &[Vec<Vec<u8>>], out: &Path, crashes: usize, seed: u64) -> Counts {
    let mut rng = Rng(seed | 1);
    let total: usize = parts.iter().map(Vec::len).sum();
    let mut crashes_left = crashes;
    let mut exported_before = 0;
    loop {
        let metrics = exporter(out);
        let exported = metrics.totals().total(Family::Attempts);
        assert!(exported >= exported_before, "counters went back after a restart");
        let mut proc = Processor::new(config(out))
            .expect("processor")
            .with_metrics(metrics.clone());
        let mut next: Vec<usize> = (0..PARTITIONS)
            .map(|p| proc.assign(TOPIC, p).expect("assign").map_or(0, |o| o as usize))
            .collect();
        // Read round-robin in slices, as a consumer interleaves partitions.
        let crash_after = if crashes_left > 0 {
            Some(rng.below(total as u64 / 2) as usize)
        } else {
            None
        };
        let mut read = 0usize;
        let mut crashed = false;
        while next.iter().zip(parts).any(|(n, p)| *n < p.len()) {
            for (p, lines) in parts.iter().enumerate() {
                let end = (next[p] + 1 + rng.below(400) as usize).min(lines.len());
                for (offset, value) in lines.iter().enumerate().take(end).skip(next[p]) {
                    proc.process(&record(p, offset, value), Instant::now())
                        .expect("process");
                }
                read += end - next[p];
                next[p] = end;
                if rng.below(8) == 0 {
                    proc.checkpoint(false, Instant::now()).expect("checkpoint");
                }
                if crash_after.is_some_and(|c| read >= c) {
                    crashed = true;
                    break;
                }
            }
            if crashed {
                break;
            }
        }
        if crashed {
            // Dropped mid-epoch: whatever it staged since its last checkpoint is lost.
            crashes_left -= 1;
            drop(proc);
            exported_before = metrics.totals().total(Family::Attempts);
            continue;
        }
        proc.checkpoint(true, Instant::now()).expect("final checkpoint");
        return metrics.totals();
    }
}

/// A family's counts summed by the label at `label`.
fn sum_by(c: &Counts, family: Family, label: usize) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in c.iter() {
        if let Some((f, l)) = split(k)
            && f == family
        {
            *out.entry(l[label].to_owned()).or_default() += v;
        }
    }
    out
}

#[test]
fn crashes_at_random_points_lose_nothing_and_count_nothing_twice() {
    let (parts, truth, totals) = partitioned(40_000, 21);
    assert!(parts.iter().all(|p| !p.is_empty()), "every partition gets a host");
    let dir = tempfile::tempdir().expect("tmp");
    let exported = run_with_crashes(&parts, dir.path(), 4, 77);

    // The exported counters too: what each incarnation committed, continued by the next.
    let deferlog_gen::Counts {
        attempts,
        delivered,
        deferred,
        bounced,
        expired,
    } = totals;
    let by_outcome = sum_by(&exported, Family::Attempts, 4);
    let want: std::collections::BTreeMap<String, u64> = [
        ("bounced".to_owned(), bounced),
        ("deferred".to_owned(), deferred),
        ("delivered".to_owned(), delivered),
    ]
    .into();
    assert_eq!(by_outcome, want, "exported attempts by outcome");
    assert_eq!(exported.total(Family::Attempts), attempts);
    assert_eq!(exported.total(Family::Deferrals), deferred);
    assert_eq!(exported.total(Family::Expiries), expired);
    assert_eq!(
        exported.total(Family::Records),
        parts.iter().map(Vec::len).sum::<usize>() as u64
    );

    let report = query(Query::HOURLY_REPORT, &dir.path().join("hourly"));
    assert_eq!(csv(&report, true), truth, "hourly rows");
    let events = query(Query::HOURLY, &dir.path().join("events"));
    assert_eq!(csv(&events, false), truth, "the event archive");
    // Nothing left half-done in staging.
    let staging = dir.path().join("_state/staging");
    let leftovers: Vec<_> = walk(&staging);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_stop_writes_open_hours_as_not_final_and_a_restart_finishes_them() {
    let (parts, truth, _) = partitioned(12_000, 4);
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = Processor::new(config(dir.path())).expect("processor");
    for (p, lines) in parts.iter().enumerate() {
        proc.assign(TOPIC, p as i32).expect("assign");
        for (offset, value) in lines.iter().enumerate() {
            proc.process(&record(p, offset, value), Instant::now())
                .expect("process");
        }
    }
    proc.checkpoint(true, Instant::now()).expect("stop");
    drop(proc);
    let report = query(Query::HOURLY_REPORT, &dir.path().join("hourly"));
    let with_final = csv(&report, false);
    // The last hours are still open (within the allowed lateness of the newest event).
    assert!(
        with_final.lines().last().is_some_and(|l| l.ends_with(",false")),
        "{with_final}"
    );
    assert!(with_final.lines().nth(1).is_some_and(|l| l.ends_with(",true")));
    assert_eq!(
        csv(&report, true),
        truth,
        "a stopped run covers every record it consumed"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_late_record_rewrites_its_closed_hour_with_a_higher_revision() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    let line = delivery;
    let mut feed = Feed::new(1, INGEST_MS);
    let mut send = |proc: &mut Processor, text: String| feed.send(proc, 0, &text, Instant::now());
    send(&mut proc, line("Nov  1 07:10:00", "a"));
    send(&mut proc, line("Nov  1 07:20:00", "b"));
    // 09:00 moves the watermark past 07:00 and 08:00: 07:00 is written, final.
    send(&mut proc, line("Nov  1 09:00:00", "c"));
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    // Then a record for 07:00 arrives late.
    send(&mut proc, line("Nov  1 07:30:00", "d"));
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    let status = &proc.status()[0];
    assert_eq!(status.counters.late_events, 1);

    let rows = query_rows(&dir.path().join("hourly"));
    let at7: Vec<_> = rows.iter().filter(|r| r.starts_with("2026-11-01T07")).collect();
    // Two revisions of 07:00 were written: 2 attempts, then 3; both final.
    assert_eq!(at7.len(), 2, "{rows:#?}");
    assert!(
        at7.iter().any(|r| r.contains(",2,2,0,0,0,") && r.ends_with(",true")),
        "{at7:?}"
    );
    assert!(
        at7.iter().any(|r| r.contains(",3,3,0,0,0,") && r.ends_with(",true")),
        "{at7:?}"
    );
    let revision = |r: &str| {
        r.split(',')
            .nth(10)
            .and_then(|v| v.parse::<i64>().ok())
            .expect("revision")
    };
    let (first, second) = if at7[0].contains(",2,2,") {
        (at7[0], at7[1])
    } else {
        (at7[1], at7[0])
    };
    assert!(revision(second) > revision(first));
    // The report keeps the latest.
    let report = csv(&query(Query::HOURLY_REPORT, &dir.path().join("hourly")), false);
    assert!(
        report.contains("2026-11-01T07:00:00Z,198.51.100.11,gmail-smtp-in.l.google.com,google,3,3,0,0,0,true"),
        "{report}"
    );
}

/// A Postfix delivery to Gmail from mta-out1, stamped `t`.
fn delivery(t: &str, rcpt: &str) -> String {
    format!(
        "{t} mta-out1 postfix-ip1/smtp[2]: ABCDE1234{rcpt}: to=<{rcpt}@gmail.com>, \
         relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)"
    )
}

/// Hand-written records, each partition's offsets counted up.
struct Feed {
    offsets: Vec<i64>,
    /// The broker timestamp the records carry.
    timestamp_ms: i64,
    key: Option<&'static [u8]>,
}

impl Feed {
    fn new(partitions: usize, timestamp_ms: i64) -> Feed {
        Feed {
            offsets: vec![0; partitions],
            timestamp_ms,
            key: Some(b"mta-out1"),
        }
    }

    fn send(&mut self, proc: &mut Processor, partition: usize, text: &str, now: Instant) {
        let r = Record {
            topic: TOPIC,
            partition: partition as i32,
            offset: self.offsets[partition],
            key: self.key,
            value: Some(text.as_bytes()),
            tenant_header: None,
            timestamp_ms: Some(self.timestamp_ms),
        };
        self.offsets[partition] += 1;
        proc.process(&r, now).expect("process");
    }
}

/// A processor on `dir` holding partitions `0..n`, allowed lateness 0, `tweak` applied.
fn holding(dir: &Path, n: i32, tweak: impl FnOnce(&mut StreamConfig)) -> Processor {
    let mut cfg = config(dir);
    cfg.lateness_us = 0;
    tweak(&mut cfg);
    let mut proc = Processor::new(cfg).expect("processor");
    for p in 0..n {
        proc.assign(TOPIC, p).expect("assign");
    }
    proc
}

/// Whether a row of the hour starting `hour` was written, final or not as asked.
fn wrote_row(dir: &Path, hour: &str, is_final: bool) -> bool {
    let end = if is_final { ",true" } else { ",false" };
    query_rows(&dir.join("hourly"))
        .iter()
        .any(|r| r.starts_with(hour) && r.ends_with(end))
}

/// 2026-11-01 at `hh:mm` UTC, µs.
fn nov1(hh: i64, mm: i64) -> i64 {
    (1_793_491_200 + hh * 3600 + mm * 60) * 1_000_000
}

#[test]
fn a_partition_that_reads_records_but_no_events_does_not_hold_hours_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 2, |c| c.idle_timeout = Duration::from_secs(60));
    let later = Instant::now() + Duration::from_secs(120);
    let mut feed = Feed::new(2, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), later);
    feed.send(&mut proc, 0, &delivery("Nov  1 09:00:00", "b"), later);
    // Partition 1 is a host that only receives mail: busy, but never an attempt.
    for i in 0..50 {
        let inbound = format!("Nov  1 09:00:{i:02} mx-in1 postfix/smtpd[7]: connect from unknown[192.0.2.{i}]");
        feed.send(&mut proc, 1, &inbound, later);
    }
    proc.checkpoint(false, later).expect("checkpoint");
    assert_eq!(proc.watermark_us(), nov1(9, 0), "partition 0's newest event");
    assert!(wrote_row(dir.path(), "2026-11-01T07:00:00Z", true), "07:00 is final");
}

#[test]
fn a_partition_without_events_says_until_when_it_holds_the_watermark_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let before = Instant::now();
    let mut proc = holding(dir.path(), 2, |c| c.idle_timeout = Duration::from_secs(60));
    let after = Instant::now();
    let mut feed = Feed::new(2, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), after);
    let inbound = "Nov  1 07:10:01 mx-in1 postfix/smtpd[7]: connect from unknown[192.0.2.1]";
    feed.send(&mut proc, 1, inbound, after);
    let s = proc.status();
    assert_eq!(s[0].holds_watermark_until, None, "it has an event");
    let until = s[1].holds_watermark_until.expect("no event yet");
    let idle = Duration::from_secs(60);
    assert!(
        until >= before + idle && until <= after + idle,
        "its assignment plus idle_timeout"
    );
    proc.checkpoint(false, after).expect("checkpoint");
    assert_eq!(proc.watermark_us(), i64::MIN, "held back");
    // Past that time it is idle and holds nothing back.
    proc.checkpoint(false, until).expect("checkpoint");
    assert_eq!(proc.watermark_us(), nov1(7, 10));
}

#[test]
fn a_record_that_is_no_log_line_is_one_dead_letter_and_not_also_a_skip() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, "\u{1}\u{2} not a log line", Instant::now());
    // A line of syslog that is no MTA's is a skip, as in a file.
    feed.send(
        &mut proc,
        0,
        "Nov  1 07:10:00 mta-out1 sshd[9]: Accepted publickey",
        Instant::now(),
    );
    let s = &proc.status()[0];
    assert_eq!(s.counters.dead_letters.get("unrecognized_record"), Some(&1));
    assert_eq!(s.stats.skipped(deferlog_parse::SkipKind::Unrecognized), 0);
    let skips: u64 = deferlog_parse::SkipKind::ALL.iter().map(|k| s.stats.skipped(*k)).sum();
    assert_eq!(skips, 1, "the sshd line");
}

#[test]
fn a_record_of_several_lines_counts_every_line_and_keeps_the_one_that_is_no_log_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    let mut feed = Feed::new(1, INGEST_MS);
    // As a shipper that batches lines into one record sends them.
    let value = format!(
        "{}\n{}\r\n\u{1}\u{2} not a log line\n",
        delivery("Nov  1 07:10:00", "a"),
        delivery("Nov  1 07:10:01", "b")
    );
    feed.send(&mut proc, 0, &value, Instant::now());
    let s = &proc.status()[0];
    assert_eq!(s.counters.records, 1);
    assert_eq!(s.stats.events, 2, "both deliveries");
    assert_eq!(s.counters.dead_letters.get("unrecognized_record"), Some(&1));
}

#[test]
fn a_refused_key_or_tenant_is_kept_in_the_dead_letter_with_the_value() {
    use arrow::array::AsArray;
    let dir = tempfile::tempdir().expect("tmp");
    // The key names the tenant here: one is no UTF-8, one is no tenant name.
    let mut proc = holding(dir.path(), 1, |_| {});
    let value = delivery("Nov  1 07:10:00", "a");
    let keys: [&[u8]; 2] = [b"\xffacme", b"acme\ncorp"];
    for (offset, key) in keys.into_iter().enumerate() {
        let mut r = record(0, offset, value.as_bytes());
        r.key = Some(key);
        proc.process(&r, Instant::now()).expect("process");
    }
    proc.checkpoint(true, Instant::now()).expect("stop");
    let mut kept = Vec::new();
    for f in walk(&dir.path().join("rejects")) {
        let file = std::fs::File::open(f).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        for b in reader {
            let b = b.expect("batch");
            let col = |name: &str| b.column_by_name(name).expect(name).as_binary::<i32>().clone();
            let (raw, refused) = (col("raw"), col("refused"));
            kept.extend((0..b.num_rows()).map(|i| (refused.value(i).to_vec(), raw.value(i).to_vec())));
        }
    }
    kept.sort();
    // The value's local part is masked, as in every dead letter.
    let masked = deferlog_parse::redact_recipients(value.as_bytes()).into_owned();
    assert_ne!(masked, value.as_bytes());
    let want: Vec<(Vec<u8>, Vec<u8>)> = vec![(b"acme\ncorp".to_vec(), masked.clone()), (b"\xffacme".to_vec(), masked)];
    assert_eq!(kept, want);
    let s = &proc.status()[0];
    assert_eq!(s.counters.dead_letters.get("bad_key"), Some(&1));
    assert_eq!(s.counters.dead_letters.get("bad_tenant"), Some(&1));
}

#[test]
fn an_event_from_a_clock_ahead_does_not_close_the_hours_of_now() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    // Records reach the broker at 09:30 on Nov 1; one host's clock is 5 hours ahead,
    // another's says 2030.
    let mut feed = Feed::new(1, nov1(9, 30) / 1000);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    feed.send(&mut proc, 0, &delivery("Nov  1 14:40:00", "f"), Instant::now());
    let far = "2030-01-01T00:00:00+00:00 mta-out1 postfix-ip1/smtp[2]: ABCDE1234f0: to=<f0@gmail.com>, \
               relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)";
    feed.send(&mut proc, 0, far, Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    // At most an hour past the broker's time, not 14:40 or 2030.
    assert_eq!(proc.watermark_us(), nov1(10, 30));
    let stats = &proc.status()[0].stats;
    assert_eq!(stats.rejected(RejectReason::BadTimestamp), 1, "2030 is no time for it");
    // So 11:00 is still open: its events are not late.
    feed.timestamp_ms = nov1(11, 40) / 1000;
    feed.send(&mut proc, 0, &delivery("Nov  1 11:10:00", "b"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    assert_eq!(proc.status()[0].counters.late_events, 0);
    // The early event is held to its own record's time, not to every later record's.
    assert_eq!(proc.watermark_us(), nov1(11, 10));
    // It is counted, in its own hour.
    proc.checkpoint(true, Instant::now()).expect("stop");
    assert!(wrote_row(dir.path(), "2026-11-01T14:00:00Z", false));
}

#[test]
fn last_decembers_log_produced_in_december_is_last_years_not_weeks_ahead() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    // A backfill: last December's lines reach the broker on 2026-12-07 at 09:30.
    let dec7 = nov1(9, 30) + 36 * 24 * 3_600_000_000;
    let mut feed = Feed::new(1, dec7 / 1000);
    feed.send(&mut proc, 0, &delivery("Dec 29 08:00:00", "a"), Instant::now());
    feed.send(&mut proc, 0, &delivery("Dec  9 08:00:00", "b"), Instant::now());
    // Within a day of arrival: this year's (a clock a little ahead).
    feed.send(&mut proc, 0, &delivery("Dec  7 10:00:00", "c"), Instant::now());
    proc.checkpoint(true, Instant::now()).expect("stop");
    let stats = &proc.status()[0].stats;
    assert_eq!(stats.rejected(RejectReason::BadTimestamp), 0);
    let rows = query_rows(&dir.path().join("hourly"));
    for hour in ["2025-12-29T08", "2025-12-09T08", "2026-12-07T10"] {
        assert!(rows.iter().any(|r| r.starts_with(hour)), "{hour}: {rows:?}");
    }
}

#[test]
fn a_backlog_behind_the_watermark_is_revised_into_its_hours_not_dropped() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 2, |c| {
        c.keep_closed_hours = 2;
        c.idle_timeout = Duration::from_secs(60);
    });
    let later = Instant::now() + Duration::from_secs(120);
    let mut feed = Feed::new(2, INGEST_MS);
    // Partition 0 is current; partition 1's host was cut off: only a line of its
    // inbound side got through, no delivery.
    feed.send(&mut proc, 0, &delivery("Nov  5 12:10:00", "a"), later);
    let inbound = "Nov  5 12:10:00 mta-out2 postfix/smtpd[7]: connect from unknown[192.0.2.1]";
    feed.send(&mut proc, 1, inbound, later);
    proc.checkpoint(false, later).expect("checkpoint");
    assert_eq!(proc.watermark_us(), nov1(12, 10) + 4 * 24 * 3_600_000_000);
    // Then it sends four days of backlog, hours behind the watermark.
    for (i, t) in [
        "Nov  1 07:10:00",
        "Nov  1 07:20:00",
        "Nov  1 09:00:00",
        "Nov  1 13:00:00",
    ]
    .iter()
    .enumerate()
    {
        feed.send(&mut proc, 1, &delivery(t, &format!("b{i}")), later);
        proc.checkpoint(false, later).expect("checkpoint");
    }
    // 07:00 is more than 2 hours behind partition 1's progress now: a late event
    // for it can no longer be merged, so it reaches the event archive only.
    feed.send(&mut proc, 1, &delivery("Nov  1 07:30:00", "c0"), later);
    proc.checkpoint(false, later).expect("checkpoint");
    let c = &proc.status()[1].counters;
    assert_eq!(c.late_forgotten, 1, "{c:?}");
    let report = csv(&query(Query::HOURLY_REPORT, &dir.path().join("hourly")), false);
    for hour in ["07", "09", "13"] {
        assert!(
            report.contains(&format!("2026-11-01T{hour}:00:00Z,")),
            "{hour}: {report}"
        );
    }
    assert!(
        report.contains("2026-11-01T07:00:00Z,198.51.100.11,gmail-smtp-in.l.google.com,google,2,2,0,0,0,true"),
        "{report}"
    );
}

/// Counts the epochs handed to the topic outputs.
struct Epochs(Arc<std::sync::Mutex<usize>>);

impl deferlog_stream::EpochSink for Epochs {
    fn epoch(&mut self, _: &str, _: &[RecordBatch], _: &[RecordBatch]) -> Result<(), StreamError> {
        *self.0.lock().expect("lock") += 1;
        Ok(())
    }
}

/// What a sink is told, in order.
struct Calls(Arc<std::sync::Mutex<Vec<String>>>);

impl deferlog_stream::EpochSink for Calls {
    fn epoch(&mut self, scope: &str, _: &[RecordBatch], _: &[RecordBatch]) -> Result<(), StreamError> {
        self.0.lock().expect("lock").push(format!("epoch {scope}"));
        Ok(())
    }
    fn checkpointed(&mut self) -> Result<(), StreamError> {
        self.0.lock().expect("lock").push("checkpointed".into());
        Ok(())
    }
}

#[test]
fn a_sink_hears_once_after_the_epochs_of_a_checkpoint_and_after_a_revoke() {
    let dir = tempfile::tempdir().expect("tmp");
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut proc = holding(dir.path(), 2, |_| {}).with_sink(Box::new(Calls(calls.clone())));
    let mut feed = Feed::new(2, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    feed.send(&mut proc, 1, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    assert_eq!(
        *calls.lock().expect("lock"),
        ["epoch mail-0", "epoch mail-1", "checkpointed"]
    );
    // Nothing new: no epoch, nothing to act on.
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    assert_eq!(calls.lock().expect("lock").len(), 3);
    feed.send(&mut proc, 1, &delivery("Nov  1 07:30:00", "c"), Instant::now());
    proc.revoke(TOPIC, 1).expect("revoke");
    assert_eq!(calls.lock().expect("lock")[3..], ["epoch mail-1", "checkpointed"]);
}

#[test]
fn an_archive_moved_away_while_held_stops_the_member_instead_of_starting_another() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("archive");
    let mut proc = holding(&out, 1, |_| {});
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    std::fs::rename(&out, dir.path().join("moved")).expect("move");
    feed.send(&mut proc, 0, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    let err = proc
        .checkpoint(false, Instant::now())
        .expect_err("no archive to write")
        .to_string();
    assert!(err.contains("is gone") && err.contains("moved or deleted"), "{err}");
    assert!(proc.take_fenced().is_empty(), "not taken for another member's doing");
    let made: Vec<_> = walk(&out);
    assert!(made.is_empty(), "{made:?}");
}

#[test]
fn a_member_that_lost_its_partition_to_another_drops_it_before_writing_over_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let sent = Arc::new(std::sync::Mutex::new(0));
    let mut old = holding(dir.path(), 1, |_| {}).with_sink(Box::new(Epochs(sent.clone())));
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut old, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    old.checkpoint(false, Instant::now()).expect("checkpoint");
    assert_eq!(*sent.lock().expect("lock"), 1, "its epoch went to the topics");
    // The group gives the partition to another member while this one is stalled.
    let mut new = holding(dir.path(), 0, |_| {});
    assert_eq!(new.assign(TOPIC, 0).expect("assign"), Some(1), "resumes after offset 0");
    feed.send(&mut old, 0, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    // The stalled member finds out at its next checkpoint: it drops the partition
    // unwritten, commits nothing for it, and goes on.
    let commits = old.checkpoint(false, Instant::now()).expect("checkpoint");
    assert!(commits.is_empty(), "{commits:?}");
    assert_eq!(old.take_fenced(), [(TOPIC.to_owned(), 0)]);
    assert!(old.status().is_empty(), "no longer held");
    assert_eq!(*sent.lock().expect("lock"), 1, "nothing more went out");
    // The new owner goes on from the checkpoint it took over.
    let mut feed = Feed::new(1, INGEST_MS);
    feed.offsets[0] = 1;
    feed.send(&mut new, 0, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    new.checkpoint(true, Instant::now()).expect("checkpoint");
    let report = csv(&query(Query::HOURLY_REPORT, &dir.path().join("hourly")), false);
    assert!(
        report.contains("2026-11-01T07:00:00Z,198.51.100.11,gmail-smtp-in.l.google.com,google,2,2,0,0,0,false"),
        "{report}"
    );

    // A revoke finds out the same way.
    let mut stale = holding(dir.path(), 1, |_| {});
    let _other = holding(dir.path(), 1, |_| {});
    let mut feed = Feed::new(1, INGEST_MS);
    feed.offsets[0] = 10;
    feed.send(&mut stale, 0, &delivery("Nov  1 07:30:00", "c"), Instant::now());
    assert_eq!(stale.revoke(TOPIC, 0).expect("revoke"), None, "nothing to commit");
    assert_eq!(stale.take_fenced(), [(TOPIC.to_owned(), 0)]);
}

#[test]
fn a_lost_partition_is_dropped_unwritten() {
    let dir = tempfile::tempdir().expect("tmp");
    // Every event closes its batch.
    let mut proc = holding(dir.path(), 1, |c| c.batch_rows = 1);
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    let stored = std::fs::read(dir.path().join("_state/checkpoints/mail-0.json")).expect("checkpoint");
    feed.send(&mut proc, 0, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    // c passes 07:00: its file (a's held piece and b) is written before any checkpoint.
    feed.send(&mut proc, 0, &delivery("Nov  1 09:00:00", "c"), Instant::now());
    proc.flush_writes().expect("flush");
    assert_eq!(
        rows_by_hour(&walk(&dir.path().join("_state/staging"))),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 3)]),
        "a's piece, and 07:00's file of a and b"
    );
    proc.lose(TOPIC, 0);
    assert_eq!(proc.checkpoint(true, Instant::now()).expect("checkpoint"), vec![]);
    let after = std::fs::read(dir.path().join("_state/checkpoints/mail-0.json")).expect("checkpoint");
    assert_eq!(after, stored, "the checkpoint is the one before the loss");
    assert_eq!(
        rows_by_hour(&walk(&dir.path().join("_state/staging"))),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 1)]),
        "its staged files are gone but a's piece, which that checkpoint holds"
    );
}

/// The rows of complete Parquet files (ones with their footer written), by hour.
fn rows_by_hour(files: &[std::path::PathBuf]) -> std::collections::BTreeMap<String, usize> {
    rows_by(files, "event_time", |v| v[..13].to_owned())
}

/// The rows of complete Parquet files by `key` of `column`'s value as text.
fn rows_by(
    files: &[std::path::PathBuf],
    column: &str,
    key: impl Fn(&str) -> String,
) -> std::collections::BTreeMap<String, usize> {
    let mut rows = std::collections::BTreeMap::new();
    for f in files {
        let file = std::fs::File::open(f).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap_or_else(|e| panic!("{} is not a finished Parquet file: {e}", f.display()))
            .build()
            .expect("reader");
        for b in reader {
            let b = b.expect("batch");
            let values = b.column_by_name(column).expect("column");
            let f = ArrayFormatter::try_new(values.as_ref(), &FormatOptions::new()).expect("fmt");
            for i in 0..b.num_rows() {
                *rows.entry(key(&f.value(i).to_string())).or_insert(0) += 1;
            }
        }
    }
    rows
}

#[test]
fn a_topic_can_take_the_host_of_records_that_name_none_from_the_record_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |c| c.topics[0].host = HostFrom::Key);
    let mut feed = Feed::new(1, INGEST_MS);
    // KumoMTA's records name no host.
    let kumo = |id: &str| {
        format!(
            r#"{{"type":"Delivery","id":"{id}","sender":"s@a.example","recipient":"r@gmail.com","queue":"gmail.com","site":"","size":100,"response":{{"code":250,"enhanced_code":null,"content":"ok"}},"peer_address":{{"name":"gmail-smtp-in.l.google.com.","addr":"142.250.1.27"}},"timestamp":{},"created":{},"num_attempts":0}}"#,
            nov1(7, 10) / 1_000_000,
            nov1(7, 9) / 1_000_000
        )
    };
    feed.key = Some(b"kumo-7");
    feed.send(&mut proc, 0, &kumo("k1"), Instant::now());
    // A syslog line names its own host, whatever the key.
    feed.send(&mut proc, 0, &delivery("Nov  1 07:11:00", "a"), Instant::now());
    // No key, or a key that is no host name: `default_host`.
    feed.key = None;
    feed.send(&mut proc, 0, &kumo("k2"), Instant::now());
    feed.key = Some(b"not a host");
    feed.send(&mut proc, 0, &kumo("k3"), Instant::now());
    proc.checkpoint(true, Instant::now()).expect("stop");
    let hosts = rows_by(&walk(&dir.path().join("events")), "mta_host", str::to_owned);
    assert_eq!(
        hosts,
        std::collections::BTreeMap::from([
            ("kumo-7".to_owned(), 1),
            ("mta-out1".to_owned(), 1),
            ("unknown".to_owned(), 2)
        ])
    );
}

#[test]
fn a_backlog_finishes_the_files_of_the_hours_it_passed_and_loses_none_of_their_late_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |c| c.batch_rows = 1);
    let mut feed = Feed::new(1, INGEST_MS);
    let mut send = |proc: &mut Processor, t: &str, rcpt: &str| feed.send(proc, 0, &delivery(t, rcpt), Instant::now());
    send(&mut proc, "Nov  1 07:10:00", "a");
    send(&mut proc, "Nov  1 07:20:00", "b");
    let staged = || walk(&dir.path().join("_state/staging"));
    proc.flush_writes().expect("flush");
    assert!(staged().is_empty(), "07:00 is not passed: its rows wait");
    // 09:00 passes 07:00 (allowed lateness 0): its file is written now, before any
    // checkpoint, and readable as it is.
    send(&mut proc, "Nov  1 09:00:00", "c");
    proc.flush_writes().expect("flush");
    assert_eq!(
        rows_by_hour(&staged()),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 2)]),
        "07:00's file, finished; 09:00's rows wait"
    );
    // An event of 07:00 after that goes to another file of the hour.
    send(&mut proc, "Nov  1 07:30:00", "d");
    proc.flush_writes().expect("flush");
    assert_eq!(staged().len(), 2);
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    let events = walk(&dir.path().join("events"));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        rows_by_hour(&events),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 3)])
    );
    // 09:00 is open: its row waits in staging, held by the checkpoint.
    assert_eq!(
        rows_by_hour(&staged()),
        std::collections::BTreeMap::from([("2026-11-01T09".to_owned(), 1)])
    );
}

#[test]
fn an_open_hour_is_held_across_checkpoints_and_restarts_and_published_as_one_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let staged = || walk(&dir.path().join("_state/staging"));
    let events = || walk(&dir.path().join("events"));
    let mut proc = holding(dir.path(), 1, |c| c.batch_rows = 1);
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    feed.send(&mut proc, 0, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    assert!(events().is_empty(), "07:00 is open: nothing of it is published");
    assert_eq!(staged().len(), 2, "one piece a checkpoint");
    // A crash after them, with one more record read: the pieces stay, the record is
    // read again.
    feed.send(&mut proc, 0, &delivery("Nov  1 07:25:00", "c"), Instant::now());
    drop(proc);
    let mut proc = holding(dir.path(), 1, |c| c.batch_rows = 1);
    assert_eq!(staged().len(), 2, "recovery keeps the held pieces");
    feed.offsets[0] = 2;
    feed.send(&mut proc, 0, &delivery("Nov  1 07:25:00", "c"), Instant::now());
    // 09:00 passes 07:00: its file gathers the pieces and the rows since.
    feed.send(&mut proc, 0, &delivery("Nov  1 09:00:00", "d"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    let files = events();
    assert_eq!(files.len(), 1, "one file for 07:00: {files:?}");
    assert_eq!(
        rows_by_hour(&files),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 3)])
    );
    assert_eq!(
        rows_by_hour(&staged()),
        std::collections::BTreeMap::from([("2026-11-01T09".to_owned(), 1)]),
        "07:00's pieces are gone, 09:00's is held"
    );
    // A stop publishes the open hours too.
    proc.checkpoint(true, Instant::now()).expect("stop");
    assert!(staged().is_empty());
    assert_eq!(
        rows_by_hour(&events()),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 3), ("2026-11-01T09".to_owned(), 1)])
    );
}

#[test]
fn a_quiet_partition_publishes_its_open_hour_once_the_hour_is_over() {
    let dir = tempfile::tempdir().expect("tmp");
    let staged = || walk(&dir.path().join("_state/staging"));
    let events = || walk(&dir.path().join("events"));
    let mut proc = holding(dir.path(), 1, |c| {
        c.batch_rows = 1;
        c.idle_timeout = Duration::from_secs(60);
    });
    // Read as it happens: the record arrives at 07:15:00.
    let mut feed = Feed::new(1, 1_793_517_300_000);
    let start = Instant::now();
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), start);
    proc.checkpoint(false, start).expect("checkpoint");
    assert!(events().is_empty(), "07:00 is open and the partition active: held");
    // Idle, but by the clock it is 07:17: 07:00 may still get events (a host sending
    // one every few minutes), so its piece stays held rather than becoming a file.
    proc.checkpoint(false, start + Duration::from_secs(120))
        .expect("checkpoint");
    assert!(events().is_empty(), "07:00 is not over yet");
    // 08:15 by the clock and nothing read since: nothing will pass 07:00 while the
    // topic is quiet, so it is published.
    let quiet = start + Duration::from_secs(3600);
    proc.checkpoint(false, quiet).expect("checkpoint");
    assert!(staged().is_empty(), "the piece went into the hour's file");
    assert_eq!(
        rows_by_hour(&events()),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 1)])
    );
    // A late event of the hour: held while the partition is active, then another
    // file of the hour; nothing counted twice.
    feed.send(&mut proc, 0, &delivery("Nov  1 07:40:00", "b"), quiet);
    proc.checkpoint(false, quiet).expect("checkpoint");
    assert_eq!(events().len(), 1, "07:40 is held while the partition is active");
    proc.checkpoint(true, quiet).expect("stop");
    assert_eq!(events().len(), 2);
    assert_eq!(
        rows_by_hour(&events()),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 2)])
    );
}

#[test]
fn a_partition_quiet_since_a_restart_publishes_its_held_hour_once_the_hour_is_over() {
    let dir = tempfile::tempdir().expect("tmp");
    let staged = || walk(&dir.path().join("_state/staging"));
    let events = || walk(&dir.path().join("events"));
    let rejects = || walk(&dir.path().join("rejects"));
    let open = || {
        holding(dir.path(), 1, |c| {
            c.batch_rows = 1;
            c.idle_timeout = Duration::from_secs(60);
        })
    };
    let mut proc = open();
    // Read as it happens, at 07:15: an event and a dead letter, both held.
    let mut feed = Feed::new(1, nov1(7, 15) / 1000);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    feed.send(&mut proc, 0, "\u{1} junk", Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    assert_eq!(staged().len(), 2, "07:00's events and dead letters are held");
    drop(proc);
    // Restarted, and the topic stays quiet: nothing is read again.
    let mut proc = open();
    let start = Instant::now();
    proc.checkpoint(false, start + Duration::from_secs(120))
        .expect("checkpoint");
    assert!(
        events().is_empty(),
        "07:17 at least by the clock: 07:00 may still get events"
    );
    proc.checkpoint(false, start + Duration::from_secs(3600))
        .expect("checkpoint");
    assert!(staged().is_empty(), "08:15 at least by the clock: 07:00 is over");
    assert_eq!(
        rows_by_hour(&events()),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 1)])
    );
    assert_eq!(rejects().len(), 1);
}

/// Rows in these Parquet files, from their footers.
fn parquet_rows(files: Vec<std::path::PathBuf>) -> i64 {
    files
        .iter()
        .map(|f| {
            let file = std::fs::File::open(f).expect("open");
            let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
            b.metadata().file_metadata().num_rows()
        })
        .sum()
}

#[test]
fn a_flood_of_dead_letters_between_two_checkpoints_is_kept_whole() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    let mut feed = Feed::new(1, nov1(9, 30) / 1000);
    let start = Instant::now();
    // More than two dead-letter batches' worth before the first checkpoint (held),
    // and again before the stop (published at once).
    for i in 0..9_000 {
        feed.send(&mut proc, 0, &format!("\u{1} junk {i}"), start);
    }
    proc.checkpoint(false, start).expect("checkpoint");
    for i in 0..9_000 {
        feed.send(&mut proc, 0, &format!("\u{1} more junk {i}"), start);
    }
    proc.checkpoint(true, start).expect("stop");
    assert_eq!(parquet_rows(walk(&dir.path().join("rejects"))), 18_000);
    assert_eq!(
        proc.status()[0].counters.dead_letters.get("unrecognized_record"),
        Some(&18_000)
    );
}

#[test]
fn dead_letters_wait_in_staging_and_their_hour_is_published_as_one_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let rejects = || walk(&dir.path().join("rejects"));
    let staged = || walk(&dir.path().join("_state/staging"));
    let rows = parquet_rows;
    let mut proc = holding(dir.path(), 1, |_| {});
    // The records arrive at 09:30.
    let mut feed = Feed::new(1, nov1(9, 30) / 1000);
    let start = Instant::now();
    for i in 0..3 {
        feed.send(&mut proc, 0, &format!("\u{1} junk {i}"), start);
        proc.checkpoint(false, start).expect("checkpoint");
    }
    assert!(rejects().is_empty(), "09:00 is still running: its dead letters wait");
    assert_eq!(staged().len(), 3, "one piece a checkpoint");
    // A restart keeps them.
    drop(proc);
    let mut proc = holding(dir.path(), 1, |_| {});
    assert_eq!(staged().len(), 3, "recovery keeps the held dead letters");
    // A record of 10:05 moves the partition's clock out of 09:00: its dead letters
    // are published as one file; the new one waits for 10:00's.
    feed.timestamp_ms = nov1(10, 5) / 1000;
    feed.send(&mut proc, 0, "\u{1} junk 3", start);
    proc.checkpoint(false, start).expect("checkpoint");
    assert_eq!(rejects().len(), 1);
    assert_eq!(rows(rejects()), 3);
    assert_eq!(staged().len(), 1, "10:00's piece");
    // Quiet: an hour later by the partition's clock, 10:00's goes too.
    proc.checkpoint(false, start + Duration::from_secs(3600))
        .expect("checkpoint");
    assert_eq!((rejects().len(), rows(rejects())), (2, 4));
    assert!(staged().is_empty());
    // And a stop publishes what it has at once.
    feed.send(&mut proc, 0, "\u{1} junk 4", start + Duration::from_secs(3600));
    proc.checkpoint(true, start + Duration::from_secs(3600)).expect("stop");
    assert_eq!((rejects().len(), rows(rejects())), (3, 5));
    assert!(staged().is_empty());
    assert_eq!(
        proc.status()[0].counters.dead_letters.get("unrecognized_record"),
        Some(&5)
    );
}

/// A partition holding one piece of hour 07 that `spoil` does something to, then
/// reading on (07:20 and 09:00) and stopping; returns it, and asserts both hours'
/// rows but the spoilt piece's are written.
fn with_spoilt_piece(dir: &Path, spoil: impl FnOnce(&Path)) -> Processor {
    let mut proc = holding(dir, 1, |c| c.batch_rows = 1);
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    let pieces = walk(&dir.join("_state/staging"));
    assert_eq!(pieces.len(), 1, "a's piece");
    spoil(&pieces[0]);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    feed.send(&mut proc, 0, &delivery("Nov  1 09:00:00", "c"), Instant::now());
    proc.checkpoint(true, Instant::now()).expect("the scope goes on");
    assert_eq!(
        rows_by_hour(&walk(&dir.join("events"))),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 1), ("2026-11-01T09".to_owned(), 1)])
    );
    proc
}

#[test]
fn a_held_piece_gone_from_staging_is_counted_and_its_hour_written_without_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let proc = with_spoilt_piece(dir.path(), |p| std::fs::remove_file(p).expect("remove"));
    assert_eq!(proc.status()[0].counters.missing_pieces, 1);
}

#[test]
fn a_damaged_checkpoint_says_what_to_do_and_its_removal_sets_its_open_hours_aside() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |c| c.batch_rows = 1);
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    proc.checkpoint(false, Instant::now()).expect("checkpoint");
    drop(proc);
    let staged = walk(&dir.path().join("_state/staging"));
    assert_eq!(staged.len(), 1, "the open hour's piece: {staged:?}");
    let ckpt = walk(&dir.path().join("_state/checkpoints"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("checkpoint");
    std::fs::write(&ckpt, b"{\"version\": 3, \"scope\"").expect("damage");
    let mut cfg = config(dir.path());
    cfg.lateness_us = 0;
    let mut stopped = Processor::new(cfg).expect("processor");
    let err = stopped.assign(TOPIC, 0).expect_err("damaged").to_string();
    assert!(
        err.contains("cannot be read") && err.contains("Restore it from a backup"),
        "{err}"
    );
    // Moved aside, as the message says: the piece is kept, not deleted as a leftover.
    std::fs::rename(&ckpt, ckpt.with_extension("damaged")).expect("move aside");
    let proc = holding(dir.path(), 1, |_| {});
    assert_eq!(proc.status()[0].counters.set_aside_pieces, 1);
    let aside = walk(&dir.path().join("_state/set-aside/mail-0"));
    assert_eq!(
        aside.iter().map(|p| p.file_name()).collect::<Vec<_>>(),
        staged.iter().map(|p| p.file_name()).collect::<Vec<_>>()
    );
}

#[test]
fn a_damaged_held_piece_is_set_aside_and_its_hour_written_without_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let proc = with_spoilt_piece(dir.path(), |p| std::fs::write(p, vec![0x5a; 20_000]).expect("damage"));
    assert_eq!(proc.status()[0].counters.set_aside_pieces, 1);
    assert_eq!(walk(&dir.path().join("_state/set-aside/mail-0")).len(), 1);
}

#[test]
fn a_pending_file_gone_from_staging_and_archive_is_counted_and_the_scope_goes_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    proc.checkpoint(true, Instant::now()).expect("stop");
    drop(proc);
    // As a crash between the checkpoint and its publishing leaves it, with the staged
    // file then removed by hand.
    let ckpt = walk(&dir.path().join("_state/checkpoints"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("checkpoint");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&ckpt).expect("read")).expect("json");
    json["pending"] = serde_json::json!([["_state/staging/gone.parquet", "events/gone.parquet"]]);
    std::fs::write(&ckpt, serde_json::to_vec(&json).expect("json")).expect("write");
    let mut proc = holding(dir.path(), 1, |_| {});
    assert_eq!(proc.status()[0].counters.missing_pieces, 1);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:20:00", "b"), Instant::now());
    proc.checkpoint(true, Instant::now()).expect("the scope goes on");
    assert_eq!(
        rows_by_hour(&walk(&dir.path().join("events"))),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 2)])
    );
}

#[test]
fn records_without_a_key_are_read_and_counted_across_restarts() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    let mut feed = Feed::new(1, INGEST_MS);
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    feed.key = None;
    feed.send(&mut proc, 0, &delivery("Nov  1 07:11:00", "b"), Instant::now());
    feed.send(&mut proc, 0, &delivery("Nov  1 07:12:00", "c"), Instant::now());
    proc.checkpoint(true, Instant::now()).expect("stop");
    drop(proc);
    let mut proc = holding(dir.path(), 1, |_| {});
    feed.send(&mut proc, 0, &delivery("Nov  1 07:13:00", "d"), Instant::now());
    // A record that is no MTA's line needs no partition of its own: not counted.
    feed.send(&mut proc, 0, "\u{1} junk", Instant::now());
    let c = &proc.status()[0].counters;
    assert_eq!((c.records, c.unkeyed), (5, 3));
    assert_eq!(proc.status()[0].stats.events, 4, "read all the same");
}

#[test]
fn a_partition_taken_without_a_checkpoint_position_says_where_it_began_until_restarted() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 1, |_| {});
    assert_eq!(proc.status()[0].unresumed_start, Some(None), "nothing read yet");
    let mut feed = Feed::new(1, INGEST_MS);
    // As the group's committed offset of another consumer leaves it.
    feed.offsets[0] = 500;
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), Instant::now());
    feed.send(&mut proc, 0, &delivery("Nov  1 07:11:00", "b"), Instant::now());
    assert_eq!(proc.status()[0].unresumed_start, Some(Some(500)));
    proc.checkpoint(true, Instant::now()).expect("stop");
    drop(proc);
    let proc = holding(dir.path(), 1, |_| {});
    assert_eq!(proc.status()[0].unresumed_start, None, "resumed from its checkpoint");
}

#[test]
fn a_quiet_partitions_held_hour_is_published_once_the_watermark_passes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = holding(dir.path(), 2, |c| c.batch_rows = 1);
    // Read as they happen, at 06:30 (the events' own clocks run a little ahead).
    let mut feed = Feed::new(2, nov1(6, 30) / 1000);
    let start = Instant::now();
    feed.send(&mut proc, 0, &delivery("Nov  1 07:10:00", "a"), start);
    feed.send(&mut proc, 1, &delivery("Nov  1 07:20:00", "b"), start);
    proc.checkpoint(false, start).expect("checkpoint");
    assert!(walk(&dir.path().join("events")).is_empty());
    // Partition 0 reads nothing more for the idle timeout (an hour): by its clock it
    // is 07:30, so 07:00 is not over and the quiet rule keeps it held. Partition 1
    // goes on past 07:00, and the watermark passes 07:00 as partition 0 is idle.
    let later = start + Duration::from_secs(3600);
    feed.timestamp_ms = nov1(9, 0) / 1000;
    feed.send(&mut proc, 1, &delivery("Nov  1 09:00:00", "c"), later);
    proc.checkpoint(false, later).expect("checkpoint");
    let files = walk(&dir.path().join("events"));
    assert_eq!(files.len(), 2, "07:00 of each partition: {files:?}");
    assert_eq!(
        rows_by_hour(&files),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 2)])
    );
}

#[test]
fn a_partition_reading_behind_the_watermark_holds_its_hour_until_its_events_pass_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let events = || walk(&dir.path().join("events"));
    let mut proc = holding(dir.path(), 2, |c| {
        c.batch_rows = 1;
        c.idle_timeout = Duration::from_secs(60);
    });
    let later = Instant::now() + Duration::from_secs(120);
    let mut feed = Feed::new(2, INGEST_MS);
    // Partition 1 has read no event for the idle timeout: the watermark is
    // partition 0's, 5 November.
    feed.send(&mut proc, 0, &delivery("Nov  5 12:10:00", "a"), later);
    proc.checkpoint(false, later).expect("checkpoint");
    // Then partition 1 reads a backlog of 1 November, a checkpoint after each record.
    for (i, t) in ["Nov  1 07:10:00", "Nov  1 07:20:00", "Nov  1 07:30:00"]
        .iter()
        .enumerate()
    {
        feed.send(&mut proc, 1, &delivery(t, &format!("b{i}")), later);
        proc.checkpoint(false, later).expect("checkpoint");
    }
    assert!(events().is_empty(), "partition 1 is still in 07:00: held");
    feed.send(&mut proc, 1, &delivery("Nov  1 09:00:00", "c"), later);
    proc.checkpoint(false, later).expect("checkpoint");
    let files = events();
    assert_eq!(files.len(), 1, "one file for 07:00, not one a checkpoint: {files:?}");
    assert_eq!(
        rows_by_hour(&files),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 3)])
    );
}

#[test]
fn a_passed_hour_is_written_while_reading_not_when_its_batch_closes() {
    let dir = tempfile::tempdir().expect("tmp");
    // No batch closes before the checkpoint, by size or by time.
    let mut proc = holding(dir.path(), 1, |c| c.batch_rows = 1_000_000);
    let mut feed = Feed::new(1, INGEST_MS);
    let staged = || walk(&dir.path().join("_state/staging"));
    for i in 0..10_000 {
        let t = format!("Nov  1 07:{:02}:{:02}", i / 200, i % 60);
        feed.send(&mut proc, 0, &delivery(&t, &format!("r{i}")), Instant::now());
    }
    // 09:00 passes 07:00: its file is written with every row of the hour, and no
    // batch has closed.
    feed.send(&mut proc, 0, &delivery("Nov  1 09:00:00", "next"), Instant::now());
    proc.flush_writes().expect("flush");
    let files = staged();
    assert_eq!(
        rows_by_hour(&files),
        std::collections::BTreeMap::from([("2026-11-01T07".to_owned(), 10_000)])
    );
    assert_eq!(files.len(), 1, "one file for 07:00");
    proc.checkpoint(true, Instant::now()).expect("checkpoint");
    let hours = rows_by_hour(&walk(&dir.path().join("events")));
    assert_eq!(hours.get("2026-11-01T07"), Some(&10_000), "{hours:?}");
    // The batch's SQL at the close counted the rows written before it too.
    let report = csv(&query(Query::HOURLY_REPORT, &dir.path().join("hourly")), false);
    assert!(
        report.contains("2026-11-01T07:00:00Z,198.51.100.11,gmail-smtp-in.l.google.com,google,10000,10000,0,0,0,true"),
        "{report}"
    );
}

/// Every stored hourly row under `dir`, as CSV lines.
fn query_rows(dir: &Path) -> Vec<String> {
    let mut batches = Vec::new();
    for f in walk(dir) {
        let file = std::fs::File::open(&f).expect("open");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        batches.extend(reader.map(|b| b.expect("batch")));
    }
    csv(&batches, false).lines().skip(1).map(str::to_owned).collect()
}

#[test]
fn records_delivered_again_below_the_checkpoint_are_not_counted_twice() {
    let (parts, truth, _) = partitioned(6_000, 9);
    let dir = tempfile::tempdir().expect("tmp");
    let mut proc = Processor::new(config(dir.path())).expect("processor");
    let feed = |proc: &mut Processor, p: usize, range: std::ops::Range<usize>| {
        for offset in range {
            proc.process(&record(p, offset, &parts[p][offset]), Instant::now())
                .expect("process");
        }
    };
    for (p, lines) in parts.iter().enumerate() {
        proc.assign(TOPIC, p as i32).expect("assign");
        let half = lines.len() / 2;
        feed(&mut proc, p, 0..half);
        // The broker sends the first half again (a seek back), then the rest.
        feed(&mut proc, p, 0..lines.len());
    }
    proc.checkpoint(true, Instant::now()).expect("stop");
    let redelivered: u64 = proc.status().iter().map(|s| s.counters.redelivered).sum();
    let halves: usize = parts.iter().map(|l| l.len() / 2).sum();
    assert_eq!(redelivered, halves as u64);
    let report = query(Query::HOURLY_REPORT, &dir.path().join("hourly"));
    assert_eq!(csv(&report, true), truth);
}

#[test]
fn partitions_moved_between_processors_mid_stream_lose_nothing_and_count_nothing_twice() {
    let (parts, truth, _) = partitioned(30_000, 5);
    let dir = tempfile::tempdir().expect("tmp");
    // Two processing workers of one process, sharing the archive.
    let mut procs = [
        Processor::new(config(dir.path())).expect("processor"),
        Processor::new(config(dir.path())).expect("processor"),
    ];
    let mut holder = vec![0usize; parts.len()];
    for p in 0..PARTITIONS {
        procs[0].assign(TOPIC, p).expect("assign");
    }
    let mut rng = Rng(99);
    let mut next = vec![0usize; parts.len()];
    let mut moves = 0;
    while next.iter().zip(&parts).any(|(n, p)| *n < p.len()) {
        for (p, lines) in parts.iter().enumerate() {
            let end = (next[p] + 1 + rng.below(300) as usize).min(lines.len());
            for (offset, value) in lines.iter().enumerate().take(end).skip(next[p]) {
                procs[holder[p]]
                    .process(&record(p, offset, value), Instant::now())
                    .expect("process");
            }
            next[p] = end;
            if rng.below(5) == 0 {
                // Open batch, staged files and windows go along.
                let to = 1 - holder[p];
                let moving = procs[holder[p]].release(TOPIC, p as i32).expect("held");
                procs[to].adopt(moving);
                holder[p] = to;
                moves += 1;
            }
            if rng.below(7) == 0 {
                procs[rng.below(2) as usize]
                    .checkpoint(false, Instant::now())
                    .expect("checkpoint");
            }
        }
    }
    assert!(moves > 10, "{moves} moves");
    assert!(procs[0].release(TOPIC, 99).is_none(), "a partition not held");
    for proc in &mut procs {
        proc.checkpoint(true, Instant::now()).expect("stop");
    }
    let report = query(Query::HOURLY_REPORT, &dir.path().join("hourly"));
    assert_eq!(csv(&report, true), truth, "hourly rows");
    let events = query(Query::HOURLY, &dir.path().join("events"));
    assert_eq!(csv(&events, false), truth, "the event archive");
    assert!(walk(&dir.path().join("_state/staging")).is_empty());
}
