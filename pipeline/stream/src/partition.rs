//! One source partition ("scope"): its normalizer, open batch, this epoch's staged
//! files, its windows and its offsets. Everything here moves together: a checkpoint
//! stores it, a restart or a rebalance restores it.

use crate::checkpoint::{Checkpoint, FileId, ScopeDirs};
use crate::dead_letters::{DeadLetters, Staging};
use crate::sql::Sql;
use crate::window::Windows;
use crate::writer::{Pending, Writer};
use crate::{Counters, StreamError};
use arrow::record_batch::RecordBatch;
use deferlog_archive::{EVENTS_DIR, HOURLY_DIR, ParquetFile, hour_partition};
use deferlog_event::{HOUR_US, HourBatch, HourBatcher, Origin, RejectRow, hour_of};
use deferlog_metrics::Counts;
use deferlog_parse::{Normalizer, SkipKind, redact_recipients};
use deferlog_query::schema::{hourly_schema, to_hourly};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How far past its record's broker timestamp (the ingest time) an event may lie and
/// still move its partition's progress: MTA clocks drift by seconds, not hours. An
/// event further ahead (a host with a broken clock) is counted in its hour but would
/// otherwise carry the watermark with it and close every real hour at once.
pub(crate) const CLOCK_SKEW_US: i64 = HOUR_US;

/// Further ahead than this, a stamp is not a time this record can have: rejected as
/// `bad_timestamp` (kept in the dead letters) instead of opening an hour that would
/// stay open until the watermark reached it.
const MAX_AHEAD_US: i64 = 24 * HOUR_US;

/// The log lines in one record's value: the value itself, unless a shipper batched
/// several lines (or NDJSON documents) into it, joined by `\n`; read as one, every
/// line after the first would vanish into the first one's reply text. A `\n` followed
/// by whitespace, `}` or `]` continues a line (pretty-printed JSON), and a line end
/// is left on its line for the normalizer to trim. So JSON printed without indent,
/// or an array of records, is split into pieces that are dead letters, and an
/// indented syslog line is taken for the rest of the one before.
fn lines_of(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut from = 0;
        while let Some(nl) = memchr::memchr(b'\n', &rest[from..]).map(|i| from + i) {
            match rest.get(nl + 1) {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'}' | b']') => from = nl + 1,
                Some(_) => {
                    let (line, after) = rest.split_at(nl + 1);
                    rest = after;
                    return Some(line);
                }
                None => break,
            }
        }
        Some(std::mem::take(&mut rest))
    })
}

pub(crate) struct Partition {
    pub topic: Arc<str>,
    pub partition: i32,
    pub scope: String,
    dirs: ScopeDirs,
    /// The checkpoint file this partition was restored from or last stored.
    stored: Option<FileId>,
    norm: Normalizer,
    batcher: HourBatcher,
    dead_letters: DeadLetters,
    pub windows: Windows,
    /// The epoch being written: the last checkpoint's plus one.
    epoch: i64,
    pub next_offset: i64,
    /// Taken with no position in its checkpoint: where this holder began reading
    /// (`Some(None)` until a record comes), the group's committed offset, else the
    /// log's start. A committed offset with no checkpoint here is not this archive's,
    /// and what lies before it is in none of its outputs. `None`: the checkpoint said.
    unresumed_start: Option<Option<i64>>,
    /// Records that name no host take the record key's (`HostFrom::Key`).
    host_from_key: bool,
    pub max_event_us: Option<i64>,
    pub counters: Counters,
    /// This epoch's events not yet handed to the writer, by hour.
    unwritten: BTreeMap<i64, Vec<RecordBatch>>,
    /// This epoch's events files handed to the writer (see
    /// [`Partition::write_passed_hours`]).
    handed: Vec<Pending>,
    /// Staged events of hours not yet written whole, as the last stored checkpoint
    /// lists them (see `checkpoint.rs`), by hour.
    held: BTreeMap<i64, Vec<PathBuf>>,
    /// Pieces this epoch's files gathered: deleted once those files are published.
    gathered: Vec<PathBuf>,
    /// This epoch's pieces of open hours handed to the writer.
    holding: Vec<(i64, Pending)>,
    staged_seq: u32,
    /// The open batch's finished pieces, for its SQL at the close.
    pieces: Vec<HourBatch>,
    /// The newest event time at which this partition's events pass one more hour by
    /// the allowed lateness (see [`Partition::write_passed_hours`]).
    next_pass_us: i64,
    rows_in_batch: usize,
    pub batch_started: Option<Instant>,
    /// When its last event was read: a partition that reads records but no events
    /// (a host that only receives mail) must not hold the watermark back.
    pub last_event: Option<Instant>,
    /// When the last record was read, and the newest ingest time (broker timestamp)
    /// read: together the partition's clock (see [`Partition::clock_us`]).
    last_record: Option<Instant>,
    ingest_us: i64,
    idle_timeout: std::time::Duration,
    pub assigned_at: Instant,
    /// Records since the last checkpoint.
    dirty: bool,
    pub timings: crate::Timings,
    /// Closed hours kept for late events, counted back from the watermark or from
    /// this partition's own progress, whichever is older.
    keep_closed_hours: i64,
    lateness_us: i64,
    /// Cumulative metric counts (delivery series from `counters.sql`, health series
    /// from the counters and the normalizer's statistics).
    pub counts: Counts,
    /// Who stored the checkpoint this partition was restored from.
    pub prior_owner: Option<String>,
    /// Who stores its checkpoints now (the exporter instance).
    owner: Option<String>,
    /// Delivery series a scope may hold (see `Counts::add_delivery`).
    series_limit: usize,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("scope", &self.scope)
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

/// A record's tenant, resolved by the caller from the topic's configuration.
pub(crate) enum Tenant<'a> {
    Given(&'a [u8]),
    Default(&'a str),
}

/// The scope name of a partition: safe as a file name.
pub fn scope_of(topic: &str, partition: i32) -> String {
    let t: String = topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{t}-{partition}")
}

/// Loads the scope's checkpoint and stores it again as this holder's, one epoch on,
/// before anything else: a member that held the partition until now and does not
/// know it lost it finds another checkpoint at its next store or output and stops
/// (see `checkpoint.rs`), and anything it did write has an older epoch (file names,
/// revisions) than what this holder writes. Retried if that member stores between
/// the load and the claim.
/// A scope without a checkpoint first sets aside what its staging still holds: pieces
/// of open hours of a checkpoint that is gone are events read before, not leftovers.
fn claim(dirs: &ScopeDirs, scope: &str) -> Result<(Checkpoint, Option<FileId>), StreamError> {
    let mut tries = 0;
    loop {
        let on_disk = dirs.current()?;
        let mut ckpt = match dirs.load()? {
            Some(c) => c,
            None => {
                let mut c = Checkpoint::new(scope);
                c.counters.set_aside_pieces = dirs.set_aside()?;
                c
            }
        };
        ckpt.epoch += 1;
        match dirs.store(&ckpt, on_disk) {
            Ok(held) => return Ok((ckpt, Some(held))),
            Err(StreamError::TakenOver { .. }) if tries < 3 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

impl Partition {
    /// Restores the partition from its checkpoint (recovering its staged files), or
    /// starts it empty.
    pub fn open(
        cfg: &crate::StreamConfig,
        topic: &str,
        partition: i32,
        owner: Option<&str>,
    ) -> Result<Self, StreamError> {
        let root = cfg.out.as_path();
        let scope = scope_of(topic, partition);
        let dirs = ScopeDirs::new(root, &scope);
        let (mut ckpt, stored) = claim(&dirs, &scope)?;
        let now = Instant::now();
        ckpt.counters.missing_pieces += dirs.recover(Some(&ckpt))?;
        let mut ncfg = cfg.normalizer.clone();
        let topic_cfg = cfg.topics.iter().find(|t| t.name == topic);
        if let Some(t) = topic_cfg {
            ncfg.format = t.format;
            if let crate::HostFrom::Fixed(h) = &t.host {
                ncfg.default_host.clone_from(h);
            }
        }
        ncfg.max_ahead_us = Some(MAX_AHEAD_US);
        let mut norm = Normalizer::new(ncfg);
        norm.restore(ckpt.normalizer);
        let by_hour = |pieces: Vec<(i64, PathBuf)>| {
            let mut m: BTreeMap<i64, Vec<PathBuf>> = BTreeMap::new();
            for (hour_us, piece) in pieces {
                m.entry(hour_us).or_default().push(root.join(piece));
            }
            m
        };
        Ok(Partition {
            topic: topic.into(),
            partition,
            scope,
            dirs,
            stored,
            norm,
            batcher: HourBatcher::new(cfg.batch_rows),
            dead_letters: DeadLetters::restore(by_hour(ckpt.held_rejects)),
            windows: Windows::restore(ckpt.windows)?,
            epoch: ckpt.epoch + 1,
            next_offset: ckpt.next_offset,
            unresumed_start: (ckpt.next_offset < 0).then_some(None),
            host_from_key: topic_cfg.is_some_and(|t| t.host == crate::HostFrom::Key),
            max_event_us: ckpt.max_event_us,
            counters: ckpt.counters,
            unwritten: BTreeMap::new(),
            handed: Vec::new(),
            held: by_hour(ckpt.held),
            gathered: Vec::new(),
            holding: Vec::new(),
            staged_seq: 0,
            pieces: Vec::new(),
            next_pass_us: i64::MIN,
            rows_in_batch: 0,
            batch_started: None,
            last_event: None,
            // The time the process was down is not counted: the clock runs late, so a
            // held hour is published late rather than early.
            last_record: ckpt.clock_us.map(|_| now),
            ingest_us: ckpt.clock_us.unwrap_or(i64::MIN),
            idle_timeout: cfg.idle_timeout,
            assigned_at: now,
            dirty: false,
            timings: crate::Timings::default(),
            keep_closed_hours: cfg.keep_closed_hours,
            lateness_us: cfg.lateness_us,
            counts: ckpt.counts,
            prior_owner: ckpt.owner,
            owner: owner.map(str::to_owned),
            series_limit: cfg.series_limit,
        })
    }

    pub fn unresumed_start(&self) -> Option<Option<i64>> {
        self.unresumed_start
    }

    pub fn stats(&self) -> deferlog_parse::Stats {
        self.norm.stats()
    }

    /// The stored-row form (final) of the newest closed hour this partition has rows
    /// of, as its windows hold it now: late events included, a revision below any
    /// this holder writes next.
    pub fn last_closed_rows(&self) -> Result<Vec<RecordBatch>, StreamError> {
        self.windows
            .last_closed()
            .unwrap_or_default()
            .iter()
            .map(|partial| Ok(to_hourly(partial, &self.scope, self.epoch - 1, true)?))
            .collect()
    }

    pub fn rows_in_batch(&self) -> usize {
        self.rows_in_batch
    }

    fn dead_letter(&mut self, reason: &'static str, raw: &[u8], offset: i64, refused: Option<&[u8]>) {
        *self.counters.dead_letters.entry(reason.to_owned()).or_default() += 1;
        let raw = redact_recipients(raw);
        let refused = refused.map(redact_recipients);
        self.dead_letters.append(&RejectRow {
            mta: None,
            reason,
            raw: &raw,
            origin: Origin::Record {
                topic: &self.topic,
                partition: self.partition,
                offset,
            },
            refused: refused.as_deref(),
        });
    }

    /// Normalizes one record. Bad input is counted and dead-lettered, never an error.
    /// The caller then calls [`Partition::hand_over_passed`].
    pub fn process(
        &mut self,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        tenant: Tenant<'_>,
        reference_us: i64,
        now: Instant,
    ) {
        // A record at or below what the checkpoint covers was counted already (a seek
        // or redelivery after an error): counting it again would count it twice.
        if self.next_offset >= 0 && offset < self.next_offset {
            self.counters.redelivered += 1;
            return;
        }
        if let Some(start @ None) = &mut self.unresumed_start {
            *start = Some(offset);
        }
        self.next_offset = offset + 1;
        self.counters.records += 1;
        self.dirty = true;
        self.last_record = Some(now);
        self.ingest_us = self.ingest_us.max(reference_us);
        let value = value.unwrap_or_default();
        // Producers key records by MTA host (ARCHITECTURE.md): a key that is not text
        // was not written by a producer that follows the convention.
        // Host names are ASCII: the full UTF-8 check only for a key that is not.
        if let Some(k) = key.filter(|k| !k.is_ascii() && std::str::from_utf8(k).is_err()) {
            return self.dead_letter("bad_key", value, offset, Some(k));
        }
        let tenant = match tenant {
            Tenant::Default(t) => t,
            Tenant::Given(given) => match std::str::from_utf8(given) {
                Ok(t) if deferlog_parse::valid_tenant(t) => t,
                _ => return self.dead_letter("bad_tenant", value, offset, Some(given)),
            },
        };
        if value.iter().all(u8::is_ascii_whitespace) {
            return self.dead_letter("empty_value", value, offset, None);
        }
        self.norm.set_tenant(tenant);
        if self.host_from_key {
            // A key that is no plausible host name (a producer's hash, an id) is none.
            let host = key
                .and_then(|k| std::str::from_utf8(k).ok())
                .filter(|h| !h.is_empty() && h.len() <= 255 && !h.bytes().any(|b| b <= b' ' || b == 0x7f));
            self.norm.set_record_host(host);
        }
        self.norm.set_reference_time(reference_us);
        let events = self.norm.stats_ref().events;
        for line in lines_of(value) {
            let unrecognized = self.norm.stats_ref().skipped(SkipKind::Unrecognized);
            let origin = Origin::Record {
                topic: &self.topic,
                partition: self.partition,
                offset,
            };
            self.norm
                .process_line(line, origin, &mut self.batcher, self.dead_letters.sink());
            self.dead_letters.settle();
            // A value that is not a log line at all is a malformed record, not a line
            // of some other service: keep it, counted as a reject only.
            if self.norm.stats_ref().skipped(SkipKind::Unrecognized) > unrecognized {
                self.norm.unskip(SkipKind::Unrecognized);
                self.dead_letter("unrecognized_record", line, offset, None);
            }
        }
        // Progress, per record: an event is held to its own record's broker time.
        if let Some(m) = self.batcher.take_newest() {
            let m = m.min(reference_us.saturating_add(CLOCK_SKEW_US));
            self.max_event_us = Some(self.max_event_us.map_or(m, |x| x.max(m)));
        }
        let added = (self.norm.stats_ref().events - events) as usize;
        // Only records that gave events: lines no MTA's need no partition of their own.
        self.counters.unkeyed += u64::from(added > 0 && key.is_none());
        if added > 0 {
            self.rows_in_batch += added;
            self.batch_started.get_or_insert(now);
            self.last_event = Some(now);
        }
    }

    /// Takes the pieces the batcher has finished and, once the events pass an hour,
    /// hands that hour's rows to the writer. A check per record, work once per hour.
    pub fn hand_over_passed(&mut self, writer: &Writer) -> Result<(), StreamError> {
        if self.max_event_us.is_some_and(|m| m >= self.next_pass_us) {
            let passed = self.passed_hours();
            self.next_pass_us = passed.saturating_add(HOUR_US).saturating_add(self.lateness_us);
            // Rows of a passed hour still being gathered go into its file, rather
            // than into a second one later.
            self.batcher.flush_before(passed);
            self.take_pieces()?;
            self.write_passed_hours(writer)?;
        } else if self.batcher.has_ready() {
            self.take_pieces()?;
        }
        Ok(())
    }

    /// Closes the open batch: adds `counters.sql` and `hourly.sql` over it to the
    /// counts and the windows, and hands the hours it passed to the writer. Returns
    /// the batch's latency (first event in to windowed), if any.
    pub fn close_batch(&mut self, sql: &mut Sql, writer: &Writer) -> Result<Option<std::time::Duration>, StreamError> {
        // An archive gone while held gets nothing more staged in its place; a scope
        // taken over is the checkpoint's to find (it drops the partition).
        if let Err(e @ StreamError::Vanished { .. }) = self.dirs.check(self.stored) {
            return Err(e);
        }
        let started = self.batch_started;
        self.batcher.flush_all();
        self.take_pieces()?;
        let ready = std::mem::take(&mut self.pieces);
        let mut windowed = Vec::with_capacity(ready.len());
        let mut rows_of_hour = BTreeMap::new();
        if !ready.is_empty() {
            let t = Instant::now();
            let all = ready.iter().map(|hb| hb.batch.clone()).collect();
            sql.count(all, &mut self.counts, self.series_limit)?;
            self.timings.sql += t.elapsed();
        }
        for hb in ready {
            let n = hb.batch.num_rows() as u64;
            if self.windows.is_forgotten(hb.hour_us) {
                self.counters.late_events += n;
                self.counters.late_forgotten += n;
            } else {
                *rows_of_hour.entry(hb.hour_us).or_insert(0) += n;
                windowed.push(hb.batch);
            }
        }
        if !windowed.is_empty() {
            // One SQL run over every hour of the batch: it groups by hour itself.
            let t = Instant::now();
            let partial = sql.hourly(windowed)?;
            for hour in self.windows.add(&partial, sql)? {
                self.counters.late_events += rows_of_hour.get(&hour).copied().unwrap_or(0);
            }
            self.timings.sql += t.elapsed();
        }
        self.write_passed_hours(writer)?;
        self.rows_in_batch = 0;
        self.batch_started = None;
        Ok(started.map(|t| t.elapsed()))
    }

    /// Hands the writer this epoch's events of the hours this partition's events have
    /// left behind by more than the allowed lateness: few events can still come for
    /// them (one that does goes into another file of the hour). A partition reading a
    /// backlog passes many hours between checkpoints; written as it goes, their files
    /// are encoded while it reads rather than all at once in the checkpoint (the last
    /// one after the last record, where nothing overlaps it), and their rows are not
    /// held until then.
    fn write_passed_hours(&mut self, writer: &Writer) -> Result<(), StreamError> {
        let later = self.unwritten.split_off(&self.passed_hours());
        for (hour_us, batches) in std::mem::replace(&mut self.unwritten, later) {
            self.hand_over(hour_us, batches, writer)?;
        }
        Ok(())
    }

    /// The first hour this partition's events have not passed by the allowed lateness.
    fn passed_hours(&self) -> i64 {
        self.max_event_us
            .map_or(i64::MIN, |max| hour_of(max.saturating_sub(self.lateness_us)))
    }

    /// Takes the pieces the batcher has finished: for the batch's SQL, and for the
    /// events files.
    fn take_pieces(&mut self) -> Result<(), StreamError> {
        for hb in self.batcher.take_ready() {
            let hb = hb?;
            self.unwritten.entry(hb.hour_us).or_default().push(hb.batch.clone());
            self.pieces.push(hb);
        }
        Ok(())
    }

    /// Hands an hour's rows to the writer as one file of this epoch, in staging, after
    /// the rows of the hour's held pieces.
    fn hand_over(&mut self, hour_us: i64, batches: Vec<RecordBatch>, writer: &Writer) -> Result<(), StreamError> {
        let name = self.next_name();
        let path = self
            .dirs
            .root
            .join(EVENTS_DIR)
            .join(hour_partition(hour_us))
            .join(&name);
        let tmp = self.dirs.staged_tmp(&name);
        let pieces = self.held.remove(&hour_us).unwrap_or_default();
        self.gathered.extend(pieces.iter().cloned());
        self.handed.push(writer.write(tmp, path, pieces, batches)?);
        Ok(())
    }

    /// Hands an open hour's rows to the writer as a piece the checkpoint holds.
    fn hold(&mut self, hour_us: i64, batches: Vec<RecordBatch>, writer: &Writer) -> Result<(), StreamError> {
        // Never published: its final path is its staged one.
        let name = format!("held-{}", self.next_name());
        let tmp = self.dirs.staged_tmp(&name);
        self.holding
            .push((hour_us, writer.write(tmp.clone(), tmp, Vec::new(), batches)?));
        Ok(())
    }

    /// The name of this epoch's next events file.
    fn next_name(&mut self) -> String {
        self.staged_seq += 1;
        format!("{}-{:010}-{:03}.parquet", self.scope, self.epoch, self.staged_seq)
    }

    /// While it has delivered no event: when it stops holding the watermark back
    /// (see [`crate::Processor`]'s watermark), unless an event comes first.
    pub fn holds_watermark_until(&self) -> Option<Instant> {
        if self.max_event_us.is_some() {
            return None;
        }
        self.last_event
            .unwrap_or(self.assigned_at)
            .checked_add(self.idle_timeout)
    }

    /// Whether this partition has read no event for the idle timeout (since its
    /// assignment, if it has read none): it no longer holds the watermark back.
    pub fn is_idle(&self, now: Instant) -> bool {
        now.duration_since(self.last_event.unwrap_or(self.assigned_at)) >= self.idle_timeout
    }

    /// The time now by the records: the newest ingest time read plus the time since
    /// the last record. Not the host's clock, so that a partition read behind (a
    /// backlog) is in the hours it reads.
    fn clock_us(&self, now: Instant) -> Option<i64> {
        let since = now.duration_since(self.last_record?).as_micros();
        Some(self.ingest_us.saturating_add(i64::try_from(since).unwrap_or(i64::MAX)))
    }

    /// Hours before this are over by the partition's clock and the allowed lateness,
    /// for a partition idle at `now`; otherwise `i64::MIN`. Nothing passes such an
    /// hour while the topic is quiet, so its events are published rather than held
    /// until traffic resumes; an hour still running is held, so a host sending an
    /// event every few minutes still gets one file an hour.
    fn quiet_before(&self, now: Instant) -> i64 {
        match self.clock_us(now) {
            Some(clock) if self.is_idle(now) => hour_of(clock.saturating_sub(self.lateness_us)),
            _ => i64::MIN,
        }
    }

    /// Writes this epoch: closes windows before `close_before` (with `stopping`, writes
    /// open hours too), stages hourly rows and dead letters, hands them to the sink,
    /// stores the checkpoint, publishes. Events of quiet hours (see
    /// [`Partition::quiet_before`]) are published, not held. Returns the offset to
    /// commit, or `None` when nothing changed.
    pub fn checkpoint(
        &mut self,
        close_before: i64,
        stopping: bool,
        now: Instant,
        sql: &mut Sql,
        writer: &Writer,
        sink: Option<&mut (dyn crate::EpochSink + 'static)>,
    ) -> Result<Option<i64>, StreamError> {
        self.close_batch(sql, writer)?;
        let started = Instant::now();
        let r = self.write_epoch(close_before, stopping, now, sql, writer, sink);
        self.timings.checkpoint += started.elapsed();
        r
    }

    fn write_epoch(
        &mut self,
        close_before: i64,
        stopping: bool,
        now: Instant,
        sql: &mut Sql,
        writer: &Writer,
        sink: Option<&mut (dyn crate::EpochSink + 'static)>,
    ) -> Result<Option<i64>, StreamError> {
        // A holder that lost the scope stages nothing more of it.
        self.dirs.check(self.stored)?;
        let emits = self.windows.take_emits(close_before, stopping, sql)?;
        // Hours from here on are open: their rows are held, not published. An hour
        // the partition's events have passed, or a quiet one, is written whole. The
        // watermark publishes only an idle partition's hours: one reading behind it
        // (a backlog, a partition moved here from a member that was behind) is still
        // in its hour, and publishing at every checkpoint would make a file of each.
        let watermark = if self.is_idle(now) { close_before } else { i64::MIN };
        let open_from = if stopping {
            i64::MAX
        } else {
            self.passed_hours().max(watermark).max(self.quiet_before(now))
        };
        // Dead letters wait for their hour's file as well, by the partition's clock.
        let clock_hour = self.clock_us(now).map_or(i64::MIN, hour_of);
        let rejects_from = if stopping { i64::MAX } else { clock_hour };
        let gather = self.held.range(..open_from).next().is_some() || self.dead_letters.due_before(rejects_from);
        if !self.dirty && emits.is_empty() && !gather {
            return Ok(None);
        }
        // The writer encodes the hours while this thread writes the rest.
        for (hour_us, batches) in std::mem::take(&mut self.unwritten) {
            if hour_us < open_from {
                self.hand_over(hour_us, batches, writer)?;
            } else {
                self.hold(hour_us, batches, writer)?;
            }
        }
        // Passed hours with nothing new since their pieces were held (an idle
        // partition's last hour, closed by the others' progress).
        let passed: Vec<i64> = self.held.range(..open_from).map(|(h, _)| *h).collect();
        for hour_us in passed {
            self.hand_over(hour_us, Vec::new(), writer)?;
        }
        let mut others = Vec::new();
        let name = format!("{}-{:010}.parquet", self.scope, self.epoch);
        let hourly = emits
            .iter()
            .map(|e| to_hourly(&e.rows, &self.scope, self.epoch, e.is_final))
            .collect::<Result<Vec<_>, _>>()?;
        if !hourly.is_empty() {
            let mut f = ParquetFile::create_staged(
                self.dirs.staged_tmp(&format!("hourly-{name}")),
                self.dirs.root.join(HOURLY_DIR).join(&name),
                hourly_schema(),
            )?;
            for b in &hourly {
                f.write(b)?;
            }
            others.push(f.seal()?);
        }
        let Staging {
            batches: dead_letters,
            sealed,
            gathered,
        } = self
            .dead_letters
            .stage(&self.dirs, &name, clock_hour, rejects_from, stopping)?;
        if let Some(sealed) = sealed {
            self.counters.missing_pieces += sealed.missing_pieces;
            self.counters.set_aside_pieces += sealed.set_aside_pieces;
            others.push(sealed.file);
        }
        self.gathered.extend(gathered);
        let mut staged = Vec::with_capacity(self.handed.len() + others.len());
        for p in std::mem::take(&mut self.handed) {
            let sealed = p.wait()?;
            self.timings.write += sealed.took;
            self.counters.missing_pieces += sealed.missing_pieces;
            self.counters.set_aside_pieces += sealed.set_aside_pieces;
            staged.push(sealed.file);
        }
        staged.extend(others);
        for (hour_us, p) in std::mem::take(&mut self.holding) {
            let sealed = p.wait()?;
            self.timings.write += sealed.took;
            self.held.entry(hour_us).or_default().push(sealed.file.tmp);
        }
        if let Some(sink) = sink {
            // Topics cannot be taken back: nothing goes out from a holder that lost
            // the scope.
            self.dirs.check(self.stored)?;
            sink.epoch(&self.scope, &hourly, &dead_letters)?;
        }
        // Counted from the partition's own progress when that is behind the
        // watermark: a partition reading a backlog (a host that was cut off, one moved
        // here from a worker that was behind) closes its hours on the watermark, and
        // its next records are in those hours: they must still find them to revise.
        if self.keep_closed_hours > 0 {
            let own = self
                .max_event_us
                .map_or(i64::MAX, |m| hour_of(m.saturating_sub(self.lateness_us)));
            let horizon = self
                .windows
                .closed_before()
                .min(own)
                .saturating_sub(self.keep_closed_hours.saturating_mul(HOUR_US));
            self.windows.forget_before(horizon);
        }
        crate::counting::count_health(&mut self.counts, &self.counters, self.norm.stats_ref());
        let rel = |p: &Path| -> PathBuf { p.strip_prefix(&self.dirs.root).unwrap_or(p).to_path_buf() };
        let listed = |m: &BTreeMap<i64, Vec<PathBuf>>| -> Vec<(i64, PathBuf)> {
            m.iter()
                .flat_map(|(h, pieces)| pieces.iter().map(|p| (*h, rel(p))))
                .collect()
        };
        let ckpt = Checkpoint {
            version: crate::checkpoint::VERSION,
            scope: self.scope.clone(),
            next_offset: self.next_offset,
            epoch: self.epoch,
            max_event_us: self.max_event_us,
            normalizer: self.norm.snapshot(),
            windows: self.windows.snapshot(sql)?,
            counters: self.counters.clone(),
            counts: self.counts.clone(),
            owner: self.owner.clone(),
            pending: staged.iter().map(|s| (rel(&s.tmp), rel(&s.path))).collect(),
            held: listed(&self.held),
            held_rejects: listed(self.dead_letters.held()),
            clock_us: self.clock_us(now),
        };
        self.stored = Some(self.dirs.store(&ckpt, self.stored)?);
        for s in &staged {
            s.publish()?;
        }
        // The checkpoint just stored no longer lists them (recovery would delete them too).
        for p in std::mem::take(&mut self.gathered) {
            let _ = std::fs::remove_file(p);
        }
        self.epoch += 1;
        self.staged_seq = 0;
        self.dirty = false;
        Ok(Some(self.next_offset))
    }

    /// Drops this epoch's unfinished files (a revoked partition whose checkpoint failed).
    /// The held pieces the last stored checkpoint lists stay, for the next holder.
    pub fn abort(self) {
        let holding = self.holding.into_iter().map(|(_, p)| p);
        for p in self.handed.into_iter().chain(holding) {
            if let Ok(sealed) = p.wait() {
                sealed.file.discard();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lines_of;

    fn lines(value: &str) -> Vec<&str> {
        lines_of(value.as_bytes())
            .map(|l| std::str::from_utf8(l).expect("utf-8"))
            .collect()
    }

    #[test]
    fn a_value_of_several_lines_is_each_of_them_and_a_pretty_json_one_is_one() {
        assert_eq!(lines("one"), ["one"]);
        assert_eq!(lines("one\n"), ["one\n"]);
        assert_eq!(lines("one\r\ntwo\nthree"), ["one\r\n", "two\n", "three"]);
        assert_eq!(lines("{\"a\":1}\n{\"a\":2}\n"), ["{\"a\":1}\n", "{\"a\":2}\n"]);
        let pretty = "{\n  \"type\": \"Delivery\",\n  \"x\": [\n    1\n  ]\n}\n";
        assert_eq!(lines(pretty), [pretty]);
        assert_eq!(lines("one\n\ntwo"), ["one\n\n", "two"]);
        assert!(lines("").is_empty());
    }
}
