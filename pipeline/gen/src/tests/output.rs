//! The log as text: determinism, order, message lives, budget, shapes, memory.

use std::collections::HashSet;

use super::{big, is_junk, lines, parse, run};
use crate::{GenConfig, Generator};

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
