//! Whole-run tests: determinism, ordering, the line budget, junk, and the
//! truth checked against an independent reading of the generated text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate};

use crate::config::DEFAULT_START_UNIX;
use crate::providers::group_of;
use crate::{Counts, GenConfig, Generator, Truth, fleet_config_toml, write_log};

fn run(cfg: GenConfig) -> (Vec<u8>, Truth) {
    let mut out = Vec::new();
    let truth = write_log(cfg, &mut out).expect("writing to a Vec cannot fail");
    (out, truth)
}

fn big_cfg() -> GenConfig {
    // Defaults, but starting at 20:00 so 300k lines (about 7 h of traffic)
    // cross midnight.
    GenConfig {
        lines: 300_000,
        start_unix: DEFAULT_START_UNIX + 20 * 3600,
        ..GenConfig::default()
    }
}

/// One 300k-line run shared by the tests that only read it.
fn big() -> &'static (Vec<u8>, Truth) {
    static BIG: OnceLock<(Vec<u8>, Truth)> = OnceLock::new();
    BIG.get_or_init(|| run(big_cfg()))
}

fn lines(out: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = out.strip_suffix(b"\n").unwrap_or(out);
    body.split(|&b| b == b'\n')
}

/// A syslog line taken apart; `None` for anything that does not start with a
/// stamp (empty and garbage junk, or invalid UTF-8).
struct Parsed<'a> {
    unix_us: i64,
    host: &'a str,
    program: &'a str,
    msg: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn parse(line: &[u8], year: i32) -> Option<Parsed<'_>> {
    let s = std::str::from_utf8(line).ok()?;
    let (unix_us, rest) = if s.as_bytes().first()?.is_ascii_digit() {
        let (stamp, rest) = s.split_once(' ')?;
        let t = DateTime::parse_from_rfc3339(stamp).ok()?;
        (t.timestamp_micros(), rest)
    } else {
        let month = MONTHS.iter().position(|m| s.starts_with(m))? as u32 + 1;
        let day: u32 = s.get(4..6)?.trim().parse().ok()?;
        let h: u32 = s.get(7..9)?.parse().ok()?;
        let m: u32 = s.get(10..12)?.parse().ok()?;
        let sec: u32 = s.get(13..15)?.parse().ok()?;
        let t = NaiveDate::from_ymd_opt(year, month, day)?
            .and_hms_opt(h, m, sec)?
            .and_utc()
            .timestamp();
        (t * 1_000_000, s.get(16..)?)
    };
    let (host, rest) = rest.split_once(' ')?;
    let (program, msg) = match rest.split_once(": ") {
        Some((p, m)) => (p, m),
        None => (rest, ""),
    };
    let program = program.split('[').next()?;
    Some(Parsed {
        unix_us,
        host,
        program,
        msg,
    })
}

/// (host, instance) -> ip, read back from the TOML the replay would use.
fn egress_map() -> HashMap<(String, String), String> {
    let toml = fleet_config_toml();
    let mut map = HashMap::new();
    let (mut host, mut inst) = (String::new(), String::new());
    for line in toml.lines() {
        let Some((k, v)) = line.split_once(" = ") else {
            continue;
        };
        let v = v.trim_matches('"').to_owned();
        match k {
            "host" => host = v,
            "instance" => inst = v,
            "ip" => {
                map.insert((host.clone(), inst.clone()), v);
            }
            _ => {}
        }
    }
    map
}

type Key = (i64, String, String, String);
/// (source_ip, mx_host, mx_group) of an attempt.
type Target = (String, String, String);
/// Per (host, queue id): recipient -> (its last attempt's target, done).
type Pending = HashMap<(String, String), HashMap<String, (Target, bool)>>;

/// What a correct parser must report, from the text alone (plus the egress
/// map and the MX groups): the independent side of the truth cross-check.
fn read_back(out: &[u8], year: i32) -> BTreeMap<Key, Counts> {
    let egress = egress_map();
    let mut rows: BTreeMap<Key, Counts> = BTreeMap::new();
    let mut state: Pending = HashMap::new();
    for line in lines(out) {
        let Some(p) = parse(line, 2026.max(year)) else {
            continue;
        };
        let Some((instance, service)) = p.program.rsplit_once('/') else {
            continue;
        };
        let hour = p.unix_us.div_euclid(3_600_000_000) * 3600;
        let source = egress
            .get(&(p.host.to_owned(), instance.to_owned()))
            .cloned()
            .unwrap_or_default();
        let Some((qid, text)) = p.msg.split_once(": ") else {
            continue;
        };
        if (service == "smtp" || service == "error") && text.contains(", status=") {
            let status = text
                .split(", status=")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .expect("status word");
            let rcpt = text
                .strip_prefix("to=<")
                .and_then(|s| s.split('>').next())
                .expect("to=")
                .to_owned();
            let relay = text
                .split("relay=")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .expect("relay=");
            let mx_host = if relay == "none" {
                text.split("connect to ")
                    .nth(1)
                    .and_then(|s| s.split('[').next())
                    .expect("connect to HOST")
            } else {
                relay.split('[').next().expect("relay host")
            };
            let group = group_of(mx_host).unwrap_or_else(|| panic!("unknown MX {mx_host}"));
            let c = rows
                .entry((hour, source.clone(), mx_host.to_owned(), group.to_owned()))
                .or_default();
            c.attempts += 1;
            let done = match status {
                "sent" => {
                    c.delivered += 1;
                    true
                }
                "deferred" => {
                    c.deferred += 1;
                    false
                }
                "bounced" => {
                    c.bounced += 1;
                    true
                }
                other => panic!("unexpected status {other}"),
            };
            state
                .entry((p.host.to_owned(), qid.to_owned()))
                .or_default()
                .insert(rcpt, ((source, mx_host.to_owned(), group.to_owned()), done));
        } else if service == "qmgr" && text.contains("status=expired") {
            let rcpts = state
                .get(&(p.host.to_owned(), qid.to_owned()))
                .expect("expired message had attempts");
            for ((s, m, g), done) in rcpts.values() {
                if !done {
                    rows.entry((hour, s.clone(), m.clone(), g.clone()))
                        .or_default()
                        .expired += 1;
                }
            }
        } else if service == "qmgr" && text == "removed" {
            state.remove(&(p.host.to_owned(), qid.to_owned()));
        }
    }
    rows
}

fn truth_map(t: &Truth) -> BTreeMap<Key, Counts> {
    t.rows()
        .map(|r| {
            (
                (
                    r.hour_unix,
                    r.source_ip.to_owned(),
                    r.mx_host.to_owned(),
                    r.mx_group.to_owned(),
                ),
                r.counts,
            )
        })
        .collect()
}

fn is_junk(line: &[u8]) -> bool {
    match std::str::from_utf8(line) {
        Err(_) => true,
        Ok("") => true,
        Ok(s) => match parse(line, 2026) {
            None => true,
            Some(p) => {
                p.program.ends_with("/smtp") && s.contains(": to=<") && !s.contains(", status=")
            }
        },
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = GenConfig {
        lines: 20_000,
        ..GenConfig::default()
    };
    let (a, ta) = run(cfg.clone());
    let (b, tb) = run(cfg.clone());
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    let (c, _) = run(GenConfig { seed: 8, ..cfg });
    assert_ne!(a, c);
}

#[test]
fn streaming_api_agrees_with_write_log_and_times_never_go_back() {
    let cfg = GenConfig {
        lines: 20_000,
        ..GenConfig::default()
    };
    let (whole, truth) = run(cfg.clone());
    let mut g = Generator::new(cfg);
    let mut out = Vec::new();
    let mut last = i64::MIN;
    let mut n = 0;
    while g.next_line(&mut out) {
        n += 1;
        assert!(g.last_time_us() >= last);
        last = g.last_time_us();
        assert_eq!(g.lines_emitted(), n);
    }
    assert_eq!(out, whole);
    assert_eq!(g.truth(), &truth);
    assert!(!g.next_line(&mut out), "stays done");
}

#[test]
fn lines_come_in_time_order() {
    let (out, _) = big();
    let mut last = i64::MIN;
    let mut stamped = 0;
    for line in lines(out) {
        let Some(p) = parse(line, 2026) else { continue };
        // BSD stamps only show whole seconds: compare at that resolution.
        let secs = p.unix_us.div_euclid(1_000_000);
        assert!(secs >= last, "{}", String::from_utf8_lossy(line));
        last = secs;
        stamped += 1;
    }
    assert!(stamped > 290_000);
}

#[test]
fn every_message_ends_removed() {
    let (out, _) = big();
    let mut open: HashSet<(String, String)> = HashSet::new();
    let mut removed = 0;
    for line in lines(out) {
        let Some(p) = parse(line, 2026) else { continue };
        let Some((_, service)) = p.program.rsplit_once('/') else {
            continue;
        };
        let Some((qid, text)) = p.msg.split_once(": ") else {
            continue;
        };
        let key = (p.host.to_owned(), qid.to_owned());
        if service == "cleanup" {
            assert!(open.insert(key), "queue id reused: {qid}");
        } else if service == "qmgr" && text == "removed" {
            assert!(open.remove(&key), "removed twice or never queued: {qid}");
            removed += 1;
        } else if service != "smtpd" && !is_junk(line) && text.starts_with("to=<") {
            assert!(
                open.contains(&key),
                "line after removal: {}",
                String::from_utf8_lossy(line)
            );
        }
    }
    assert!(open.is_empty(), "{} messages never removed", open.len());
    assert!(removed > 30_000);
}

#[test]
fn line_count_is_close_to_the_target() {
    let (out, _) = big();
    let n = lines(out).count() as u64;
    // Target, plus the last message's lines, plus ~0.1 % junk on top.
    assert!((300_000..=300_700).contains(&n), "{n}");
    let small = run(GenConfig {
        lines: 50,
        ..GenConfig::default()
    });
    let n = lines(&small.0).count();
    assert!((50..=70).contains(&n), "{n}");
    let none = run(GenConfig {
        lines: 0,
        ..GenConfig::default()
    });
    assert!(none.0.is_empty() && none.1.is_empty());
}

#[test]
fn truth_equals_an_independent_reading_of_the_text() {
    let (out, truth) = big();
    let read = read_back(out, 2026);
    let expected = truth_map(truth);
    if read != expected {
        let only_read: Vec<_> = read
            .iter()
            .filter(|(k, v)| expected.get(*k) != Some(v))
            .take(5)
            .collect();
        let only_truth: Vec<_> = expected
            .iter()
            .filter(|(k, v)| read.get(*k) != Some(v))
            .take(5)
            .collect();
        panic!("text says {only_read:?}\ntruth says {only_truth:?}");
    }
}

#[test]
fn truth_totals_equal_a_plain_string_count() {
    let (out, truth) = big();
    let (mut sent, mut deferred, mut bounced) = (0, 0, 0);
    for line in lines(out) {
        let s = String::from_utf8_lossy(line);
        sent += u64::from(s.contains(" status=sent ("));
        deferred += u64::from(s.contains(" status=deferred ("));
        bounced += u64::from(s.contains(" status=bounced ("));
    }
    let t = truth.totals();
    assert_eq!(
        (t.delivered, t.deferred, t.bounced),
        (sent, deferred, bounced)
    );
    assert_eq!(t.attempts, sent + deferred + bounced);
}

#[test]
fn truth_has_the_variety_tests_need() {
    let (_, truth) = big();
    for r in truth.rows() {
        let c = r.counts;
        assert_eq!(c.attempts, c.delivered + c.deferred + c.bounced, "{r:?}");
    }
    let t = truth.totals();
    assert!(t.expired > 50, "{t:?}");
    assert!(t.bounced > 500, "{t:?}");
    assert!(t.deferred > 2000, "{t:?}");
    let hours: HashSet<i64> = truth.rows().map(|r| r.hour_unix).collect();
    let days: HashSet<i64> = hours.iter().map(|h| h / 86_400).collect();
    let sources: HashSet<&str> = truth.rows().map(|r| r.source_ip).collect();
    let groups: HashSet<&str> = truth.rows().map(|r| r.mx_group).collect();
    assert!(hours.len() >= 6, "{hours:?}");
    assert!(days.len() >= 2, "{days:?}");
    assert_eq!(sources.len(), 6, "{sources:?}");
    assert!(sources.contains("") && sources.contains("2001:db8:25::22"));
    for g in [
        "google",
        "microsoft",
        "yahoo",
        "apple",
        "gmx",
        "netease",
        "proofpoint",
        "mimecast",
        "example-shop.co.uk",
        "university-example.ac.jp",
    ] {
        assert!(groups.contains(g), "{g} missing from {groups:?}");
    }
    // Throttling episodes make the deferral ratio differ between rows.
    let ratios: HashSet<u64> = truth
        .rows()
        .filter(|r| r.mx_group == "yahoo" && r.counts.attempts > 50)
        .map(|r| r.counts.deferred * 10 / r.counts.attempts)
        .collect();
    assert!(ratios.len() >= 2, "{ratios:?}");
}

#[test]
fn output_covers_every_line_shape() {
    let (out, _) = big();
    let text = String::from_utf8_lossy(out);
    for needle in [
        " mta-out1 postfix-ip1/smtp[",
        " mta-out2 postfix-ip4/qmgr[",
        " mta-out3 postfix/relay/smtp[",
        " mta-out3 postfix/smtp[",
        "/pickup[",
        "/error[",
        "relay=none",
        "orig_to=<",
        "conn_use=",
        "[2a00:1450:",
        "delivery temporarily suspended: connect to ",
        "(connect to ",
        ": host ",
        " refused to talk to me: ",
        "status=expired, returned to sender",
        "sender non-delivery notification: ",
        "TLS connection established to ",
        "CRON[",
        "dovecot: ",
        "/anvil[",
        "421-4.7.28",
        "[TSS04]",
        "451 4.7.650",
        "432 4.3.2",
        "Greylisted",
        "DT:SPM",
        "550 5.1.1",
    ] {
        assert!(text.contains(needle), "no line contains {needle:?}");
    }
}

#[test]
fn junk_comes_at_the_configured_rate_and_is_never_counted() {
    let (out, _) = big();
    let junk = lines(out).filter(|l| is_junk(l)).count();
    // 1000 per million of ~300k lines: 300, Poisson sd ~17.
    assert!((200..=420).contains(&junk), "{junk}");

    let cfg = GenConfig {
        lines: 20_000,
        junk_per_million: 50_000,
        ..GenConfig::default()
    };
    let (noisy, truth) = run(cfg.clone());
    let junk = lines(&noisy).filter(|l| is_junk(l)).count();
    assert!((700..=1400).contains(&junk), "{junk}");
    assert!(lines(&noisy).any(|l| l.is_empty()));
    assert!(lines(&noisy).any(|l| std::str::from_utf8(l).is_err()));
    assert_eq!(read_back(&noisy, 2026), truth_map(&truth));
    // Junk is drawn from its own stream: the traffic underneath is unchanged.
    let (clean, clean_truth) = run(GenConfig {
        junk_per_million: 0,
        ..cfg
    });
    assert!(!lines(&clean).any(is_junk));
    assert!(lines(&clean).eq(lines(&noisy).filter(|l| !is_junk(l))));
    assert_eq!(clean_truth, truth);
}

#[test]
fn memory_follows_messages_in_flight() {
    let mut g = Generator::new(GenConfig {
        lines: 200_000,
        ..GenConfig::default()
    });
    let mut buf = Vec::new();
    let mut peak = 0;
    while g.next_line(&mut buf) {
        buf.clear();
        peak = peak.max(g.messages_in_flight());
    }
    assert_eq!(g.messages_in_flight(), 0);
    // ~6000 messages/h, a few percent living up to the 4 h queue lifetime.
    assert!(peak < 3000, "{peak}");
}

#[test]
fn csv_has_the_agreed_header() {
    let (_, truth) = big();
    let mut v = Vec::new();
    truth.write_csv(&mut v).expect("csv");
    let s = String::from_utf8(v).expect("utf8");
    let mut it = s.lines();
    assert_eq!(
        it.next(),
        Some("hour,source_ip,mx_host,mx_group,attempts,delivered,deferred,bounced,expired")
    );
    let first = it.next().expect("a row");
    assert!(first.starts_with("2026-11-01T20:00:00Z,"), "{first}");
    assert_eq!(s.lines().count(), truth.len() + 1);
}

/// Throughput probe: `cargo test -p deferlog-gen --release -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    let n = std::env::var("DEFERLOG_GEN_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let start = std::time::Instant::now();
    let mut sink = std::io::sink();
    let truth = write_log(
        GenConfig {
            lines: n,
            ..GenConfig::default()
        },
        &mut sink,
    )
    .expect("sink");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} lines in {secs:.2} s: {:.0} lines/s, {} truth rows",
        n as f64 / secs,
        truth.len()
    );
}

#[test]
#[ignore]
fn dump_sample() {
    let (out, truth) = run(big_cfg());
    std::fs::write("/tmp/gen_big.log", &out).expect("w");
    let mut c = Vec::new();
    truth.write_csv(&mut c).expect("csv");
    std::fs::write("/tmp/gen_big.csv", &c).expect("w");
}
