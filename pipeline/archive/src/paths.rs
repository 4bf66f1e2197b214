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

/// A replay run's event file for one hour: the `seq`-th it opened.
pub fn events_file_name(run: &str, seq: u32) -> String {
    format!("part-{run}-{seq:05}.parquet")
}

/// A replay run's hourly rows.
pub fn hourly_file_name(run: &str) -> String {
    format!("hourly-{run}.parquet")
}

/// A replay run's dead letters.
pub fn rejects_file_name(run: &str) -> String {
    format!("rejects-{run}.parquet")
}

/// What every file a replay run writes under `events/`, `hourly/` and `rejects/`
/// begins with, `.tmp` names included: how a stopped run's files are found.
pub fn run_file_prefixes(run: &str) -> [String; 3] {
    [
        format!("part-{run}-"),
        format!("hourly-{run}."),
        format!("rejects-{run}."),
    ]
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
