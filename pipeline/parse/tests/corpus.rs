//! Every delivery line of the real Postfix corpora, parsed, with its fields asserted.
//! Expected values are read off the lines by hand (see shared/corpus/SOURCES.md).

use deferlog_event::{Class, Origin, Outcome, OwnedSummary, RejectRow, RejectSink};
use deferlog_parse::{Handoffs, Normalizer, NormalizerConfig, RejectReason, SkipKind, SyslogFields};
use std::path::PathBuf;

#[path = "corpus/properties.rs"]
mod properties;

fn corpus(name: &str) -> Vec<u8> {
    let dir = std::env::var("DEFERLOG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus")));
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("corpus {name}: {e}"))
}

#[derive(Debug, Default)]
struct Rejects(Vec<(String, Vec<u8>, String)>);

impl RejectSink for Rejects {
    fn reject(&mut self, r: &RejectRow<'_>) {
        let mut origin = String::new();
        r.origin.write_origin(&mut origin).expect("origin");
        self.0.push((r.reason.to_owned(), r.raw.to_vec(), origin));
    }
}

/// `lines` through `n` as the lines of a file named `file`: its events and rejects.
fn normalize(n: &mut Normalizer, file: &'static str, lines: &[impl AsRef<str>]) -> (Vec<OwnedSummary>, Rejects) {
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    for (i, line) in lines.iter().enumerate() {
        let origin = Origin::Line {
            file,
            line: i as u64 + 1,
        };
        n.process_line(line.as_ref().as_bytes(), origin, &mut sink, &mut rejects);
    }
    (sink, rejects)
}

fn us(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .timestamp_micros()
}

/// The corpora's configuration: their test suites' receivers listen on loopback,
/// standing in for remote ones, so no address is a hand-off here (the default,
/// loopback, has tests of its own).
fn config(reference_us: i64) -> NormalizerConfig {
    let mut cfg = NormalizerConfig::new(reference_us);
    cfg.handoffs = Handoffs::new(Vec::new());
    cfg
}

fn normalizer() -> Normalizer {
    Normalizer::new(config(us("2026-12-31T12:00:00Z")))
}

/// (origin, outcome, class, mx_host, mx_ip, mx_group, recipient_domain, code, enhanced, attempt)
type Want<'a> = (
    &'a str,
    Outcome,
    Class,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Option<u16>,
    Option<&'a str>,
    Option<u32>,
);

fn check(got: &[OwnedSummary], want: &[Want<'_>]) {
    assert_eq!(
        got.len(),
        want.len(),
        "events: {:#?}",
        got.iter().map(|e| &e.origin).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(want) {
        let actual = (
            g.origin.as_str(),
            g.outcome,
            g.class,
            g.mx_host.as_deref(),
            g.mx_ip.as_deref(),
            g.mx_group.as_str(),
            g.recipient_domain.as_deref(),
            g.smtp_code,
            g.enhanced_status.as_deref(),
            g.attempt,
        );
        assert_eq!(actual, *w, "line {}", g.origin);
    }
}

#[test]
fn every_delivery_line_of_postfix_log() {
    let raw = corpus("postfix.log");
    let mut n = normalizer();
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    for (i, line) in raw.split_inclusive(|b| *b == b'\n').enumerate() {
        let origin = Origin::Line {
            file: "postfix.log",
            line: i as u64 + 1,
        };
        n.process_line(line, origin, &mut sink, &mut rejects);
    }
    use Class as C;
    use Outcome::*;
    #[rustfmt::skip]
    let want: &[Want<'_>] = &[
        ("postfix.log:7", Expired, C::Expired, None, None, "unknown", None, None, None, None),
        ("postfix.log:8", Expired, C::Expired, None, None, "unknown", None, None, None, None),
        ("postfix.log:10", Delivered, C::None, Some("mail.telia.com"), Some("81.236.60.210"), "telia.com", Some("telia.com"), Some(250), Some("2.0.0"), Some(1)),
        ("postfix.log:12", Deferred, C::Content, Some("mail.domain.com"), Some("1.1.1.1"), "domain.com", Some("domain.com"), Some(451), Some("4.0.0"), Some(1)),
        ("postfix.log:13", Bounced, C::Content, Some("mail.domain.com"), Some("1.1.1.1"), "domain.com", Some("domain.com"), Some(554), Some("5.0.0"), Some(2)),
        ("postfix.log:18", Delivered, C::None, Some("example.com"), Some("127.0.0.1"), "example.com", Some("example.net"), Some(250), Some("2.0.0"), Some(1)),
        ("postfix.log:22", Delivered, C::None, Some("10.2.2.85"), Some("10.2.2.85"), "continuity.delivery", Some("continuity.delivery"), Some(250), Some("2.0.0"), Some(1)),
        ("postfix.log:23", Delivered, C::None, Some("10.2.2.85"), Some("10.2.2.85"), "continuity.delivery", Some("continuity.delivery"), Some(250), Some("2.0.0"), Some(2)),
        ("postfix.log:32", Delivered, C::None, Some("127.0.0.2"), Some("127.0.0.2"), "unknown", None, Some(250), Some("2.0.0"), Some(1)),
    ];
    check(&sink, want);
    // Fields beyond the tuple, for a few lines.
    let telia = &sink[2];
    assert_eq!(
        (
            telia.mta_host.as_str(),
            telia.mta_instance.as_deref(),
            telia.queue_id.as_str()
        ),
        ("letterman", Some("postfix"), "5270320179")
    );
    assert_eq!(telia.delay_seconds, Some(2017.0));
    assert_eq!(telia.event_time_us, us("2026-02-24T16:18:40Z"));
    assert_eq!(
        telia.response.as_deref(),
        Some("250 2.0.0 6FVIjIMwUJwU66FVIjAEB0 mail accepted for delivery")
    );
    assert_eq!(sink[5].mta_instance.as_deref(), Some("postfix/relay"));
    assert_eq!(
        sink[3].response.as_deref().map(|r| r.starts_with("451 DT:SPM 163")),
        Some(true)
    );
    assert!(
        sink[3].event_time_us == us("2026-12-29T02:54:12Z"),
        "December lines read on Dec 31 are this year"
    );
    // The same mailbox hashes alike with and without angle brackets.
    assert_eq!(sink[6].recipient_hash, sink[7].recipient_hash);
    let qmgr_state = sink.iter().find(|e| e.queue_id == "3mfHGL1r9gzyQP").expect("line 32");
    assert_eq!(
        (qmgr_state.size_bytes, qmgr_state.message_id.as_deref()),
        (Some(813), Some("3mfHGL1r9gzyQP@mx15.example.net"))
    );

    // Line 24 is cut inside the recipient: one reject, kept with its (masked) bytes.
    assert_eq!(rejects.0.len(), 1);
    let (reason, bytes, origin) = &rejects.0[0];
    assert_eq!((reason.as_str(), origin.as_str()), ("truncated", "postfix.log:24"));
    assert!(bytes.ends_with(b"to=<*@con\n"), "{}", String::from_utf8_lossy(bytes));

    let st = n.stats();
    assert_eq!(st.lines, 33);
    assert_eq!((st.events, st.expiries), (9, 2));
    assert_eq!(st.rejected(RejectReason::Truncated), 1);
    assert_eq!(st.skipped(SkipKind::LocalDelivery), 1);
    assert_eq!(st.expiry_lines, 2);
    assert_eq!(st.lines, st.accounted_lines());
}

#[test]
fn every_delivery_line_of_the_message_only_corpus() {
    let raw = corpus("postfix_msgonly.log");
    let text = String::from_utf8(raw).expect("utf-8");
    let mut n = normalizer();
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    let time = us("2026-11-08T08:00:00Z");
    for (i, msg) in text.lines().enumerate() {
        // The sources dropped the syslog frame; delivery lines come from smtp, status
        // lines about the queue from qmgr.
        let program = if msg.contains(" to=") || msg.contains(": to=") {
            "postfix/smtp"
        } else {
            "postfix/qmgr"
        };
        let frame = SyslogFields {
            time_us: time,
            host: "mx",
            program,
            message: msg,
        };
        let name = format!("msgonly:{}", i + 1);
        n.process_message(&frame, msg.as_bytes(), Origin::Text(&name), &mut sink, &mut rejects);
    }
    use Class as C;
    use Outcome::*;
    #[rustfmt::skip]
    let want: &[Want<'_>] = &[
        ("msgonly:17", Deferred, C::Local, Some("mta7.am0.yahoodns.net"), Some("98.136.216.22"), "yahoo", Some("yahoo.com"), None, Some("4.4.2"), Some(1)),
        ("msgonly:22", Expired, C::Expired, None, None, "unknown", None, None, None, None),
        ("msgonly:23", Expired, C::Expired, None, None, "unknown", None, None, None, None),
        ("msgonly:25", Delivered, C::None, Some("127.0.0.1"), Some("127.0.0.1"), "example.com", Some("example.com"), Some(250), Some("2.0.0"), Some(1)),
        ("msgonly:26", Delivered, C::None, Some("mail1.example.net"), Some("10.74.103.11"), "example.net", Some("example.com"), Some(250), Some("2.0.0"), Some(1)),
        ("msgonly:35", Bounced, C::Content, Some("gmail-smtp-in.l.google.com"), Some("2607:f8b0:400e:c04::1b"), "google", Some("gmail.com"), Some(550), Some("5.7.1"), Some(1)),
        ("msgonly:43", Deferred, C::Greylist, Some("open.example.nl"), Some("10.49.140.10"), "example.nl", Some("lists.example.org"), Some(450), Some("4.2.0"), Some(1)),
        ("msgonly:54", Delivered, C::None, Some("mpafm.example.org"), Some("24.100.200.21"), "example.org", Some("example.org"), Some(250), Some("2.0.0"), Some(1)),
        ("msgonly:55", Bounced, C::Policy, Some("mail2.sender.com"), Some("66.100.32.07"), "sender.com", Some("recipient.com"), Some(550), Some("5.7.1"), Some(1)),
        ("msgonly:56", Deferred, C::Network, Some("dc-452452f6.bar.com"), Some("63.200.300.49"), "bar.com", Some("bar.com"), None, Some("4.4.1"), Some(1)),
        ("msgonly:68", Deferred, C::Local, Some("24.200.177.247"), Some("24.200.177.247"), "example.tv", Some("example.tv"), None, Some("4.4.1"), Some(1)),
        ("msgonly:70", Expired, C::Expired, None, None, "unknown", None, None, None, None),
        ("msgonly:73", Delivered, C::None, Some("localhost"), Some("127.0.0.1"), "example.com", Some("example.com"), Some(250), Some("2.0.0"), Some(1)),
    ];
    check(&sink, want);
    // Line 18 is an address verification probe, not an attempt; line 34 LMTP into a
    // mailbox server's socket, a local delivery.
    assert_eq!(n.stats().skipped(SkipKind::AddressVerification), 1);
    assert_eq!(n.stats().skipped(SkipKind::LocalDelivery), 1);
    assert!(
        rejects.0.is_empty(),
        "{:?}",
        rejects.0.iter().map(|r| &r.2).collect::<Vec<_>>()
    );
}

const EXPIRY_LOG: &str = "\
Nov  8 08:00:00 mta-out1 postfix-ip1/qmgr[1]: ABCDE12345: from=<b@news.example.com>, size=900, nrcpt=3 (queue active)
Nov  8 08:00:01 mta-out1 postfix-ip1/smtp[2]: ABCDE12345: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.1.27] said: 421-4.7.28 rate limited (in reply to end of DATA command))
Nov  8 08:00:02 mta-out1 postfix-ip1/smtp[2]: ABCDE12345: to=<b@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.204.72]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)
Nov  8 08:00:03 mta-out1 postfix-ip1/smtp[2]: ABCDE12345: to=<c@outlook.com>, relay=none, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (connect to outlook-com.olc.protection.outlook.com[52.101.8.1]:25: Connection timed out)
Nov  8 09:10:00 mta-out1 postfix-ip2/smtp[3]: ABCDE12345: to=<a@gmail.com>, relay=alt1.gmail-smtp-in.l.google.com[142.250.2.27]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host alt1.gmail-smtp-in.l.google.com[142.250.2.27] said: 421-4.7.28 rate limited (in reply to end of DATA command))
Nov  8 12:00:00 mta-out1 postfix-ip1/qmgr[1]: ABCDE12345: from=<b@news.example.com>, status=expired, returned to sender
Nov  8 12:00:00 mta-out1 postfix-ip1/qmgr[1]: ABCDE12345: removed
";

fn two_ip_config() -> NormalizerConfig {
    let mut cfg = config(us("2026-11-28T00:00:00Z"));
    cfg.egress = vec![
        deferlog_parse::Egress {
            host: Some("mta-out1".into()),
            instance: Some("postfix-ip1".into()),
            ip: "198.51.100.11".into(),
        },
        deferlog_parse::Egress {
            host: Some("mta-out1".into()),
            instance: Some("postfix-ip2".into()),
            ip: "198.51.100.12".into(),
        },
    ];
    cfg
}

#[test]
fn an_expiry_goes_to_the_mx_and_ip_of_each_pending_recipients_last_attempt() {
    let mut n = Normalizer::new(two_ip_config());
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    for line in EXPIRY_LOG.lines() {
        n.process_line(line.as_bytes(), Origin::Text("t"), &mut sink, &mut rejects);
    }
    let expired: Vec<_> = sink.iter().filter(|e| e.outcome == Outcome::Expired).collect();
    let got: Vec<_> = expired
        .iter()
        .map(|e| {
            (
                e.source_ip.as_deref(),
                e.mx_host.as_deref(),
                e.mx_group.as_str(),
                e.recipient_domain.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("198.51.100.12"),
                Some("alt1.gmail-smtp-in.l.google.com"),
                "google",
                Some("gmail.com")
            ),
            (
                Some("198.51.100.11"),
                Some("outlook-com.olc.protection.outlook.com"),
                "microsoft",
                Some("outlook.com")
            ),
        ]
    );
    assert!(
        expired
            .iter()
            .all(|e| e.event_time_us == us("2026-11-08T12:00:00Z") && e.size_bytes == Some(900))
    );
    assert_eq!(sink.iter().filter(|e| e.outcome != Outcome::Expired).count(), 4);
    assert_eq!(n.stats().state_size, 0, "`removed` drops the queue id");
}

#[test]
fn attempts_without_a_sending_ip_are_counted_by_host_and_instance() {
    // The map knows postfix-ip1 and postfix-ip2 on mta-out1, nothing else.
    let mut n = Normalizer::new(two_ip_config());
    let mut lines: Vec<&str> = EXPIRY_LOG.lines().collect();
    lines.extend([
        "Nov  8 13:00:00 mta-out1 postfix-ip9/smtp[4]: FFFFF11111: to=<d@gmail.com>, relay=alt1.gmail-smtp-in.l.google.com[142.250.2.27]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host alt1.gmail-smtp-in.l.google.com[142.250.2.27] said: 421-4.7.28 rate limited (in reply to end of DATA command))",
        "Nov  8 14:00:00 mta-out1 postfix-ip9/smtp[4]: FFFFF11111: to=<d@gmail.com>, relay=alt1.gmail-smtp-in.l.google.com[142.250.2.27]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host alt1.gmail-smtp-in.l.google.com[142.250.2.27] said: 421-4.7.28 rate limited (in reply to end of DATA command))",
        // Its expiry goes to the last attempt's (missing) IP.
        "Nov  8 18:00:00 mta-out1 postfix-ip9/qmgr[1]: FFFFF11111: from=<b@news.example.com>, status=expired, returned to sender",
        "Nov  8 13:00:00 mta-out7 postfix/smtp[9]: AAAAA22222: to=<e@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.204.72]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok dirdel)",
        // An expiry is not an attempt: the attempts before it are what lack the IP.
        "Nov  8 18:00:00 mta-out7 postfix/qmgr[1]: BBBBB33333: from=<b@news.example.com>, status=expired, returned to sender",
        // In a shipper's envelope, counted once.
        r#"{"message":"Nov  8 13:00:01 mta-out7 postfix/smtp[9]: CCCCC44444: to=<f@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.204.72]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok dirdel)","host":"shipper"}"#,
        // KumoMTA names its egress source; without source_address the map decides.
        r#"{"type":"Delivery","id":"2e98076abbbc11ed940250ebf67f93bd","sender":"news@sender.example","recipient":"b@outlook.com","queue":"outlook.com","site":"","size":900,"response":{"code":250,"enhanced_code":{"class":2,"subject":6,"detail":0},"content":"Queued mail for delivery","command":"."},"peer_address":{"name":"outlook-com.olc.protection.outlook.com.","addr":"52.101.0.1"},"timestamp":1794268805,"created":1794268800,"num_attempts":0,"egress_source":"ip-2"}"#,
    ]);
    let (mut sink, mut rejects) = normalize(&mut n, "t", &lines);
    // A record whose frame the shipper gave apart.
    let frame = SyslogFields {
        time_us: us("2026-11-08T13:00:02Z"),
        host: "mta-out8",
        program: "postfix-ip1/smtp",
        message: "DDDDD55555: to=<g@yahoo.com>, relay=mta5.am0.yahoodns.net[67.195.204.72]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok dirdel)",
    };
    n.process_message(
        &frame,
        frame.message.as_bytes(),
        Origin::Text("m"),
        &mut sink,
        &mut rejects,
    );
    let got = n.stats().no_source_ip;
    let named: Vec<_> = got
        .sources
        .iter()
        .map(|s| (s.host.as_str(), s.instance.as_str(), s.attempts))
        .collect();
    assert_eq!(
        named,
        [
            ("mta-out1", "postfix-ip9", 2),
            ("mta-out7", "postfix", 2),
            ("unknown", "ip-2", 1),
            ("mta-out8", "postfix-ip1", 1)
        ]
    );
    assert_eq!(got.others, 0);
    // As the events themselves say: attempts without an IP.
    let without = sink
        .iter()
        .filter(|e| e.source_ip.is_none() && e.outcome.is_attempt())
        .count();
    assert_eq!(without as u64, got.attempts());
    assert_eq!(
        sink.iter().filter(|e| e.source_ip.is_some()).count(),
        6,
        "EXPIRY_LOG's events"
    );
}

#[test]
fn a_restored_snapshot_continues_exactly_where_the_state_was() {
    let lines: Vec<&str> = EXPIRY_LOG.lines().collect();
    let run = |n: &mut Normalizer, lines: &[&str], sink: &mut Vec<OwnedSummary>| {
        for line in lines {
            n.process_line(line.as_bytes(), Origin::Text("t"), sink, &mut Rejects::default());
        }
    };
    let mut whole = Normalizer::new(two_ip_config());
    let mut want = Vec::new();
    run(&mut whole, &lines, &mut want);

    // Stop before the expiry: it must still find each recipient's last attempt.
    let mut first = Normalizer::new(two_ip_config());
    let mut got = Vec::new();
    run(&mut first, &lines[..5], &mut got);
    let at_rest = serde_json::to_string(&first.snapshot()).expect("serialize");
    drop(first);
    let mut second = Normalizer::new(two_ip_config());
    second.restore(serde_json::from_str(&at_rest).expect("deserialize"));
    run(&mut second, &lines[5..], &mut got);

    assert_eq!(got.iter().filter(|e| e.outcome == Outcome::Expired).count(), 2);
    assert_eq!(got, want);
    // Attempts without a sending IP are counted per process, not restored.
    let counted = |n: &Normalizer| deferlog_parse::Stats {
        no_source_ip: Default::default(),
        ..n.stats()
    };
    assert_eq!(counted(&second), counted(&whole));
}

#[test]
fn hostile_input_never_panics_and_every_line_is_accounted_for() {
    let mut n = normalizer();
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    let lines: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\xff\xfe\xfd\n".to_vec(),
        b"Nov  8 08:14:01".to_vec(),
        b"Nov  8 08:14:01 h postfix/smtp[1]: ".to_vec(),
        b"Nov  8 08:14:01 h postfix/smtp[1]: ABCDE: to=".to_vec(),
        b"Nov  8 08:14:01 h postfix/smtp[1]: ABCDE: to=<".to_vec(),
        b"Nov  8 08:14:01 h postfix/smtp[1]: ABCDE: to=<a@b>, relay=x[, status=sent (ok)".to_vec(),
        b"Nov  8 08:14:01 h postfix/smtp[1]: ABCDE: to=<a@b>, relay=, status=sent (ok)".to_vec(),
        b"Nov  8 08:14:01 h postfix/smtp[1]: ABCDE: to=<a@b>, relay=none, status= (ok)".to_vec(),
        b"Nov  8 08:14:01 h postfix/smtp[1]: ABCDE: to=<a@\xffb>, relay=x[1.2.3.4]:25, delay=x, dsn=9, status=deferred (\xff\xfe)".to_vec(),
        b"Nov  8 08:14:01 h postfix/qmgr[1]: ABCDE: from=<, status=expired, returned to sender".to_vec(),
        b"Nov 99 08:14:01 h postfix/smtp[1]: ABCDE: to=<a@b>, relay=none, status=sent (ok)".to_vec(),
        "Nov  8 08:14:01 h postfix/smtp[1]: ÄÖÜ: to=<é@ü>, relay=ü[::1]:25, status=sent (ü)".as_bytes().to_vec(),
    ];
    for l in &lines {
        n.process_line(l, Origin::Text("fuzz"), &mut sink, &mut rejects);
    }
    let st = n.stats();
    assert_eq!(st.lines, lines.len() as u64);
    assert_eq!(st.lines, st.accounted_lines());
    assert!(st.rejected(RejectReason::BadTimestamp) >= 1);
    assert!(st.rejected(RejectReason::Truncated) >= 2);
}

/// Exim's own log names no host: its lines are `exim-host`'s.
fn exim_normalizer(reference_us: i64) -> Normalizer {
    let mut cfg = config(reference_us);
    cfg.default_host = "exim-host".into();
    Normalizer::new(cfg)
}

#[test]
fn every_delivery_line_of_the_exim_corpus() {
    let raw = corpus("exim_mainlog.log");
    let mut n = exim_normalizer(us("2026-12-31T12:00:00Z"));
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    for (i, line) in raw.split_inclusive(|b| *b == b'\n').enumerate() {
        let origin = Origin::Line {
            file: "exim",
            line: i as u64 + 1,
        };
        n.process_line(line, origin, &mut sink, &mut rejects);
    }
    use Class as C;
    use Outcome::*;
    let lo = Some("127.0.0.1");
    // Test-suite lines are munged (SOURCES.md): hosts V4NET.0.0.x, ports PORT_S.
    #[rustfmt::skip]
    let want: &[Want<'_>] = &[
        ("exim:4", Delivered, C::None, lo, lo, "domain.com", Some("domain.com"), Some(250), None, Some(1)),
        ("exim:6", Delivered, C::None, lo, lo, "domain.com", Some("domain.com"), Some(250), None, Some(1)),
        ("exim:12", Deferred, C::Other, lo, lo, "domain.com", Some("domain.com"), Some(450), None, Some(1)),
        ("exim:15", Bounced, C::Other, lo, lo, "domain.com", Some("domain.com"), Some(550), None, Some(2)),
        ("exim:21", Deferred, C::Other, lo, lo, "x.y", Some("x.y"), Some(450), None, Some(1)),
        ("exim:24", Deferred, C::Network, lo, lo, "x.y", Some("x.y"), None, None, Some(2)),
        ("exim:25", Expired, C::Expired, lo, lo, "x.y", Some("x.y"), None, None, None),
        ("exim:33", Delivered, C::None, lo, lo, "remote", Some("remote"), Some(250), None, Some(1)),
        ("exim:34", Delivered, C::None, lo, lo, "remote", Some("remote"), Some(250), None, Some(1)),
        ("exim:42", Deferred, C::Network, Some("v4net.0.0.1"), Some("V4NET.0.0.1"), "unknown.ex", Some("unknown.ex"), None, None, Some(1)),
        ("exim:44", Deferred, C::Network, Some("v4net.0.0.0"), Some("V4NET.0.0.0"), "known.ex", Some("known.ex"), None, None, Some(1)),
        ("exim:45", Expired, C::Expired, Some("v4net.0.0.0"), Some("V4NET.0.0.0"), "known.ex", Some("known.ex"), None, None, None),
        ("exim:52", Delivered, C::None, Some("gmail-smtp-in.l.google.com"), Some("74.125.200.27"), "google", Some("gmail.com"), Some(250), Some("2.0.0"), Some(1)),
        ("exim:54", Deferred, C::Local, None, None, "yahoo", Some("yahoo.com"), None, None, Some(1)),
        ("exim:56", Bounced, C::Recipient, None, None, "108", Some("108"), None, None, Some(1)),
    ];
    check(&sink, want);
    // `I=[ip]:port` is the sending IP; the transport is the instance; the host of a
    // file without syslog framing is the configured one.
    let first = &sink[0];
    assert_eq!(
        (
            first.source_ip.as_deref(),
            first.mta_instance.as_deref(),
            first.mta_host.as_str()
        ),
        (Some("127.0.0.1"), Some("smtp"), "exim-host")
    );
    assert_eq!(
        (first.queue_id.as_str(), first.event_time_us),
        ("10HmaX-000000005vi-0000", us("1999-03-02T09:44:33Z"))
    );
    // Lines 39, 40 and 55 are a local transport's (a mailbox on this host), and 46 the
    // expiry of 39's recipient: none of them outbound.
    let gmail = &sink[12];
    assert_eq!(gmail.queue_id, "1ajLoq-0001wC-Pk");
    assert_eq!(
        gmail.response.as_deref(),
        Some("250 2.0.0 OK 1458889573 vy4si17489309pab.124 - gsmtp")
    );
    assert_eq!(gmail.mta_instance.as_deref(), Some("dkim_remote_smtp"));
    // The two `->`/`=>` recipients of one delivery are separate recipients.
    assert_ne!(sink[7].recipient_hash, sink[8].recipient_hash);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let st = n.stats();
    assert_eq!(st.lines, 58);
    assert_eq!((st.events, st.expiries), (15, 2));
    assert_eq!(st.skipped(SkipKind::LocalDelivery), 6);
    assert_eq!(st.lines, st.accounted_lines());
}

#[test]
fn an_exim_failed_connection_goes_to_every_address_it_failed_and_local_transports_are_skipped() {
    let mut n = exim_normalizer(us("2026-11-20T00:00:00Z"));
    let defer = |rcpt: &str, rest: &str| {
        format!("2026-11-08 10:00:00 1ajLoq-0001wC-Pk == {rcpt} R=dnslookup T=remote_smtp {rest}")
    };
    let lines = [
        "2026-11-08 10:00:00 1ajLoq-0001wC-Pk H=mx.example.com [192.0.2.50] Connection refused".to_owned(),
        // One `==` per address of that delivery, each repeating the reason.
        defer("x@example.com", "defer (111): Connection refused"),
        defer("y@example.com", "defer (111): Connection refused"),
        defer("z@example.com", "defer (111): Connection refused"),
        // The next delivery failed otherwise: not at that host.
        defer("w@unknown.example", "defer (-32): host lookup did not complete"),
        defer("v@example.com", "defer (111): Connection refused"),
        // A mailbox on this host, then its recipient's expiry: nothing outbound.
        "2026-11-08 10:00:02 1ajLoq-0001wD-Pk == c@test.ex R=localuser T=local_delivery defer (-22): mailbox is full (MTA-imposed quota exceeded while writing to /var/mail/c)".to_owned(),
        "2026-11-08 10:30:02 1ajLoq-0001wD-Pk == c@test.ex R=localuser T=local_delivery defer (-52): Retry time not yet reached".to_owned(),
        "2026-11-12 10:00:02 1ajLoq-0001wD-Pk ** c@test.ex: retry timeout exceeded".to_owned(),
        "2026-11-08 10:00:03 1ajLoq-0001wE-Pk == list@lists.test.ex R=mailman_router T=mailman_transport defer (-1): Child process of mailman_transport transport returned 75 (could mean temporary error) from command: /usr/lib/mailman/mail/mailman".to_owned(),
    ];
    let (sink, rejects) = normalize(&mut n, "exim-batch", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| (e.recipient_domain.as_deref(), e.mx_host.as_deref(), e.mx_ip.as_deref()))
        .collect();
    let mx = (Some("mx.example.com"), Some("192.0.2.50"));
    assert_eq!(
        got,
        [
            (Some("example.com"), mx.0, mx.1),
            (Some("example.com"), mx.0, mx.1),
            (Some("example.com"), mx.0, mx.1),
            (Some("unknown.example"), None, None),
            (Some("example.com"), None, None),
        ]
    );
    let st = n.stats();
    assert_eq!((st.events, st.expiries), (5, 0));
    assert_eq!(st.skipped(SkipKind::LocalDelivery), 4);
}

#[test]
fn an_exim_expiry_after_its_own_holds_goes_where_the_last_real_try_went() {
    let mut n = exim_normalizer(us("2026-11-20T00:00:00Z"));
    let lines = [
        "2026-11-08 10:00:00 1ajLoq-0001wC-Pk == b1@yahoo.com R=dnslookup T=remote_smtp defer (-44) H=mta5.am0.yahoodns.net [67.195.204.72] I=[198.51.100.12]:40002: SMTP error from remote mail server after RCPT TO:<b1@yahoo.com>: 421 4.7.0 [TSS04] Messages from 198.51.100.12 temporarily deferred due to unexpected volume or user complaints",
        "2026-11-08 10:30:00 1ajLoq-0001wC-Pk == b1@yahoo.com routing defer (-51): retry time not reached",
        "2026-11-08 11:00:00 1ajLoq-0001wC-Pk == b1@yahoo.com R=dnslookup T=remote_smtp defer (-53): retry time not reached for any host",
        "2026-11-12 10:00:00 1ajLoq-0001wC-Pk ** b1@yahoo.com: retry timeout exceeded",
        // Held from the start, never tried: the expiry has no MX.
        "2026-11-08 10:00:00 1ajLoq-0001wD-Pk == c1@yahoo.com routing defer (-51): retry time not reached",
        "2026-11-12 10:00:00 1ajLoq-0001wD-Pk ** c1@yahoo.com: retry timeout exceeded",
    ];
    let (sink, rejects) = normalize(&mut n, "exim-holds", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| {
            (
                e.outcome,
                e.class,
                e.source_ip.as_deref(),
                e.mx_host.as_deref(),
                e.attempt,
            )
        })
        .collect();
    let (ip, yahoo) = (Some("198.51.100.12"), Some("mta5.am0.yahoodns.net"));
    assert_eq!(
        got,
        [
            (Outcome::Deferred, Class::Reputation, ip, yahoo, Some(1)),
            (Outcome::Deferred, Class::Local, None, None, Some(2)),
            (Outcome::Deferred, Class::Local, None, None, Some(3)),
            (Outcome::Expired, Class::Expired, ip, yahoo, None),
            (Outcome::Deferred, Class::Local, None, None, Some(1)),
            (Outcome::Expired, Class::Expired, None, None, None),
        ]
    );
}

#[test]
fn exim_cutoffs_are_expiries_and_hosts_are_found_in_every_deferral_shape() {
    let mut n = exim_normalizer(us("2026-11-20T00:00:00Z"));
    let lines = [
        "2026-11-08 10:00:00 1ajLoq-0001wC-Pk == xa@outlook.com R=dnslookup T=remote_smtp defer (-44) H=outlook-com.olc.protection.outlook.com [52.101.2.2]:25 I=[198.51.100.9]:41236: SMTP error from remote mail server after RCPT TO:<xa@outlook.com>: 451 4.7.650 The mail server [198.51.100.9] has been temporarily rate limited due to IP reputation.",
        "2026-11-12 10:00:00 1ajLoq-0001wC-Pk ** xa@outlook.com R=dnslookup T=remote_smtp: retry time not reached for any host after a long failure period",
        "2026-11-08 11:00:02 1ajLoq-0001wD-Pk == x2@gmail.com R=dnslookup T=remote_smtp defer (110): Connection timed out H=gmail-smtp-in.l.google.com [142.250.1.28]:25 I=[198.51.100.7]:41236: SMTP timeout after initial connection",
        "2026-11-12 11:00:02 1ajLoq-0001wD-Pk ** x2@gmail.com R=dnslookup T=remote_smtp: all hosts have been failing for a long time and were last tried after this message arrived",
        "2026-11-08 12:00:00 1ajLoq-0001wE-Pk >> cut@example.org R=dnslookup T=remote_smtp H=mx.example.org [192.0.2.9] I=[198.51.100.8] C=\"250 OK id=1\"",
        "2026-11-08 07:41:17 1R7DXr-0006vV-Pa == zz@host117.example.com R=dnslookup T=remote_smtp defer (-18): Remote host host117.enginereliable.com [205.204.86.119] closed connection in response to end of data",
    ];
    let (sink, rejects) = normalize(&mut n, "exim", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| {
            (
                e.outcome,
                e.class,
                e.source_ip.as_deref(),
                e.mx_host.as_deref(),
                e.mx_group.as_str(),
            )
        })
        .collect();
    let outlook = Some("outlook-com.olc.protection.outlook.com");
    let gmail = Some("gmail-smtp-in.l.google.com");
    assert_eq!(
        got,
        [
            (
                Outcome::Deferred,
                Class::Reputation,
                Some("198.51.100.9"),
                outlook,
                "microsoft"
            ),
            // The cutoff passed for every host: the recipient's expiry, where it last went.
            (
                Outcome::Expired,
                Class::Expired,
                Some("198.51.100.9"),
                outlook,
                "microsoft"
            ),
            (Outcome::Deferred, Class::Network, Some("198.51.100.7"), gmail, "google"),
            (Outcome::Expired, Class::Expired, Some("198.51.100.7"), gmail, "google"),
            (
                Outcome::Delivered,
                Class::None,
                Some("198.51.100.8"),
                Some("mx.example.org"),
                "example.org"
            ),
            (
                Outcome::Deferred,
                Class::Network,
                None,
                Some("host117.enginereliable.com"),
                "enginereliable.com"
            ),
        ]
    );
    let st = n.stats();
    assert_eq!((st.events, st.expiries), (6, 2));
}

#[test]
fn exim_time_in_queue_counts_from_arrival_without_qt() {
    let mut n = exim_normalizer(us("2026-11-20T00:00:00Z"));
    let defer = |at: &str, id: &str| {
        format!(
            "{at} {id} == x@gmail.com R=dnslookup T=remote_smtp defer (-44) H=gmail-smtp-in.l.google.com [142.250.1.28]:25: \
             SMTP error from remote mail server after RCPT TO:<x@gmail.com>: 451 4.7.28 try later"
        )
    };
    let arrival =
        |at: &str, id: &str| format!("{at} {id} <= news@example.com H=app.example.com [192.0.2.1] P=esmtp S=2048");
    let lines = [
        arrival("2026-11-08 09:30:00", "1ajLoq-0001wC-Pk"),
        defer("2026-11-08 10:00:00", "1ajLoq-0001wC-Pk"),
        "2026-11-12 10:00:00 1ajLoq-0001wC-Pk ** x@gmail.com R=dnslookup T=remote_smtp: retry timeout exceeded".into(),
        // `QT=` (`+queue_time`) is Exim's own figure, and wins.
        arrival("2026-11-08 11:00:00", "1ajLoq-0001wD-Pk"),
        "2026-11-08 11:02:00 1ajLoq-0001wD-Pk => y@gmail.com R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com [142.250.1.28] QT=2m5s C=\"250 2.0.0 OK\"".into(),
        "2026-11-08 11:02:00 1ajLoq-0001wD-Pk Completed".into(),
        // After `Completed`, and before its own `<=`: no arrival to count from.
        defer("2026-11-08 12:00:00", "1ajLoq-0001wD-Pk"),
        arrival("2026-11-08 13:00:00", "1ajLoq-0001wE-Pk"),
        defer("2026-11-08 12:59:00", "1ajLoq-0001wE-Pk"),
    ];
    let (sink, rejects) = normalize(&mut n, "exim", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink.iter().map(|e| (e.outcome, e.delay_seconds)).collect();
    assert_eq!(
        got,
        [
            (Outcome::Deferred, Some(1800.0)),
            (Outcome::Expired, Some(4.0 * 86_400.0 + 1800.0)),
            (Outcome::Delivered, Some(125.0)),
            (Outcome::Deferred, None),
            (Outcome::Deferred, None),
        ]
    );
}

#[test]
fn exim_via_syslog_takes_the_host_from_the_frame_and_the_time_from_exim() {
    let mut n = normalizer();
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    // A pastebin line (https://pastebin.com/xe52Ud13, via syslog without Exim's stamp)
    // and the corpus' Gmail line as Exim sends it to syslog by default.
    for line in [
        "Feb 19 22:41:21 ns1 exim[47995]: 1PqsgA-000CU6-GO => snorov@gmail.com R=google_routers T=google_transport H=googlemail-smtp.l.google.com [74.125.39.16] X=TLSv1:RC4-SHA:128 C=\"250 2.0.0 OK 1298144479 e6sm1688320fav.8\"",
        "Mar 25 15:06:10 host2 exim[1]: 2016-03-25 15:06:10 1ajLoq-0001wC-Pk => recipient@gmail.com R=dkim_lookuphost T=dkim_remote_smtp H=gmail-smtp-in.l.google.com [74.125.200.27] C=\"250 2.0.0 OK\"",
        // The same host's syslog carries other programs' lines: counted, not read.
        "Mar 25 15:07:01 host2 CRON[2211]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    ] {
        n.process_line(line.as_bytes(), Origin::Text("t"), &mut sink, &mut rejects);
    }
    assert_eq!(n.stats().skipped(SkipKind::OtherProgram), 1);
    assert_eq!(sink.len(), 2);
    assert_eq!(
        (sink[0].mta_host.as_str(), sink[0].mx_group.as_str()),
        ("ns1", "google")
    );
    assert_eq!(sink[0].event_time_us, us("2026-02-19T22:41:21Z"));
    assert_eq!(sink[1].mta_host, "host2");
    assert_eq!(
        sink[1].event_time_us,
        us("2016-03-25T15:06:10Z"),
        "Exim's stamp has the year"
    );
}

#[test]
fn kumomta_records_reception_is_skipped_attempts_and_expiries_are_counted() {
    let mut cfg = config(us("2026-12-31T12:00:00Z"));
    cfg.default_host = "kumo-1".into();
    cfg.egress = vec![deferlog_parse::Egress {
        host: Some("kumo-1".into()),
        instance: Some("ip-2".into()),
        ip: "192.0.2.2".into(),
    }];
    let mut n = Normalizer::new(cfg);
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    // The corpus holds only Reception records (SOURCES.md).
    for line in corpus("kumomta.jsonl").split_inclusive(|b| *b == b'\n') {
        n.process_line(line, Origin::Text("corpus"), &mut sink, &mut rejects);
    }
    assert!(sink.is_empty());
    assert_eq!(n.stats().skipped(SkipKind::NotAttempt), 2);
    // Records in the shape docs/reference/log_record.md documents (KumoMTA's own
    // docs); the values are ours. KumoMTA logs an attempt before counting it, so
    // `num_attempts` 1 is the second try, 0 the first.
    let records = [
        r#"{"type":"TransientFailure","id":"1d98076abbbc11ed940250ebf67f93bd","sender":"news@sender.example","recipient":"a@gmail.com","queue":"gmail.com","site":"ip-1->(alt1|alt2)?.gmail-smtp-in.l.google.com.","size":1047,"response":{"code":421,"enhanced_code":{"class":4,"subject":7,"detail":28},"content":"Our system has detected an unusual rate of unsolicited mail","command":"."},"peer_address":{"name":"gmail-smtp-in.l.google.com.","addr":"142.250.102.27"},"timestamp":1794268800,"created":1794268740,"num_attempts":1,"egress_pool":"pool-1","egress_source":"ip-1","source_address":{"address":"192.0.2.1:40000","protocol":"tcp"}}"#,
        r#"{"type":"Expiration","id":"1d98076abbbc11ed940250ebf67f93bd","sender":"news@sender.example","recipient":"a@gmail.com","queue":"gmail.com","site":"","size":1047,"response":{"code":551,"enhanced_code":{"class":5,"subject":4,"detail":7},"content":"Next delivery time would be at ... which exceeds the expiry time","command":null},"peer_address":null,"timestamp":1794283200,"created":1794268740,"num_attempts":3,"egress_pool":"pool-1","egress_source":"ip-1"}"#,
        r#"{"type":"Delivery","id":"2e98076abbbc11ed940250ebf67f93bd","sender":"news@sender.example","recipient":"b@outlook.com","queue":"outlook.com","site":"","size":900,"response":{"code":250,"enhanced_code":{"class":2,"subject":6,"detail":0},"content":"Queued mail for delivery","command":"."},"peer_address":{"name":"outlook-com.olc.protection.outlook.com.","addr":"52.101.0.1"},"timestamp":1794268805,"created":1794268800,"num_attempts":0,"egress_source":"ip-2"}"#,
        r#"{"type":"Bounce","id":"3e98076abbbc11ed940250ebf67f93bd","sender":"news@sender.example","recipient":"c@yahoo.com","queue":"yahoo.com","site":"","size":900,"response":{"code":554,"enhanced_code":{"class":5,"subject":7,"detail":9},"content":"Message not accepted for policy reasons","command":"."},"peer_address":{"name":"mta5.am0.yahoodns.net.","addr":"67.195.204.72"},"timestamp":"2026-11-10T00:00:10Z","num_attempts":0}"#,
        r#"{"type":"AdminBounce","id":"4e98076abbbc11ed940250ebf67f93bd","recipient":"d@example.org","timestamp":1794268811}"#,
        // No connection: the site says where it was for, a domain hosted at Google.
        r#"{"type":"TransientFailure","id":"7e98076abbbc11ed940250ebf67f93bd","sender":"news@sender.example","recipient":"e@example.net","queue":"example.net","site":"ip-1->(alt1|alt2)?.aspmx.l.google.com.","size":900,"response":{"code":400,"enhanced_code":null,"content":"Connection timed out","command":null},"peer_address":null,"timestamp":1794268813,"num_attempts":0,"egress_source":"ip-1"}"#,
        r#"{"type":"Delivery","id":"5e9","timestamp":1794268812"#,
        r#"{"type":"Delivery","id":"6e9","timestamp":1794268812}"#,
    ];
    for (i, r) in records.iter().enumerate() {
        let origin = Origin::Line {
            file: "kumo",
            line: i as u64 + 1,
        };
        n.process_line(r.as_bytes(), origin, &mut sink, &mut rejects);
    }
    use Class as C;
    use Outcome::*;
    let g = Some("gmail-smtp-in.l.google.com");
    #[rustfmt::skip]
    let want: &[Want<'_>] = &[
        ("kumo:1", Deferred, C::RateLimit, g, Some("142.250.102.27"), "google", Some("gmail.com"), Some(421), Some("4.7.28"), Some(2)),
        ("kumo:2", Expired, C::Expired, g, Some("142.250.102.27"), "google", Some("gmail.com"), None, None, None),
        ("kumo:3", Delivered, C::None, Some("outlook-com.olc.protection.outlook.com"), Some("52.101.0.1"), "microsoft", Some("outlook.com"), Some(250), Some("2.6.0"), Some(1)),
        ("kumo:4", Bounced, C::Policy, Some("mta5.am0.yahoodns.net"), Some("67.195.204.72"), "yahoo", Some("yahoo.com"), Some(554), Some("5.7.9"), Some(1)),
        ("kumo:5", Bounced, C::Local, None, None, "example.org", Some("example.org"), None, None, Some(1)),
        ("kumo:6", Deferred, C::Network, None, None, "google", Some("example.net"), Some(400), None, Some(1)),
    ];
    check(&sink, want);
    // The sending IP: `source_address`, else the egress map with `egress_source`.
    assert_eq!(sink[0].source_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        sink[1].source_ip.as_deref(),
        Some("192.0.2.1"),
        "the expiry goes where the last attempt went"
    );
    assert_eq!(
        (sink[2].source_ip.as_deref(), sink[2].mta_instance.as_deref()),
        (Some("192.0.2.2"), Some("ip-2"))
    );
    assert_eq!(
        (sink[0].mta_host.as_str(), sink[0].delay_seconds),
        ("kumo-1", Some(60.0))
    );
    assert_eq!(sink[3].event_time_us, us("2026-11-10T00:00:10Z"));
    let reasons: Vec<&str> = rejects.0.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["bad_json", "bad_record"]);
    let st = n.stats();
    assert_eq!(st.lines, st.accounted_lines());
    assert_eq!(
        st.state_size, 1,
        "finished recipients leave no state; the one still deferred (kumo:6) does"
    );
}

#[test]
fn powermta_accounting_csv_is_read_by_its_header() {
    let mut cfg = config(us("2026-12-31T12:00:00Z"));
    cfg.default_host = "pmta-1".into();
    let mut n = Normalizer::new(cfg);
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    let mut feed = |n: &mut Normalizer, file: &'static str, text: &str| {
        for (i, line) in text.lines().enumerate() {
            let origin = Origin::Line {
                file,
                line: i as u64 + 1,
            };
            n.process_line(line.as_bytes(), origin, &mut sink, &mut rejects);
        }
    };
    // The example file of the PowerMTA User's Guide, 11.2.9 (SOURCES.md lists the guide).
    feed(
        &mut n,
        "guide",
        "type,timeLogged,orig,rcpt,dlvSourceIp,bounceCat\n\
         d,1178807903,orig@port25.com,user1@domain.com,10.0.0.1,\n\
         d,1178807905,orig@port25.com,user2@domain.com,10.0.0.1,\n\
         b,1178807915,orig@port25.com,user3@domain.com,,policy-related\n\
         b,1178807915,orig@port25.com,user4@domain.com,,policy-related\n",
    );
    // Another column order, quoted fields with commas and quotes, every record type;
    // values are ours, field names those of the documented lists.
    feed(
        &mut n,
        "acct",
        "type,rcpt,timeLogged,timeQueued,orig,dsnStatus,dsnDiag,dsnMta,dlvSourceIp,dlvDestinationIp,vmta,jobId,dlvSize\n\
         t,a@gmail.com,2026-11-10 08:00:00+0000,2026-11-10 07:59:00+0000,news@sender.example,4.7.28 (other),\"smtp;421-4.7.28 [192.0.2.1] Our system has detected an unusual rate, of \"\"unsolicited\"\" mail\",dns;gmail-smtp-in.l.google.com (142.250.102.27),192.0.2.1,142.250.102.27,vmta-1,job-9,5120\n\
         d,b@yahoo.com,1794297660,1794297600,news@sender.example,2.0.0 (success),smtp;250 ok dirdel,dns;mta5.am0.yahoodns.net (67.195.204.72),192.0.2.1,67.195.204.72,vmta-1,job-9,5120\n\
         b,c@outlook.com,2026-11-10 08:02:00+0000,2026-11-10 04:00:00+0000,news@sender.example,4.4.7 (delivery time expired),smtp;message expired,,192.0.2.2,,vmta-2,job-9,5120\n\
         tq,,2026-11-10 08:03:00+0000,,news@sender.example,4.4.1 (no answer from host),\"smtp;connect to mx.example.org: Connection timed out\",dns;mx.example.org,192.0.2.2,,vmta-2,job-9,\n\
         rb,d@example.org,2026-11-10 08:04:00+0000,,news@sender.example,5.1.1 (bad destination mailbox address),smtp;550 5.1.1 no such user,,,,vmta-2,job-9,\n\
         d,e@example.org,2026-11-10 08:05:00+0000,,news@sender.example,2.0.0,\"smtp;250 cut\n\
         d,f@example.org,not-a-time,,news@sender.example,2.0.0,smtp;250 ok,,,,vmta-2,job-9,\n",
    );
    use Class as C;
    use Outcome::*;
    let g = Some("gmail-smtp-in.l.google.com");
    #[rustfmt::skip]
    let want: &[Want<'_>] = &[
        ("guide:2", Delivered, C::None, None, None, "domain.com", Some("domain.com"), None, None, Some(1)),
        ("guide:3", Delivered, C::None, None, None, "domain.com", Some("domain.com"), None, None, Some(1)),
        ("guide:4", Bounced, C::Other, None, None, "domain.com", Some("domain.com"), None, None, Some(1)),
        ("guide:5", Bounced, C::Other, None, None, "domain.com", Some("domain.com"), None, None, Some(1)),
        ("acct:2", Deferred, C::RateLimit, g, Some("142.250.102.27"), "google", Some("gmail.com"), Some(421), Some("4.7.28"), Some(1)),
        ("acct:3", Delivered, C::None, Some("mta5.am0.yahoodns.net"), Some("67.195.204.72"), "yahoo", Some("yahoo.com"), Some(250), Some("2.0.0"), Some(1)),
        ("acct:4", Expired, C::Expired, None, None, "microsoft", Some("outlook.com"), None, Some("4.4.7"), None),
        ("acct:5", Deferred, C::Network, Some("mx.example.org"), None, "example.org", None, None, Some("4.4.1"), None),
    ];
    check(&sink, want);
    assert_eq!(sink[0].event_time_us, 1_178_807_903_000_000);
    assert_eq!(
        (sink[0].source_ip.as_deref(), sink[0].mta_host.as_str()),
        (Some("10.0.0.1"), "pmta-1")
    );
    let t = &sink[4];
    assert_eq!(t.event_time_us, us("2026-11-10T08:00:00Z"));
    assert_eq!(
        (t.mta_instance.as_deref(), t.source_ip.as_deref(), t.queue_id.as_str()),
        (Some("vmta-1"), Some("192.0.2.1"), "job-9")
    );
    assert_eq!(t.delay_seconds, Some(60.0));
    assert_eq!(t.size_bytes, Some(5120));
    assert!(
        t.response
            .as_deref()
            .is_some_and(|r| r.contains("unusual rate, of \"unsolicited\" mail")),
        "{:?}",
        t.response
    );
    assert_eq!(sink[6].source_ip.as_deref(), Some("192.0.2.2"));
    let reasons: Vec<&str> = rejects.0.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["truncated", "bad_timestamp"]);
    let st = n.stats();
    assert_eq!(st.skipped(SkipKind::Header), 2);
    assert_eq!(st.skipped(SkipKind::NotAttempt), 1);
    assert_eq!(st.lines, st.accounted_lines());
}

#[test]
fn a_line_cut_within_its_reply_is_an_event_and_counted_as_cut() {
    let mut n = normalizer();
    let whole = "Nov  8 10:00:00 mta-out1 postfix/smtp[1]: ABC123: to=<u@gmail.com>, \
                 relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, \
                 status=deferred (host gmail-smtp-in.l.google.com[142.250.1.27] said: 421-4.7.28 Our system has \
                 detected an unusual rate of unsolicited mail)";
    // Syslog's line limit, within the reply.
    let cut = &whole[..whole.len() - 40];
    let (events, _) = normalize(&mut n, "cut.log", &[whole, cut]);
    assert_eq!(events.len(), 2);
    assert_eq!(n.stats().cut_replies, 1);
}

#[test]
fn a_byte_order_mark_before_a_files_first_line_is_no_part_of_it() {
    let mut cfg = config(us("2026-12-31T12:00:00Z"));
    cfg.default_host = "pmta-1".into();
    let mut n = Normalizer::new(cfg);
    // A PowerMTA file saved by a Windows tool: its header must still name the columns.
    let csv = [
        "\u{feff}type,timeLogged,orig,rcpt,dlvSourceIp",
        "d,1178807903,orig@port25.com,user1@domain.com,10.0.0.9",
    ];
    let (events, rejects) = normalize(&mut n, "bom.csv", &csv);
    assert_eq!(events.len(), 1, "{rejects:?}");
    assert_eq!(events[0].source_ip.as_deref(), Some("10.0.0.9"));
    assert_eq!(n.stats().skipped(SkipKind::Header), 1);
    let mut n = normalizer();
    let line = "\u{feff}Nov  8 10:00:00 mta-out1 postfix/smtp[1]: ABC123: to=<u@gmail.com>, \
                relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)";
    let (events, rejects) = normalize(&mut n, "bom.log", &[line]);
    assert_eq!((events.len(), rejects.0.len()), (1, 0), "{rejects:?}");
}

#[test]
fn nested_type_and_id_keys_do_not_make_an_envelope_a_kumomta_record() {
    let mut n = Normalizer::new(config(us("2026-12-31T12:00:00Z")));
    let postfix = "Jan  6 08:39:06 mx1 postfix/smtp[1]: 3mfHGL1r9gzyQP: to=<a@example.net>, relay=example.com[127.0.0.1]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
    let records = [
        // Filebeat's shape: `agent` nests a `type` and an `id`.
        format!(r#"{{"@timestamp":"2025-01-10T00:00:00Z","agent":{{"type":"filebeat","id":"b7f3"}},"message":"{postfix}","host":"shipper-host"}}"#),
        // A KumoMTA record whose keys a shipper re-serialized in another order.
        r#"{"id":"ab12","recipient":"c@yahoo.com","type":"Bounce","timestamp":1794268800,"response":{"code":554,"enhanced_code":null,"content":"rejected"}}"#.to_owned(),
    ];
    let (sink, rejects) = normalize(&mut n, "nested", &records);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    assert_eq!(sink.len(), 2, "{sink:#?}");
    assert_eq!(
        (sink[0].mta_host.as_str(), sink[0].outcome),
        ("mx1", Outcome::Delivered)
    );
    assert_eq!(sink[1].outcome, Outcome::Bounced);
}

#[test]
fn an_envelope_timestamp_does_not_stretch_how_far_ahead_a_stamp_may_be() {
    let mut cfg = config(us("2026-12-01T12:00:00Z"));
    // As `run` sets it: a day past the record's broker timestamp.
    cfg.max_ahead_us = Some(24 * 3_600_000_000);
    let mut n = Normalizer::new(cfg);
    let line = |stamp: &str| {
        format!(
            "{stamp} mx1 postfix/smtp[1]: 3mfHGL1r9gzyQP: to=<a@example.net>, relay=example.com[127.0.0.1]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
        )
    };
    let records = [
        // The shipper's clock and the MTA's both in 2190.
        format!(
            r#"{{"message":"{}","timestamp":"2190-01-01T00:00:00Z"}}"#,
            line("2190-01-01T00:00:00Z")
        ),
        // An envelope an hour after the record (a shipper's clock ahead by that much).
        format!(
            r#"{{"message":"{}","timestamp":"2026-12-01T13:00:00Z"}}"#,
            line("2026-12-01T11:00:00Z")
        ),
    ];
    let (sink, rejects) = normalize(&mut n, "ahead", &records);
    let reasons: Vec<&str> = rejects.0.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["bad_timestamp"]);
    assert_eq!(sink.len(), 1, "{sink:#?}");
    assert_eq!(sink[0].event_time_us, us("2026-12-01T11:00:00Z"));
}

#[test]
fn powermta_attempts_are_numbered_and_an_expiry_goes_to_the_last_attempt() {
    let mut n = Normalizer::new(config(us("2026-11-20T00:00:00Z")));
    let lines = [
        "type,timeLogged,timeQueued,orig,rcpt,vmta,dlvSourceIp,dsnAction,dsnStatus,dsnDiag,dsnMta,dlvDestinationIp,dlvSize,jobId",
        r#"t,2026-11-08 10:00:00-0500,2026-11-08 09:59:00-0500,s@example.com,pa.secret@gmail.com,vmta1,198.51.100.50,delayed,4.7.28 (delivery not authorized),"smtp;421-4.7.28 [198.51.100.50] Our system has detected an unusual rate of 421-4.7.28 unsolicited mail - gsmtp",dns;gmail-smtp-in.l.google.com (142.250.1.27),142.250.1.27,1000,job1"#,
        r#"t,2026-11-08 10:05:00-0500,2026-11-08 09:59:00-0500,s@example.com,pa.secret@gmail.com,vmta1,198.51.100.50,delayed,4.7.28 (delivery not authorized),"smtp;421-4.7.28 rate - gsmtp",dns;gmail-smtp-in.l.google.com (142.250.1.27),142.250.1.27,1000,job1"#,
        r#"d,2026-11-08 10:01:00-0500,2026-11-08 09:59:00-0500,s@example.com,pb.secret@gmail.com,vmta1,198.51.100.50,relayed,2.0.0 (success),"smtp;250 2.0.0 OK - gsmtp",dns;gmail-smtp-in.l.google.com (142.250.1.27),142.250.1.27,1000,job1"#,
        // Given up three days on; the record names no host.
        r#"b,2026-11-11 10:00:00-0500,2026-11-08 09:59:00-0500,s@example.com,pa.secret@gmail.com,vmta1,,failed,4.4.7 (delivery time expired),"smtp;message expired",,,1000,job1"#,
    ];
    let (sink, rejects) = normalize(&mut n, "pmta", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| {
            (
                e.outcome,
                e.attempt,
                e.source_ip.as_deref(),
                e.mx_host.as_deref(),
                e.mx_group.as_str(),
            )
        })
        .collect();
    let (ip, mx) = (Some("198.51.100.50"), Some("gmail-smtp-in.l.google.com"));
    assert_eq!(
        got,
        [
            (Outcome::Deferred, Some(1), ip, mx, "google"),
            (Outcome::Deferred, Some(2), ip, mx, "google"),
            (Outcome::Delivered, Some(1), ip, mx, "google"),
            (Outcome::Expired, None, ip, mx, "google"),
        ]
    );
}

#[test]
fn powermta_records_without_their_header_are_refused_unless_their_columns_are_configured() {
    // A custom `record-fields` layout, its header on another Kafka partition: what
    // reaches this normalizer is records only.
    let header = "type,timeLogged,orig,rcpt,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,dlvDestinationIp,vmta,jobId";
    let records = [
        "b,2025-12-29 03:54:09+0100,news@sender.example,user2@yahoo.com,4.4.7 (delivery expired),smtp;message expired,,message-expired,198.51.100.11,,vmta1,job42",
        "b,2025-12-29 03:55:09+0100,news@sender.example,user3@gmail.com,5.1.1 (bad destination mailbox address),smtp;550 5.1.1 The email account that you tried to reach does not exist,gmail-smtp-in.l.google.com (142.250.27.26),bad-mailbox,198.51.100.11,142.250.27.26,vmta1,job42",
    ];
    let mut cfg = config(us("2026-01-01T00:00:00Z"));
    cfg.default_host = "pmta-1".into();
    let mut n = Normalizer::new(cfg.clone());
    let (sink, rejects) = normalize(&mut n, "pmta-headerless", &records);
    assert!(sink.is_empty(), "read in the default order: {sink:#?}");
    let reasons: Vec<&str> = rejects.0.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["bad_columns", "bad_columns"]);
    cfg.pmta_fields = Some(header.into());
    let mut n = Normalizer::new(cfg);
    let (sink, rejects) = normalize(&mut n, "pmta-configured", &records);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| {
            (
                e.outcome,
                e.class,
                e.recipient_domain.as_deref(),
                e.source_ip.as_deref(),
            )
        })
        .collect();
    let ip = Some("198.51.100.11");
    assert_eq!(
        got,
        [
            // The expiry's own `dlvSourceIp`: no attempt of it was seen to attribute it to.
            (Outcome::Expired, Class::Expired, Some("yahoo.com"), ip),
            (Outcome::Bounced, Class::Recipient, Some("gmail.com"), ip),
        ]
    );
}

#[test]
fn older_exim_names_the_host_inside_the_smtp_error() {
    // A real 2012 line (a public Exim log-search test): no `H=`, the host in the reason.
    let lines = [
        "2012-02-13 14:39:22 1RookS-000Pg8-VO == udbbwscdnbegrmloghuf@london.com R=dnslookup T=remote_smtp defer (-44): SMTP error from remote mail server after RCPT TO:<udbbwscdnbegrmloghuf@london.com>: host mx0.gmx.com [74.208.5.90]: 450 4.3.2 Too many mails (mail bomb), try again in 1 hour(s) 25 minute(s) and see ( http://portal.gmx.net/serverrules ) {mx-us011}",
        // Exim 3's wording, with the port.
        "2012-02-13 14:40:22 1RookT-000Pg8-VO == b@london.com R=dnslookup T=remote_smtp defer (-44): SMTP error from remote mailer after RCPT TO:<b@london.com>: host mx0.gmx.com [74.208.5.90]:25: 450 4.3.2 Too many mails",
    ];
    let mut n = exim_normalizer(us("2012-03-01T00:00:00Z"));
    let (sink, rejects) = normalize(&mut n, "exim-2012", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    assert_eq!(sink.len(), 2);
    assert_eq!(
        (
            sink[1].mx_host.as_deref(),
            sink[1].smtp_code,
            sink[1].response.as_deref()
        ),
        (Some("mx0.gmx.com"), Some(450), Some("450 4.3.2 Too many mails"))
    );
    let e = &sink[0];
    assert_eq!(
        (
            e.outcome,
            e.mx_host.as_deref(),
            e.mx_ip.as_deref(),
            e.mx_group.as_str(),
            e.smtp_code,
            e.enhanced_status.as_deref()
        ),
        (
            Outcome::Deferred,
            Some("mx0.gmx.com"),
            Some("74.208.5.90"),
            "gmx",
            Some(450),
            Some("4.3.2")
        )
    );
}

#[test]
fn an_exim_line_syslog_got_in_pieces_is_read_from_its_first() {
    // Exim's syslog writer cuts a line over 870 bytes (`MAX_SYSLOG_LEN` in its
    // log.c) into numbered pieces; this 1069-byte `==` of a Gmail throttle is two.
    let pieces = [
        r#"Nov 20 10:05:00 exim-out1 exim[4242]: [1/2] 2026-11-20 10:05:00 1wQQQQ-0001wC-Qq == yolanda@gmail.com R=dnslookup T=remote_smtp defer (-46) H=gmail-smtp-in.l.google.com [142.250.102.27]:25 I=[198.51.100.50]:48124 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes DN="/CN=mx.google.com" F=<bounces+SRS=k3Jd8=XY=campaign-2026-11-20-newsletter-eu-west.example=1234567-abcdef0123456789-yolanda=gmail.com@mailer.sender.example> QT=2h3m DT=1.2s: SMTP error from remote mail server after pipelined MAIL FROM:<bounces+SRS=k3Jd8=XY=campaign-2026-11-20-newsletter-eu-west.example=1234567-abcdef0123456789-yolanda=gmail.com@mailer.sender.example> SIZE=48213: 421-4.7.28 [198.51.100.50      15] Our system has detected an unusual rate of\n421-4.7.28 unsolicited mail originating from your IP address. To protect our\n421-4.7.28 users from spam, mail sent from your IP address has been temporarily\n421-4.7.28 rate limited. For more i"#,
        r#"Nov 20 10:05:00 exim-out1 exim[4242]: [2/2] nformation, go to\n421-4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError to\n421 4.7.28 review our Bulk Email Senders Guidelines. d9443c01a7336-2295d2fc1a1si123456785ad.182 - gsmtp"#,
    ];
    let mut n = Normalizer::new(config(us("2026-12-01T00:00:00Z")));
    let (sink, rejects) = normalize(&mut n, "exim-pieces", &pieces);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    assert_eq!(sink.len(), 1, "{sink:#?}");
    let e = &sink[0];
    assert_eq!(
        (
            e.outcome,
            e.class,
            e.mx_host.as_deref(),
            e.mx_ip.as_deref(),
            e.source_ip.as_deref()
        ),
        (
            Outcome::Deferred,
            Class::RateLimit,
            Some("gmail-smtp-in.l.google.com"),
            Some("142.250.102.27"),
            Some("198.51.100.50")
        )
    );
    assert_eq!(e.event_time_us, us("2026-11-20T10:05:00Z"));
    assert_eq!(n.stats().cut_replies, 1);
    assert_eq!(n.stats().skipped(SkipKind::Continuation), 1);
    // Cut before its reply began, the last field is cut too: refused, not read.
    let cut = "Nov 20 10:06:00 exim-out1 exim[4243]: [1/2] 2026-11-20 10:06:00 1wQQQR-0001wC-Qq == z@gmail.com R=dnslookup T=remote_smtp defer (-46) H=gmail-smtp-in.l.go";
    let (sink, rejects) = normalize(&mut n, "exim-pieces", &[cut]);
    assert!(sink.is_empty(), "{sink:#?}");
    let reasons: Vec<&str> = rejects.0.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["truncated"]);
}

#[test]
fn powermta_records_without_a_header_are_read_in_the_default_layout_their_column_count_names() {
    let mut cfg = config(us("2026-12-31T12:00:00Z"));
    cfg.default_host = "pmta-1".into();
    let mut n = Normalizer::new(cfg);
    let records = [
        // A real record of the older default (a public example; `timeImprinted`
        // fourth, no `queue` or `vmtaPool`: 22 columns).
        r#"d,2014-08-24 16:00:14+0530,2014-07-10 16:00:02+0530,,Emailstatements.cards@hdfcbank.net,VJAYPRAKASH@YMAIL.COM,,relayed,2.0.0 (success),smtp;250 ok dirdel,mta7.am0.yahoodns.net (66.196.118.35),success,smtp,hbdpstmt3.hdfcbank.com (202.154.168.163),smtp,172.30.149.109,66.196.118.35,"PIPELINING,8BITMIME,SIZE,STARTTLS",155704,CAMPAIGN,,"#,
        // Today's default (23 columns): a deferral series at Yahoo ending in expiry,
        // whose record quotes the last reply.
        r#"t,2026-11-08 09:00:10+0000,2026-11-08 09:00:00+0000,bounces@news.example.com,carol@yahoo.com,,delayed,"4.7.0 (delivery not authorized, message refused)",smtp;421 4.7.0 [TSS04] Messages from 198.51.100.21 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes,mta6.am0.yahoodns.net (67.195.204.72),policy-related,smtp,app01.news.example.com (10.0.0.5),smtp,198.51.100.21,67.195.204.72,"PIPELINING,8BITMIME,SIZE,STARTTLS,ENHANCEDSTATUSCODES",18320,vmta-yahoo,nov-newsletter,,yahoo.com/vmta-yahoo,pool1"#,
        r#"b,2026-11-08 13:00:00+0000,2026-11-08 09:00:00+0000,bounces@news.example.com,carol@yahoo.com,,failed,4.4.7 (delivery time expired),smtp;421 4.7.0 [TSS04] Messages from 198.51.100.21 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes,,message-expired,smtp,app01.news.example.com (10.0.0.5),smtp,,,"PIPELINING,8BITMIME,SIZE,STARTTLS,ENHANCEDSTATUSCODES",18320,vmta-yahoo,nov-newsletter,,yahoo.com/vmta-yahoo,pool1"#,
        // A queue's deferral: no recipient, no receiver; its queue names the domain.
        r#"tq,2026-11-08 09:00:40+0000,,,,,,"4.4.1 (no answer from host)",No answer from host,,no-answer-from-host,,,,198.51.100.11,,,,vmta-1,,,yahoo.com/vmta-1,pool1"#,
    ];
    let (sink, rejects) = normalize(&mut n, "pmta-defaults", &records);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| {
            (
                e.outcome,
                e.recipient_domain.as_deref(),
                e.source_ip.as_deref(),
                e.mx_host.as_deref(),
                e.mx_group.as_str(),
                e.enhanced_status.as_deref(),
            )
        })
        .collect();
    let yahoo = Some("mta6.am0.yahoodns.net");
    let ip = Some("198.51.100.21");
    assert_eq!(
        got,
        [
            (
                Outcome::Delivered,
                Some("ymail.com"),
                Some("172.30.149.109"),
                Some("mta7.am0.yahoodns.net"),
                "yahoo",
                Some("2.0.0")
            ),
            (Outcome::Deferred, Some("yahoo.com"), ip, yahoo, "yahoo", Some("4.7.0")),
            // PowerMTA's own verdict, not the quoted reply's 4.7.0.
            (Outcome::Expired, Some("yahoo.com"), ip, yahoo, "yahoo", Some("4.4.7")),
            (
                Outcome::Deferred,
                None,
                Some("198.51.100.11"),
                None,
                "yahoo",
                Some("4.4.1")
            ),
        ]
    );
}

#[test]
fn powermta_expiries_are_told_by_the_records_own_status_not_the_last_reply() {
    let mut n = Normalizer::new(config(us("2026-11-20T00:00:00Z")));
    let head = "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,dlvDestinationIp";
    let b = |rcpt: &str, status: &str, diag: &str, cat: &str| {
        format!(
            r#"b,2026-11-11 10:00:00-0500,2026-11-08 09:59:00-0500,s@example.com,{rcpt},failed,"{status}","{diag}",dns;mx.example (192.0.2.1),{cat},198.51.100.50,192.0.2.1"#
        )
    };
    let lines = [
        head.to_owned(),
        // Given up after bounce-after: the diagnostic is the last temporary reply.
        b(
            "a@yahoo.com",
            "4.4.7 (delivery time expired)",
            "smtp;421 4.7.0 [TSS04] Messages from 198.51.100.50 temporarily deferred",
            "message-expired",
        ),
        b(
            "b@outlook.com",
            "5.4.7 (delivery time expired)",
            "smtp;451 4.7.650 The mail server has been temporarily rate limited",
            "message-expired",
        ),
        b(
            "c@example.org",
            "4.4.1 (no answer from host)",
            "smtp;connect timed out",
            "message-expired",
        ),
        b(
            "d@example.org",
            "4.4.1 (no answer from host)",
            "smtp;connect timed out",
            "",
        ),
        // Permanent replies are bounces.
        b(
            "e@example.org",
            "5.1.1 (bad destination mailbox address)",
            "smtp;550 5.1.1 user unknown",
            "bad-mailbox",
        ),
        b(
            "f@example.org",
            "5.7.1 (delivery not authorized, message refused)",
            "smtp;550 5.7.1 policy",
            "policy-related",
        ),
        // ...also when the reply says "expired" of something else.
        b(
            "g@example.org",
            "5.1.1 (bad destination mailbox address)",
            "smtp;550 5.1.1 Recipient address rejected: account expired",
            "bad-mailbox",
        ),
        b(
            "h@example.org",
            "5.7.1 (delivery not authorized, message refused)",
            "smtp;550 5.7.1 TLS certificate expired",
            "other",
        ),
    ];
    let (sink, rejects) = normalize(&mut n, "pmta-expiries", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink.iter().map(|e| (e.outcome, e.class)).collect();
    assert_eq!(
        got,
        [
            (Outcome::Expired, Class::Expired),
            (Outcome::Expired, Class::Expired),
            (Outcome::Expired, Class::Expired),
            (Outcome::Expired, Class::Expired),
            (Outcome::Bounced, Class::Recipient),
            (Outcome::Bounced, Class::Policy),
            (Outcome::Bounced, Class::Recipient),
            (Outcome::Bounced, Class::Tls),
        ]
    );
}

#[test]
fn a_postfix_hold_quoting_the_sites_earlier_reply_is_local() {
    let mut n = normalizer();
    let lines = [
        "Nov 12 09:40:01 mta-out1 postfix-out/error[31]: 4TA000005: to=<u@yahoo.com>, relay=none, delay=3600, delays=3600/0/0/0, dsn=4.7.0, status=deferred (delivery temporarily suspended: host mta7.am0.yahoodns.net[98.136.216.22] refused to talk to me: 421 4.7.0 [TSS04] Messages from 198.51.100.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes)",
    ];
    let (sink, _) = normalize(&mut n, "hold", &lines);
    let got: Vec<_> = sink
        .iter()
        .map(|e| (e.outcome, e.class, e.mx_host.as_deref()))
        .collect();
    assert_eq!(
        got,
        [(Outcome::Deferred, Class::Local, Some("mta7.am0.yahoodns.net"))],
        "a hold, not Yahoo's reputation verdict again"
    );
    // Nothing was said in this try: no code of the earlier reply to count again, and
    // the stored text says it was a hold.
    let e = &sink[0];
    assert_eq!(e.smtp_code, None);
    assert_eq!(e.enhanced_status.as_deref(), Some("4.7.0"), "Postfix's own dsn=");
    assert!(
        e.response
            .as_deref()
            .is_some_and(|r| r.starts_with("delivery temporarily suspended: host mta7.am0.yahoodns.net")),
        "{:?}",
        e.response
    );
}

#[test]
fn a_log_read_as_of_now_has_last_decembers_lines_in_last_december() {
    let line = "Dec 29 02:54:12 mta-out1 postfix/smtp[31]: 4TA000005: to=<u@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 OK)";
    let year_of = |now: bool| {
        let mut cfg = config(us("2026-12-07T16:00:00Z"));
        cfg.reference_is_now = now;
        let (sink, _) = normalize(&mut Normalizer::new(cfg), "now", &[line]);
        sink[0].event_time_us
    };
    assert_eq!(
        year_of(true),
        us("2025-12-29T02:54:12Z"),
        "read now: nothing weeks ahead"
    );
    assert_eq!(
        year_of(false),
        us("2026-12-29T02:54:12Z"),
        "a date given may come before the log"
    );
}

#[test]
fn a_postfix_soft_bounce_is_a_deferral_classed_by_the_receivers_reply() {
    let mut n = normalizer();
    // Real lines of `soft_bounce = yes` (public Postfix logs, names as published).
    let lines = [
        "Oct 14 07:34:03 custhost1 postfix/smtp[10837]: 4B6D11E01729: to=<viviane@techs.com.br>, relay=mail.techs.com.br[186.232.248.4]:25, delay=39993, delays=35133/4859/0.58/0.71, dsn=4.7.1, status=SOFTBOUNCE (host mail.techs.com.br[186.232.248.4] said: 501 5.7.1 <kmcgrath@upperuwchlan-pa.gov>... Sender refused by the DNSBL b.barracudacentral.org (in reply to RCPT TO command))",
        "Mar 18 20:49:43 server1 postfix/smtp[10076]: 4BAF83CC22D: to=<ebenezer.b@ideefixe.com>, relay=smtp-gate.ebiuniverse.com[212.154.28.211]:25, delay=10869, delays=10832/36/0.78/0.12, dsn=4.0.0, status=SOFTBOUNCE (host smtp-gate.ebiuniverse.com[212.154.28.211] said: 553 sorry, this recipient is not in my validrcptto list (#5.7.1) (in reply to RCPT TO command))",
    ];
    let (sink, rejects) = normalize(&mut n, "softbounce", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| (e.outcome, e.class, e.smtp_code, e.mx_host.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Outcome::Deferred,
                Class::Blocklist,
                Some(501),
                Some("mail.techs.com.br")
            ),
            (
                Outcome::Deferred,
                Class::Recipient,
                Some(553),
                Some("smtp-gate.ebiuniverse.com")
            ),
        ]
    );
}

#[test]
fn a_reused_postfix_queue_id_starts_a_new_message_at_its_cleanup_line() {
    let mut n = normalizer();
    let lines = [
        // A message deferred, then gone without a `removed` line (a lost line).
        "Nov 12 09:00:01 mta-out1 postfix/cleanup[30]: AAA111BBB2: message-id=<1@a.example>",
        "Nov 12 09:00:02 mta-out1 postfix/smtp[31]: AAA111BBB2: to=<u@yahoo.com>, relay=mta7.am0.yahoodns.net[98.136.216.22]:25, delay=1, delays=0/0/0/1, dsn=4.7.0, status=deferred (host mta7.am0.yahoodns.net[98.136.216.22] said: 421 4.7.0 [TSS04] try later (in reply to MAIL FROM command))",
        // Days later the short id is another message's: one recipient, expired.
        "Nov 30 10:00:01 mta-out1 postfix/cleanup[40]: AAA111BBB2: message-id=<2@a.example>",
        "Nov 30 10:00:02 mta-out1 postfix/smtp[41]: AAA111BBB2: to=<v@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.1.27] said: 421-4.7.28 rate limited (in reply to end of DATA command))",
        "Dec  5 10:00:01 mta-out1 postfix/qmgr[42]: AAA111BBB2: from=<b@a.example>, status=expired, returned to sender",
    ];
    let (sink, _) = normalize(&mut n, "reuse", &lines);
    let expiries: Vec<_> = sink
        .iter()
        .filter(|e| e.outcome == Outcome::Expired)
        .map(|e| e.recipient_domain.as_deref())
        .collect();
    assert_eq!(
        expiries,
        [Some("gmail.com")],
        "the earlier message's recipient does not expire again"
    );
}

#[test]
fn powermta_messages_of_one_job_to_one_recipient_are_numbered_apart_and_a_cut_record_is_rejected() {
    let mut n = Normalizer::new(config(us("2026-11-20T00:00:00Z")));
    let head =
        "type,timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,jobId,dlvSourceIp,dlvDestinationIp";
    let rec = |kind: &str, logged: &str, queued: &str, diag: &str| {
        format!(
            "{kind},2026-11-11 {logged}-0500,2026-11-11 {queued}-0500,s@example.com,a@example.org,x,,{diag},dns;mx.example.org (192.0.2.1),spring-sale,198.51.100.50,192.0.2.1"
        )
    };
    let whole = rec("d", "10:05:00", "10:01:00", "smtp;250 ok");
    let lines = [
        head.to_owned(),
        // Message 1, queued 10:00: deferred. Message 2, queued 10:01: delivered at its
        // first try. One job, one recipient, no message id.
        rec("t", "10:00:30", "10:00:00", "smtp;421 4.7.0 try again later"),
        rec("d", "10:01:30", "10:01:00", "smtp;250 ok"),
        rec("d", "10:20:00", "10:00:00", "smtp;250 ok"),
        // A record cut short: fewer columns than the header names.
        whole[..whole.rfind(',').expect("comma")].to_owned(),
    ];
    let (sink, rejects) = normalize(&mut n, "pmta-job", &lines);
    let got: Vec<_> = sink.iter().map(|e| (e.outcome, e.attempt)).collect();
    assert_eq!(
        got,
        [
            (Outcome::Deferred, Some(1)),
            (Outcome::Delivered, Some(1)),
            (Outcome::Delivered, Some(2)),
        ]
    );
    let reasons: Vec<&str> = rejects.0.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["truncated"]);
}

#[test]
fn lines_forwarded_with_a_priority_or_as_rfc_5424_are_read_as_files_are() {
    let mut n = Normalizer::new(config(us("2026-11-20T00:00:00Z")));
    let tail = "3mfHGL1r9gzyQP: to=<a@example.net>, relay=example.com[127.0.0.1]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
    let lines = [
        format!("<22>Nov  8 08:14:01 mx1 postfix/smtp[1]: {tail}"),
        format!("<22>1 2026-11-08T08:14:02.5Z mx1 postfix/smtp 1 - - {tail}"),
        format!("<22>1 2026-11-08T08:14:03Z mx1 postfix/smtp 1 - [meta sequenceId=\"7\"] {tail}"),
    ];
    let (sink, rejects) = normalize(&mut n, "forwarded", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = sink
        .iter()
        .map(|e| (e.mta_host.as_str(), e.event_time_us, e.outcome))
        .collect();
    assert_eq!(
        got,
        [
            ("mx1", us("2026-11-08T08:14:01Z"), Outcome::Delivered),
            ("mx1", us("2026-11-08T08:14:02.5Z"), Outcome::Delivered),
            ("mx1", us("2026-11-08T08:14:03Z"), Outcome::Delivered),
        ]
    );
}

#[test]
fn shipper_envelopes_carry_lines_of_every_mta() {
    let mut cfg = config(us("2026-12-31T12:00:00Z"));
    cfg.envelope.tenant = Some("customer".into());
    let mut n = Normalizer::new(cfg);
    let mut sink: Vec<OwnedSummary> = Vec::new();
    let mut rejects = Rejects::default();
    let exim = "2016-03-25 15:06:10 1ajLoq-0001wC-Pk => recipient@gmail.com R=dkim_lookuphost T=dkim_remote_smtp H=gmail-smtp-in.l.google.com [74.125.200.27] C=\\\"250 2.0.0 OK\\\"";
    let postfix = "Jan  6 08:39:06 mx1 postfix/smtp[1]: 3mfHGL1r9gzyQP: to=<a@example.net>, relay=example.com[127.0.0.1]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
    let records = [
        // Vector's shape: the line in `message`, host and timestamp beside it.
        format!(r#"{{"message":"{postfix}","host":"shipper-host","timestamp":"2025-01-10T00:00:00Z","source_type":"file","customer":"acme"}}"#),
        // Exim's own log names no host: the envelope's.
        format!(r#"{{"message":"{exim}\n","host":"exim-7"}}"#),
        // A KumoMTA record as a string inside an envelope.
        r#"{"message":"{\"type\":\"Bounce\",\"id\":\"ab12\",\"recipient\":\"c@yahoo.com\",\"timestamp\":1794268800,\"response\":{\"code\":554,\"enhanced_code\":null,\"content\":\"rejected\"}}","host":"kumo-2"}"#.to_owned(),
        r#"{"message":"{\"no\":\"envelope here\"}"}"#.to_owned(),
        r#"{"host":"x"}"#.to_owned(),
        r#"{"message": "unterminated"#.to_owned(),
        // A tenant no label should carry.
        format!(r#"{{"message":"{postfix}","customer":"{}"}}"#, "x".repeat(200)),
    ];
    for (i, r) in records.iter().enumerate() {
        let origin = Origin::Line {
            file: "env",
            line: i as u64 + 1,
        };
        n.process_line(r.as_bytes(), origin, &mut sink, &mut rejects);
    }
    assert_eq!(sink.len(), 3, "{sink:#?}");
    // The syslog frame names its own host; the envelope's timestamp gives BSD stamps
    // their year, its `customer` field the tenant.
    assert_eq!((sink[0].mta_host.as_str(), sink[0].tenant.as_str()), ("mx1", "acme"));
    assert_eq!(sink[1].tenant, "default", "the tenant holds for its record only");
    assert_eq!(sink[0].event_time_us, us("2025-01-06T08:39:06Z"));
    assert_eq!(
        (sink[1].mta_host.as_str(), sink[1].mx_group.as_str()),
        ("exim-7", "google")
    );
    assert_eq!(
        (sink[2].mta_host.as_str(), sink[2].outcome),
        ("kumo-2", Outcome::Bounced)
    );
    let reasons: Vec<&str> = rejects.0.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["bad_record", "bad_record", "bad_json", "bad_tenant"]);
    let st = n.stats();
    assert_eq!(
        st.rejected_by(None, RejectReason::BadJson),
        1,
        "an envelope is no MTA's"
    );
    assert_eq!(st.lines, 7);
    assert_eq!(st.lines, st.accounted_lines());
}

/// The message-only corpus with a frame put back (its sources dropped it): delivery
/// lines from smtp, status lines about the queue from qmgr, as in the test of it above.
fn msgonly_framed() -> Vec<String> {
    let msgonly = String::from_utf8(corpus("postfix_msgonly.log")).expect("utf-8");
    msgonly
        .lines()
        .enumerate()
        .map(|(i, msg)| {
            let program = if msg.contains(" to=") || msg.contains(": to=") {
                "postfix/smtp"
            } else {
                "postfix/qmgr"
            };
            format!("Nov  8 08:{:02}:{:02} mx {program}[4242]: {msg}", i / 60, i % 60)
        })
        .collect()
}

/// Shippers that parse syslog send a line's content without its frame (stamp, host,
/// tag), which they keep in fields of their own. The Postfix corpora's lines sent so,
/// in three shippers' shapes, give the events the whole lines give.
#[test]
fn syslog_content_without_its_frame_reads_as_the_whole_line() {
    use serde_json::json;
    /// A line as a syslog parser splits it: (whole line, time, host, program, pid, content).
    type Parts = (
        String,
        chrono::DateTime<chrono::Utc>,
        String,
        String,
        Option<String>,
        String,
    );
    fn split(l: &str) -> Option<Parts> {
        let (stamp, rest) = (l.get(..15)?, l.get(16..)?);
        let (host, rest) = rest.split_once(' ')?;
        let (tag, content) = rest.split_once(": ")?;
        let (program, pid) = match tag.split_once('[') {
            Some((p, pid)) => (p, Some(pid.strip_suffix(']')?.to_owned())),
            None => (tag, None),
        };
        // The normalizer's reference time (the end of 2026) puts every stamp in 2026.
        let t = chrono::NaiveDateTime::parse_from_str(&format!("2026 {stamp}"), "%Y %b %e %H:%M:%S").ok()?;
        Some((
            l.to_owned(),
            t.and_utc(),
            host.into(),
            program.into(),
            pid,
            content.into(),
        ))
    }
    let text = String::from_utf8(corpus("postfix.log")).expect("utf-8");
    let mut lines: Vec<String> = text.lines().filter(|l| split(l).is_some()).map(Into::into).collect();
    assert!(lines.len() + 2 >= text.lines().count(), "nearly every line splits");
    lines.extend(msgonly_framed());
    let parts: Vec<Parts> = lines.iter().map(|l| split(l).expect("splits")).collect();
    let (want, want_rejects) = normalize(&mut normalizer(), "corpus", &lines);
    assert!(want.len() >= 15, "{want:#?}");

    let fields = |message: &str, host: &str, timestamp: &str, program: Option<&str>| {
        let mut cfg = config(us("2026-12-31T12:00:00Z"));
        cfg.envelope = deferlog_parse::EnvelopeFields {
            message: message.into(),
            host: host.into(),
            timestamp: timestamp.into(),
            tenant: None,
            program: program.map(Into::into),
        };
        Normalizer::new(cfg)
    };
    let shapes: [(&str, Normalizer, Vec<String>); 3] = [
        (
            "journald (journalctl -o json)",
            fields(
                "MESSAGE",
                "_HOSTNAME",
                "__REALTIME_TIMESTAMP",
                Some("SYSLOG_IDENTIFIER"),
            ),
            parts
                .iter()
                .map(|(_, t, host, program, pid, content)| {
                    json!({"MESSAGE": content, "_HOSTNAME": host, "SYSLOG_IDENTIFIER": program, "_PID": pid,
                           "__REALTIME_TIMESTAMP": t.timestamp_micros().to_string(), "PRIORITY": "6"})
                    .to_string()
                })
                .collect(),
        ),
        (
            "Vector's syslog source",
            fields("message", "hostname", "timestamp", Some("appname")),
            parts
                .iter()
                .map(|(_, t, host, program, pid, content)| {
                    let pid: Option<u64> = pid.as_ref().map(|p| p.parse().expect("pid"));
                    json!({"message": content, "hostname": host, "appname": program, "procid": pid,
                           "timestamp": t.to_rfc3339(), "source_type": "syslog"})
                    .to_string()
                })
                .collect(),
        ),
        (
            "the tag left in the message, the host nested (Filebeat)",
            fields("message", "host.hostname", "@timestamp", None),
            parts
                .iter()
                .map(|(l, t, host, ..)| {
                    let with_tag = &l[16 + host.len() + 1..];
                    json!({"message": with_tag, "host": {"hostname": host}, "@timestamp": t.to_rfc3339()}).to_string()
                })
                .collect(),
        ),
    ];
    let reasons = |r: &Rejects| r.0.iter().map(|r| (r.0.clone(), r.2.clone())).collect::<Vec<_>>();
    for (shape, mut n, records) in shapes {
        let (got, rejects) = normalize(&mut n, "corpus", &records);
        assert_eq!(got, want, "{shape}");
        assert_eq!(reasons(&rejects), reasons(&want_rejects), "{shape}");
        let st = n.stats();
        assert_eq!(st.lines, st.accounted_lines(), "{shape}");
    }

    // A whole line in the message is read whole, even beside a program field
    // (journald's `MESSAGE` of a container that logs to stdout), and journald's
    // array of bytes is the message's text. A stamp out of reach is still a stamp:
    // the line is rejected as it is alone, not read as some program's content.
    let (l, t, host, program, _, content) = parts.iter().find(|p| p.5.contains("status=sent")).expect("a delivery");
    let far = format!("2201-11-08T08:14:02Z {host} {program}[12]: {content}");
    let (want, want_rejects) = normalize(&mut normalizer(), "whole", &[l.as_str(), l.as_str(), far.as_str()]);
    assert_eq!((want.len(), reasons(&want_rejects).len()), (2, 1));
    let mut n = fields(
        "MESSAGE",
        "_HOSTNAME",
        "__REALTIME_TIMESTAMP",
        Some("SYSLOG_IDENTIFIER"),
    );
    let at = t.timestamp_micros().to_string();
    let records = [
        json!({"MESSAGE": l, "SYSLOG_IDENTIFIER": program, "_HOSTNAME": host, "__REALTIME_TIMESTAMP": at}),
        json!({"MESSAGE": l.as_bytes(), "SYSLOG_IDENTIFIER": "dockerd", "__REALTIME_TIMESTAMP": at}),
        json!({"MESSAGE": far, "SYSLOG_IDENTIFIER": program, "__REALTIME_TIMESTAMP": at}),
    ]
    .map(|r| r.to_string());
    let (got, rejects) = normalize(&mut n, "whole", &records);
    assert_eq!(got, want);
    assert_eq!(reasons(&rejects), reasons(&want_rejects));

    // rsyslog: `programname` stops at the `/`, so the tag left in the message names
    // the program; with `parser.permitSlashInProgramName` it is whole, and `%msg%`
    // keeps the space after the tag's colon.
    let mut n = fields("message", "hostname", "timestamp", Some("programname"));
    let records = [
        json!({"message": format!("{program}[12]: {content}"), "programname": "postfix", "hostname": host,
               "timestamp": t.to_rfc3339()}),
        json!({"message": format!(" {content}"), "programname": program, "hostname": host, "timestamp": t.to_rfc3339()}),
    ]
    .map(|r| r.to_string());
    let (got, rejects) = normalize(&mut n, "whole", &records);
    assert_eq!(got, want);
    assert!(rejects.0.is_empty(), "{:?}", reasons(&rejects));

    // Without a program field, another program's tagged content is skipped as that
    // program's (as its whole line would be), not unrecognized; a Postfix message
    // (a queue id, or a word Postfix starts its own with, before a colon) is no tag
    // and its content: without its stamp it is rejected, or not recognized.
    let mut n = fields("message", "host", "timestamp", None);
    let records = [
        json!({"message": "sshd[12]: Accepted publickey for root", "host": host, "timestamp": t.to_rfc3339()}),
        json!({"message": "CRON: pam_unix(cron:session): session opened", "host": host, "timestamp": t.to_rfc3339()}),
        json!({"message": content, "host": host, "timestamp": t.to_rfc3339()}),
        json!({"message": "NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 Relay access denied",
               "host": host, "timestamp": t.to_rfc3339()}),
    ]
    .map(|r| r.to_string());
    let (got, rejects) = normalize(&mut n, "y", &records);
    assert!(got.is_empty(), "{got:#?}");
    assert_eq!(reasons(&rejects), [("bad_timestamp".to_owned(), "y:3".to_owned())]);
    let st = n.stats();
    assert_eq!(st.skipped(SkipKind::OtherProgram), 2);
    assert_eq!(st.skipped(SkipKind::Unrecognized), 1, "NOQUEUE");

    // Without a timestamp an MTA's content has no time: a reject (the MTA's), not a
    // guess; another program's is skipped, as with its time. A date without
    // separators is no time, as a string or as a number.
    let mut n = fields("message", "hostname", "timestamp", Some("appname"));
    let records = [
        json!({"message": content, "hostname": host, "appname": "postfix/smtp"}),
        json!({"message": "Accepted publickey for root", "hostname": host, "appname": "sshd"}),
        json!({"message": content, "hostname": host, "appname": "postfix/smtp", "timestamp": "20261108"}),
        json!({"message": content, "hostname": host, "appname": "postfix/smtp", "timestamp": 20261108}),
    ]
    .map(|r| r.to_string());
    let (got, rejects) = normalize(&mut n, "x", &records);
    assert!(got.is_empty(), "{got:#?}");
    let want: Vec<(String, String)> = [1, 3, 4].map(|i| ("bad_timestamp".to_owned(), format!("x:{i}"))).into();
    assert_eq!(reasons(&rejects), want);
    let st = n.stats();
    assert_eq!(st.skipped(SkipKind::OtherProgram), 1, "sshd");
    assert_eq!(
        st.rejected_by(Some(deferlog_event::Mta::Postfix), RejectReason::BadTimestamp),
        3
    );
}

/// rsyslog's `programname` (and the APP of its RFC 5424 templates) stops at the `/`:
/// `postfix/smtp` arrives as `postfix`. The service is then told by the message, and
/// every Postfix corpus line gives the events and rejects its whole line gives.
#[test]
fn postfix_lines_without_their_service_give_the_same_events() {
    let text = String::from_utf8(corpus("postfix.log")).expect("utf-8");
    let mut whole: Vec<String> = text.lines().map(Into::into).collect();
    whole.extend(msgonly_framed());
    // `postfix/smtp[1]:` → `postfix[1]:`, also in RFC 5424 form (`<22>1 ... postfix 1 - - ...`).
    let cut = |l: &str| -> String {
        let Some(slash) = l.find("postfix/") else {
            return l.to_owned();
        };
        let end = l[slash..].find(['[', ':']).map_or(l.len(), |e| slash + e);
        format!("{}postfix{}", &l[..slash], &l[end..])
    };
    let cut_lines: Vec<String> = whole.iter().map(|l| cut(l)).collect();
    assert!(cut_lines.iter().filter(|l| l.contains(" postfix[")).count() > 50);
    let (want, want_rejects) = normalize(&mut normalizer(), "corpus", &whole);
    let (got, rejects) = normalize(&mut normalizer(), "corpus", &cut_lines);
    assert!(want.len() >= 15);
    // The instance is what rsyslog leaves of the program: `postfix/relay/smtp` → `postfix`.
    let want: Vec<OwnedSummary> = want
        .into_iter()
        .map(|mut e| {
            e.mta_instance = e
                .mta_instance
                .map(|i| i.split('/').next().unwrap_or_default().to_owned());
            e
        })
        .collect();
    assert_eq!(got, want);
    let reasons = |r: &Rejects| r.0.iter().map(|r| (r.0.clone(), r.2.clone())).collect::<Vec<_>>();
    assert_eq!(reasons(&rejects), reasons(&want_rejects));
    // As rsyslog's RFC 5424 templates forward it (APP from `programname`); a local
    // delivery is no attempt, with its service or without.
    let rfc5424 = "<22>1 2026-11-08T09:00:00+00:00 mx postfix 7 - - 4XYZ12345: to=<u@gmail.com>, \
                   relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, \
                   status=sent (250 2.0.0 OK)";
    let local = "Nov  8 09:00:00 mx postfix[7]: 4XYZ12346: to=<u@example.com>, relay=local, delay=0.1, \
                 delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)";
    // What the discard agent and the queue manager log is no attempt either; broken
    // delivery lines are rejected as with their service.
    let other = [
        "Nov  8 09:00:01 mx postfix[7]: 4XYZ12347: to=<u@gmail.com>, relay=none, delay=0.1, \
         delays=0.1/0/0/0, dsn=2.0.0, status=sent (discarded)",
        "Nov  8 09:00:02 mx postfix[7]: 4XYZ12348: to=<u@gmail.com>, relay=none, delay=0.1, \
         delays=0.1/0/0/0, dsn=4.3.0, status=deferred (mail transport unavailable)",
        "Nov  8 09:00:03 mx postfix[7]: 4-XYZ1234: to=<u@gmail.com>, relay=x[192.0.2.1]:25, delay=1, \
         delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        "Nov  8 09:00:04 mx postfix[7]: 4XYZ12349: to=<u@gmail.com>, relay=gmail-smtp-in.l.goo",
    ];
    let services = ["discard", "qmgr", "smtp", "smtp"];
    let whole: Vec<String> = other
        .iter()
        .zip(services)
        .map(|(l, service)| l.replacen("postfix[7]", &format!("postfix/{service}[7]"), 1))
        .collect();
    let mut cut = vec![rfc5424, local];
    cut.extend(other);
    let mut full = vec![
        rfc5424.replacen("postfix 7", "postfix/smtp 7", 1),
        local.replacen("postfix[7]", "postfix/local[7]", 1),
    ];
    full.extend(whole);
    let mut n = normalizer();
    let (got, got_rejects) = normalize(&mut n, "short", &cut);
    let (want, want_rejects) = normalize(&mut normalizer(), "short", &full);
    let brief = |events: &[OwnedSummary]| -> Vec<(String, Outcome, String)> {
        events
            .iter()
            .map(|e| (e.origin.clone(), e.outcome, e.mx_group.clone()))
            .collect()
    };
    assert_eq!(
        brief(&got),
        [("short:1".to_owned(), Outcome::Delivered, "google".to_owned())]
    );
    assert_eq!(brief(&got), brief(&want));
    assert_eq!(n.stats().skipped(SkipKind::LocalDelivery), 1);
    assert_eq!(reasons(&got_rejects), reasons(&want_rejects));
    assert_eq!(reasons(&got_rejects).len(), 2, "the broken queue id and the cut line");
}

/// Under the default configuration, the corpora's deliveries to loopback (the test
/// suites' stand-ins for receivers; in production, a content filter's hop) are
/// hand-offs: each is skipped and counted as one, and nothing else changes.
#[test]
fn deliveries_to_loopback_are_handoffs_by_default() {
    let exim = String::from_utf8(corpus("exim_mainlog.log")).expect("utf-8");
    let postfix = String::from_utf8(corpus("postfix.log")).expect("utf-8");
    let inputs: [(&'static str, Vec<String>); 3] = [
        ("postfix.log", postfix.lines().map(str::to_owned).collect()),
        ("msgonly", msgonly_framed()),
        ("exim", exim.lines().map(str::to_owned).collect()),
    ];
    let run = |cfg: fn(i64) -> NormalizerConfig| {
        let mut cfg = cfg(us("2026-12-31T12:00:00Z"));
        cfg.default_host = "exim-host".into();
        let mut n = Normalizer::new(cfg);
        let mut events = Vec::new();
        for (file, lines) in &inputs {
            events.extend(normalize(&mut n, file, lines).0);
        }
        (events, n.stats())
    };
    let (counted, counted_stats) = run(config);
    let (default, stats) = run(NormalizerConfig::new);
    // Read off the corpora: every `relay=` / `H=` whose IP is in 127.0.0.0/8.
    let handoffs = [
        "postfix.log:18",
        "postfix.log:32",
        "msgonly:25",
        "msgonly:73",
        "exim:4",
        "exim:6",
        "exim:12",
        "exim:15",
        "exim:21",
        "exim:24",
        "exim:33",
        "exim:34",
    ];
    // Every other event is the same, field for field, but Exim's cutoff after the two
    // hand-offs of its recipient: it still counts, with no receiver to go to.
    let (cutoff, others): (Vec<_>, Vec<_>) = default.into_iter().partition(|e| e.origin == "exim:25");
    for h in handoffs {
        assert!(counted.iter().any(|e| e.origin == h), "{h} is an event when hops count");
    }
    let mut want = counted;
    want.retain(|e| !handoffs.contains(&e.origin.as_str()) && e.origin != "exim:25");
    assert_eq!(others, want);
    let cutoff: Vec<_> = cutoff
        .iter()
        .map(|e| (e.outcome, e.mx_ip.as_deref(), e.mx_group.as_str()))
        .collect();
    assert_eq!(cutoff, [(Outcome::Expired, None, "x.y")]);
    assert_eq!(stats.skipped(SkipKind::Handoff), handoffs.len() as u64);
    assert_eq!(counted_stats.skipped(SkipKind::Handoff), 0);
    assert_eq!(stats.lines, stats.accounted_lines());
}

/// The corpora's egress map with the default hand-offs: a host whose filter listens on
/// loopback.
fn filtered_host() -> Normalizer {
    let mut cfg = two_ip_config();
    cfg.handoffs = Handoffs::loopback();
    Normalizer::new(cfg)
}

/// A message through Postfix's `content_filter` (amavis on 127.0.0.1:10024, back in
/// on :10025 under a new queue id): the receiver's attempts are counted, once each,
/// from the sending IP; the hops to the filter, delivered or not, are hand-offs.
#[test]
fn a_message_through_a_content_filter_is_counted_once_per_receiver_attempt() {
    let lines = [
        "Nov  8 08:00:00 mta-out1 postfix-ip1/qmgr[1]: 1A2B3C4D5E: from=<news@sender.example>, size=2048, nrcpt=1 (queue active)",
        "Nov  8 08:00:00 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<a@gmail.com>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:10024: Connection refused)",
        "Nov  8 08:05:00 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<a@gmail.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=300, delays=300/0/0/0.4, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 6F7E8D9C0B)",
        "Nov  8 08:05:00 mta-out1 postfix-ip1/cleanup[3]: 6F7E8D9C0B: message-id=<campaign-1@sender.example>",
        "Nov  8 08:05:00 mta-out1 postfix-ip1/qmgr[1]: 6F7E8D9C0B: from=<news@sender.example>, size=2400, nrcpt=1 (queue active)",
        "Nov  8 08:05:01 mta-out1 postfix-ip1/smtp[4]: 6F7E8D9C0B: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.1.27] said: 421-4.7.28 rate limited (in reply to end of DATA command))",
        "Nov  8 08:15:01 mta-out1 postfix-ip1/smtp[4]: 6F7E8D9C0B: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=601, delays=600/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK gsmtp)",
        // LMTP into a mailbox server's socket, down and then delivered: local delivery.
        "Nov  8 08:15:00 mta-out1 postfix-ip1/lmtp[5]: 7A8B9C0D1E: to=<b@sender.example>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to mail.sender.example[private/dovecot-lmtp]: No such file or directory)",
        "Nov  8 08:15:01 mta-out1 postfix-ip1/lmtp[5]: 7A8B9C0D1E: to=<b@sender.example>, relay=mail.sender.example[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <b@sender.example> Saved)",
    ];
    let mut n = filtered_host();
    let (events, rejects) = normalize(&mut n, "filter", &lines);
    let got: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.origin.as_str(),
                e.queue_id.as_str(),
                e.outcome,
                e.mx_group.as_str(),
                e.source_ip.as_deref(),
                e.attempt,
                e.message_id.as_deref(),
                e.size_bytes,
            )
        })
        .collect();
    let ip = Some("198.51.100.11");
    let id = Some("campaign-1@sender.example");
    assert_eq!(
        got,
        [
            (
                "filter:6",
                "6F7E8D9C0B",
                Outcome::Deferred,
                "google",
                ip,
                Some(1),
                id,
                Some(2400)
            ),
            (
                "filter:7",
                "6F7E8D9C0B",
                Outcome::Delivered,
                "google",
                ip,
                Some(2),
                id,
                Some(2400)
            ),
        ]
    );
    assert!(rejects.0.is_empty());
    let st = n.stats();
    assert_eq!(st.skipped(SkipKind::Handoff), 2);
    assert_eq!(st.skipped(SkipKind::LocalDelivery), 2);
    assert_eq!(st.lines, st.accounted_lines());
}

/// A filter that stays down: the message expires before it, and each recipient still
/// deferred there is given up, as many expiries as with the hops counted; one the
/// filter took in the end is not. The deferral of the receiver's own attempt is the
/// last attempt's.
#[test]
fn recipients_held_at_a_down_filter_each_expire() {
    let lines = [
        "Nov  8 08:00:00 mta-out1 postfix-ip1/qmgr[1]: 1A2B3C4D5E: from=<news@sender.example>, size=2048, nrcpt=3 (queue active)",
        "Nov  8 08:00:00 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<a@gmail.com>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:10024: Connection refused)",
        "Nov  8 08:00:00 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<b@yahoo.com>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:10024: Connection refused)",
        "Nov  8 08:00:00 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<c@outlook.com>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:10024: Connection refused)",
        "Nov  8 09:00:00 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<c@outlook.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=3600, delays=3600/0/0/0.4, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 6F7E8D9C0B)",
        // Deferred by its receiver before a filter came in its way (a transport
        // changed under the queued mail): its expiry goes where that attempt went.
        "Nov  8 09:00:01 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<d@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.1.27] said: 421-4.7.28 rate limited (in reply to end of DATA command))",
        "Nov  8 10:00:00 mta-out1 postfix-ip1/smtp[2]: 1A2B3C4D5E: to=<d@gmail.com>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:10024: Connection refused)",
        "Nov 13 08:00:00 mta-out1 postfix-ip1/qmgr[1]: 1A2B3C4D5E: from=<news@sender.example>, status=expired, returned to sender",
    ];
    let mut n = filtered_host();
    let (events, rejects) = normalize(&mut n, "down", &lines);
    let got: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Expired)
        .map(|e| {
            (
                e.outcome,
                e.recipient_domain.as_deref(),
                e.mx_host.as_deref(),
                e.mx_group.as_str(),
                e.source_ip.as_deref(),
            )
        })
        .collect();
    let ip = Some("198.51.100.11");
    assert_eq!(
        got,
        [
            (Outcome::Expired, Some("gmail.com"), None, "google", ip),
            (Outcome::Expired, Some("yahoo.com"), None, "yahoo", ip),
            (
                Outcome::Expired,
                Some("gmail.com"),
                Some("gmail-smtp-in.l.google.com"),
                "google",
                ip
            ),
        ]
    );
    assert!(rejects.0.is_empty());
    assert_eq!(n.stats().skipped(SkipKind::Handoff), 5);
}

/// Configured ranges apply to every MTA's receiving address, and only to attempts: an
/// expiry still counts.
#[test]
fn configured_handoff_ranges_apply_to_every_mta() {
    let mut cfg = NormalizerConfig::new(us("2026-11-28T00:00:00Z"));
    cfg.default_host = "edge".into();
    cfg.handoffs = Handoffs::new(vec!["10.20.0.0/16".parse().expect("range")]);
    let mut n = Normalizer::new(cfg);
    let lines = [
        // Exim to a signing proxy in the range, then to a receiver.
        "2026-11-08 10:00:00 1ajLoq-0001wC-Pk => xa@outlook.com R=dnslookup T=remote_smtp H=dkim-proxy.internal [10.20.1.5]:10027 C=\"250 OK\"",
        "2026-11-08 10:00:01 1ajLoq-0001wC-Pk => xb@outlook.com R=dnslookup T=remote_smtp H=outlook-com.olc.protection.outlook.com [52.101.2.2]:25 C=\"250 2.6.0 Queued\"",
        // KumoMTA: a hand-off's deferral, a receiver's, and an expiry.
        r#"{"type":"TransientFailure","id":"1d98","sender":"n@sender.example","recipient":"a@gmail.com","queue":"gmail.com","site":"","size":10,"response":{"code":421,"enhanced_code":null,"content":"try later","command":"."},"peer_address":{"name":"filter.internal.","addr":"10.20.0.9"},"timestamp":1794268800,"num_attempts":1}"#,
        r#"{"type":"TransientFailure","id":"1d99","sender":"n@sender.example","recipient":"b@gmail.com","queue":"gmail.com","site":"","size":10,"response":{"code":421,"enhanced_code":null,"content":"try later","command":"."},"peer_address":{"name":"gmail-smtp-in.l.google.com.","addr":"142.250.102.27"},"timestamp":1794268800,"num_attempts":1}"#,
        r#"{"type":"Expiration","id":"1d98","sender":"n@sender.example","recipient":"a@gmail.com","queue":"gmail.com","site":"","size":10,"response":{"code":551,"enhanced_code":null,"content":"expired","command":null},"peer_address":{"name":"filter.internal.","addr":"10.20.0.9"},"timestamp":1794283200,"num_attempts":3}"#,
        // Postfix to a relay in the range; loopback is no longer in the list, a
        // receiver like any other.
        "Nov  8 08:00:00 mta-out1 postfix/smtp[2]: ABCDE12345: to=<a@yahoo.com>, relay=signer.internal[10.20.4.4]:10027, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        "Nov  8 08:00:01 mta-out1 postfix/smtp[2]: ABCDE12345: to=<b@yahoo.com>, relay=127.0.0.1[127.0.0.1]:2525, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
        // PowerMTA: a hand-off's deferral, then its expiry.
        "type,timeLogged,timeQueued,orig,rcpt,vmta,dlvSourceIp,dsnAction,dsnStatus,dsnDiag,dsnMta,dlvDestinationIp,dlvSize,jobId",
        r#"t,2026-11-08 10:00:00-0500,2026-11-08 09:59:00-0500,s@example.com,pa@gmail.com,vmta1,198.51.100.50,delayed,4.0.0 (pending),"smtp;451 try later",dns;filter.internal (10.20.0.7),10.20.0.7,1000,job1"#,
        r#"b,2026-11-11 10:00:00-0500,2026-11-08 09:59:00-0500,s@example.com,pa@gmail.com,vmta1,198.51.100.50,failed,4.4.7 (delivery time expired),"smtp;message expired",dns;filter.internal (10.20.0.7),10.20.0.7,1000,job1"#,
    ];
    let (events, rejects) = normalize(&mut n, "mixed", &lines);
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.origin.as_str(), e.outcome, e.mx_ip.as_deref(), e.mx_group.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("mixed:2", Outcome::Delivered, Some("52.101.2.2"), "microsoft"),
            ("mixed:4", Outcome::Deferred, Some("142.250.102.27"), "google"),
            // Expiries count, but never at the filter their record names.
            ("mixed:5", Outcome::Expired, None, "google"),
            // A hop seen by its IP alone is the recipient domain's, not its provider's.
            ("mixed:7", Outcome::Delivered, Some("127.0.0.1"), "yahoo.com"),
            ("mixed:10", Outcome::Expired, None, "google"),
        ]
    );
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    assert_eq!(n.stats().skipped(SkipKind::Handoff), 4);
}

/// A row with no MX host at all takes its recipient domain's provider; one whose hop
/// is named by its IP alone keeps the recipient domain, as the hop may be anyone's.
#[test]
fn only_rows_with_no_hop_take_a_mailbox_domains_provider() {
    let mut n = Normalizer::new(config(us("2026-11-28T00:00:00Z")));
    let kumo = |peer: &str| {
        format!(
            r#"{{"type":"TransientFailure","id":"1d98","sender":"n@sender.example","recipient":"a@gmail.com","queue":"gmail.com","site":"","size":10,"response":{{"code":421,"enhanced_code":null,"content":"try later","command":"."}},"peer_address":{peer},"timestamp":1794268800,"num_attempts":1}}"#
        )
    };
    let lines = [
        kumo("null"),
        kumo(r#"{"name":"","addr":"192.0.2.9"}"#),
        "2026-11-08 10:00:00 1ajLoq-0001wC-Pk == xa@hotmail.com R=dnslookup T=remote_smtp defer (-53): retry time not reached for any host for 'hotmail.com'".to_owned(),
        "Nov  8 08:00:03 mta-out1 postfix/smtp[2]: ABCDE12345: to=<c@yahoo.com>, relay=none, delay=1, delays=0/0/0/1, dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=yahoo.com type=MX: Host not found, try again)".to_owned(),
    ];
    let (events, rejects) = normalize(&mut n, "hops", &lines);
    assert!(rejects.0.is_empty(), "{:?}", rejects.0);
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.origin.as_str(), e.mx_group.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("hops:1", "google"),
            ("hops:2", "gmail.com"),
            ("hops:3", "microsoft"),
            ("hops:4", "yahoo"),
        ]
    );
}
