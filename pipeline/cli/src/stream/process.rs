//! A worker's loop: process the chunks its feed brings, close batches on time,
//! checkpoint and commit on the interval, and post to the status line.

use super::feed::{Fed, Feed};
use super::handler::Worker;
use super::shared::Shared;
use super::status::Status;
use crate::config::RunSettings;
use anyhow::Result;
use deferlog_kafka::{Source, TopicPartition};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// What the processing thread did.
#[derive(Debug, Default)]
pub(super) struct Processed {
    /// When the first chunk came.
    pub(super) first: Option<Instant>,
    /// Waiting for the polling thread after the first chunk.
    pub(super) waiting: Duration,
    /// When the polling thread's end came, everything before it processed.
    pub(super) ended: Option<Instant>,
    /// The final checkpoint (after a clean stop): how long it took, and the offsets
    /// it covers, to commit.
    pub(super) final_checkpoint: Duration,
    pub(super) commits: Vec<(String, i32, i64)>,
}

/// How long a worker goes at most without looking at the clock (batch and
/// checkpoint intervals, the status line), busy or quiet.
const TICK: Duration = Duration::from_millis(100);

/// What a processing thread works with.
pub(super) struct Job<'a> {
    /// This worker's place among all the run's workers (for the shared status).
    pub(super) slot: usize,
    pub(super) worker: &'a Worker,
    pub(super) source: &'a Source,
    pub(super) settings: &'a RunSettings,
    pub(super) shared: &'a Shared,
}

/// Logs the partitions the last checkpoint or revoke found another member had taken
/// over (see [`deferlog_stream::Processor::take_fenced`]), and returns them.
pub(super) fn say_fenced(p: &mut deferlog_stream::Processor) -> Vec<TopicPartition> {
    let fenced = p.take_fenced();
    for (t, n) in &fenced {
        say!(
            "deferlog run: {t}/{n} was taken over by another member of the group (this one was out of the group \
             longer than its session timeout): dropped unwritten; its new owner resumes from its checkpoint"
        );
    }
    fenced
}

/// Processes the polling thread's chunks until it ends; closes batches on time,
/// checkpoints and commits on the checkpoint interval, and logs the status line.
pub(super) fn process(feed: Fed, job: &Job<'_>) -> Result<Processed> {
    let Job {
        slot,
        worker,
        source,
        settings,
        shared,
    } = *job;
    let mut done = Processed::default();
    let mut last_checkpoint = Instant::now();
    let mut status = Status::new(slot, &shared.board, shared.exporter.clone());
    let mut since_tick = 0usize;
    let mut last_tick = Instant::now();
    loop {
        let before = Instant::now();
        let got = feed.recv_timeout(TICK);
        // `now` dates batches and idleness: once per chunk is often enough.
        let now = Instant::now();
        if done.first.is_some() {
            done.waiting += now - before;
        }
        match got {
            Ok(Feed::Records(chunk)) => {
                done.first.get_or_insert(now);
                let mut p = worker.proc();
                for r in chunk.records() {
                    p.process(&r, now)?;
                }
                shared.board.add_records(chunk.len());
                since_tick += chunk.len();
                feed.give_back(chunk);
            }
            Ok(Feed::Barrier(ack)) => {
                let _ = ack.send(());
            }
            Ok(Feed::End { finish }) => {
                done.ended = Some(now);
                if finish {
                    let mut p = worker.proc();
                    done.commits = p.checkpoint(true, now)?;
                    say_fenced(&mut p);
                    done.final_checkpoint = now.elapsed();
                }
                return Ok(done);
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(done),
            // Quiet: time to look at the clock.
            Err(RecvTimeoutError::Timeout) => since_tick = usize::MAX,
        }
        // Clock checks every few thousand records, and at least every `TICK`: a
        // trickle of records (each its own chunk, none waiting) never lets the
        // channel go quiet, and must still close batches and checkpoint on time.
        if since_tick >= 4096 || now.duration_since(last_tick) >= TICK {
            since_tick = 0;
            last_tick = now;
            let mut p = worker.proc();
            p.tick(now)?;
            if now.duration_since(last_checkpoint) >= settings.checkpoint_interval {
                let commits = p.checkpoint(false, now)?;
                // Asynchronous: a lost commit only means a restart re-reads from the
                // checkpoint's own offsets, which it does anyway.
                source.commit(&commits, false)?;
                let fenced = say_fenced(&mut p);
                if !fenced.is_empty() {
                    shared.fenced_again(&fenced)?;
                    // Usually the group's own word that they are lost is on its way;
                    // if another member got one by a race while the group still
                    // counts it this member's, only a new assignment restarts it.
                    source.ask_rejoin(&fenced);
                }
                last_checkpoint = now;
                shared.checkpointed(slot, p.status(), p.watermark_us());
            }
            status.maybe_post(now, &mut p, source, &shared.board);
        }
    }
}
