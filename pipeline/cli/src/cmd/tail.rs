//! `deferlog tail`: a topic's records as JSON lines `{partition, offset, key, headers,
//! value}` (text where UTF-8, else base16), from the beginning, until it goes quiet.

use crate::cli::TailArgs;
use anyhow::{Context, Result};
use deferlog_kafka::{Partitions, Source, TopicPartition};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOIN_LIMIT: Duration = Duration::from_secs(120);

/// Reads from the earliest offset, commits nothing; notes when partitions arrive.
struct FromStart(std::sync::atomic::AtomicBool);

impl Partitions for FromStart {
    fn assigned(&self, parts: &[TopicPartition]) -> Vec<Option<i64>> {
        self.0.store(true, std::sync::atomic::Ordering::Release);
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
    // Its group is its own and left at exit: the shortest session brokers allow, as
    // a group join can wait about half of it (tansu: 22 s at librdkafka's 45 s
    // default). Not when the user sets it, or chose the `consumer` group protocol,
    // whose session the broker sets (librdkafka refuses the property there).
    let theirs = |k: &str| a.properties.iter().any(|p| p.starts_with(k));
    let mut props = Vec::with_capacity(a.properties.len() + 1);
    if !theirs("session.timeout.ms=") && !theirs("group.protocol=") {
        props.push("session.timeout.ms=6000".to_owned());
    }
    props.extend(a.properties.iter().cloned());
    let settings = super::produce::client_settings(&a.brokers, &props)?;
    let group = format!("deferlog-tail-{}", std::process::id());
    let handler = Arc::new(FromStart(std::sync::atomic::AtomicBool::new(false)));
    let source = Source::new(&settings, &group, &[a.topic.as_str()], handler.clone())?;
    let idle = Duration::from_millis(a.idle_ms);
    let started = Instant::now();
    // Idle time counts once partitions are assigned: joining a group can take a while.
    let mut last: Option<Instant> = None;
    let mut out = std::io::stdout().lock();
    while last.is_none_or(|l| l.elapsed() < idle) {
        if last.is_none() && handler.0.load(std::sync::atomic::Ordering::Acquire) {
            last = Some(Instant::now());
        }
        if last.is_none() && started.elapsed() > JOIN_LIMIT {
            anyhow::bail!("no partition of {} assigned within {}s", a.topic, JOIN_LIMIT.as_secs());
        }
        let Some(m) = source.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match m {
            Ok(m) => m,
            Err(e) if e.is_unknown_topic() => anyhow::bail!(
                "brokers {} have no topic {} (is the name right? `run` writes its hourly rows and dead letters \
                 to topics only once kafka.hourly_topic and kafka.dead_letter_topic name them)",
                a.brokers,
                a.topic
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {} from brokers {}", a.topic, a.brokers)),
        };
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
        last = Some(Instant::now());
    }
    Ok(())
}
