//! The truth: equal to an independent reading of the text, and varied enough
//! to test a report with.

use std::collections::HashSet;

use super::{big, lines, read_back, truth_map};

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
    assert_eq!((t.delivered, t.deferred, t.bounced), (sent, deferred, bounced));
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

/// Holds name no MX, so their group is the recipient domain's: the generator's own
/// spelling of it agrees with the shipped `schemas/mx_groups.toml` for every domain it
/// writes, and an MX it names is in the group the file gives that host.
#[test]
fn the_generators_groups_are_the_shipped_files() {
    let groups = deferlog_classify::MxGroups::builtin();
    for d in crate::providers::DOMAINS {
        let want = groups.mx_group(None, Some(d.name));
        assert_eq!(crate::providers::group_of_domain(d), want, "{}", d.name);
        for mx in d.mxs {
            assert_eq!(groups.mx_group(Some(mx.host), Some(d.name)), mx.group, "{}", mx.host);
        }
    }
}
