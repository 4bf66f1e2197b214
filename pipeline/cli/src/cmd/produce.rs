//! `deferlog produce`: log lines into a topic, keyed by MTA host, as DESIGN.md asks
//! of producers (one host's lines stay in one partition, in order).

use crate::cli::ProduceArgs;
use crate::input::{self, ByteCounter};
use anyhow::{Context, Result, bail};
use deferlog_app::say;
use deferlog_kafka::{ClientSettings, Producer, create_topic};
use std::time::{Duration, Instant};

/// Brokers plus `-X key=value` properties.
pub fn client_settings(brokers: &str, properties: &[String]) -> Result<ClientSettings> {
    let mut settings = ClientSettings::new(brokers);
    for p in properties {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--property {p:?}: expected key=value");
        };
        settings = settings.with(k, v);
    }
    let refused: Vec<String> = settings
        .check()
        .into_iter()
        .map(|(k, e)| format!("--property {k}: {e}"))
        .collect();
    if !refused.is_empty() {
        bail!("{}", refused.join("\n"));
    }
    Ok(settings)
}

pub fn run(a: ProduceArgs) -> Result<()> {
    let settings = client_settings(&a.brokers, &a.properties)?;
    if let Some(n) = a.create_partitions {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting tokio")?;
        rt.block_on(create_topic(&settings, &a.topic, n))?;
    }
    let started = Instant::now();
    let sent = send_files(&settings, &a.topic, &input::oldest_first(&a.inputs)?)?;
    say!(
        "deferlog produce: {sent} records to {} in {:.1}s",
        a.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sends every line of `inputs` (oldest first) to `topic`; returns how many.
pub fn send_files(settings: &ClientSettings, topic: &str, inputs: &[String]) -> Result<u64> {
    let producer = Producer::new(settings)?;
    producer
        // librdkafka's own connection set-up limit (`socket.connection.setup.timeout.ms`).
        .reach(Duration::from_secs(30))
        .with_context(|| format!("brokers {}", settings.brokers))?;
    let counter = ByteCounter::default();
    let mut sent = 0u64;
    for path in inputs {
        let mut src = input::open(path, &counter)?;
        while let Some(line) = src.next_line()? {
            // Cut by the reader (or as long as that): more than a Kafka record holds.
            if line.len() >= input::MAX_LINE {
                bail!("{path}: a line of 16 MiB or more: not a log file?");
            }
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let host = deferlog_parse::route_key(line);
            producer.send(topic, (!host.is_empty()).then_some(host), line)?;
            sent += 1;
            if sent.is_multiple_of(1024) {
                producer.poll();
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .with_context(|| format!("delivering to {topic}"))?;
    Ok(sent)
}
