//! Syslog timestamps (BSD `Nov  1 08:14:01` and RFC 3339 with microseconds,
//! both UTC), and the UTC hour arithmetic the truth uses.
//!
//! The calendar part changes once a day, so it is rendered once per day and
//! reused; only the clock part is formatted per line.

use chrono::{DateTime, Datelike};

use crate::out::push_padded;

pub(crate) const US_PER_SEC: i64 = 1_000_000;
pub(crate) const US_PER_HOUR: i64 = 3600 * US_PER_SEC;
const US_PER_DAY: i64 = 24 * US_PER_HOUR;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Start of the UTC hour containing `t_us`, in unix seconds.
pub(crate) fn hour_of(t_us: i64) -> i64 {
    t_us.div_euclid(US_PER_HOUR) * 3600
}

/// (year, month 1-12, day 1-31) of a unix day number.
pub(crate) fn civil(day: i64) -> (i32, u32, u32) {
    match DateTime::from_timestamp(day * 86_400, 0) {
        Some(d) => (d.year(), d.month(), d.day()),
        // Outside chrono's range (±262 000 years): not a date anyone asks for.
        None => (1970, 1, 1),
    }
}

/// `YYYY-MM-DDTHH:00:00Z` for an hour start in unix seconds.
pub(crate) fn hour_rfc3339(hour_unix: i64) -> String {
    let day = hour_unix.div_euclid(86_400);
    let (y, m, d) = civil(day);
    let h = hour_unix.rem_euclid(86_400) / 3600;
    format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC): Exim's stamp, PowerMTA's before its offset.
pub(crate) fn push_ymd_hms(out: &mut Vec<u8>, t: i64) {
    let secs = t.div_euclid(US_PER_SEC);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    push_padded(out, y.max(0) as u64, 4);
    out.push(b'-');
    push_padded(out, u64::from(m), 2);
    out.push(b'-');
    push_padded(out, u64::from(d), 2);
    out.push(b' ');
    let s = secs.rem_euclid(86_400);
    push_padded(out, (s / 3600) as u64, 2);
    out.push(b':');
    push_padded(out, (s / 60 % 60) as u64, 2);
    out.push(b':');
    push_padded(out, (s % 60) as u64, 2);
}

#[derive(Debug)]
pub(crate) struct Stamper {
    day: i64,
    /// `Nov  1 `
    bsd: [u8; 7],
    /// `2026-11-01T`
    rfc: Vec<u8>,
}

impl Stamper {
    pub(crate) fn new() -> Stamper {
        Stamper {
            day: i64::MIN,
            bsd: [b' '; 7],
            rfc: Vec::new(),
        }
    }

    fn set_day(&mut self, t_us: i64) {
        let day = t_us.div_euclid(US_PER_DAY);
        if day == self.day {
            return;
        }
        self.day = day;
        let (y, m, d) = civil(day);
        let mon = MONTHS[(m as usize).saturating_sub(1) % 12].as_bytes();
        self.bsd[..3].copy_from_slice(mon);
        self.bsd[3] = b' ';
        // Day padded with a space to width 2, as syslog does.
        self.bsd[4] = if d >= 10 { b'0' + (d / 10) as u8 } else { b' ' };
        self.bsd[5] = b'0' + (d % 10) as u8;
        self.bsd[6] = b' ';
        self.rfc.clear();
        push_padded(&mut self.rfc, y.max(0) as u64, 4);
        self.rfc.push(b'-');
        push_padded(&mut self.rfc, u64::from(m), 2);
        self.rfc.push(b'-');
        push_padded(&mut self.rfc, u64::from(d), 2);
        self.rfc.push(b'T');
    }

    fn push_clock(out: &mut Vec<u8>, t_us: i64) {
        let secs_of_day = t_us.rem_euclid(US_PER_DAY) / US_PER_SEC;
        push_padded(out, (secs_of_day / 3600) as u64, 2);
        out.push(b':');
        push_padded(out, (secs_of_day / 60 % 60) as u64, 2);
        out.push(b':');
        push_padded(out, (secs_of_day % 60) as u64, 2);
    }

    /// `Nov  1 08:14:01`
    pub(crate) fn bsd(&mut self, out: &mut Vec<u8>, t_us: i64) {
        self.set_day(t_us);
        out.extend_from_slice(&self.bsd);
        Self::push_clock(out, t_us);
    }

    /// `2026-11-01T08:14:01.123456+00:00`
    pub(crate) fn rfc3339(&mut self, out: &mut Vec<u8>, t_us: i64) {
        self.set_day(t_us);
        out.extend_from_slice(&self.rfc);
        Self::push_clock(out, t_us);
        out.push(b'.');
        push_padded(out, t_us.rem_euclid(US_PER_SEC) as u64, 6);
        out.extend_from_slice(b"+00:00");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_START_UNIX;

    #[test]
    fn stamps() {
        let mut s = Stamper::new();
        let t = (DEFAULT_START_UNIX + 8 * 3600 + 14 * 60 + 1) * US_PER_SEC + 123_456;
        let mut v = Vec::new();
        s.bsd(&mut v, t);
        v.push(b'|');
        s.rfc3339(&mut v, t);
        v.push(b'|');
        s.bsd(&mut v, t + 12 * 86_400 * US_PER_SEC);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "Nov  1 08:14:01|2026-11-01T08:14:01.123456+00:00|Nov 13 08:14:01"
        );
        assert_eq!(hour_rfc3339(hour_of(t)), "2026-11-01T08:00:00Z");
    }
}
