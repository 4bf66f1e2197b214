//! Every query file is planned, and each has result tests on hand-made events whose
//! expected rows are written out by hand below.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use deferlog_event::{Class, EventBuilder, EventRow, Mta, Outcome};
use deferlog_query::{ALL_QUERIES, Engine, EventFilter, EventSource, Query};

/// `2026-11-08T07:15:00Z` → µs, without pulling chrono into this crate's tests.
fn ts(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().expect("digits");
    let (y, mo, d, h, mi, se) = (n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19));
    // Days from civil (Howard Hinnant), enough for the dates in these tests.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + h) * 3600 + mi * 60 + se) * 1_000_000
}

struct Ev {
    t: &'static str,
    ip: Option<&'static str>,
    mx: Option<&'static str>,
    group: &'static str,
    outcome: Outcome,
}

fn batch(evs: &[Ev]) -> RecordBatch {
    let mut b = EventBuilder::default();
    for e in evs {
        b.append(&EventRow {
            event_time_us: ts(e.t),
            tenant: "default",
            mta: Mta::Postfix,
            mta_host: "mta-out1",
            mta_instance: Some("postfix-ip1"),
            source_ip: e.ip,
            queue_id: "ABCDEF1234",
            message_id: None,
            sender_domain: Some("news.example"),
            recipient_domain: Some("gmail.com"),
            recipient_hash: Some(1),
            mx_host: e.mx,
            mx_ip: None,
            mx_group: e.group,
            outcome: e.outcome,
            class: match e.outcome {
                Outcome::Delivered => Class::None,
                Outcome::Expired => Class::Expired,
                _ => Class::RateLimit,
            },
            smtp_code: None,
            enhanced_status: None,
            response: None,
            attempt: Some(1),
            delay_seconds: None,
            size_bytes: None,
            origin: "test:1".into(),
        });
    }
    b.finish().expect("batch")
}

fn sample() -> Vec<Ev> {
    use Outcome::*;
    let g = Some("gmail-smtp-in.l.google.com");
    let y = Some("mta5.am0.yahoodns.net");
    let ip1 = Some("198.51.100.11");
    vec![
        Ev {
            t: "2026-11-08T07:15:00Z",
            ip: ip1,
            mx: g,
            group: "google",
            outcome: Delivered,
        },
        Ev {
            t: "2026-11-08T07:20:00Z",
            ip: ip1,
            mx: g,
            group: "google",
            outcome: Deferred,
        },
        Ev {
            t: "2026-11-08T07:59:59Z",
            ip: ip1,
            mx: g,
            group: "google",
            outcome: Deferred,
        },
        Ev {
            t: "2026-11-08T08:00:00Z",
            ip: ip1,
            mx: g,
            group: "google",
            outcome: Bounced,
        },
        Ev {
            t: "2026-11-08T08:30:00Z",
            ip: ip1,
            mx: g,
            group: "google",
            outcome: Expired,
        },
        Ev {
            t: "2026-11-08T07:30:00Z",
            ip: None,
            mx: y,
            group: "yahoo",
            outcome: Deferred,
        },
        Ev {
            t: "2026-11-08T07:31:00Z",
            ip: Some("198.51.100.12"),
            mx: y,
            group: "yahoo",
            outcome: Delivered,
        },
        Ev {
            t: "2026-11-08T07:40:00Z",
            ip: ip1,
            mx: None,
            group: "unknown",
            outcome: Expired,
        },
    ]
}

fn csv(batches: &[RecordBatch]) -> String {
    let opts = FormatOptions::new()
        .with_null("")
        .with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%SZ"));
    let mut out = String::new();
    for b in batches {
        let f: Vec<_> = b
            .columns()
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

async fn hourly(source: EventSource, filter: &EventFilter) -> String {
    let e = Engine::new();
    e.register_events(source, filter).await.expect("register");
    csv(&e.run(Query::HOURLY).await.expect("run"))
}

#[tokio::test]
async fn every_query_file_is_listed_and_plans() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../queries");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("queries dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = ALL_QUERIES.iter().map(|q| format!("{}.sql", q.name)).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    let e = Engine::new();
    e.register_events(EventSource::Batches(vec![batch(&sample())]), &EventFilter::default())
        .await
        .expect("register");
    for q in ALL_QUERIES {
        let plan = e
            .plan(*q)
            .await
            .unwrap_or_else(|err| panic!("{} does not plan: {err}", q.name));
        assert!(plan.contains("Aggregate"), "{}: {plan}", q.name);
    }
}

#[tokio::test]
async fn hourly_counts_each_outcome_per_hour_ip_and_mx() {
    let got = hourly(EventSource::Batches(vec![batch(&sample())]), &EventFilter::default()).await;
    let want = "\
2026-11-08T07:00:00Z,,mta5.am0.yahoodns.net,yahoo,1,0,1,0,0
2026-11-08T07:00:00Z,198.51.100.11,,unknown,0,0,0,0,1
2026-11-08T07:00:00Z,198.51.100.11,gmail-smtp-in.l.google.com,google,3,1,2,0,0
2026-11-08T07:00:00Z,198.51.100.12,mta5.am0.yahoodns.net,yahoo,1,1,0,0,0
2026-11-08T08:00:00Z,198.51.100.11,gmail-smtp-in.l.google.com,google,1,0,0,1,1
";
    assert_eq!(got, want);
}

#[tokio::test]
async fn hourly_filters_narrow_the_input() {
    let src = || EventSource::Batches(vec![batch(&sample())]);
    let only_ip = EventFilter {
        source_ip: Some("198.51.100.12".into()),
        ..Default::default()
    };
    assert_eq!(
        hourly(src(), &only_ip).await,
        "2026-11-08T07:00:00Z,198.51.100.12,mta5.am0.yahoodns.net,yahoo,1,1,0,0,0\n"
    );
    let only_group_8h = EventFilter {
        from_us: Some(ts("2026-11-08T08:00:00Z")),
        to_us: Some(ts("2026-11-08T09:00:00Z")),
        mx_group: Some("google".into()),
        ..Default::default()
    };
    assert_eq!(
        hourly(src(), &only_group_8h).await,
        "2026-11-08T08:00:00Z,198.51.100.11,gmail-smtp-in.l.google.com,google,1,0,0,1,1\n"
    );
    let nothing = EventFilter {
        mx_group: Some("nobody".into()),
        ..Default::default()
    };
    assert_eq!(hourly(src(), &nothing).await, "");
}

#[tokio::test]
async fn hourly_over_parquet_files_equals_hourly_over_batches() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut archive = deferlog_archive::EventArchive::new(dir.path(), "t");
    for e in sample() {
        let b = batch(std::slice::from_ref(&e));
        archive
            .write(&deferlog_event::HourBatch {
                hour_us: deferlog_event::hour_of(ts(e.t)),
                batch: b,
            })
            .expect("write");
    }
    archive.finish().expect("finish");
    let from_files = hourly(EventSource::Dir(dir.path().join("events")), &EventFilter::default()).await;
    let from_memory = hourly(EventSource::Batches(vec![batch(&sample())]), &EventFilter::default()).await;
    assert_eq!(from_files, from_memory);
}

#[tokio::test]
async fn a_missing_archive_says_what_to_do() {
    let e = Engine::new();
    let err = e
        .register_events(EventSource::Dir("/nonexistent/events".into()), &EventFilter::default())
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("deferlog replay"), "{err}");
}
