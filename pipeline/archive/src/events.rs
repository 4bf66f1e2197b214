//! The event archive: one open file per hour partition, closed when the hour is done.

use crate::ArchiveError;
use crate::file::ParquetFile;
use crate::paths::{EVENTS_DIR, hour_partition};
use deferlog_event::{HourBatch, event_schema};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct EventArchive {
    root: PathBuf,
    run: String,
    seq: u32,
    open: BTreeMap<i64, ParquetFile>,
    closed: Vec<(i64, PathBuf)>,
    rows: u64,
}

impl EventArchive {
    pub fn new(root: &Path, run: &str) -> Self {
        EventArchive {
            root: root.join(EVENTS_DIR),
            run: run.to_owned(),
            seq: 0,
            open: BTreeMap::new(),
            closed: Vec::new(),
            rows: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends a batch to its hour's file, opening one if needed. A batch for an hour
    /// already closed starts a new part file: late rows are never dropped.
    pub fn write(&mut self, hb: &HourBatch) -> Result<(), ArchiveError> {
        let file = match self.open.entry(hb.hour_us) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                self.seq += 1;
                let name = crate::events_file_name(&self.run, self.seq);
                let path = self.root.join(hour_partition(hb.hour_us)).join(name);
                e.insert(ParquetFile::create(path, event_schema())?)
            }
        };
        file.write(&hb.batch)?;
        self.rows += hb.batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the files of every hour before `hour_us`; returns the hours closed.
    pub fn close_before(&mut self, hour_us: i64) -> Result<Vec<i64>, ArchiveError> {
        let later = self.open.split_off(&hour_us);
        let done = std::mem::replace(&mut self.open, later);
        let mut hours = Vec::with_capacity(done.len());
        for (hour, f) in done {
            self.closed.push((hour, f.close()?));
            hours.push(hour);
        }
        Ok(hours)
    }

    /// Every file this archive has closed, with its hour.
    pub fn files(&self) -> &[(i64, PathBuf)] {
        &self.closed
    }

    /// Undoes the run: removes every file it closed and every one still open, so a
    /// failed replay leaves nothing to count twice when it is run again, and then the
    /// partition directories it leaves empty (`remove_dir` keeps any that still hold
    /// another run's files).
    pub fn abort(self) {
        let mut hours: Vec<i64> = self.open.keys().copied().collect();
        for (_, f) in self.open {
            f.abort();
        }
        for (hour, path) in self.closed {
            let _ = std::fs::remove_file(path);
            hours.push(hour);
        }
        for hour in hours {
            let dir = self.root.join(hour_partition(hour));
            let _ = std::fs::remove_dir(&dir);
            if let Some(date) = dir.parent() {
                let _ = std::fs::remove_dir(date);
            }
        }
        let _ = std::fs::remove_dir(&self.root);
    }

    /// Closes everything still open; returns every file written.
    pub fn finish(mut self) -> Result<Vec<(i64, PathBuf)>, ArchiveError> {
        self.close_before(i64::MAX)?;
        Ok(self.closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deferlog_event::{Class, EventBuilder, EventRow, HOUR_US, Mta, Outcome};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn batch(t: i64, n: usize) -> HourBatch {
        let mut b = EventBuilder::default();
        for _ in 0..n {
            b.append(&EventRow {
                event_time_us: t,
                tenant: "default",
                mta: Mta::Postfix,
                mta_host: "h",
                mta_instance: None,
                source_ip: None,
                queue_id: "Q",
                message_id: None,
                sender_domain: None,
                recipient_domain: Some("gmail.com"),
                recipient_hash: Some(1),
                mx_host: None,
                mx_ip: None,
                mx_group: "google",
                outcome: Outcome::Delivered,
                class: Class::None,
                smtp_code: Some(250),
                enhanced_status: None,
                response: None,
                attempt: Some(1),
                delay_seconds: None,
                size_bytes: None,
                origin: "o".into(),
            });
        }
        HourBatch {
            hour_us: deferlog_event::hour_of(t),
            batch: b.finish().expect("batch"),
        }
    }

    #[test]
    fn files_land_in_their_hour_partition_and_read_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = EventArchive::new(dir.path(), "run1");
        let h = 1_793_000_000 / 3600 * HOUR_US;
        a.write(&batch(h + 5, 3)).expect("write");
        a.write(&batch(h + HOUR_US, 2)).expect("write");
        a.write(&batch(h + 7, 1)).expect("write");
        assert_eq!(a.close_before(h + HOUR_US).expect("close"), vec![h]);
        // A late batch for a closed hour opens a new part.
        a.write(&batch(h + 9, 4)).expect("write");
        let files = a.finish().expect("finish");
        assert_eq!(files.len(), 3);
        let mut rows_in_first_hour = 0;
        for (hour, path) in &files {
            assert!(path.to_string_lossy().contains("/events/date="));
            assert!(path.extension().is_some_and(|e| e == "parquet"));
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
                .expect("parquet")
                .build()
                .expect("reader");
            let n: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
            if *hour == h {
                rows_in_first_hour += n;
            }
        }
        assert_eq!(rows_in_first_hour, 8);
        let leftovers = walk(dir.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn an_aborted_run_leaves_no_files_and_no_empty_partitions() {
        let dir = tempfile::tempdir().expect("tmp");
        let h = 1_793_000_000 / 3600 * HOUR_US;
        // An earlier run's file in one of the hours stays, with its directories.
        let mut earlier = EventArchive::new(dir.path(), "run0");
        earlier.write(&batch(h + 1, 1)).expect("write");
        let kept = earlier.finish().expect("finish");
        let mut a = EventArchive::new(dir.path(), "run1");
        a.write(&batch(h + 5, 3)).expect("write");
        a.write(&batch(h + 30 * HOUR_US, 2)).expect("write");
        assert_eq!(a.close_before(h + HOUR_US).expect("close"), vec![h]);
        a.abort();
        let left = walk(dir.path());
        assert_eq!(left, vec![kept[0].1.clone()]);
        // The other day's partition went with its only file.
        let days = std::fs::read_dir(dir.path().join(EVENTS_DIR)).expect("events").count();
        assert_eq!(days, 1);
        // A run that was the only one leaves no events directory at all.
        let alone = tempfile::tempdir().expect("tmp");
        let mut a = EventArchive::new(alone.path(), "run1");
        a.write(&batch(h + 5, 3)).expect("write");
        a.abort();
        assert!(!alone.path().join(EVENTS_DIR).exists());
    }

    fn walk(p: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(p).expect("dir").flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
