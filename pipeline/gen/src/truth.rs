//! The expected hourly report, computed from the generator's own model as it
//! writes each line (never by reading its output back).
//!
//! Keys are (UTC hour, source_ip, mx_host, mx_group). Attempts land in the
//! hour of their status line; an expiry lands in the hour of the expiry line,
//! under the source IP and MX of that recipient's last attempt.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::stamp::hour_rfc3339;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// delivered + deferred + bounced.
    pub attempts: u64,
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
    /// Recipients given up at expiry (not attempts).
    pub expired: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.attempts += o.attempts;
        self.delivered += o.delivered;
        self.deferred += o.deferred;
        self.bounced += o.bounced;
        self.expired += o.expired;
    }
}

/// What one attempt or expiry adds to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Deferred,
    Bounced,
    Expired,
}

/// One report row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruthRow<'a> {
    /// Start of the UTC hour, unix seconds.
    pub hour_unix: i64,
    /// Empty when the sending instance is not in the egress map.
    pub source_ip: &'a str,
    pub mx_host: &'a str,
    pub mx_group: &'a str,
    pub counts: Counts,
}

impl TruthRow<'_> {
    /// The hour as `YYYY-MM-DDTHH:00:00Z`.
    pub fn hour_rfc3339(&self) -> String {
        hour_rfc3339(self.hour_unix)
    }
}

/// Keys borrow the generator's static tables, so a lookup costs no
/// allocation, and tuple order on `&str` is exactly the report's byte order.
type Key = (i64, &'static str, &'static str, &'static str);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    rows: BTreeMap<Key, Counts>,
}

/// The CSV header, column for column.
pub const CSV_HEADER: &str = "hour,source_ip,mx_host,mx_group,attempts,delivered,deferred,bounced,expired";

impl Truth {
    pub(crate) fn record(
        &mut self,
        hour_unix: i64,
        source_ip: &'static str,
        mx_host: &'static str,
        mx_group: &'static str,
        outcome: Outcome,
    ) {
        let c = self.rows.entry((hour_unix, source_ip, mx_host, mx_group)).or_default();
        match outcome {
            Outcome::Delivered => c.delivered += 1,
            Outcome::Deferred => c.deferred += 1,
            Outcome::Bounced => c.bounced += 1,
            Outcome::Expired => {
                c.expired += 1;
                return;
            }
        }
        c.attempts += 1;
    }

    /// Rows sorted by hour, then source_ip, mx_host, mx_group as byte strings.
    pub fn rows(&self) -> impl Iterator<Item = TruthRow<'_>> {
        self.rows.iter().map(|(&(h, s, m, g), &counts)| TruthRow {
            hour_unix: h,
            source_ip: s,
            mx_host: m,
            mx_group: g,
            counts,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row for one key, if any line contributed to it (a linear scan:
    /// meant for tests and spot checks).
    pub fn get(&self, hour_unix: i64, source_ip: &str, mx_host: &str, mx_group: &str) -> Option<Counts> {
        self.rows()
            .find(|r| {
                r.hour_unix == hour_unix && r.source_ip == source_ip && r.mx_host == mx_host && r.mx_group == mx_group
            })
            .map(|r| r.counts)
    }

    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.rows.values() {
            t.add(c);
        }
        t
    }

    /// `hour,source_ip,mx_host,mx_group,attempts,delivered,deferred,bounced,expired`,
    /// hour as `YYYY-MM-DDTHH:00:00Z`, an unmapped source as an empty field.
    /// No value contains a comma, so nothing is quoted.
    pub fn write_csv<W: Write>(&self, w: W) -> io::Result<()> {
        let mut w = io::BufWriter::new(w);
        writeln!(w, "{CSV_HEADER}")?;
        let mut hour_cache = (i64::MIN, String::new());
        for r in self.rows() {
            if hour_cache.0 != r.hour_unix {
                hour_cache = (r.hour_unix, r.hour_rfc3339());
            }
            let c = r.counts;
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{}",
                hour_cache.1,
                r.source_ip,
                r.mx_host,
                r.mx_group,
                c.attempts,
                c.delivered,
                c.deferred,
                c.bounced,
                c.expired
            )?;
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_order() {
        let mut t = Truth::default();
        t.record(7200, "198.51.100.11", "mx.b", "b", Outcome::Deferred);
        t.record(3600, "198.51.100.11", "mx.b", "b", Outcome::Delivered);
        t.record(3600, "", "mx.b", "b", Outcome::Bounced);
        t.record(3600, "", "mx.b", "b", Outcome::Expired);
        t.record(3600, "", "mx.a", "a", Outcome::Delivered);
        let mut v = Vec::new();
        assert!(t.write_csv(&mut v).is_ok());
        assert_eq!(
            String::from_utf8_lossy(&v),
            "hour,source_ip,mx_host,mx_group,attempts,delivered,deferred,bounced,expired\n\
             1970-01-01T01:00:00Z,,mx.a,a,1,1,0,0,0\n\
             1970-01-01T01:00:00Z,,mx.b,b,1,0,0,1,1\n\
             1970-01-01T01:00:00Z,198.51.100.11,mx.b,b,1,1,0,0,0\n\
             1970-01-01T02:00:00Z,198.51.100.11,mx.b,b,1,0,1,0,0\n"
        );
        let tot = t.totals();
        assert_eq!((tot.attempts, tot.expired), (4, 1));
        assert_eq!(t.get(7200, "198.51.100.11", "mx.b", "b").map(|c| c.deferred), Some(1));
    }
}
