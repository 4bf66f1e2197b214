//! Bounded label sets: which series an instance's totals are exported as.
//!
//! - `mx_host`: each MX group gets its own series for at most `top_k` hosts. While a
//!   group has room, the hosts seen so far are admitted by volume (most attempts
//!   first); the rest are summed into `mx_host="other"`. Admission is for good: a host
//!   admitted later keeps what it had counted under `other` there (its base), so no
//!   series ever goes down.
//! - Tenant budget: `budget` delivery series per tenant, admitted a sending IP × MX
//!   group pair at a time: a pair first seen while the tenant has room gets its
//!   attempts, deferrals and expiries series (the evidence for one destination is only
//!   useful whole); one first seen when the tenant is full is counted under
//!   `source_ip`, `mx_group` and `mx_host` `other` instead, for good. An admitted
//!   pair's later series (a new cause, host or outcome) still get their own while the
//!   tenant is under twice its budget, so the overshoot is bounded.
//!
//! Both decisions live in the [`Ledger`], so a restart renders the same series.

use crate::counts::{Family, key, split};
use crate::ledger::Ledger;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub const OTHER: &str = "other";

/// Series as exported, and what was folded to get there.
#[derive(Debug, Default, PartialEq)]
pub struct Rendered {
    pub series: BTreeMap<String, u64>,
    /// (group, host) pairs counted under `mx_host="other"`.
    pub hosts_folded: usize,
    /// Delivery series counted under the tenant's overflow series.
    pub series_over_budget: usize,
}

/// Hosts that need no admission: no MX known, or already the fold target.
fn is_unnamed(host: &str) -> bool {
    host.is_empty() || host == OTHER
}

/// Admits hosts into groups that have room, by volume.
fn admit(ledger: &mut Ledger, top_k: usize) {
    let mut volume: BTreeMap<&str, HashMap<&str, u64>> = BTreeMap::new();
    for (k, v) in ledger.totals.iter() {
        if let Some((Family::Attempts, l)) = split(k)
            && !is_unnamed(l[3])
        {
            *volume.entry(l[2]).or_default().entry(l[3]).or_default() += v;
        }
    }
    let mut newly: Vec<(String, String)> = Vec::new();
    for (group, hosts) in volume {
        let admitted = ledger.admitted.get(group);
        let room = top_k.saturating_sub(admitted.map_or(0, BTreeMap::len));
        if room == 0 {
            continue;
        }
        let mut candidates: Vec<(&str, u64)> = hosts
            .into_iter()
            .filter(|(h, _)| !admitted.is_some_and(|a| a.contains_key(*h)))
            .collect();
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        newly.extend(
            candidates
                .into_iter()
                .take(room)
                .map(|(h, _)| (group.to_owned(), h.to_owned())),
        );
    }
    for (group, host) in newly {
        // What the host's series had under `other` stays there.
        let mut base = crate::Counts::default();
        let folded: Vec<(String, u64)> = ledger
            .folded
            .iter()
            .filter(|(k, _)| split(k).is_some_and(|(_, l)| l[2] == group && l[3] == host))
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (k, v) in folded {
            ledger.folded.remove(&k);
            base.add(&k, v);
        }
        ledger.admitted.entry(group).or_default().insert(host, base);
    }
}

/// Renders the ledger's totals as exported series, admitting hosts first.
pub fn render(ledger: &mut Ledger, top_k: usize, budget: usize) -> Rendered {
    admit(ledger, top_k);
    let mut out = Rendered::default();
    let mut per_tenant: HashMap<String, usize> = HashMap::new();
    // Pairs admitted: every delivery family's first labels are tenant, source_ip and
    // mx_group, and host folding keeps them.
    let mut pairs: HashSet<[&str; 3]> = HashSet::new();
    for k in &ledger.budgeted {
        if let Some((_, l)) = split(k) {
            *per_tenant.entry(l[0].to_owned()).or_default() += 1;
            pairs.insert(pair_of(&l));
        }
    }
    let mut folded_hosts: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut over: BTreeSet<String> = BTreeSet::new();
    let mut newly_folded: Vec<(String, u64)> = Vec::new();
    let mut to_budget: BTreeSet<String> = BTreeSet::new();
    for (k, v) in ledger.totals.iter() {
        let Some((family, l)) = split(k) else { continue };
        if !family.is_delivery() {
            *out.series.entry(k.to_owned()).or_default() += v;
            continue;
        }
        // Host folding first: (rendered key, value) parts of this raw series.
        let mut parts: Vec<(String, u64)> = Vec::with_capacity(2);
        if family == Family::Attempts && !is_unnamed(l[3]) {
            let other = key(family, &[l[0], l[1], l[2], OTHER, l[4]]);
            match ledger.admitted.get(l[2]).and_then(|a| a.get(l[3])) {
                Some(base) => {
                    let b = base.get(k).min(v);
                    parts.push((k.to_owned(), v - b));
                    if b > 0 {
                        parts.push((other, b));
                    }
                }
                None => {
                    folded_hosts.insert((l[2], l[3]));
                    newly_folded.push((k.to_owned(), v));
                    parts.push((other, v));
                }
            }
        } else {
            parts.push((k.to_owned(), v));
        }
        // Then the tenant budget, on the series as rendered.
        for (rk, rv) in parts {
            let placed = ledger.budgeted.contains(&rk) || to_budget.contains(&rk) || {
                let n = per_tenant.entry(l[0].to_owned()).or_default();
                let pair = pair_of(&l);
                let room = if pairs.contains(&pair) {
                    budget.saturating_mul(2)
                } else {
                    budget
                };
                let admit = *n < room;
                if admit {
                    *n += 1;
                    pairs.insert(pair);
                    to_budget.insert(rk.clone());
                }
                admit
            };
            let rk = if placed {
                rk
            } else {
                let o = overflow_key(family, &l, &rk);
                over.insert(rk);
                o
            };
            *out.series.entry(rk).or_default() += rv;
        }
    }
    ledger.budgeted.extend(to_budget);
    for (k, v) in newly_folded {
        ledger.folded.set(k, v);
    }
    out.hosts_folded = folded_hosts.len();
    out.series_over_budget = over.len();
    out
}

/// The (tenant, source_ip, mx_group) of a delivery series' labels.
fn pair_of<'a>(l: &[&'a str]) -> [&'a str; 3] {
    [l[0], l[1], l[2]]
}

/// The tenant's overflow series of a family: every label but tenant and the
/// outcome/class is `other`.
fn overflow_key(family: Family, raw: &[&str], rendered: &str) -> String {
    let last = split(rendered).map_or("", |(_, l)| l.last().copied().unwrap_or(""));
    match family {
        Family::Attempts => key(family, &[raw[0], OTHER, OTHER, OTHER, last]),
        Family::Deferrals => key(family, &[raw[0], OTHER, OTHER, last]),
        _ => key(family, &[raw[0], OTHER, OTHER]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::{Counts, DeliveryRow};

    fn attempts(c: &mut Counts, tenant: &str, host: &str, n: u64) {
        attempts_from(c, tenant, "192.0.2.1", host, n);
    }

    fn attempts_from(c: &mut Counts, tenant: &str, source_ip: &str, host: &str, n: u64) {
        delivery(c, tenant, source_ip, host, ("delivered", "none"), n);
    }

    fn delivery(c: &mut Counts, tenant: &str, source_ip: &str, host: &str, (outcome, class): (&str, &str), n: u64) {
        c.add_delivery(
            &DeliveryRow {
                tenant,
                mta: "postfix",
                source_ip,
                mx_group: "microsoft",
                mx_host: host,
                outcome,
                class,
                events: n,
            },
            usize::MAX,
        );
    }

    fn series_of(r: &Rendered, family: Family) -> BTreeMap<Vec<String>, u64> {
        r.series
            .iter()
            .filter_map(|(k, v)| {
                let (f, l) = split(k)?;
                (f == family).then(|| (l.into_iter().map(str::to_owned).collect(), *v))
            })
            .collect()
    }

    fn host_series(r: &Rendered) -> BTreeMap<String, u64> {
        series_of(r, Family::Attempts)
            .into_iter()
            .map(|(l, v)| (l[3].clone(), v))
            .collect()
    }

    #[test]
    fn the_biggest_hosts_get_series_and_the_rest_fold_into_other() {
        let mut l = Ledger::new();
        let mut c = Counts::default();
        for (h, n) in [("a", 5), ("b", 50), ("c", 20), ("d", 1)] {
            attempts(&mut c, "t", h, n);
        }
        l.commit("s", &c);
        let r = render(&mut l, 2, 1000);
        let hosts = host_series(&r);
        assert_eq!(hosts.get("b"), Some(&50));
        assert_eq!(hosts.get("c"), Some(&20));
        assert_eq!(hosts.get("other"), Some(&6));
        assert_eq!(r.hosts_folded, 2);
        assert_eq!(hosts.values().sum::<u64>(), 76);
    }

    #[test]
    fn no_series_goes_down_when_a_host_is_admitted_later() {
        let mut l = Ledger::new();
        let mut c = Counts::default();
        attempts(&mut c, "t", "a", 10);
        l.commit("s", &c);
        let first = host_series(&render(&mut l, 1, 1000));
        assert_eq!(first.get("a"), Some(&10));
        // "b" arrives when the group is full: it stays under other even if it grows.
        attempts(&mut c, "t", "b", 100);
        l.commit("s", &c);
        let second = host_series(&render(&mut l, 1, 1000));
        assert_eq!(second.get("a"), Some(&10));
        assert_eq!(second.get("other"), Some(&100));
        // With room for two (a restart with a bigger K), "b" is admitted: what it had
        // under other stays there, and its own series counts from there on.
        attempts(&mut c, "t", "b", 7);
        l.commit("s", &c);
        let third = host_series(&render(&mut l, 2, 1000));
        assert_eq!(third.get("other"), Some(&100));
        assert_eq!(third.get("b"), Some(&7));
        attempts(&mut c, "t", "b", 3);
        l.commit("s", &c);
        let fourth = host_series(&render(&mut l, 2, 1000));
        assert_eq!((fourth.get("b"), fourth.get("other")), (Some(&10), Some(&100)));
    }

    #[test]
    fn a_tenant_over_its_budget_counts_new_series_in_its_overflow() {
        let mut l = Ledger::new();
        let mut c = Counts::default();
        attempts_from(&mut c, "small", "192.0.2.1", "a", 1);
        attempts_from(&mut c, "small", "192.0.2.2", "a", 2);
        attempts(&mut c, "big", "a", 3);
        l.commit("s", &c);
        let r = render(&mut l, 10, 1);
        let all = series_of(&r, Family::Attempts);
        let overflow = |t: &str| {
            vec![
                t.into(),
                "other".into(),
                "other".into(),
                "other".into(),
                "delivered".into(),
            ]
        };
        assert_eq!(all.get(&overflow("small")), Some(&2));
        assert_eq!(r.series_over_budget, 1);
        // The tenants do not share a budget.
        assert_eq!(all.get(&overflow("big")), None);
        let total: u64 = all.values().sum();
        assert_eq!(total, 6);
        // The decision holds on the next render.
        assert_eq!(render(&mut l, 10, 1).series, r.series);
    }

    #[test]
    fn the_budget_admits_a_sending_ip_and_mx_group_whole() {
        let mut l = Ledger::new();
        let mut c = Counts::default();
        // Room for three series: 192.0.2.1's attempts take it, and its deferrals (keys
        // after every attempts key) come with it, up to twice the budget.
        delivery(&mut c, "t", "192.0.2.1", "a", ("delivered", "none"), 5);
        delivery(&mut c, "t", "192.0.2.1", "a", ("deferred", "connection_limit"), 3);
        delivery(&mut c, "t", "192.0.2.1", "b", ("delivered", "none"), 1);
        delivery(&mut c, "t", "192.0.2.2", "a", ("deferred", "connection_limit"), 4);
        l.commit("s", &c);
        let r = render(&mut l, 10, 3);
        let deferrals = series_of(&r, Family::Deferrals);
        let d = |ip: &str| {
            vec![
                "t".to_owned(),
                ip.to_owned(),
                "microsoft".to_owned(),
                "connection_limit".to_owned(),
            ]
        };
        assert_eq!(deferrals.get(&d("192.0.2.1")), Some(&3));
        assert_eq!(deferrals.get(&d("other")), None);
        // 192.0.2.2 came when the tenant was full: all of it in the overflow.
        let overflow = vec![
            "t".to_owned(),
            "other".to_owned(),
            "other".to_owned(),
            "connection_limit".to_owned(),
        ];
        assert_eq!(deferrals.get(&overflow), Some(&4));
        let attempts = series_of(&r, Family::Attempts);
        assert_eq!(attempts.len(), 4, "{attempts:?}");
        assert_eq!(attempts.values().sum::<u64>(), 13);
        // A new cause for the admitted pair later is its own series too (5 of 6)...
        delivery(&mut c, "t", "192.0.2.1", "a", ("deferred", "rate_limit"), 2);
        l.commit("s", &c);
        let r = render(&mut l, 10, 3);
        let of = |ip: &str, class: &str| vec!["t".to_owned(), ip.to_owned(), "microsoft".to_owned(), class.to_owned()];
        assert_eq!(
            series_of(&r, Family::Deferrals).get(&of("192.0.2.1", "rate_limit")),
            Some(&2)
        );
        // ... up to twice the budget; past it, into the overflow.
        delivery(&mut c, "t", "192.0.2.1", "a", ("deferred", "greylist"), 1);
        delivery(&mut c, "t", "192.0.2.1", "a", ("deferred", "tls"), 1);
        l.commit("s", &c);
        let r = render(&mut l, 10, 3);
        let deferrals = series_of(&r, Family::Deferrals);
        assert_eq!(deferrals.get(&of("192.0.2.1", "greylist")), Some(&1), "the 6th series");
        assert_eq!(deferrals.get(&of("192.0.2.1", "tls")), None);
        let overflow = |class: &str| vec!["t".to_owned(), "other".to_owned(), "other".to_owned(), class.to_owned()];
        assert_eq!(deferrals.get(&overflow("tls")), Some(&1), "past twice the budget");
    }
}
