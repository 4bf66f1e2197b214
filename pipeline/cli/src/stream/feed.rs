//! Records handed from a consumer's polling thread to one of its processing threads
//! (workers); the poller has one `Feeder` per worker.
//!
//! The polling thread copies each record out of librdkafka's message, which it then
//! frees, into a chunk; the worker parses, batches, windows and writes. Polling and
//! freeing messages cost about a third of the work, so the poller and the workers keep
//! several cores busy. The channel is bounded: a slow worker stops the poller, and
//! librdkafka's prefetch queue fills and stops fetching.
//!
//! A revoke, or a partition moving to another worker, must find every record polled
//! before it already processed. Both run on the polling thread (rebalance callbacks
//! inside `poll`), so it hands over the chunk being filled and waits at a barrier until
//! the worker has passed it.

use deferlog_stream::Record;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Records per chunk: few enough that a chunk is a fraction of a millisecond of work,
/// many enough that the channel costs nothing per record.
const CHUNK_RECORDS: usize = 512;
/// Chunks in flight to one worker: 64k records, a default batch (`stream.batch_rows`).
/// The poller blocks on a worker whose channel is full while the others may run dry,
/// and a worker closing a batch (SQL, Parquet) takes no chunks for ~0.1 s. In the
/// stream bench, 32 left the poller blocked 0.14–0.22 s per 1M records and 128 at
/// most 0.02 s; peak RSS did not move (308–320 MiB then: librdkafka's prefetch queue
/// holds what the channels do not), at most ~25 MiB of chunks per worker.
const CHANNEL_CHUNKS: usize = 128;

#[derive(Debug)]
struct Meta {
    /// Index into the chunk's `topics`.
    topic: usize,
    partition: i32,
    offset: i64,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    tenant_header: Option<Range<usize>>,
    timestamp_ms: Option<i64>,
}

/// Copied records, their bytes in one buffer: the message they came from is freed on
/// the polling thread.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    bytes: Vec<u8>,
    topics: Vec<Box<str>>,
    records: Vec<Meta>,
}

impl Chunk {
    fn with_capacity() -> Chunk {
        Chunk {
            bytes: Vec::with_capacity(CHUNK_RECORDS * 256),
            topics: Vec::new(),
            records: Vec::with_capacity(CHUNK_RECORDS),
        }
    }

    fn copy(&mut self, b: Option<&[u8]>) -> Option<Range<usize>> {
        let b = b?;
        let at = self.bytes.len();
        self.bytes.extend_from_slice(b);
        Some(at..self.bytes.len())
    }

    fn push(&mut self, r: &Record<'_>) {
        // A consumer reads a handful of topics: a scan, and no allocation per record.
        let topic = match self.topics.iter().position(|t| **t == *r.topic) {
            Some(i) => i,
            None => {
                self.topics.push(r.topic.into());
                self.topics.len() - 1
            }
        };
        let meta = Meta {
            topic,
            partition: r.partition,
            offset: r.offset,
            key: self.copy(r.key),
            value: self.copy(r.value),
            tenant_header: self.copy(r.tenant_header),
            timestamp_ms: r.timestamp_ms,
        };
        self.records.push(meta);
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Empty, with its buffers' capacity (and the topic names) kept for reuse.
    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    pub(crate) fn records(&self) -> impl Iterator<Item = Record<'_>> {
        let bytes = |r: &Option<Range<usize>>| r.clone().map(|r| &self.bytes[r]);
        self.records.iter().map(move |m| Record {
            topic: &self.topics[m.topic],
            partition: m.partition,
            offset: m.offset,
            key: bytes(&m.key),
            value: bytes(&m.value),
            tenant_header: bytes(&m.tenant_header),
            timestamp_ms: m.timestamp_ms,
        })
    }
}

#[derive(Debug)]
pub(crate) enum Feed {
    Records(Chunk),
    /// Answered once every record sent before it is processed.
    Barrier(SyncSender<()>),
    /// The polling thread has stopped; nothing follows. `finish`: it stopped cleanly,
    /// so the worker writes its final checkpoint once it has processed the rest.
    End {
        finish: bool,
    },
}

/// The chunk being filled, and processed chunks given back to fill again: a chunk's
/// buffers are allocated once, not once per 512 records.
#[derive(Debug)]
struct Pending {
    chunk: Chunk,
    spare: Receiver<Chunk>,
}

/// The polling thread's end. Only the polling thread (its loop and the rebalance
/// callbacks inside `poll`) calls it, so records reach the channel in poll order; the
/// lock is there because the callbacks reach it through the consumer's shared context.
#[derive(Debug)]
pub(crate) struct Feeder {
    pending: Mutex<Pending>,
    tx: SyncSender<Feed>,
    /// Nanoseconds the polling thread spent blocked on this worker's full channel.
    blocked_ns: AtomicU64,
}

/// The processing thread's end.
#[derive(Debug)]
pub(crate) struct Fed {
    rx: Receiver<Feed>,
    spare: Sender<Chunk>,
}

impl Fed {
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<Feed, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// Hands a processed chunk back to the polling thread to fill again.
    pub(crate) fn give_back(&self, mut chunk: Chunk) {
        chunk.clear();
        // The polling thread may be gone; the chunk is then simply dropped.
        let _ = self.spare.send(chunk);
    }
}

impl Feeder {
    pub(crate) fn new() -> (Feeder, Fed) {
        let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
        let (spare_tx, spare) = channel();
        let pending = Mutex::new(Pending {
            chunk: Chunk::with_capacity(),
            spare,
        });
        let feeder = Feeder {
            pending,
            tx,
            blocked_ns: AtomicU64::new(0),
        };
        (feeder, Fed { rx, spare: spare_tx })
    }

    /// The chunk being filled, if it holds anything; a spare one takes its place.
    fn take(&self) -> Option<Chunk> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.chunk.len() == 0 {
            return None;
        }
        let next = p.spare.try_recv().unwrap_or_else(|_| Chunk::with_capacity());
        Some(std::mem::replace(&mut p.chunk, next))
    }

    /// Copies one record, and hands the chunk over once it is full. `false`: the
    /// processing thread is gone (it failed).
    pub(crate) fn push(&self, r: &Record<'_>) -> bool {
        let full = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            p.chunk.push(r);
            p.chunk.len() >= CHUNK_RECORDS
        };
        !full || self.flush()
    }

    /// Hands over the records copied so far.
    pub(crate) fn flush(&self) -> bool {
        self.take().is_none_or(|chunk| self.send(Feed::Records(chunk)))
    }

    /// Sends, timing only a send that has to wait for room.
    fn send(&self, feed: Feed) -> bool {
        match self.tx.try_send(feed) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            Err(TrySendError::Full(feed)) => {
                let since = Instant::now();
                let sent = self.tx.send(feed).is_ok();
                let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.blocked_ns.fetch_add(ns, Ordering::Relaxed);
                sent
            }
        }
    }

    /// How long the polling thread has waited for room in this worker's channel.
    pub(crate) fn blocked(&self) -> Duration {
        Duration::from_nanos(self.blocked_ns.load(Ordering::Relaxed))
    }

    /// Returns once the processing thread has processed every record pushed before
    /// (or is gone).
    pub(crate) fn barrier(&self) {
        if !self.flush() {
            return;
        }
        let (ack, done) = sync_channel(1);
        if self.tx.send(Feed::Barrier(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// Hands over what is left and tells the processing thread to stop (see
    /// [`Feed::End`]).
    pub(crate) fn end(&self, finish: bool) {
        if self.flush() {
            let _ = self.tx.send(Feed::End { finish });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_arrive_whole_in_poll_order_and_barriers_wait_for_them() {
        let (feeder, fed) = Feeder::new();
        let consumer = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut barriers = 0;
            while let Ok(f) = fed.recv_timeout(Duration::from_secs(60)) {
                match f {
                    Feed::Records(c) => {
                        seen.extend(c.records().map(|r| {
                            (
                                r.topic.to_owned(),
                                r.partition,
                                r.offset,
                                r.key.map(<[u8]>::to_vec),
                                r.value.map(<[u8]>::to_vec),
                                r.tenant_header.map(<[u8]>::to_vec),
                                r.timestamp_ms,
                            )
                        }));
                        // Refilled chunks must not carry old records along.
                        fed.give_back(c);
                    }
                    Feed::Barrier(ack) => {
                        // Everything pushed before the barrier is here already.
                        barriers += 1;
                        assert_eq!(seen.len(), 3 + 3 * CHUNK_RECORDS);
                        ack.send(()).expect("ack");
                    }
                    Feed::End { .. } => break,
                }
            }
            (seen, barriers)
        });
        let mut sent = Vec::new();
        for i in 0..(3 + 3 * CHUNK_RECORDS) as i64 {
            let topic = if i % 2 == 0 { "mail" } else { "mail-eu" };
            let value = format!("line {i}");
            let key = (i % 3 != 0).then(|| format!("host{}", i % 5));
            let header = (i == 1).then_some(&b"acme"[..]);
            let ts = (i != 2).then_some(1_700_000_000_000 + i);
            let r = Record {
                topic,
                partition: (i % 6) as i32,
                offset: i,
                key: key.as_deref().map(str::as_bytes),
                value: (i != 4).then_some(value.as_bytes()),
                tenant_header: header,
                timestamp_ms: ts,
            };
            assert!(feeder.push(&r));
            sent.push((
                topic.to_owned(),
                r.partition,
                i,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
                header.map(<[u8]>::to_vec),
                ts,
            ));
        }
        feeder.barrier();
        feeder.end(true);
        let (seen, barriers) = consumer.join().expect("consumer");
        assert_eq!(barriers, 1);
        assert_eq!(seen, sent);
    }

    fn record(offset: i64) -> Record<'static> {
        Record {
            topic: "mail",
            partition: 0,
            offset,
            key: None,
            value: Some(b"x"),
            tenant_header: None,
            timestamp_ms: None,
        }
    }

    #[test]
    fn only_waiting_for_room_counts_as_blocked() {
        let (feeder, fed) = Feeder::new();
        for chunk in 0..CHANNEL_CHUNKS as i64 {
            for i in 0..CHUNK_RECORDS as i64 {
                assert!(feeder.push(&record(chunk * CHUNK_RECORDS as i64 + i)));
            }
        }
        assert_eq!(feeder.blocked(), Duration::ZERO, "the channel had room");
        let pause = Duration::from_millis(50);
        let worker = std::thread::spawn(move || {
            std::thread::sleep(pause);
            // Room for one more chunk, after the pause.
            let first = fed.recv_timeout(Duration::from_secs(60)).expect("a chunk");
            assert!(matches!(first, Feed::Records(_)));
            // Kept open until the poller's send has gone through: dropped now, the
            // waiting send would find the worker gone.
            fed
        });
        assert!(feeder.push(&record(-1)));
        assert!(feeder.flush());
        let _fed = worker.join().expect("worker");
        let blocked = feeder.blocked();
        assert!(blocked >= pause / 2, "blocked {blocked:?}");
    }

    #[test]
    fn a_gone_processing_thread_fails_pushes_and_releases_barriers() {
        let (feeder, fed) = Feeder::new();
        drop(fed);
        let r = record(0);
        let pushed: Vec<bool> = (0..CHUNK_RECORDS).map(|_| feeder.push(&r)).collect();
        // Copies are kept until a chunk is full; handing that one over fails.
        assert!(pushed[..CHUNK_RECORDS - 1].iter().all(|p| *p));
        assert!(!pushed[CHUNK_RECORDS - 1]);
        feeder.barrier();
        feeder.end(true);
    }
}
