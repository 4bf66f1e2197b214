//! Where a worker's epochs go besides the archive: Kafka topics for hourly rows and
//! dead letters, a sink every member shares (the demo's screen), several in turn.

use crate::output::{self, Format};
use arrow::array::{Array, AsArray, RecordBatch};
use deferlog_kafka::Producer;
use deferlog_stream::{EpochSink, StreamError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Hourly rows and dead letters to Kafka topics. Flushed before the checkpoint that
/// covers them is stored: at least once, keyed so readers can drop repeats.
pub(super) struct TopicSink {
    pub(super) producer: Producer,
    pub(super) hourly_topic: Option<String>,
    pub(super) dead_letter_topic: Option<String>,
}

fn output_err(e: impl std::error::Error + Send + Sync + 'static) -> StreamError {
    StreamError::Output(Box::new(e))
}

impl EpochSink for TopicSink {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], dead: &[RecordBatch]) -> Result<(), StreamError> {
        if let Some(topic) = &self.hourly_topic
            && !hourly.is_empty()
        {
            let mut json = Vec::new();
            output::write(Format::Json, hourly, &mut json).map_err(|e| StreamError::Output(e.into()))?;
            // Scope and hour: the key whose latest revision's rows (all of them, one
            // per sending IP x MX host) replace the earlier ones. An epoch holds every
            // row of the revisions it writes: headers `row` and `rows` (1-based, of
            // that key and revision) tell a reader when it has one whole.
            let mut rows = Vec::new();
            let mut of_revision: std::collections::HashMap<(String, i64), usize> = Default::default();
            for line in json.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let row: serde_json::Value = serde_json::from_slice(line).map_err(output_err)?;
                let key = format!("{scope}/{}", row["hour"].as_str().unwrap_or_default());
                let revision = row["revision"].as_i64().unwrap_or_default();
                let n = of_revision.entry((key.clone(), revision)).or_default();
                *n += 1;
                rows.push((key, revision, *n, line));
            }
            for (key, revision, row, line) in rows {
                let total = of_revision[&(key.clone(), revision)];
                let (row, total) = (row.to_string(), total.to_string());
                let headers: [(&str, &[u8]); 2] = [("row", row.as_bytes()), ("rows", total.as_bytes())];
                self.producer
                    .send_with_headers(topic, Some(key.as_bytes()), line, &headers)
                    .map_err(output_err)?;
            }
        }
        if let Some(topic) = &self.dead_letter_topic {
            for b in dead {
                self.send_dead_letters(topic, b)?;
            }
        }
        self.producer.flush(Duration::from_secs(30)).map_err(output_err)
    }
}

impl TopicSink {
    /// One batch of dead letters (the `rejects/` schema) to `topic`: raw bytes as the
    /// value, the origin as the key, reason and MTA as headers, and what else was
    /// refused (a key, a tenant) as header `refused`.
    fn send_dead_letters(&self, topic: &str, b: &RecordBatch) -> Result<(), StreamError> {
        let text = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
        };
        let (Some(mta), Some(reason), Some(origin)) = (text("mta"), text("reason"), text("origin")) else {
            return Err(StreamError::Output("dead letters without mta, reason or origin".into()));
        };
        let (mta, reason, origin) = (
            mta.as_string::<i32>(),
            reason.as_string::<i32>(),
            origin.as_string::<i32>(),
        );
        let raw = b
            .column_by_name("raw")
            .and_then(|c| c.as_binary_opt::<i32>())
            .ok_or_else(|| StreamError::Output("dead letters without raw bytes".into()))?;
        let refused = b.column_by_name("refused").and_then(|c| c.as_binary_opt::<i32>());
        for i in 0..b.num_rows() {
            // A record that is no MTA's: labelled as its reject counter is.
            let m = if mta.is_valid(i) { mta.value(i) } else { "unknown" };
            let mut headers: Vec<(&str, &[u8])> = vec![("reason", reason.value(i).as_bytes()), ("mta", m.as_bytes())];
            if let Some(r) = refused.filter(|r| r.is_valid(i)) {
                headers.push(("refused", r.value(i)));
            }
            let value = if raw.is_valid(i) { raw.value(i) } else { &[] };
            self.producer
                .send_with_headers(topic, Some(origin.value(i).as_bytes()), value, &headers)
                .map_err(output_err)?;
        }
        Ok(())
    }
}

/// Hands each epoch to several sinks, in order.
pub(super) struct Tee(pub(super) Vec<Box<dyn EpochSink>>);

impl EpochSink for Tee {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], dead: &[RecordBatch]) -> Result<(), StreamError> {
        self.0.iter_mut().try_for_each(|s| s.epoch(scope, hourly, dead))
    }
    fn checkpointed(&mut self) -> Result<(), StreamError> {
        self.0.iter_mut().try_for_each(|s| s.checkpointed())
    }
}

/// One sink shared by every member.
pub(super) struct SharedSink(pub(super) Arc<Mutex<Box<dyn EpochSink>>>);

impl EpochSink for SharedSink {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], dead: &[RecordBatch]) -> Result<(), StreamError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .epoch(scope, hourly, dead)
    }
    fn checkpointed(&mut self) -> Result<(), StreamError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).checkpointed()
    }
}
