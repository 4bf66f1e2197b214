//! What `run` runs with: `[kafka]` and `[stream]` checked into the stream core's
//! settings and the Kafka client's.

use super::{Config, MAX_PARSER_THREADS, MetricsRun, Problems, format_of, tenant_problem};
use anyhow::Result;

/// What `run` runs with: the stream core's settings and the Kafka client's.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub stream: deferlog_stream::StreamConfig,
    pub client: deferlog_kafka::ClientSettings,
    pub group: String,
    pub checkpoint_interval: std::time::Duration,
    pub status_interval: std::time::Duration,
    pub hourly_topic: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub consumers: usize,
    pub workers: usize,
    /// Whether `privacy.hash_key` was set; if not, `run` keeps one in the archive's
    /// state so recipient hashes (and correlation) survive restarts.
    pub hash_key_given: bool,
    pub metrics: MetricsRun,
}

impl Config {
    /// Checks the `[kafka]` and `[stream]` sections too, for `run`.
    pub fn resolve_run(&self, origin: &str, now_us: i64) -> Result<RunSettings> {
        use deferlog_stream::{HostFrom, StreamConfig, TenantFrom, TopicConfig};
        use std::time::Duration;
        let mut p = Problems::default();
        let normalizer = p.take(self.resolve(origin, now_us));
        let Some(k) = &self.kafka else {
            return Err(p.fail(format!(
                "{origin}: no [kafka] section: `run` needs `kafka.brokers` and `kafka.topics`"
            )));
        };
        let before_kafka = p.count();
        if k.brokers.trim().is_empty() {
            p.note(format!(
                "{origin}: key `kafka.brokers` must name at least one broker (host:port)"
            ));
        } else if let Some(b) = k.brokers.split(',').map(str::trim).find(|b| !plausible_broker(b)) {
            p.note(format!(
                "{origin}: key `kafka.brokers`: {b:?} is not host:port (brokers are separated by commas)"
            ));
        }
        if k.group_id.trim().is_empty() {
            p.note(format!("{origin}: key `kafka.group_id` must not be empty"));
        }
        if k.topics.is_empty() {
            p.note(format!("{origin}: key `kafka.topics` must list at least one topic"));
        }
        let mut topics = Vec::with_capacity(k.topics.len());
        for (i, t) in k.topics.iter().enumerate() {
            if t.name.trim().is_empty() {
                p.note(format!("{origin}: key `kafka.topics[{i}].name` must not be empty"));
                continue;
            }
            let format = format_of(&mut p, origin, &format!("kafka.topics[{i}].format"), &t.format);
            let te = &t.tenant;
            // A key that does not go with `from` is a mistake, not something to drop.
            let from = te.from.as_deref().unwrap_or("fixed");
            for (key, set, applies) in [
                ("value", te.value.is_some(), from == "fixed"),
                ("name", te.name.is_some(), from == "header"),
            ] {
                if set && !applies && ["fixed", "key", "header"].contains(&from) {
                    p.note(format!(
                        "{origin}: key `kafka.topics[{i}].tenant.{key}` does not go with from = {from:?}"
                    ));
                }
            }
            if from == "fixed"
                && let Some(problem) = te
                    .value
                    .as_deref()
                    .and_then(|v| tenant_problem(origin, &format!("kafka.topics[{i}].tenant.value"), v))
            {
                p.note(problem);
                continue;
            }
            let tenant = match te.from.as_deref() {
                Some("fixed") if te.value.is_none() => {
                    p.note(format!(
                        "{origin}: key `kafka.topics[{i}].tenant.value` is needed with from = \"fixed\" (without \
                         `tenant`, a topic's records get the top-level `tenant`)"
                    ));
                    continue;
                }
                None | Some("fixed") => TenantFrom::Fixed(te.value.clone().unwrap_or_else(|| self.tenant.clone())),
                Some("key") => TenantFrom::Key,
                Some("header") => match &te.name {
                    Some(n) if !n.is_empty() => TenantFrom::Header(n.clone()),
                    _ => {
                        p.note(format!(
                            "{origin}: key `kafka.topics[{i}].tenant.name` is needed with from = \"header\""
                        ));
                        continue;
                    }
                },
                Some(other) => {
                    p.note(format!(
                        "{origin}: key `kafka.topics[{i}].tenant.from`: {other:?} is not fixed, key or header"
                    ));
                    continue;
                }
            };
            let he = &t.host;
            let host = match (he.from.as_deref(), &he.value) {
                (None, None) => HostFrom::Default,
                (Some("key"), None) => HostFrom::Key,
                (None | Some("fixed"), Some(v)) if !v.trim().is_empty() => HostFrom::Fixed(v.clone()),
                (None | Some("fixed"), _) => {
                    p.note(format!(
                        "{origin}: key `kafka.topics[{i}].host.value` must name a host with from = \"fixed\""
                    ));
                    continue;
                }
                (Some("key"), Some(_)) => {
                    p.note(format!(
                        "{origin}: key `kafka.topics[{i}].host.value` does not go with from = \"key\""
                    ));
                    continue;
                }
                (Some(other), _) => {
                    p.note(format!(
                        "{origin}: key `kafka.topics[{i}].host.from`: {other:?} is not fixed or key"
                    ));
                    continue;
                }
            };
            if k.topics[..i].iter().any(|o| o.name == t.name) {
                p.note(format!(
                    "{origin}: key `kafka.topics[{i}].name`: topic {:?} is listed twice",
                    t.name
                ));
            }
            topics.push(TopicConfig {
                name: t.name.clone(),
                tenant,
                host,
                format,
            });
        }
        // What goes out must not come back in: a dead letter read again is a dead
        // letter again, one more every checkpoint, without end.
        let outputs = [
            ("kafka.hourly_topic", &k.hourly_topic),
            ("kafka.dead_letter_topic", &k.dead_letter_topic),
        ];
        for (key, topic) in outputs {
            if let Some(t) = topic
                .as_deref()
                .filter(|t| !t.is_empty() && k.topics.iter().any(|i| i.name == **t))
            {
                p.note(format!(
                    "{origin}: key `{key}`: {t:?} is also an input topic (kafka.topics): its records would be read back"
                ));
            }
        }
        if let (Some(h), Some(d)) = (&k.hourly_topic, &k.dead_letter_topic)
            && !h.is_empty()
            && h == d
        {
            p.note(format!(
                "{origin}: keys `kafka.hourly_topic` and `kafka.dead_letter_topic` name one topic, {h:?}: give each its own"
            ));
        }
        let keys_right = p.count() == before_kafka;
        let mut client = deferlog_kafka::ClientSettings::new(&k.brokers);
        for (key, v) in &k.properties {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    p.note(format!(
                        "{origin}: key `kafka.properties.{key}` must be a string, number or boolean"
                    ));
                    continue;
                }
            };
            client = client.with(key, &v);
        }
        // librdkafka is asked once the keys above are right (a property of the wrong
        // type is left out, so the others are still judged), and about the whole
        // client once each property passes on its own: an empty group id or one bad
        // property is one problem, not three.
        let typed = p.count() == before_kafka;
        let refused = if keys_right { client.check() } else { Vec::new() };
        for (key, e) in &refused {
            p.note(format!("{origin}: key `kafka.properties.{key}`: {e}"));
        }
        if keys_right && typed && refused.is_empty() {
            p.take(
                deferlog_kafka::check_consumer(&client, &k.group_id)
                    .map_err(|e| anyhow::anyhow!("{origin}: key `kafka.properties`: {e}")),
            );
            if [&k.hourly_topic, &k.dead_letter_topic]
                .iter()
                .any(|t| t.as_deref().is_some_and(|t| !t.is_empty()))
            {
                p.take(
                    deferlog_kafka::check_producer(&client)
                        .map_err(|e| anyhow::anyhow!("{origin}: key `kafka.properties` (for the output topics): {e}")),
                );
            }
        }
        let st = &self.stream;
        for (name, v) in [
            ("stream.batch_rows", st.batch_rows as u64),
            ("stream.batch_interval_ms", st.batch_interval_ms),
            ("stream.checkpoint_interval_ms", st.checkpoint_interval_ms),
            ("stream.idle_timeout_secs", st.idle_timeout_secs),
            ("stream.status_interval_secs", st.status_interval_secs),
            ("stream.consumers", st.consumers.map_or(1, |c| c as u64)),
            ("stream.workers", st.workers.map_or(1, |c| c as u64)),
        ] {
            if v == 0 {
                p.note(format!("{origin}: key `{name}` must be at least 1"));
            }
        }
        // Threads each: far more than any machine has cores for.
        for (name, v) in [("stream.consumers", st.consumers), ("stream.workers", st.workers)] {
            if v.is_some_and(|v| v > MAX_PARSER_THREADS) {
                p.note(format!("{origin}: key `{name}` must be at most {MAX_PARSER_THREADS}"));
            }
        }
        // What exists of the path must be directories (nothing is created here).
        let existing = st.out.ancestors().find(|a| a.exists());
        if st.out.as_os_str().is_empty() || existing.is_some_and(|a| !a.is_dir()) {
            p.note(format!(
                "{origin}: key `stream.out` must name a directory{}",
                existing
                    .filter(|a| !a.as_os_str().is_empty())
                    .map(|a| format!(": {} is a file", a.display()))
                    .unwrap_or_default()
            ));
        }
        if st.keep_closed_hours < 0 {
            p.note(format!(
                "{origin}: key `stream.keep_closed_hours` must not be negative (0: closed hours are never forgotten)"
            ));
        }
        let metrics =
            p.take(self.resolve_metrics(origin, Some(st.out.join(deferlog_stream::STATE_DIR).join("metrics"))));
        let (normalizer, metrics) = p.finish_with(normalizer.zip(metrics))?;
        Ok(RunSettings {
            stream: StreamConfig {
                out: st.out.clone(),
                normalizer,
                topics,
                batch_rows: st.batch_rows,
                batch_interval: Duration::from_millis(st.batch_interval_ms),
                lateness_us: i64::try_from(self.limits.allowed_lateness_secs)
                    .unwrap_or(i64::MAX / 1_000_000)
                    .saturating_mul(1_000_000),
                idle_timeout: Duration::from_secs(st.idle_timeout_secs),
                keep_closed_hours: st.keep_closed_hours,
                series_limit: self.metrics.scope_series_limit,
            },
            metrics,
            client,
            group: k.group_id.clone(),
            checkpoint_interval: Duration::from_millis(st.checkpoint_interval_ms),
            status_interval: Duration::from_secs(st.status_interval_secs),
            hourly_topic: k.hourly_topic.clone().filter(|t| !t.is_empty()),
            consumers: st.consumers.unwrap_or(1),
            workers: st
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
            dead_letter_topic: k.dead_letter_topic.clone().filter(|t| !t.is_empty()),
            hash_key_given: self.privacy.hash_key.is_some(),
        })
    }
}

/// One entry of a broker list as librdkafka takes it: `host:port`, `host` (port 9092)
/// or `scheme://host:port`; an IPv6 host in brackets.
fn plausible_broker(b: &str) -> bool {
    let b = b.split_once("://").map_or(b, |(_, rest)| rest);
    let (host, port) = match b.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (h, Some(p)),
        _ => (b, None),
    };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    !host.is_empty()
        && host.bytes().all(|c| c.is_ascii_alphanumeric() || b".-_:".contains(&c))
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}
