//! Where things go under the archive root.

use chrono::DateTime;
use std::path::PathBuf;

pub const EVENTS_DIR: &str = "events";
pub const HOURLY_DIR: &str = "hourly";
pub const REJECTS_DIR: &str = "rejects";

/// `date=YYYY-MM-DD/hour=HH` for an hour given in µs since the epoch (UTC).
pub fn hour_partition(hour_us: i64) -> PathBuf {
    let t = DateTime::from_timestamp_micros(hour_us).unwrap_or_default();
    PathBuf::from(t.format("date=%Y-%m-%d").to_string()).join(t.format("hour=%H").to_string())
}

/// A run id that sorts by start time and does not collide between runs or processes.
pub fn run_id(now_us: i64) -> String {
    let t = DateTime::from_timestamp_micros(now_us).unwrap_or_default();
    format!("{}-{}", t.format("%Y%m%dT%H%M%S%6fZ"), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_hive_style_utc() {
        let us = DateTime::parse_from_rfc3339("2026-11-08T07:00:00Z")
            .expect("t")
            .timestamp_micros();
        assert_eq!(hour_partition(us), PathBuf::from("date=2026-11-08/hour=07"));
    }
}
