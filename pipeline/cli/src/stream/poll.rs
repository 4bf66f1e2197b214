//! The polling thread's loop: poll librdkafka, copy each record to the worker holding
//! its partition, even out the workers' loads, and stop on cancel or a failure.

use super::handler::Handler;
use super::route;
use super::shared::Shared;
use crate::config::RunSettings;
use anyhow::Result;
use deferlog_kafka::Source;
use deferlog_stream::{Record, TenantFrom};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the polling thread did.
#[derive(Debug, Default)]
pub(super) struct Polled {
    pub(super) records: u64,
    /// Waiting for librdkafka after the first record.
    pub(super) waiting: Duration,
    pub(super) first_record: Option<Duration>,
    /// The longest stretch without a record after the first, and when it began (both
    /// since the member started); a stall shows here, spread waits do not.
    pub(super) longest_wait: Option<(Duration, Duration)>,
    /// From the last wait's start to the end, when polling ended waiting.
    pub(super) idle_tail: Option<Duration>,
}

const CANCEL_EVERY: u32 = 256;
/// Records between looks at the workers' loads: a few hundredths of a second when
/// busy, and enough records per partition to tell loads apart.
const BALANCE_EVERY: u64 = 1 << 15;

/// Polls until cancelled, copying each record to the worker holding its partition;
/// stops early when a worker is gone or a rebalance callback failed.
pub(super) fn poll(
    source: &Source,
    handler: &Handler,
    settings: &RunSettings,
    cancel: &CancellationToken,
    shared: &Shared,
    started: Instant,
) -> Result<Polled> {
    let header_of: Vec<(&str, &str)> = settings
        .stream
        .topics
        .iter()
        .filter_map(|t| match &t.tenant {
            TenantFrom::Header(h) => Some((t.name.as_str(), h.as_str())),
            _ => None,
        })
        .collect();
    let mut p = Polled::default();
    let mut warnings = 0u64;
    // Reading the token takes a lock: in a burst it is read once per CANCEL_EVERY
    // records (well under a millisecond), and always before the poller waits.
    let mut check_in = 0u32;
    // Since when the poller has waited without a record (once it has had one).
    let mut stalled: Option<Instant> = None;
    let mut memo = route::Memo::default();
    // Records not yet added to the shared count (`Hooks::stop_after`): it is added
    // to in runs, as a shared counter per record is a contended atomic.
    let mut uncounted = 0u64;
    loop {
        if check_in == 0 {
            if cancel.is_cancelled() {
                break;
            }
            rejoin_if_asked(source)?;
            check_in = CANCEL_EVERY;
        }
        check_in -= 1;
        // Records already fetched come back at once; only waiting is timed.
        let mut polled = source.poll(Duration::ZERO);
        if polled.is_none() {
            if shared.count_toward_stop(&mut uncounted) {
                cancel.cancel();
            }
            if cancel.is_cancelled() {
                break;
            }
            rejoin_if_asked(source)?;
            // Nothing prefetched: what is copied so far goes now, not when a chunk fills.
            if !handler.workers.iter().all(|w| w.feeder.flush()) {
                break;
            }
            let before = Instant::now();
            polled = source.poll(Duration::from_millis(100));
            // Waiting before the first record is joining the group, not consuming.
            if p.first_record.is_some() {
                p.waiting += before.elapsed();
                stalled.get_or_insert(before);
            }
        }
        match polled {
            Some(Ok(m)) => {
                let header = header_of
                    .iter()
                    .find(|(t, _)| *t == m.topic())
                    .and_then(|(_, h)| m.header(h));
                let r = Record {
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key(),
                    value: m.value(),
                    tenant_header: header,
                    timestamp_ms: m.timestamp_ms(),
                };
                // A partition not held (prefetched before a revoke) goes to worker 0,
                // which counts it and leaves it to its owner.
                let w = handler.worker_of(&mut memo, r.topic, r.partition).unwrap_or(0);
                if !handler.workers[w].feeder.push(&r) {
                    break;
                }
                p.records += 1;
                if p.records.is_multiple_of(BALANCE_EVERY) {
                    handler.balance(&mut memo);
                }
                // Only after a wait, so the clock is not read per record.
                if let Some(since) = stalled.take() {
                    let stall = since.elapsed();
                    if p.longest_wait.is_none_or(|(d, _)| stall > d) {
                        p.longest_wait = Some((stall, since.duration_since(started)));
                    }
                }
                if p.first_record.is_none() {
                    p.first_record = Some(started.elapsed());
                }
                uncounted += 1;
                if uncounted == u64::from(CANCEL_EVERY) && shared.count_toward_stop(&mut uncounted) {
                    cancel.cancel();
                    check_in = 0;
                }
            }
            Some(Err(e)) => {
                handler.exporter.count_kafka_error(&e.code());
                // The broker being away repeats the same error many times a second.
                warnings += 1;
                if warnings.is_power_of_two() {
                    // The error names no topic: say which this member reads.
                    let hint = if e.is_unknown_topic() {
                        let topics: Vec<&str> = settings.stream.topics.iter().map(|t| t.name.as_str()).collect();
                        format!(
                            "; reading {}: a topic not on these brokers is waited for",
                            topics.join(", ")
                        )
                    } else {
                        String::new()
                    };
                    say!(
                        "deferlog run: kafka ({}): {e} (seen {warnings} times){hint}",
                        settings.client.brokers
                    );
                }
            }
            None => {}
        }
        if handler.has_failed.load(Ordering::Relaxed)
            && let Some(e) = handler.failed.lock().unwrap_or_else(PoisonError::into_inner).take()
        {
            return Err(e.into());
        }
    }
    p.idle_tail = stalled.map(|since| since.elapsed());
    Ok(p)
}

/// Leaves the group and joins it again when a worker asked for it (see
/// [`super::process::say_fenced`]).
fn rejoin_if_asked(source: &Source) -> Result<()> {
    if source.rejoin_if_asked()? {
        say!("deferlog run: leaving the group and joining it again, for a fresh assignment");
    }
    Ok(())
}
