//! Syslog timestamps: BSD (`Nov  8 08:14:01`, no year, no zone) and RFC 3339.
//!
//! A BSD stamp gets its zone from configuration and its year from a reference time
//! (the ingest time, or one given by the user): the year after the reference's if that
//! puts the line at most [`FUTURE_TOLERANCE_DAYS`] after it (January lines read on New
//! Year's Eve), else the reference's year, unless that puts the line more than those
//! days after the reference, in which case the year before (December lines read in
//! January). With a reach set (the stream: the reference is the record's arrival, and
//! a line is not logged days after it arrived), "those days" is the reach, rounded up
//! to whole days: last December's lines produced to Kafka in early December are last
//! year's, not stamps weeks ahead. A replay whose reference is the time of reading
//! takes one day ([`READ_NOW_DAYS_AHEAD`]) for the same reason.

use chrono::{Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use deferlog_event::HOUR_US;
use std::str::FromStr;

/// How far past the reference a BSD stamp may lie and still be this year.
pub const FUTURE_TOLERANCE_DAYS: i64 = 31;

/// The same when the reference is the time of reading (replay's default): a log read
/// now holds no line from later than now, give or take clock skew and zones.
pub const READ_NOW_DAYS_AHEAD: i64 = 1;

const US: i64 = 1_000_000;
const DAY_US: i64 = 86_400 * US;

/// 2200-01-01T00:00:00Z in µs. Event times are kept as nanoseconds by DataFusion's
/// time functions, which end in 2262; a stamp past this is a broken clock or a
/// misread unit (milliseconds taken for seconds), not a time: rejected as a bad
/// timestamp rather than binned into an hour that does not exist.
const LATEST_US: i64 = 7_258_118_400 * US;

/// `us` if it is a time an event can have (1970 to 2200).
pub(crate) fn plausible(us: i64) -> Option<i64> {
    (0..LATEST_US).contains(&us).then_some(us)
}

/// Unix seconds, or milliseconds or microseconds when that large (shippers write any
/// of them; seconds past 10^11 are after the year 5000, milliseconds past 10^14 after
/// 5138), as µs.
pub(crate) fn epoch_micros(n: f64) -> Option<i64> {
    let s = if n > 1e14 {
        n / 1e6
    } else if n > 1e11 {
        n / 1e3
    } else {
        n
    };
    // `as` saturates; `plausible` then refuses what saturated.
    s.is_finite().then(|| (s * 1e6).round() as i64).and_then(plausible)
}

/// The zone BSD stamps are written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown time zone {0:?}: use an IANA name such as \"Europe/Berlin\", \"UTC\", or an offset such as \"+02:00\""
)]
pub struct ZoneError(String);

impl FromStr for Zone {
    type Err = ZoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Ok(Zone::Fixed(Utc.fix()));
        }
        if let Ok(off) = FixedOffset::from_str(s) {
            return Ok(Zone::Fixed(off));
        }
        Tz::from_str(s).map(Zone::Named).map_err(|_| ZoneError(s.to_owned()))
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Fixed(Utc.fix())
    }
}

impl Zone {
    /// The local date at UTC microseconds `us`.
    fn local_date(self, us: i64) -> Option<NaiveDate> {
        let t = chrono::DateTime::from_timestamp_micros(us)?;
        Some(match self {
            Zone::Fixed(z) => t.with_timezone(&z).date_naive(),
            Zone::Named(z) => t.with_timezone(&z).date_naive(),
        })
    }

    /// The UTC instants of a local wall-clock hour's start. In a DST gap the time is read
    /// with the offset in force just before the gap; in a DST overlap (the hour a
    /// fall-back repeats) there are two, which [`StampParser`] tells apart by the lines
    /// before.
    fn to_utc_us(self, local: NaiveDateTime) -> Option<HourBase> {
        let resolve = |r: LocalResult<i64>| match r {
            LocalResult::Single(t) => Some(HourBase { early: t, late: t }),
            LocalResult::Ambiguous(early, late) => Some(HourBase { early, late }),
            LocalResult::None => None,
        };
        let at = |l: NaiveDateTime| match self {
            Zone::Fixed(z) => resolve(z.from_local_datetime(&l).map(|t| t.timestamp_micros())),
            Zone::Named(z) => resolve(z.from_local_datetime(&l).map(|t| t.timestamp_micros())),
        };
        at(local).or_else(|| {
            at(local - chrono::Duration::hours(1)).map(|b| HourBase {
                early: b.early + HOUR_US,
                late: b.late + HOUR_US,
            })
        })
    }
}

/// A local hour's start in UTC µs: `early` and `late` differ (by the clock's step back)
/// only for the hour a DST fall-back repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HourBase {
    early: i64,
    late: i64,
}

/// How far a line may run behind the one before it and still be read as the first
/// pass of a repeated hour: the lines of one log (processes writing at once, a host's
/// shipper a little behind another's in one partition) are in order only roughly.
const STRAY_US: i64 = 600 * US;

/// Parses stamps at the start of a line, caching the per-hour arithmetic since
/// consecutive lines almost always share their hour.
#[derive(Debug, Clone)]
pub struct StampParser {
    zone: Zone,
    /// The reference's date in `zone`: BSD stamps' dates are compared with it.
    reference: NaiveDate,
    /// The quarter hour `reference` was taken in.
    reference_quarter: i64,
    reference_us: i64,
    bsd_cache: Option<(u32, HourBase)>,
    date_cache: Option<([u8; 10], i64)>,
    /// `YYYY-MM-DD HH` of a local stamp and the UTC µs of that local hour.
    local_cache: Option<([u8; 13], HourBase)>,
    /// The last time a stamp gave (µs), to place a repeated hour's readings.
    last_us: i64,
    /// How far past the reference a stamp may be (see `NormalizerConfig::max_ahead_us`).
    max_ahead_us: Option<i64>,
    /// How many days past the reference a BSD stamp may lie and still be this year.
    days_ahead: i64,
}

/// With a reach set (the stream: the reference is the record's arrival), how far
/// before it a stamp may lie: old logs produced today still count, a clock never set
/// (1970, or an RTC's 2000) does not. Ten years, not one: the tests' logs are of
/// fixed dates, produced at the time they run.
const MAX_BEHIND_US: i64 = 3653 * DAY_US;

impl StampParser {
    pub fn new(zone: Zone, reference_us: i64) -> Self {
        let mut p = StampParser {
            zone,
            reference: NaiveDate::default(),
            reference_quarter: i64::MIN,
            reference_us,
            bsd_cache: None,
            date_cache: None,
            local_cache: None,
            last_us: i64::MIN,
            max_ahead_us: None,
            days_ahead: FUTURE_TOLERANCE_DAYS,
        };
        p.set_reference(reference_us);
        p
    }

    pub fn set_max_ahead(&mut self, max_ahead_us: Option<i64>) {
        self.max_ahead_us = max_ahead_us;
        // The reach decides the year of BSD stamps.
        if let Some(m) = max_ahead_us {
            self.set_days_ahead(m.max(0).saturating_add(DAY_US - 1) / DAY_US);
        }
    }

    /// How many days past the reference a BSD stamp may lie and still be this year
    /// (default [`FUTURE_TOLERANCE_DAYS`]; a reach set by `set_max_ahead` decides it).
    pub fn set_days_ahead(&mut self, days: i64) {
        self.days_ahead = days;
        self.bsd_cache = None;
    }

    /// `us` if it can be an event's time: plausible at all, and, with a reach set, not
    /// further past the reference than allowed nor over [`MAX_BEHIND_US`] before it.
    pub(crate) fn in_reach(&self, us: i64) -> Option<i64> {
        let out = self.max_ahead_us.is_some_and(|m| {
            us > self.reference_us.saturating_add(m) || us < self.reference_us.saturating_sub(MAX_BEHIND_US)
        });
        plausible(us).filter(|_| !out)
    }

    pub fn set_reference(&mut self, reference_us: i64) {
        self.reference_us = reference_us;
        // Called per record by the stream: a local date can only change at a quarter
        // hour (zone offsets are whole quarters).
        let quarter = reference_us.div_euclid(DAY_US / 96);
        if quarter == self.reference_quarter {
            return;
        }
        self.reference_quarter = quarter;
        let reference = self.zone.local_date(reference_us).unwrap_or_default();
        if reference != self.reference {
            self.reference = reference;
            // The cached BSD stamp was resolved against the old reference year.
            self.bsd_cache = None;
        }
    }

    /// The ingest time stamps without a year are read against, µs.
    pub fn reference_us(&self) -> i64 {
        self.reference_us
    }

    /// Parses either stamp form; returns UTC microseconds and the bytes consumed.
    pub fn parse(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        let (us, n) = if b.first().is_some_and(u8::is_ascii_digit) {
            self.parse_rfc3339(b)?
        } else {
            self.parse_bsd(b)?
        };
        Some((self.taken(us)?, n))
    }

    /// The last time a stamp gave, if one did.
    pub fn last_us(&self) -> Option<i64> {
        (self.last_us != i64::MIN).then_some(self.last_us)
    }

    /// Goes on after lines that reached `us` (a carried state's last stamp).
    pub fn resume_after(&mut self, us: i64) {
        self.last_us = us;
    }

    /// `us` if in reach, remembered as the last time given.
    fn taken(&mut self, us: i64) -> Option<i64> {
        let us = self.in_reach(us)?;
        self.last_us = us;
        Some(us)
    }

    /// The instant of a local reading `within` µs into its hour. In a repeated hour
    /// the clock reads each time twice, an hour apart: a reading the lines have
    /// already passed (by more than [`STRAY_US`]) is its second pass, unless they are
    /// hours past it (a clock far ahead gave the last line). Everywhere else one.
    fn place(&self, base: HourBase, within: i64) -> i64 {
        let early = base.early + within;
        let second = base.late != base.early
            && early.saturating_add(STRAY_US) < self.last_us
            && self.last_us < base.late.saturating_add(2 * HOUR_US);
        if second { base.late + within } else { early }
    }

    /// Whether `b` starts with a stamp of a form this parser reads (BSD, RFC 3339,
    /// Exim's), whatever time it says and whether that time is in reach: what tells a
    /// whole line from a line's bare content.
    pub fn has_stamp(&mut self, b: &[u8]) -> bool {
        if b.first().is_some_and(u8::is_ascii_digit) {
            self.parse_rfc3339(b).is_some() || self.parse_local_any(b).is_some()
        } else {
            bsd_fields(b).is_some()
        }
    }

    fn parse_bsd(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        let Bsd {
            month,
            day,
            time: (h, m, s),
            len: i,
        } = bsd_fields(b)?;
        let key = month * 10_000 + day * 100 + h;
        let base = match self.bsd_cache {
            Some((k, base)) if k == key => base,
            _ => {
                let base = self.bsd_hour_base(month, day, h)?;
                self.bsd_cache = Some((key, base));
                base
            }
        };
        Some((self.place(base, i64::from(m * 60 + s) * US), i))
    }

    fn bsd_hour_base(&self, month: u32, day: u32, hour: u32) -> Option<HourBase> {
        let year = self.reference.year();
        let near = |d: NaiveDate| (d - self.reference).num_days() <= self.days_ahead;
        let date = match (
            NaiveDate::from_ymd_opt(year + 1, month, day),
            NaiveDate::from_ymd_opt(year, month, day),
        ) {
            // Just past New Year while the reference is still in December (a clock a
            // little ahead, a zone east of the reference's): next year's, not the
            // same day a year back.
            (Some(d), _) if near(d) => d,
            (_, Some(d)) if near(d) => d,
            // Either the line is from last year, or (Feb 29) only last year... or no year has it.
            _ => NaiveDate::from_ymd_opt(year - 1, month, day)?,
        };
        self.zone.to_utc_us(date.and_hms_opt(hour, 0, 0)?)
    }

    fn parse_rfc3339(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        let date: [u8; 10] = b.get(..10)?.try_into().ok()?;
        let days_us = match self.date_cache {
            Some((d, us)) if d == date => us,
            _ => {
                let (y, _) = digits(&date[..4], 4)?;
                let (mo, _) = digits(&date[5..7], 2)?;
                let (d, _) = digits(&date[8..10], 2)?;
                if date[4] != b'-' || date[7] != b'-' {
                    return None;
                }
                let day = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?;
                let us = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros();
                self.date_cache = Some((date, us));
                us
            }
        };
        if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
            return None;
        }
        let (h, m, s) = hms(b.get(11..19)?)?;
        let mut i = 19;
        let frac_us = fraction(b, &mut i)?;
        let offset_s: i64 = match b.get(i)? {
            b'Z' | b'z' => {
                i += 1;
                0
            }
            sign @ (b'+' | b'-') => {
                let oh = digits(b.get(i + 1..i + 3)?, 2)?.0;
                if b.get(i + 3) != Some(&b':') {
                    return None;
                }
                let om = digits(b.get(i + 4..i + 6)?, 2)?.0;
                i += 6;
                utc_offset(*sign, oh, om)?
            }
            _ => return None,
        };
        let secs = i64::from(h * 3600 + m * 60 + s) - offset_s;
        Some((days_us + secs * US + frac_us, i))
    }
}

/// The fields of a BSD stamp, the date not looked up.
struct Bsd {
    month: u32,
    day: u32,
    time: (u32, u32, u32),
    /// Bytes it takes.
    len: usize,
}

/// `Mmm dd HH:MM:SS` (or `Mmm  d`).
fn bsd_fields(b: &[u8]) -> Option<Bsd> {
    let month = month_of(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let (day, n) = digits(b.get(i..)?, 2)?;
    i += n;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let time = hms(b.get(i + 1..i + 9)?)?;
    Some(Bsd {
        month,
        day,
        time,
        len: i + 9,
    })
}

impl StampParser {
    /// Exim's `YYYY-MM-DD HH:MM:SS[.fff][ +HHMM]`: a wall-clock time in the configured
    /// zone, unless `log_timezone` wrote the offset. Returns UTC µs and bytes consumed.
    pub fn parse_local(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        let (us, n) = self.parse_local_any(b)?;
        Some((self.taken(us)?, n))
    }

    fn parse_local_any(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        if b.get(10) != Some(&b' ') || b.get(13) != Some(&b':') {
            return None;
        }
        let key: [u8; 13] = b.get(..13)?.try_into().ok()?;
        let (_, m, s) = hms(b.get(11..19)?)?;
        let mut i = 19;
        let frac_us = fraction(b, &mut i)?;
        let offset_s = match (b.get(i), b.get(i + 1)) {
            // Exim's `log_timezone`: ` +HHMM`.
            (Some(b' '), Some(sign @ (b'+' | b'-'))) if b.get(i + 6).is_none_or(|c| *c == b' ') => {
                let (oh, _) = digits(b.get(i + 2..i + 4)?, 2)?;
                let (om, _) = digits(b.get(i + 4..i + 6)?, 2)?;
                i += 6;
                Some(utc_offset(*sign, oh, om)?)
            }
            // PowerMTA's `+HHMM` right after the seconds (RFC 3339's `+HH:MM` is not this).
            (Some(sign @ (b'+' | b'-')), _)
                if b.get(i + 1..i + 5).is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                    && b.get(i + 5).is_none_or(|c| *c == b' ') =>
            {
                let (oh, _) = digits(b.get(i + 1..i + 3)?, 2)?;
                let (om, _) = digits(b.get(i + 3..i + 5)?, 2)?;
                i += 5;
                Some(utc_offset(*sign, oh, om)?)
            }
            _ => None,
        };
        // `+00:00` or `Z` right after the seconds is RFC 3339 (a syslog stamp).
        if b.get(i).is_some_and(|c| *c != b' ') {
            return None;
        }
        let date = || -> Option<NaiveDateTime> {
            let (y, _) = digits(&key[..4], 4)?;
            let (mo, _) = digits(&key[5..7], 2)?;
            let (d, _) = digits(&key[8..10], 2)?;
            let (h, _) = digits(&key[11..13], 2)?;
            if key[4] != b'-' || key[7] != b'-' {
                return None;
            }
            NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?.and_hms_opt(h, 0, 0)
        };
        let within = i64::from(m * 60 + s) * US + frac_us;
        let us = match offset_s {
            Some(off) => date()?.and_utc().timestamp_micros() - off * US + within,
            None => {
                let base = match self.local_cache {
                    Some((k, base)) if k == key => base,
                    _ => {
                        let base = self.zone.to_utc_us(date()?)?;
                        self.local_cache = Some((key, base));
                        base
                    }
                };
                self.place(base, within)
            }
        };
        Some((us, i))
    }
}

/// A `±HH:MM` offset in seconds; none past ±23:59 exists (RFC 3339), so `+25:00` or
/// `+99:99` is no time rather than a shift of days.
fn utc_offset(sign: u8, hours: u32, minutes: u32) -> Option<i64> {
    if hours > 23 || minutes > 59 {
        return None;
    }
    let off = i64::from(hours * 3600 + minutes * 60);
    Some(if sign == b'-' { -off } else { off })
}

/// An optional `.digits` at `*i`, as microseconds (digits past six are dropped).
fn fraction(b: &[u8], i: &mut usize) -> Option<i64> {
    if b.get(*i) != Some(&b'.') {
        return Some(0);
    }
    *i += 1;
    let start = *i;
    let mut frac_us = 0i64;
    while b.get(*i).is_some_and(u8::is_ascii_digit) {
        if *i - start < 6 {
            frac_us = frac_us * 10 + i64::from(b[*i] - b'0');
        }
        *i += 1;
    }
    let kept = (*i - start).min(6);
    if kept == 0 {
        return None;
    }
    Some(frac_us * 10i64.pow(6 - kept as u32))
}

fn month_of(b: &[u8]) -> Option<u32> {
    Some(match b {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// Up to `max` leading ASCII digits (at least one) and how many were read.
fn digits(b: &[u8], max: usize) -> Option<(u32, usize)> {
    let mut v = 0u32;
    let mut n = 0;
    while n < max && n < b.len() && b[n].is_ascii_digit() {
        v = v * 10 + u32::from(b[n] - b'0');
        n += 1;
    }
    (n > 0).then_some((v, n))
}

fn hms(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let two = |x: &[u8]| digits(x, 2).filter(|(_, n)| *n == 2).map(|(v, _)| v);
    let (h, m, s) = (two(&b[0..2])?, two(&b[3..5])?, two(&b[6..8])?);
    // 60 is a leap second; it folds into the next minute's first second.
    (h < 24 && m < 60 && s <= 60).then_some((h, m, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .timestamp_micros()
    }

    fn parser(zone: &str, reference: &str) -> StampParser {
        StampParser::new(zone.parse().expect("zone"), us(reference))
    }

    #[test]
    fn bsd_stamps_take_the_reference_year_and_configured_zone() {
        let mut p = parser("UTC", "2026-11-28T10:00:00Z");
        assert_eq!(p.parse(b"Nov  8 08:14:01 host"), Some((us("2026-11-08T08:14:01Z"), 15)));
        let mut p = parser("Europe/Berlin", "2026-11-28T10:00:00Z");
        assert_eq!(
            p.parse(b"Nov  8 08:14:01 host").map(|x| x.0),
            Some(us("2026-11-08T07:14:01Z"))
        );
        let mut p = parser("+05:30", "2026-11-28T10:00:00Z");
        assert_eq!(
            p.parse(b"Nov  8 08:14:01").map(|x| x.0),
            Some(us("2026-11-08T02:44:01Z"))
        );
    }

    #[test]
    fn unpadded_single_digit_days_parse() {
        let mut p = parser("UTC", "2026-01-20T00:00:00Z");
        assert_eq!(p.parse(b"Jan 6 08:39:06 mail"), Some((us("2026-01-06T08:39:06Z"), 14)));
    }

    #[test]
    fn december_lines_read_in_january_belong_to_last_year() {
        let mut p = parser("UTC", "2027-01-02T00:00:00Z");
        assert_eq!(
            p.parse(b"Dec 31 23:59:59 h").map(|x| x.0),
            Some(us("2026-12-31T23:59:59Z"))
        );
        assert_eq!(
            p.parse(b"Jan  1 00:00:01 h").map(|x| x.0),
            Some(us("2027-01-01T00:00:01Z"))
        );
    }

    #[test]
    fn january_lines_read_on_new_years_eve_belong_to_next_year() {
        let mut p = parser("UTC", "2026-12-31T23:59:00Z");
        assert_eq!(
            p.parse(b"Jan  1 00:00:02 h").map(|x| x.0),
            Some(us("2027-01-01T00:00:02Z"))
        );
        assert_eq!(
            p.parse(b"Dec 31 23:58:00 h").map(|x| x.0),
            Some(us("2026-12-31T23:58:00Z"))
        );
        // Mid-January read in mid-January is this year's, not next year's.
        let mut p = parser("UTC", "2027-01-20T00:00:00Z");
        assert_eq!(
            p.parse(b"Jan 15 10:00:00 h").map(|x| x.0),
            Some(us("2027-01-15T10:00:00Z"))
        );
    }

    #[test]
    fn the_cache_does_not_leak_across_hours() {
        let mut p = parser("UTC", "2026-11-28T10:00:00Z");
        let a = p.parse(b"Nov  8 08:59:59").map(|x| x.0);
        let b = p.parse(b"Nov  8 09:00:00").map(|x| x.0);
        assert_eq!(b.zip(a).map(|(b, a)| b - a), Some(US));
    }

    #[test]
    fn a_fall_backs_repeated_hour_is_read_twice_in_order() {
        // New York, 2026-11-01: 02:00 EDT (UTC-4) steps back to 01:00 EST (UTC-5), so a
        // local 01:xx happens twice.
        let mut p = parser("America/New_York", "2026-11-02T00:00:00Z");
        let mut at = |line: &[u8]| p.parse(line).map(|x| x.0);
        for (line, utc) in [
            (&b"Nov  1 00:59:00 h"[..], "2026-11-01T04:59:00Z"),
            (b"Nov  1 01:30:00 h", "2026-11-01T05:30:00Z"),
            // A line a little behind the one before it is still the first pass.
            (b"Nov  1 01:25:00 h", "2026-11-01T05:25:00Z"),
            (b"Nov  1 01:59:30 h", "2026-11-01T05:59:30Z"),
            // The clock stepped back: the same readings again, an hour later.
            (b"Nov  1 01:00:10 h", "2026-11-01T06:00:10Z"),
            (b"Nov  1 01:30:00 h", "2026-11-01T06:30:00Z"),
            (b"Nov  1 01:59:59 h", "2026-11-01T06:59:59Z"),
            (b"Nov  1 02:00:00 h", "2026-11-01T07:00:00Z"),
        ] {
            assert_eq!(at(line), Some(us(utc)), "{}", String::from_utf8_lossy(line));
        }
        // Exim's local stamps the same way.
        let mut p = parser("America/New_York", "2026-11-02T00:00:00Z");
        let mut at = |line: &[u8]| p.parse_local(line).map(|x| x.0);
        assert_eq!(at(b"2026-11-01 01:50:00 x"), Some(us("2026-11-01T05:50:00Z")));
        assert_eq!(at(b"2026-11-01 01:05:00 x"), Some(us("2026-11-01T06:05:00Z")));
        // With nothing before it, or after a line from days ahead (a clock far off),
        // a repeated reading is the first pass, as it always was.
        let mut p = parser("America/New_York", "2026-11-02T00:00:00Z");
        assert_eq!(
            p.parse(b"Nov  1 01:30:00 h").map(|x| x.0),
            Some(us("2026-11-01T05:30:00Z"))
        );
        assert!(p.parse(b"Nov  3 12:00:00 h").is_some());
        assert_eq!(
            p.parse(b"Nov  1 01:30:00 h").map(|x| x.0),
            Some(us("2026-11-01T05:30:00Z"))
        );
    }

    #[test]
    fn rfc3339_stamps_with_fraction_and_offsets() {
        let mut p = parser("UTC", "2026-11-28T10:00:00Z");
        let s = b"2026-03-03T10:45:29.294394+00:00 mail";
        assert_eq!(p.parse(s), Some((us("2026-03-03T10:45:29.294394Z"), 32)));
        let s = b"2026-03-03T10:45:29+02:00 x";
        assert_eq!(p.parse(s).map(|x| x.0), Some(us("2026-03-03T08:45:29Z")));
        let s = b"2026-03-03T10:45:29.5Z x";
        assert_eq!(p.parse(s).map(|x| x.0), Some(us("2026-03-03T10:45:29.5Z")));
        assert_eq!(
            p.parse(b"2026-03-03T10:45:29+23:59 x").map(|x| x.0),
            Some(us("2026-03-02T10:46:29Z"))
        );
        // No zone is a day or more off UTC: these would move the event by days.
        assert_eq!(p.parse(b"2026-03-03T10:45:29+24:00 x"), None);
        assert_eq!(p.parse(b"2026-03-03T10:45:29+25:00 x"), None);
        assert_eq!(p.parse(b"2026-03-03T10:45:29-01:60 x"), None);
        assert_eq!(p.parse(b"2026-03-03T10:45:29+99:99 x"), None);
    }

    #[test]
    fn stamps_past_2200_or_before_1970_are_not_times() {
        let mut p = parser("UTC", "2026-11-28T10:00:00Z");
        assert!(p.parse(b"2199-12-31T23:59:59Z host").is_some());
        assert_eq!(p.parse(b"2200-01-01T00:00:00Z host"), None);
        assert_eq!(p.parse(b"9999-03-03T10:45:29Z host"), None);
        assert_eq!(p.parse(b"1969-12-31T23:59:59Z host"), None);
        assert_eq!(p.parse_local(b"2262-05-01 07:15:00 1ajLoq"), None);
        assert!(p.parse_local(b"2026-05-01 07:15:00 1ajLoq").is_some());
    }

    #[test]
    fn with_a_reach_set_stamps_too_far_past_the_reference_are_not_times() {
        let mut p = parser("UTC", "2026-11-28T10:00:00Z");
        assert!(
            p.parse(b"2026-12-20T10:00:00Z host").is_some(),
            "no reach: any plausible time"
        );
        p.set_max_ahead(Some(24 * 3600 * US));
        assert!(p.parse(b"2026-11-29T09:59:59Z host").is_some());
        assert_eq!(p.parse(b"2026-11-29T10:00:01Z host"), None);
        assert_eq!(p.parse_local(b"2026-12-01 07:15:00 1ajLoq"), None);
        // A BSD stamp more than the reach's day ahead is last year's (a backfill of last
        // December's log produced in late November), not a stamp a week ahead.
        assert_eq!(p.parse(b"Dec  5 10:00:00 host"), Some((us("2025-12-05T10:00:00Z"), 15)));
        assert_eq!(p.parse(b"Dec 29 08:00:00 host"), Some((us("2025-12-29T08:00:00Z"), 15)));
        assert_eq!(p.parse(b"Jan  6 08:00:00 host"), Some((us("2026-01-06T08:00:00Z"), 15)));
        // Within the reach's day: this year, and still held to the reach itself.
        assert_eq!(p.parse(b"Nov 29 09:00:00 host"), Some((us("2026-11-29T09:00:00Z"), 15)));
        assert_eq!(p.parse(b"Nov 29 11:00:00 host"), None);
        assert!(p.parse(b"Nov 28 12:00:00 host").is_some());
        // Dates are compared in the stamps' zone: 02:00 on Dec 9 in Tokyo is 21 hours
        // past a reference of 05:00 on Dec 8 there (20:00 UTC on Dec 7), within reach.
        let mut p = parser("Asia/Tokyo", "2026-12-07T20:00:00Z");
        p.set_max_ahead(Some(24 * 3600 * US));
        assert_eq!(p.parse(b"Dec  9 02:00:00 host"), Some((us("2026-12-08T17:00:00Z"), 15)));
    }

    #[test]
    fn with_a_reach_set_a_stamp_ten_years_before_the_reference_is_no_time() {
        let mut p = parser("UTC", "2026-12-06T10:00:00Z");
        assert!(p.parse(b"1971-01-01T00:00:00Z host").is_some(), "no reach: any date");
        p.set_max_ahead(Some(24 * 3600 * US));
        assert_eq!(p.parse(b"1971-01-01T00:00:00Z host"), None);
        assert_eq!(p.parse(b"2000-01-01T00:00:00Z host"), None);
        let old = p.parse(b"2020-03-01T00:00:00Z host").map(|x| x.0);
        assert_eq!(old, Some(us("2020-03-01T00:00:00Z")), "old logs produced today");
    }

    #[test]
    fn a_log_read_now_has_no_line_weeks_ahead_but_one_read_against_a_given_date_may() {
        // A date the user gave may come before the log's lines.
        let mut p = parser("UTC", "2026-12-07T16:00:00Z");
        assert_eq!(
            p.parse(b"Dec 29 02:54:12 h").map(|x| x.0),
            Some(us("2026-12-29T02:54:12Z"))
        );
        // Read now, last December's and last January's lines are last year's...
        p.set_days_ahead(READ_NOW_DAYS_AHEAD);
        assert_eq!(
            p.parse(b"Dec 29 02:54:12 h").map(|x| x.0),
            Some(us("2025-12-29T02:54:12Z"))
        );
        assert_eq!(
            p.parse(b"Jan  3 10:00:00 h").map(|x| x.0),
            Some(us("2026-01-03T10:00:00Z"))
        );
        // ...and a clock or zone a little ahead still this year's.
        assert_eq!(
            p.parse(b"Dec  8 09:00:00 h").map(|x| x.0),
            Some(us("2026-12-08T09:00:00Z"))
        );
        assert_eq!(
            p.parse(b"Dec  7 15:00:00 h").map(|x| x.0),
            Some(us("2026-12-07T15:00:00Z"))
        );
    }

    #[test]
    fn epoch_numbers_are_seconds_or_milliseconds() {
        let t = us("2026-11-08T07:15:00.5Z");
        assert_eq!(epoch_micros(1_794_122_100.5), Some(t));
        assert_eq!(epoch_micros(1_794_122_100_500.0), Some(t));
        assert_eq!(epoch_micros(1_794_122_100_500_000.0), Some(t));
        assert_eq!(epoch_micros(1e300), None);
        assert_eq!(epoch_micros(f64::NAN), None);
        assert_eq!(epoch_micros(-5.0), None);
    }

    #[test]
    fn exim_stamps_are_local_unless_they_carry_an_offset() {
        let mut p = parser("Europe/Berlin", "2026-11-10T00:00:00Z");
        let (t, n) = p
            .parse_local(b"2026-11-08 07:15:00 1ajLoq-0001wC-Pk =>")
            .expect("local");
        assert_eq!((t, n), (us("2026-11-08T06:15:00Z"), 19));
        let (t, n) = p.parse_local(b"2026-11-08 07:15:00.250 +0000 1ajLoq").expect("offset");
        assert_eq!((t, n), (us("2026-11-08T07:15:00Z") + 250_000, 29));
        // Summer time in the same zone, from the cache of another hour.
        let (t, _) = p.parse_local(b"2026-07-01 12:00:00 x").expect("summer");
        assert_eq!(t, us("2026-07-01T10:00:00Z"));
        // RFC 3339 (a `T`, or an offset right after the seconds) is not this shape.
        assert!(p.parse_local(b"2026-11-08T07:15:00Z host").is_none());
        assert!(p.parse_local(b"2026-11-08 07:15").is_none());
        assert!(p.parse_local(b"2026-11-08 07:15:00+00:00 host").is_none());
        let (t, n) = p.parse_local(b"2026-11-08 07:15:00-0100").expect("attached offset");
        assert_eq!((t, n), (us("2026-11-08T08:15:00Z"), 24));
        assert!(p.parse_local(b"2026-11-08 07:15:00+9999").is_none());
        assert!(p.parse_local(b"2026-11-08 07:15:00 +2500 1ajLoq").is_none());
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        let mut p = parser("UTC", "2026-11-28T10:00:00Z");
        for s in [
            &b""[..],
            b"Nov",
            b"Nov  8",
            b"Nov 32 08:14:01",
            b"Feb 30 08:14:01",
            b"Nov  8 25:14:01",
            b"Foo  8 08:14:01",
            b"2026-13-03T10:45:29Z",
            b"2026-03-03T10:45:29",
            b"2026-03-03T10:45:29.Z",
            b"2026-03-03T10:45:29+0",
            b"\xff\xfe\xfd",
        ] {
            assert_eq!(p.parse(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn zones_parse_by_name_offset_or_utc() {
        assert!("UTC".parse::<Zone>().is_ok());
        assert!("America/New_York".parse::<Zone>().is_ok());
        assert!("-03:00".parse::<Zone>().is_ok());
        let err = "Mars/Olympus".parse::<Zone>().unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus"));
    }
}
