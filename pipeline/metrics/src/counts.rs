//! Cumulative counts by metric family and label values: what a scope has counted
//! since it began (stored in its checkpoint) and what an instance exports.
//!
//! Plain data, no Prometheus types: the stream keeps one per scope and hands it over
//! at each checkpoint; the exporter turns the sum into series.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The counter families, their metric names and label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Attempts,
    Deferrals,
    Expiries,
    Records,
    Events,
    Rejects,
    Skipped,
    LateEvents,
    LateUnmerged,
    CorrelationEvictions,
    StateFolded,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::Attempts,
        Family::Deferrals,
        Family::Expiries,
        Family::Records,
        Family::Events,
        Family::Rejects,
        Family::Skipped,
        Family::LateEvents,
        Family::LateUnmerged,
        Family::CorrelationEvictions,
        Family::StateFolded,
    ];

    /// The short tag used in keys (stable: keys are persisted).
    fn tag(self) -> &'static str {
        match self {
            Family::Attempts => "attempts",
            Family::Deferrals => "deferrals",
            Family::Expiries => "expiries",
            Family::Records => "records",
            Family::Events => "events",
            Family::Rejects => "rejects",
            Family::Skipped => "skipped",
            Family::LateEvents => "late_events",
            Family::LateUnmerged => "late_unmerged",
            Family::CorrelationEvictions => "correlation_evictions",
            Family::StateFolded => "state_folded",
        }
    }

    fn from_tag(t: &str) -> Option<Family> {
        Family::ALL.iter().copied().find(|f| f.tag() == t)
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Attempts => "deferlog_attempts_total",
            Family::Deferrals => "deferlog_deferrals_total",
            Family::Expiries => "deferlog_expiries_total",
            Family::Records => "deferlog_records_total",
            Family::Events => "deferlog_events_total",
            Family::Rejects => "deferlog_rejects_total",
            Family::Skipped => "deferlog_skipped_lines_total",
            Family::LateEvents => "deferlog_late_events_total",
            Family::LateUnmerged => "deferlog_late_events_unmerged_total",
            Family::CorrelationEvictions => "deferlog_correlation_evictions_total",
            Family::StateFolded => "deferlog_state_folded_events_total",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Family::Attempts => "Delivery attempts (one per recipient per try) by outcome.",
            Family::Deferrals => "Deferred attempts by cause class.",
            Family::Expiries => "Recipients given up after the queue lifetime.",
            Family::Records => "Input records consumed (Kafka records or log lines).",
            Family::Events => "DeliveryEvents produced, by MTA.",
            Family::Rejects => "Input kept in the dead-letter output, by MTA and reason.",
            Family::Skipped => "Log lines that are not delivery events, by kind.",
            Family::LateEvents => {
                "Events whose hour had already been written; the hour is written again (unless it closed more \
                 than keep_closed_hours ago: see deferlog_late_events_unmerged_total)."
            }
            Family::LateUnmerged => {
                "Late events whose hour was closed longer ago than keep_closed_hours: in the event archive, not in \
                 the hourly rows."
            }
            Family::CorrelationEvictions => "Queue ids dropped from full correlation state.",
            Family::StateFolded => {
                "Events counted under `other` label values because a scope's series limit was reached."
            }
        }
    }

    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Family::Attempts => &["tenant", "source_ip", "mx_group", "mx_host", "outcome"],
            Family::Deferrals => &["tenant", "source_ip", "mx_group", "class"],
            Family::Expiries => &["tenant", "source_ip", "mx_group"],
            Family::Records
            | Family::LateEvents
            | Family::LateUnmerged
            | Family::CorrelationEvictions
            | Family::StateFolded => &[],
            Family::Events => &["mta"],
            Family::Rejects => &["mta", "reason"],
            Family::Skipped => &["kind"],
        }
    }

    /// Families whose label sets come from the input and so need bounding.
    pub fn is_delivery(self) -> bool {
        matches!(self, Family::Attempts | Family::Deferrals | Family::Expiries)
    }
}

/// Separates family and label values in a key; input text never carries it (it is
/// replaced when a key is built).
const SEP: char = '\u{1f}';

/// A series: family and label values, as one string (compact in JSON, one lookup).
pub fn key(family: Family, values: &[&str]) -> String {
    let mut k = String::with_capacity(16 + values.iter().map(|v| v.len() + 1).sum::<usize>());
    push_key(&mut k, family, values);
    k
}

fn push_key(k: &mut String, family: Family, values: &[&str]) {
    k.push_str(family.tag());
    for v in values {
        k.push(SEP);
        if v.contains(SEP) {
            k.push_str(&v.replace(SEP, "_"));
        } else {
            k.push_str(v);
        }
    }
}

/// The family and label values of a key.
pub fn split(key: &str) -> Option<(Family, Vec<&str>)> {
    let mut parts = key.split(SEP);
    let family = Family::from_tag(parts.next()?)?;
    let values: Vec<&str> = parts.collect();
    (values.len() == family.labels().len()).then_some((family, values))
}

/// One row of `queries/counters.sql`: events of one label set in a batch.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryRow<'a> {
    pub tenant: &'a str,
    pub mta: &'a str,
    pub source_ip: &'a str,
    pub mx_group: &'a str,
    pub mx_host: &'a str,
    pub outcome: &'a str,
    pub class: &'a str,
    pub events: u64,
}

/// Series counts. `BTreeMap` so stored files and renderings are in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counts {
    series: BTreeMap<String, u64>,
}

impl Counts {
    pub fn get(&self, key: &str) -> u64 {
        self.series.get(key).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.series.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn add(&mut self, key: &str, n: u64) {
        match self.series.get_mut(key) {
            Some(v) => *v += n,
            None => {
                self.series.insert(key.to_owned(), n);
            }
        }
    }

    /// Sets a count the caller keeps cumulatively elsewhere (parser statistics).
    pub fn set(&mut self, key: String, n: u64) {
        self.series.insert(key, n);
    }

    pub fn remove(&mut self, key: &str) {
        self.series.remove(key);
    }

    /// Adds one row of delivery counts. Past `limit` series in this set a new series
    /// folds, counted in [`Family::StateFolded`], so a scope's state stays bounded
    /// whatever the input (tenants from record keys, a long tail of MX groups): a new
    /// MX host of a (tenant, source IP, MX group) already counted into that group's
    /// `mx_host="other"` series, anything else into one whose tenant, source IP, MX
    /// group and host are all `other` (its outcome or class kept).
    pub fn add_delivery(&mut self, r: &DeliveryRow<'_>, limit: usize) {
        const O: &str = "other";
        let full = self.series.len() >= limit;
        let mut k = String::with_capacity(96);
        // Whether this row went (in any family) into an `other` series.
        let mut folded = false;
        let mut count = |c: &mut Counts, family: Family, values: &[&str]| {
            k.clear();
            push_key(&mut k, family, values);
            if full && family != Family::Events && !c.series.contains_key(&k) {
                let fold = |k: &mut String, folded: &[&str]| {
                    k.clear();
                    push_key(k, family, folded);
                };
                // A new host of a (tenant, source IP, MX group) already counted goes
                // to that group's `other` host; a new group, tenant or IP overflows.
                let group_known = family == Family::Attempts && {
                    k.clear();
                    push_key(&mut k, family, &values[..3]);
                    k.push(SEP);
                    c.series
                        .range(k.clone()..)
                        .next()
                        .is_some_and(|(s, _)| s.starts_with(k.as_str()))
                };
                let last = values[values.len() - 1];
                match family {
                    _ if group_known => fold(&mut k, &[values[0], values[1], values[2], O, last]),
                    Family::Attempts => fold(&mut k, &[O, O, O, O, last]),
                    Family::Deferrals => fold(&mut k, &[O, O, O, last]),
                    _ => fold(&mut k, &[O, O, O]),
                }
                folded = true;
            }
            c.add(&k, r.events);
        };
        if r.outcome == "expired" {
            count(self, Family::Expiries, &[r.tenant, r.source_ip, r.mx_group]);
        } else {
            count(
                self,
                Family::Attempts,
                &[r.tenant, r.source_ip, r.mx_group, r.mx_host, r.outcome],
            );
            if r.outcome == "deferred" {
                count(self, Family::Deferrals, &[r.tenant, r.source_ip, r.mx_group, r.class]);
            }
        }
        count(self, Family::Events, &[r.mta]);
        // Events, not series: a deferral folds its attempt and its cause.
        if folded {
            self.add(&key(Family::StateFolded, &[]), r.events);
        }
    }

    /// For each series, how much `self` is above `base` (0 where it is not: series
    /// at zero are still series, so dashboards see them before anything happens).
    pub fn above<'a>(&'a self, base: &'a Counts) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        self.iter().map(move |(k, v)| (k, v.saturating_sub(base.get(k))))
    }

    /// Sum of a family's counts.
    pub fn total(&self, family: Family) -> u64 {
        self.iter()
            .filter(|(k, _)| split(k).is_some_and(|(f, _)| f == family))
            .map(|(_, v)| v)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(host: &'a str, outcome: &'a str, class: &'a str, n: u64) -> DeliveryRow<'a> {
        DeliveryRow {
            tenant: "t",
            mta: "postfix",
            source_ip: "192.0.2.1",
            mx_group: "google",
            mx_host: host,
            outcome,
            class,
            events: n,
        }
    }

    #[test]
    fn a_deferral_is_an_attempt_and_an_expiry_is_not() {
        let mut c = Counts::default();
        c.add_delivery(&row("mx1", "deferred", "rate_limit", 3), usize::MAX);
        c.add_delivery(&row("mx1", "delivered", "none", 2), usize::MAX);
        c.add_delivery(&row("", "expired", "expired", 1), usize::MAX);
        assert_eq!(c.total(Family::Attempts), 5);
        assert_eq!(c.total(Family::Deferrals), 3);
        assert_eq!(c.total(Family::Expiries), 1);
        assert_eq!(c.total(Family::Events), 6);
        let k = key(Family::Deferrals, &["t", "192.0.2.1", "google", "rate_limit"]);
        assert_eq!(c.get(&k), 3);
    }

    #[test]
    fn keys_split_back_into_their_labels_even_with_the_separator_in_input() {
        let k = key(Family::Rejects, &["postfix", "bad\u{1f}reason"]);
        assert_eq!(split(&k), Some((Family::Rejects, vec!["postfix", "bad_reason"])));
        assert_eq!(split("nope"), None);
        assert_eq!(split(&key(Family::Records, &["extra"])), None);
    }

    #[test]
    fn past_the_limit_new_hosts_fold_into_other_and_are_counted() {
        let mut c = Counts::default();
        c.add_delivery(&row("mx1", "delivered", "none", 1), 2);
        c.add_delivery(&row("mx2", "delivered", "none", 4), 2);
        c.add_delivery(&row("mx1", "delivered", "none", 1), 2);
        let other = key(Family::Attempts, &["t", "192.0.2.1", "google", "other", "delivered"]);
        assert_eq!(c.get(&other), 4);
        assert_eq!(c.get(&key(Family::StateFolded, &[])), 4);
        assert_eq!(c.total(Family::Attempts), 6);
        // A folded deferral is one event folded, though its attempt and its cause
        // both went to `other` series.
        c.add_delivery(&row("mx3", "deferred", "rate_limit", 5), 2);
        assert_eq!(c.get(&key(Family::StateFolded, &[])), 9);
        assert_eq!(c.total(Family::Deferrals), 5);
    }

    #[test]
    fn past_the_limit_state_stays_bounded_whatever_the_labels() {
        let mut c = Counts::default();
        let names: Vec<String> = (0..500).map(|i| format!("n{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            let outcome = ["delivered", "deferred", "expired"][i % 3];
            let r = DeliveryRow {
                tenant: n,
                mta: "postfix",
                source_ip: n,
                mx_group: n,
                mx_host: n,
                outcome,
                class: "rate_limit",
                events: 2,
            };
            c.add_delivery(&r, 50);
        }
        // The limit, plus one overflow series per family and outcome or class, and
        // the count of what folded.
        assert!(c.iter().count() <= 50 + 5, "{}", c.iter().count());
        assert_eq!(c.total(Family::Attempts), 2 * 334);
        assert_eq!(c.total(Family::Deferrals), 2 * 167);
        assert_eq!(c.total(Family::Expiries), 2 * 166);
        let overflow = key(Family::Expiries, &["other", "other", "other"]);
        assert!(c.get(&overflow) > 0);
        assert!(c.get(&key(Family::StateFolded, &[])) > 0);
    }

    #[test]
    fn above_is_the_growth_over_a_base() {
        let mut a = Counts::default();
        a.add("x", 5);
        a.add("y", 1);
        let mut b = Counts::default();
        b.add("x", 2);
        b.add("y", 3);
        let d: Vec<_> = a.above(&b).collect();
        assert_eq!(d, vec![("x", 3), ("y", 0)]);
    }
}
