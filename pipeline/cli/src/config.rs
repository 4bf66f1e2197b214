//! The configuration tree: one TOML file plus `DEFERLOG_`-prefixed environment
//! overrides, validated once at start-up into the settings the pipeline runs with.
//!
//! An override names a key path with `__` between levels: `DEFERLOG_TIMEZONE`,
//! `DEFERLOG_LIMITS__MAX_QUEUE_IDS=50000`. Values are read as TOML when they parse
//! (numbers, booleans, arrays) and as strings otherwise. The variables the project's
//! own scripts, tests and benches read (`TOOL_VARS`) share the prefix and are not
//! overrides: `scripts/test` exports `DEFERLOG_TANSU`, and a shell that ran it must
//! still run `deferlog`.

use anyhow::{Context, Result, bail};
use deferlog_classify::{Classifier, MxGroups};
use deferlog_parse::{Egress, NormalizerConfig, Zone};
use serde::Deserialize;
use std::path::{Path, PathBuf};

const ENV_PREFIX: &str = "DEFERLOG_";
/// Keys the environment cannot override (README, Configuration).
const LIST_KEYS: [&[&str]; 2] = [&["egress"], &["kafka", "topics"]];

/// Far more than any machine has cores to use.
const MAX_PARSER_THREADS: usize = 1024;

/// Keys that are tables: a variable sets one of their keys, not the whole table.
const TABLE_KEYS: [&[&str]; 8] = [
    &["classify"],
    &["privacy"],
    &["limits"],
    &["kafka"],
    &["kafka", "properties"],
    &["stream"],
    &["metrics"],
    &["envelope"],
];

/// Not configuration: read by `scripts/`, the tests and the benches.
const TOOL_VARS: &[&str] = &[
    "DEFERLOG_TANSU",
    "DEFERLOG_CACHE",
    "DEFERLOG_CORPUS",
    "DEFERLOG_PROP_SEED",
];
/// Every `DEFERLOG_BENCH_*` variable is the benches' (`benches/stream.rs`).
const TOOL_PREFIX: &str = "DEFERLOG_BENCH_";

/// The problems of a configuration, gathered so that a refused start (and `check`)
/// names every one of them, not just the first.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn note(&mut self, problem: String) {
        self.0.push(problem);
    }

    /// How many so far.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// `r`'s value; `None` with its error noted (each problem of a section's own
    /// list).
    pub fn take<T>(&mut self, r: Result<T>) -> Option<T> {
        r.map_err(|e| match e.downcast::<ProblemList>() {
            Ok(list) => self.0.extend(list.0),
            Err(e) => self.0.push(format!("{e:#}")),
        })
        .ok()
    }

    /// One error with every problem, a line each; `Ok` when there is none.
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() { Ok(()) } else { Err(self.error()) }
    }

    /// `value` when there is no problem; otherwise [`Problems::finish`]'s error.
    pub fn finish_with<T>(self, value: Option<T>) -> Result<T> {
        self.finish()?;
        // `take` notes every error it turns into `None`: with no problem, a value.
        value.context("the configuration did not resolve")
    }

    /// The error of every problem so far and `last`, after which nothing more can
    /// be checked.
    pub fn fail(mut self, last: String) -> anyhow::Error {
        self.0.push(last);
        self.error()
    }

    fn error(self) -> anyhow::Error {
        ProblemList(self.0).into()
    }
}

/// The error [`Problems`] gives: its problems, a line each.
#[derive(Debug)]
pub struct ProblemList(Vec<String>);

impl std::fmt::Display for ProblemList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => f.write_str(one),
            all => write!(f, "{} problems:\n  {}", all.len(), all.join("\n  ")),
        }
    }
}

impl std::error::Error for ProblemList {}

/// The configuration overrides among environment variables.
fn overrides(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter(|(k, _)| {
        k.starts_with(ENV_PREFIX)
            && k.len() > ENV_PREFIX.len()
            && !TOOL_VARS.contains(&k.as_str())
            && !k.starts_with(TOOL_PREFIX)
    })
    .collect()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Zone of syslog stamps that carry none.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// What `replay` reads: `auto` (each record's shape says: Postfix or Exim via
    /// syslog, Exim's own log, KumoMTA JSON, PowerMTA CSV, a shipper's JSON envelope
    /// around any of them), or only `postfix`, `exim`, `kumomta`, `powermta`.
    #[serde(default = "default_format")]
    pub format: String,
    /// The host of lines that name none (Exim's own main log, not via syslog).
    #[serde(default = "default_host")]
    pub default_host: String,
    /// Receiving addresses (IPs or CIDR ranges) on the sending side: a content
    /// filter, a signing proxy. Deliveries to them are not attempts.
    #[serde(default = "default_handoff_addresses")]
    pub handoff_addresses: Vec<String>,
    /// Year context for BSD stamps in `replay` (date or RFC 3339); default: now.
    /// `run` takes each record's broker timestamp instead.
    pub reference_time: Option<String>,
    #[serde(default)]
    pub egress: Vec<EgressEntry>,
    #[serde(default)]
    pub classify: ClassifyConfig,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The consumer group `run` joins; absent: `run` refuses to start.
    pub kafka: Option<KafkaConfig>,
    #[serde(default)]
    pub stream: StreamSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub envelope: EnvelopeSettings,
    /// The `DEFERLOG_` variables applied over the file, named where a value is
    /// judged (see [`Config::origin`]).
    #[serde(skip)]
    pub overridden_by: Vec<String>,
    /// The config file's directory: relative `classify` files are found there, not
    /// in whatever directory the process happens to start in.
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

/// Field names of shippers' JSON envelopes (rsyslog, Vector, Fluent Bit, journald);
/// dotted names reach into nested objects (`host.hostname`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSettings {
    /// The field holding the log line (or, from shippers that parse syslog, its content).
    #[serde(default = "default_message_field")]
    pub message: String,
    /// The host, for lines that name none (Exim's own log, KumoMTA, PowerMTA, content
    /// without its syslog frame).
    #[serde(default = "default_host_field")]
    pub host: String,
    /// The ingest time (RFC 3339, or unix seconds, milliseconds or microseconds): the
    /// year of BSD stamps, and the time of content without its syslog frame.
    #[serde(default = "default_timestamp_field")]
    pub timestamp: String,
    /// The tenant, when envelopes carry it.
    pub tenant: Option<String>,
    /// The syslog program, when the message holds only the content after it.
    pub program: Option<String>,
}

fn default_message_field() -> String {
    "message".into()
}
fn default_host_field() -> String {
    "host".into()
}
fn default_timestamp_field() -> String {
    "timestamp".into()
}

impl Default for EnvelopeSettings {
    fn default() -> Self {
        EnvelopeSettings {
            message: default_message_field(),
            host: default_host_field(),
            timestamp: default_timestamp_field(),
            tenant: None,
            program: None,
        }
    }
}

/// The Prometheus endpoint of `run`, `demo` and `replay --serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `""` turns the endpoint
    /// off (counters are still kept in checkpoints).
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
    /// This instance among those sharing an archive: names its ledger of exported
    /// counters, so it must be what Prometheus knows it by. Default:
    /// `<hostname>:<listen port>`, stable across restarts; without a fixed port
    /// (`:0` or no endpoint) there is no stable identity, and each process is its own
    /// instance (`<hostname>:pid<pid>`).
    pub instance: Option<String>,
    /// `mx_host` series per MX group; other hosts are counted as `mx_host="other"`.
    #[serde(default = "default_top_k")]
    pub mx_host_top_k: usize,
    /// Delivery series per tenant; past it, new series count in the tenant's
    /// `other` series.
    #[serde(default = "default_tenant_series_budget")]
    pub tenant_series_budget: usize,
    /// Delivery label sets one partition keeps in its checkpoint before folding new
    /// ones into `other` series (bounds state whatever the input; `Counts::add_delivery`).
    #[serde(default = "default_scope_series_limit")]
    pub scope_series_limit: usize,
}

fn default_metrics_listen() -> String {
    "127.0.0.1:9898".into()
}
fn default_top_k() -> usize {
    10
}
fn default_tenant_series_budget() -> usize {
    5000
}
fn default_scope_series_limit() -> usize {
    20_000
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: default_metrics_listen(),
            instance: None,
            mx_host_top_k: default_top_k(),
            tenant_series_budget: default_tenant_series_budget(),
            scope_series_limit: default_scope_series_limit(),
        }
    }
}

/// The validated `[metrics]` section.
#[derive(Debug, Clone)]
pub struct MetricsRun {
    /// `None`: no endpoint.
    pub listen: Option<std::net::SocketAddr>,
    pub exporter: deferlog_metrics::ExporterConfig,
}

impl Config {
    /// Checks `[metrics]`; the ledger goes under `state_dir` when given.
    pub fn resolve_metrics(&self, origin: &str, state_dir: Option<PathBuf>) -> Result<MetricsRun> {
        let m = &self.metrics;
        let mut p = Problems::default();
        let listen = match m.listen.trim() {
            "" => None,
            l => p.take(l.parse::<std::net::SocketAddr>().with_context(|| {
                format!("{origin}: key `metrics.listen`: {l:?} is not an address like 127.0.0.1:9898")
            })),
        };
        for (name, v) in [
            ("metrics.mx_host_top_k", m.mx_host_top_k),
            ("metrics.tenant_series_budget", m.tenant_series_budget),
            ("metrics.scope_series_limit", m.scope_series_limit),
        ] {
            if v == 0 {
                p.note(format!("{origin}: key `{name}` must be at least 1"));
            }
        }
        if m.instance.as_ref().is_some_and(|i| i.trim().is_empty()) {
            p.note(format!("{origin}: key `metrics.instance` must not be empty"));
        }
        p.finish()?;
        let instance = match &m.instance {
            Some(i) => i.clone(),
            None => match listen.map_or(0, |a| a.port()) {
                0 => format!("{}:pid{}", hostname(), std::process::id()),
                port => format!("{}:{port}", hostname()),
            },
        };
        Ok(MetricsRun {
            listen,
            exporter: deferlog_metrics::ExporterConfig {
                instance,
                top_k: m.mx_host_top_k,
                tenant_series_budget: m.tenant_series_budget,
                state_dir,
            },
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`
    pub brokers: String,
    #[serde(default = "default_group")]
    pub group_id: String,
    pub topics: Vec<TopicEntry>,
    /// Any librdkafka property, passed through as given (`security.protocol`,
    /// `sasl.mechanisms`, `ssl.ca.location`, `session.timeout.ms`, ...).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, toml::Value>,
    /// Also write hourly rows to this topic, one JSON object per row (key: scope and
    /// hour; readers keep the highest `revision` per scope and hour).
    pub hourly_topic: Option<String>,
    /// Also write dead letters to this topic: the raw bytes (recipient local parts
    /// masked), key = origin, headers `reason` and `mta`.
    pub dead_letter_topic: Option<String>,
}

fn default_group() -> String {
    "deferlog".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicEntry {
    pub name: String,
    /// The records' format: `auto` (each record's shape says which MTA), `postfix`,
    /// `exim`, `kumomta` or `powermta`.
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default)]
    pub tenant: TenantEntry,
}

fn default_format() -> String {
    "auto".into()
}

fn default_host() -> String {
    "unknown".into()
}

fn default_handoff_addresses() -> Vec<String> {
    deferlog_parse::LOOPBACK.map(String::from).to_vec()
}

/// Where a topic's tenant comes from: `{ from = "fixed", value = "acme" }`,
/// `{ from = "key" }` or `{ from = "header", name = "tenant" }`. Default: the
/// top-level `tenant` for every record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    pub from: Option<String>,
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Archive root `run` writes (events, hourly, rejects, `_state` checkpoints).
    #[serde(default = "default_out")]
    pub out: PathBuf,
    /// A batch closes at this many events...
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// ...or this long after its first event, whichever comes first.
    #[serde(default = "default_batch_interval_ms")]
    pub batch_interval_ms: u64,
    /// How often state and outputs are made durable and offsets committed.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// A partition with no delivery event for this long (other records do not
    /// count) stops holding the watermark back.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Closed hours kept for late events (their rows are rewritten with a higher
    /// revision); 0 keeps every closed hour (state grows with the stream).
    #[serde(default = "default_keep_closed_hours")]
    pub keep_closed_hours: i64,
    /// How often `run` logs its status line (records/s, lag, windows).
    #[serde(default = "default_status_interval_secs")]
    pub status_interval_secs: u64,
    /// Group members in this process, each a consumer of its own with its own
    /// partitions; default 1.
    pub consumers: Option<usize>,
    /// Processing threads per member, each holding some of its partitions (moved
    /// between them as their loads change); default: one per core.
    pub workers: Option<usize>,
}

fn default_out() -> PathBuf {
    "archive".into()
}
fn default_batch_interval_ms() -> u64 {
    1000
}
fn default_checkpoint_interval_ms() -> u64 {
    5000
}
fn default_idle_timeout_secs() -> u64 {
    60
}
fn default_keep_closed_hours() -> i64 {
    48
}
fn default_status_interval_secs() -> u64 {
    10
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            out: default_out(),
            batch_rows: default_batch_rows(),
            batch_interval_ms: default_batch_interval_ms(),
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
            idle_timeout_secs: default_idle_timeout_secs(),
            keep_closed_hours: default_keep_closed_hours(),
            status_interval_secs: default_status_interval_secs(),
            consumers: None,
            workers: None,
        }
    }
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_tenant() -> String {
    "default".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressEntry {
    pub host: Option<String>,
    pub instance: Option<String>,
    pub ip: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Extra rule files, tried before the built-in rules.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Extra MX group files, winning over the built-in groups.
    #[serde(default)]
    pub mx_groups: Vec<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// 32 hex digits keying recipient hashes. Unset: a random key per `replay`; `run`
    /// keeps one in OUT/_state/hash_key.
    pub hash_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_max_queue_ids")]
    pub max_queue_ids: usize,
    /// Longest reply text kept per event, bytes (cut at a character boundary).
    #[serde(default = "default_response_max_bytes")]
    pub response_max_bytes: usize,
    /// Rows per archive batch in `replay` (`run` has `stream.batch_rows`).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Event time an hour stays open after it ends, seconds (replay: its archive
    /// files; run: its window).
    #[serde(default = "default_lateness")]
    pub allowed_lateness_secs: u64,
    /// Parser threads (lines are split between them by MTA host); default: one per core.
    pub parser_threads: Option<usize>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_queue_ids: default_max_queue_ids(),
            response_max_bytes: default_response_max_bytes(),
            batch_rows: default_batch_rows(),
            allowed_lateness_secs: default_lateness(),
            parser_threads: None,
        }
    }
}

impl LimitsConfig {
    pub fn parser_threads(&self) -> usize {
        self.parser_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1)
    }
}

fn default_max_queue_ids() -> usize {
    200_000
}
fn default_response_max_bytes() -> usize {
    512
}
fn default_batch_rows() -> usize {
    65_536
}
fn default_lateness() -> u64 {
    600
}

impl Config {
    /// Reads `path` (if any) and applies the environment's overrides.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        Self::load_with_env(path, &overrides(std::env::vars()))
    }

    pub fn load_with_env(path: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (String::new(), "(no config file)".to_owned()),
        };
        // Parse the file alone first, so its errors point at its own lines and keys.
        let mut file_cfg: Config = toml::from_str(&text).with_context(|| format!("config file {origin}"))?;
        let dir = path.and_then(Path::parent).map(Path::to_path_buf);
        if env.is_empty() {
            file_cfg.dir = dir;
            return Ok(file_cfg);
        }
        let mut table: toml::Table = toml::from_str(&text).with_context(|| format!("config file {origin}"))?;
        let mut names = Vec::new();
        for (name, value) in env {
            let mut path: Vec<String> = name[ENV_PREFIX.len()..]
                .split("__")
                .map(|p| p.to_ascii_lowercase())
                .collect();
            // librdkafka's property names have dots, which a variable name cannot,
            // and no underscores: DEFERLOG_KAFKA__PROPERTIES__SASL_PASSWORD.
            if let [k, p, prop] = path.as_mut_slice()
                && k == "kafka"
                && p == "properties"
            {
                *prop = prop.replace('_', ".");
            }
            // A list of tables has no name per element for a variable to point at.
            if let Some(list) = LIST_KEYS
                .iter()
                .find(|l| l.len() <= path.len() && l.iter().zip(&path).all(|(a, b)| a == b))
            {
                bail!(
                    "environment variable {name}: `{}` is a list ([[{}]]): set it in the config file",
                    list.join("."),
                    list.join(".")
                );
            }
            if let Some(t) = TABLE_KEYS.iter().find(|t| t.iter().eq(path.iter())) {
                bail!(
                    "environment variable {name}: `{}` is a table ([{}]): set one of its keys, as {name}__<KEY>",
                    t.join("."),
                    t.join(".")
                );
            }
            let value = typed_as_needed(&table, &path, value);
            set_path(&mut table, &path, value).with_context(|| format!("environment variable {name}"))?;
            names.push(name.as_str());
        }
        let mut cfg: Config = toml::Table::try_into(table)
            .with_context(|| format!("config file {origin} with overrides from {}", names.join(", ")))?;
        cfg.overridden_by = names.into_iter().map(str::to_owned).collect();
        cfg.dir = dir;
        Ok(cfg)
    }

    /// Where the values came from, for messages about them: the file (or the
    /// defaults) and the environment variables applied over it.
    pub fn origin(&self, path: Option<&Path>) -> String {
        let file = path.map_or("(defaults)".to_owned(), |p| p.display().to_string());
        if self.overridden_by.is_empty() {
            file
        } else {
            format!("{file} with overrides from {}", self.overridden_by.join(", "))
        }
    }

    /// A path the config file names, relative to the file's directory.
    fn beside(&self, p: &Path) -> PathBuf {
        match &self.dir {
            Some(d) if p.is_relative() => d.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// `base` extended by each of `files` (key `key`, paths beside the config) in
    /// turn; a file that cannot be read or taken is a problem, and the others still
    /// apply.
    fn with_files<T: Clone, E: Into<anyhow::Error>>(
        &self,
        p: &mut Problems,
        origin: &str,
        key: &str,
        files: &[PathBuf],
        mut base: T,
        extend: impl Fn(T, &str, &str) -> std::result::Result<T, E>,
    ) -> T {
        for f in files.iter().map(|f| self.beside(f)) {
            let src =
                std::fs::read_to_string(&f).with_context(|| format!("{origin}: key `{key}`: reading {}", f.display()));
            if let Some(src) = p.take(src)
                && let Some(t) = p.take(extend(base.clone(), &src, &f.display().to_string()).map_err(Into::into))
            {
                base = t;
            }
        }
        base
    }

    /// Checks every value and resolves it into what the normalizer runs with.
    pub fn resolve(&self, origin: &str, now_us: i64) -> Result<NormalizerConfig> {
        let mut p = Problems::default();
        let zone: Zone = p
            .take(
                self.timezone
                    .parse()
                    .with_context(|| format!("{origin}: key `timezone`")),
            )
            .unwrap_or_default();
        let reference_time_us = match &self.reference_time {
            Some(s) => p
                .take(parse_time(s).with_context(|| format!("{origin}: key `reference_time`")))
                .unwrap_or(now_us),
            None => now_us,
        };
        let mut egress = Vec::with_capacity(self.egress.len());
        let mut seen = std::collections::HashMap::new();
        for (i, e) in self.egress.iter().enumerate() {
            let Ok(ip) = e.ip.parse::<std::net::IpAddr>() else {
                p.note(format!(
                    "{origin}: key `egress[{i}].ip`: {:?} is not an IP address",
                    e.ip
                ));
                continue;
            };
            // The egress map reads a missing host or instance as "" (any).
            let (host, instance) = (e.host.as_deref().unwrap_or(""), e.instance.as_deref().unwrap_or(""));
            if host.is_empty() && instance.is_empty() {
                p.note(format!(
                    "{origin}: key `egress[{i}]`: give a `host`, an `instance`, or both"
                ));
                continue;
            }
            // Two IPs for one sender would leave one silently unused.
            if let Some((j, other)) = seen.insert((host, instance), (i, ip))
                && other != ip
            {
                p.note(format!(
                    "{origin}: key `egress[{i}]`: the same host and instance as egress[{j}], whose ip is {other}, not {ip}"
                ));
            }
            egress.push(Egress {
                host: e.host.clone(),
                instance: e.instance.clone(),
                // Canonical (`2001:db8::1`), as `report --source-ip` reads its argument.
                ip: ip.to_string(),
            });
        }
        let mut handoffs = Vec::with_capacity(self.handoff_addresses.len());
        for (i, a) in self.handoff_addresses.iter().enumerate() {
            match a.parse::<deferlog_parse::IpRange>() {
                Ok(r) => handoffs.push(r),
                Err(e) => p.note(format!("{origin}: key `handoff_addresses[{i}]`: {e}")),
            }
        }
        let hash_key = match &self.privacy.hash_key {
            Some(hex) => p
                .take(parse_hash_key(hex).with_context(|| format!("{origin}: key `privacy.hash_key`")))
                .unwrap_or_default(),
            None => random_hash_key(),
        };
        let classifier = self.with_files(
            &mut p,
            origin,
            "classify.rules",
            &self.classify.rules,
            Classifier::builtin(),
            Classifier::with_user_rules,
        );
        let mx_groups = self.with_files(
            &mut p,
            origin,
            "classify.mx_groups",
            &self.classify.mx_groups,
            MxGroups::builtin(),
            MxGroups::with_user_groups,
        );
        if self.limits.max_queue_ids < 2 {
            p.note(format!("{origin}: key `limits.max_queue_ids` must be at least 2"));
        }
        if self.limits.parser_threads == Some(0) {
            p.note(format!("{origin}: key `limits.parser_threads` must be at least 1"));
        }
        // Each thread holds its own buffers and correlation state: thousands are a typo.
        if self.limits.parser_threads.is_some_and(|n| n > MAX_PARSER_THREADS) {
            p.note(format!(
                "{origin}: key `limits.parser_threads` must be at most {MAX_PARSER_THREADS}"
            ));
        }
        if self.limits.batch_rows == 0 {
            p.note(format!("{origin}: key `limits.batch_rows` must be at least 1"));
        }
        if self.tenant.is_empty() {
            p.note(format!("{origin}: key `tenant` must not be empty"));
        }
        if self.default_host.trim().is_empty() {
            p.note(format!("{origin}: key `default_host` must not be empty"));
        }
        let format = format_of(&mut p, origin, "format", &self.format);
        let e = &self.envelope;
        for (key, v) in [
            ("envelope.message", &e.message),
            ("envelope.host", &e.host),
            ("envelope.timestamp", &e.timestamp),
        ] {
            if v.is_empty() {
                p.note(format!("{origin}: key `{key}` must name a field"));
            }
        }
        p.finish()?;
        Ok(NormalizerConfig {
            tenant: self.tenant.clone(),
            format,
            default_host: self.default_host.clone(),
            envelope: deferlog_parse::EnvelopeFields {
                message: e.message.clone(),
                host: e.host.clone(),
                timestamp: e.timestamp.clone(),
                tenant: e.tenant.clone().filter(|t| !t.is_empty()),
                program: e.program.clone().filter(|t| !t.is_empty()),
            },
            zone,
            reference_time_us,
            // The stream sets its own (see `deferlog_stream`); replay has none.
            max_ahead_us: None,
            egress,
            hash_key,
            max_queue_ids: self.limits.max_queue_ids,
            response_max_bytes: self.limits.response_max_bytes,
            classifier,
            mx_groups,
            handoffs: deferlog_parse::Handoffs::new(handoffs),
        })
    }
}

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
        use deferlog_stream::{StreamConfig, TenantFrom, TopicConfig};
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
            let tenant = match te.from.as_deref() {
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
            if k.topics[..i].iter().any(|o| o.name == t.name) {
                p.note(format!(
                    "{origin}: key `kafka.topics[{i}].name`: topic {:?} is listed twice",
                    t.name
                ));
            }
            topics.push(TopicConfig {
                name: t.name.clone(),
                tenant,
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
        if st.out.as_os_str().is_empty() {
            p.note(format!("{origin}: key `stream.out` must name a directory"));
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

/// The log format key `key` names; a problem noted (and the default kept) when it
/// names none.
fn format_of(p: &mut Problems, origin: &str, key: &str, value: &str) -> deferlog_parse::Format {
    p.take(value.parse().map_err(|e| anyhow::anyhow!("{origin}: key `{key}`: {e}")))
        .unwrap_or_default()
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

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<()> {
    match path {
        [] => bail!("empty key"),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => bail!("key `{first}` is not a table"),
            }
        }
    }
}

/// The value of an override: a number, boolean or array if it reads as one, unless
/// only text fits the key (a tenant named `123`).
fn typed_as_needed(table: &toml::Table, path: &[String], raw: &str) -> toml::Value {
    let typed = parse_env_value(raw);
    if typed.is_str() {
        return typed;
    }
    let fits = |v: &toml::Value| {
        let mut t = table.clone();
        set_path(&mut t, path, v.clone()).is_ok() && toml::Table::try_into::<Config>(t).is_ok()
    };
    let text = toml::Value::String(raw.to_owned());
    if !fits(&typed) && fits(&text) { text } else { typed }
}

fn parse_env_value(v: &str) -> toml::Value {
    // `x = <value>` parses numbers, booleans and arrays; anything else is a string.
    toml::from_str::<toml::Table>(&format!("x = {v}"))
        .ok()
        .and_then(|mut t| t.remove("x"))
        .unwrap_or_else(|| toml::Value::String(v.to_owned()))
}

/// A date (`2026-11-01`, midnight UTC) or an RFC 3339 time, as µs since the epoch.
pub fn parse_time(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_micros());
    }
    bail!("{s:?} is neither a date (2026-11-01) nor an RFC 3339 time (2026-11-01T08:00:00Z)")
}

pub fn parse_hash_key(hex: &str) -> Result<[u8; 16]> {
    let hex = hex.trim();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("must be 32 hex digits");
    }
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(key)
}

pub fn random_hash_key() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut key = [0u8; 16];
    for chunk in key.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file() {
        let f = write("timezone = \"UTC\"\n[limits]\nmax_queue_idz = 5\n");
        let err = format!("{:#}", Config::load_with_env(Some(f.path()), &[]).unwrap_err());
        assert!(err.contains("max_queue_idz"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn env_overrides_reach_nested_keys_and_are_named_when_wrong() {
        let f = write("timezone = \"UTC\"\n");
        let env = [("DEFERLOG_LIMITS__MAX_QUEUE_IDS".to_owned(), "1234".to_owned())];
        let cfg = Config::load_with_env(Some(f.path()), &env).expect("loads");
        assert_eq!(cfg.limits.max_queue_ids, 1234);
        let env = [("DEFERLOG_LIMITS__NOPE".to_owned(), "1".to_owned())];
        let err = format!("{:#}", Config::load_with_env(Some(f.path()), &env).unwrap_err());
        assert!(err.contains("DEFERLOG_LIMITS__NOPE") && err.contains("nope"), "{err}");
        // A value judged after loading names the variable it came from, not only the file.
        for var in ["DEFERLOG_EGRESS", "DEFERLOG_KAFKA__TOPICS"] {
            let env = [(var.to_owned(), "[]".to_owned())];
            let err = format!("{:#}", Config::load_with_env(None, &env).expect_err(var));
            assert!(err.contains(var) && err.contains("is a list"), "{err}");
        }
        for var in ["DEFERLOG_LIMITS", "DEFERLOG_KAFKA__PROPERTIES"] {
            let env = [(var.to_owned(), "5".to_owned())];
            let err = format!("{:#}", Config::load_with_env(None, &env).expect_err(var));
            assert!(
                err.contains(var) && err.contains("is a table") && !err.contains("struct"),
                "{err}"
            );
        }
        let env = [("DEFERLOG_TIMEZONE".to_owned(), "Mars/Olympus".to_owned())];
        let cfg = Config::load_with_env(Some(f.path()), &env).expect("loads");
        let origin = cfg.origin(Some(f.path()));
        let err = format!("{:#}", cfg.resolve(&origin, 0).unwrap_err());
        assert!(err.contains("DEFERLOG_TIMEZONE") && err.contains("timezone"), "{err}");
    }

    #[test]
    fn env_overrides_take_text_that_looks_like_a_number_and_kafka_properties() {
        let f = write("[kafka]\nbrokers = \"b:9092\"\n[[kafka.topics]]\nname = \"m\"\n");
        let env = [
            ("DEFERLOG_TENANT", "123"),
            ("DEFERLOG_LIMITS__MAX_QUEUE_IDS", "77"),
            ("DEFERLOG_KAFKA__PROPERTIES__SASL_PASSWORD", "s3cret"),
            ("DEFERLOG_KAFKA__PROPERTIES__SESSION_TIMEOUT_MS", "6000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let cfg = Config::load_with_env(Some(f.path()), &env).expect("loads");
        assert_eq!(cfg.tenant, "123");
        assert_eq!(cfg.limits.max_queue_ids, 77);
        let run = cfg.resolve_run("f", 0).expect("valid");
        assert_eq!(
            run.client.properties,
            [
                ("sasl.password".to_owned(), "s3cret".to_owned()),
                ("session.timeout.ms".to_owned(), "6000".to_owned())
            ]
        );
    }

    #[test]
    fn the_projects_own_tool_variables_are_not_overrides() {
        let vars = [
            ("DEFERLOG_TANSU", "/opt/tansu"),
            ("DEFERLOG_BENCH_RECORDS", "5"),
            ("DEFERLOG_BENCH_RUN_PROPERTIES", "fetch.wait.max.ms=10"),
            ("DEFERLOG_TIMEZONE", "UTC"),
            ("DEFERLOG_", "x"),
            ("DEFERLOG", "x"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            overrides(vars.into_iter()),
            [("DEFERLOG_TIMEZONE".to_owned(), "UTC".to_owned())]
        );
    }

    #[test]
    fn classify_files_are_found_beside_the_config_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let rules = "[[rule]]\nname = \"ours\"\nclass = \"policy\"\ntext = 'quota of the week'\n";
        std::fs::write(dir.path().join("ours.toml"), rules).expect("write");
        let groups = "[[group]]\nname = \"acme\"\nsuffixes = [\"mx.acme.test\"]\n";
        std::fs::write(dir.path().join("groups.toml"), groups).expect("write");
        let conf = dir.path().join("deferlog.toml");
        std::fs::write(
            &conf,
            "[classify]\nrules = [\"ours.toml\"]\nmx_groups = [\"groups.toml\"]\n",
        )
        .expect("write");
        // The tests run in the crate's directory, where neither file is.
        assert!(!Path::new("ours.toml").exists());
        let cfg = Config::load_with_env(Some(&conf), &[]).expect("loads");
        let n = cfg.resolve("deferlog.toml", 0).expect("both files found");
        assert_eq!(n.classifier.len(), Classifier::builtin().len() + 1);
        // The directory is kept when environment overrides apply over the file.
        let env = [("DEFERLOG_TIMEZONE".to_owned(), "UTC".to_owned())];
        let cfg = Config::load_with_env(Some(&conf), &env).expect("loads with overrides");
        assert_eq!(cfg.dir.as_deref(), Some(dir.path()));
        // A missing one is named by the path looked at.
        let missing = dir.path().join("missing.toml");
        std::fs::write(&conf, "[classify]\nrules = [\"missing.toml\"]\n").expect("write");
        let cfg = Config::load_with_env(Some(&conf), &[]).expect("loads");
        let err = format!("{:#}", cfg.resolve("deferlog.toml", 0).unwrap_err());
        assert!(err.contains(&missing.display().to_string()), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cfg: Config = toml::from_str("timezone = \"Mars/Base\"").expect("parses");
        let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
        assert!(err.contains("x.toml") && err.contains("timezone"), "{err}");
        let cfg: Config = toml::from_str("[[egress]]\nhost = \"a\"\nip = \"nope\"").expect("parses");
        let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
        assert!(err.contains("egress[0].ip"), "{err}");
        let two = "[[egress]]\nhost = \"a\"\ninstance = \"i\"\nip = \"192.0.2.1\"\n\
                   [[egress]]\nhost = \"a\"\ninstance = \"i\"\nip = \"192.0.2.2\"";
        let cfg: Config = toml::from_str(two).expect("parses");
        let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
        assert!(err.contains("egress[1]") && err.contains("egress[0]"), "{err}");
        // A missing instance and an empty one are the same key; one IP in two spellings
        // is no contradiction, and is kept in its canonical form.
        let clash = "[[egress]]\nhost = \"a\"\nip = \"192.0.2.1\"\n\
                     [[egress]]\nhost = \"a\"\ninstance = \"\"\nip = \"192.0.2.2\"";
        let cfg: Config = toml::from_str(clash).expect("parses");
        assert!(cfg.resolve("x.toml", 0).is_err());
        let same = "[[egress]]\nhost = \"a\"\nip = \"2001:DB8::1\"\n\
                    [[egress]]\nhost = \"a\"\nip = \"2001:db8:0::1\"";
        let cfg: Config = toml::from_str(same).expect("parses");
        let n = cfg.resolve("x.toml", 0).expect("one sender, one IP");
        assert_eq!(n.egress[0].ip, "2001:db8::1");
        let cfg: Config = toml::from_str("[limits]\nparser_threads = 100000").expect("parses");
        let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
        assert!(
            err.contains("limits.parser_threads") && err.contains("at most"),
            "{err}"
        );
        let cfg: Config = toml::from_str("[privacy]\nhash_key = \"abc\"").expect("parses");
        let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
        assert!(err.contains("privacy.hash_key"), "{err}");
    }

    #[test]
    fn handoff_addresses_default_to_loopback_and_name_a_bad_entry() {
        let lo = "127.0.0.1".to_owned();
        let cfg: Config = toml::from_str("").expect("parses");
        assert!(cfg.resolve("x.toml", 0).expect("valid").handoffs.contains(&lo));
        let cfg: Config = toml::from_str("handoff_addresses = []").expect("parses");
        assert!(!cfg.resolve("x.toml", 0).expect("valid").handoffs.contains(&lo));
        let env = [(
            "DEFERLOG_HANDOFF_ADDRESSES".to_owned(),
            r#"["10.20.0.0/16"]"#.to_owned(),
        )];
        let n = Config::load_with_env(None, &env)
            .expect("loads")
            .resolve("x.toml", 0)
            .expect("valid");
        assert!(n.handoffs.contains("10.20.3.4") && !n.handoffs.contains(&lo));
        let cfg: Config = toml::from_str(r#"handoff_addresses = ["::1", "10.1.2.3/8", "amavis"]"#).expect("parses");
        let err = format!("{:#}", cfg.resolve("x.toml", 0).unwrap_err());
        assert!(
            err.contains("x.toml: key `handoff_addresses[1]`") && err.contains("10.0.0.0/8"),
            "{err}"
        );
        assert!(
            err.contains("key `handoff_addresses[2]`: \"amavis\" is not an IP address"),
            "{err}"
        );
    }

    #[test]
    fn run_settings_name_the_key_that_is_wrong() {
        let err = |text: &str| {
            let cfg: Config = toml::from_str(text).expect("parses");
            format!("{:#}", cfg.resolve_run("d.toml", 0).unwrap_err())
        };
        assert!(err("tenant = \"a\"").contains("no [kafka] section"));
        let base = "[kafka]\nbrokers = \"127.0.0.1:9092\"\n";
        let e = err(&format!("{base}topics = []"));
        assert!(e.contains("d.toml") && e.contains("kafka.topics"), "{e}");
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"mail\"\nformat = \"sendmail\""
        ));
        assert!(e.contains("kafka.topics[0].format"), "{e}");
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"mail\"\ntenant = {{ from = \"header\" }}"
        ));
        assert!(e.contains("kafka.topics[0].tenant.name"), "{e}");
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[stream]\nbatch_rows = 0"
        ));
        assert!(e.contains("stream.batch_rows"), "{e}");
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[stream]\nworkers = 100000"
        ));
        assert!(e.contains("stream.workers") && e.contains("at most"), "{e}");
        let e = err(&format!("{base}[[kafka.topics]]\nname = \"m\"\n[stream]\nout = \"\""));
        assert!(e.contains("stream.out"), "{e}");
        // librdkafka's own names and kinds, checked before anything connects.
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"sesion.timeout.ms\" = 6000"
        ));
        assert!(
            e.contains("d.toml") && e.contains("kafka.properties.sesion.timeout.ms"),
            "{e}"
        );
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"session.timeout.ms\" = \"abc\""
        ));
        assert!(e.contains("kafka.properties.session.timeout.ms"), "{e}");
        // A property of the wrong type does not hide a misspelt one, nor one misspelt
        // property another.
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"client.id\" = [1]\n\"sesion.timeout.ms\" = 6000\n\
             \"fetch.wait.max.ms\" = \"soon\""
        ));
        for key in ["client.id", "sesion.timeout.ms", "fetch.wait.max.ms"] {
            assert!(e.contains(&format!("kafka.properties.{key}")), "{key}: {e}");
        }
        // Each fine on its own, together not (librdkafka's rule, found before `run`).
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"fetch.max.bytes\" = 65536"
        ));
        assert!(e.contains("kafka.properties") && e.contains("fetch.max.bytes"), "{e}");
        // The outputs' producer is judged too, when there are outputs to topics.
        let idempotent_without_acks = "[kafka.properties]\n\"enable.idempotence\" = true\n\"acks\" = \"1\"";
        let e = err(&format!(
            "{base}dead_letter_topic = \"dlq\"\n[[kafka.topics]]\nname = \"m\"\n{idempotent_without_acks}"
        ));
        assert!(e.contains("for the output topics") && e.contains("acks"), "{e}");
        let e = err(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[[kafka.topics]]\nname = \"m\""
        ));
        assert!(e.contains("kafka.topics[1].name") && e.contains("twice"), "{e}");
        // An output topic read back would feed on itself.
        for key in ["dead_letter_topic", "hourly_topic"] {
            let e = err(&format!(
                "[kafka]\nbrokers = \"b:9092\"\n{key} = \"m\"\n[[kafka.topics]]\nname = \"m\""
            ));
            assert!(e.contains(&format!("kafka.{key}")) && e.contains("input topic"), "{e}");
        }
        let e = err(&format!(
            "[kafka]\nbrokers = \"b:9092\"\nhourly_topic = \"o\"\ndead_letter_topic = \"o\"\n{}",
            "[[kafka.topics]]\nname = \"m\""
        ));
        assert!(e.contains("one topic"), "{e}");
        for brokers in ["not a broker list:::", "b:0", "b:99999", "a:9092,,b:9092"] {
            let e = err(&format!(
                "[kafka]\nbrokers = \"{brokers}\"\n[[kafka.topics]]\nname = \"m\""
            ));
            assert!(e.contains("kafka.brokers") && e.contains("host:port"), "{brokers}: {e}");
        }
        for brokers in [
            "b",
            "b:9092,c:9093",
            "SASL_SSL://kafka-1.example.com:9093",
            "[2001:db8::1]:9092",
            "10.0.0.1:9092",
        ] {
            let cfg: Config = toml::from_str(&format!(
                "[kafka]\nbrokers = \"{brokers}\"\n[[kafka.topics]]\nname = \"m\""
            ))
            .expect("parses");
            assert!(cfg.resolve_run("d.toml", 0).is_ok(), "{brokers}");
        }
        let ok: Config = toml::from_str(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\ntenant = {{ from = \"key\" }}\n\
             [kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\
             \"sasl.username\" = \"u\"\n\"sasl.password\" = \"p\"\n\"session.timeout.ms\" = 6000\n"
        ))
        .expect("parses");
        let r = ok.resolve_run("d.toml", 0).expect("valid");
        assert_eq!(r.stream.topics[0].tenant, deferlog_stream::TenantFrom::Key);
        assert_eq!(
            r.client.properties,
            [
                ("sasl.mechanism".to_owned(), "SCRAM-SHA-512".to_owned()),
                ("sasl.password".to_owned(), "p".to_owned()),
                ("sasl.username".to_owned(), "u".to_owned()),
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("session.timeout.ms".to_owned(), "6000".to_owned())
            ]
        );
        // SASL's default mechanism, GSSAPI (Kerberos), is not in the bundled librdkafka:
        // `run` could not start, so neither does the check pass.
        let gssapi: Config = toml::from_str(&format!(
            "{base}[[kafka.topics]]\nname = \"m\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n"
        ))
        .expect("parses");
        let e = format!("{:#}", gssapi.resolve_run("d.toml", 0).unwrap_err());
        assert!(e.contains("kafka.properties") && e.contains("GSSAPI"), "{e}");
    }

    #[test]
    fn times_are_dates_or_rfc3339() {
        assert_eq!(parse_time("1970-01-02").expect("date"), 86_400_000_000);
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00").expect("rfc3339"), 0);
        assert!(parse_time("yesterday").is_err());
    }
}
