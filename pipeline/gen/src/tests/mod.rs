//! Whole-run tests: determinism, ordering, the line budget, junk, and the
//! truth checked against an independent reading of the generated text. This
//! file holds the shared fixture and that independent reader.

mod junk;
mod output;
mod truth;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate};

use crate::config::DEFAULT_START_UNIX;
use crate::providers::group_of;
use crate::{Counts, GenConfig, Truth, fleet_config_toml, write_log};

pub(super) fn run(cfg: GenConfig) -> (Vec<u8>, Truth) {
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
pub(super) fn big() -> &'static (Vec<u8>, Truth) {
    static BIG: OnceLock<(Vec<u8>, Truth)> = OnceLock::new();
    BIG.get_or_init(|| run(big_cfg()))
}

pub(super) fn lines(out: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = out.strip_suffix(b"\n").unwrap_or(out);
    body.split(|&b| b == b'\n')
}

/// A syslog line taken apart; `None` for anything that does not start with a
/// stamp (empty and garbage junk, or invalid UTF-8).
pub(super) struct Parsed<'a> {
    pub(super) unix_us: i64,
    pub(super) host: &'a str,
    pub(super) program: &'a str,
    pub(super) msg: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub(super) fn parse(line: &[u8], year: i32) -> Option<Parsed<'_>> {
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
pub(super) fn read_back(out: &[u8], year: i32) -> BTreeMap<Key, Counts> {
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
                    rows.entry((hour, s.clone(), m.clone(), g.clone())).or_default().expired += 1;
                }
            }
        } else if service == "qmgr" && text == "removed" {
            state.remove(&(p.host.to_owned(), qid.to_owned()));
        }
    }
    rows
}

pub(super) fn truth_map(t: &Truth) -> BTreeMap<Key, Counts> {
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

pub(super) fn is_junk(line: &[u8]) -> bool {
    match std::str::from_utf8(line) {
        Err(_) => true,
        Ok("") => true,
        Ok(s) => match parse(line, 2026) {
            None => true,
            Some(p) => p.program.ends_with("/smtp") && s.contains(": to=<") && !s.contains(", status="),
        },
    }
}
