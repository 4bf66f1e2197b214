//! `deferlog tail`: a topic's records as JSON lines `{partition, offset, key, headers,
//! value}` (text where UTF-8, else base16), from the beginning, until it goes quiet.

use crate::cli::TailArgs;
use anyhow::Result;
use deferlog_kafka::{Partitions, Source, TopicPartition};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads from the earliest offset, commits nothing.
struct FromStart;

impl Partitions for FromStart {
    fn assigned(&self, parts: &[TopicPartition]) -> Vec<Option<i64>> {
        vec![Some(0); parts.len()]
    }
    fn revoked(&self, _: &[TopicPartition]) -> Vec<(String, i32, i64)> {
        Vec::new()
    }
}

fn text(b: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(b) {
        Ok(s) => s.into(),
        Err(_) => b.iter().map(|x| format!("{x:02x}")).collect::<String>().into(),
    }
}

pub fn run(a: TailArgs) -> Result<()> {
    let settings = super::produce::client_settings(&a.brokers, &a.properties)?;
    let group = format!("deferlog-tail-{}", std::process::id());
    let source = Source::new(&settings, &group, &[a.topic.as_str()], Arc::new(FromStart))?;
    let idle = Duration::from_millis(a.idle_ms);
    let mut last = Instant::now();
    let mut out = std::io::stdout().lock();
    while last.elapsed() < idle {
        let Some(m) = source.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        let headers: serde_json::Map<String, serde_json::Value> = m
            .headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.map_or(serde_json::Value::Null, text)))
            .collect();
        let line = serde_json::json!({
            "partition": m.partition(),
            "offset": m.offset(),
            "key": m.key().map(text),
            "headers": headers,
            "value": m.value().map(text),
        });
        writeln!(out, "{line}")?;
        last = Instant::now();
    }
    Ok(())
}
