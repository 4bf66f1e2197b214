//! The configuration's sections as the TOML file writes them, with their defaults.

use serde::Deserialize;
use std::path::PathBuf;

/// Field names of shippers' JSON envelopes (rsyslog, Vector, Fluent Bit, journald);
/// dotted names reach into nested objects (`host.name`).
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
    /// Delivery series per tenant, admitted a sending IP × MX group pair at a time;
    /// past it, new pairs count in the tenant's `other` series.
    #[serde(default = "default_tenant_series_budget")]
    pub tenant_series_budget: usize,
    /// Sending IP × MX group pairs of the last final hour with their own
    /// `deferlog_hour_*` gauges, busiest first; the rest are summed under `other`.
    #[serde(default = "default_hour_pairs_top_k")]
    pub hour_pairs_top_k: usize,
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
fn default_hour_pairs_top_k() -> usize {
    1000
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
            hour_pairs_top_k: default_hour_pairs_top_k(),
            scope_series_limit: default_scope_series_limit(),
        }
    }
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
    /// masked), key = origin, headers `reason` and `mta` (and `refused`: a refused key or tenant).
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
    /// The host of records that name none (KumoMTA, PowerMTA, Exim's own log): the
    /// top-level `default_host` unless set.
    #[serde(default)]
    pub host: HostEntry,
}

/// `{ from = "key" }` (the record key, as producers that key by MTA host set it) or
/// `{ from = "fixed", value = "pmta-1" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub from: Option<String>,
    pub value: Option<String>,
}

pub(super) fn default_format() -> String {
    "auto".into()
}

pub(super) fn default_host() -> String {
    "unknown".into()
}

pub(super) fn default_handoff_addresses() -> Vec<String> {
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

pub(super) fn default_timezone() -> String {
    "UTC".into()
}

pub(super) fn default_tenant() -> String {
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
    /// 32 hex digits keying recipient hashes. Unset: the archive's own, made once in
    /// OUT/_state/hash_key by the first `run` or `replay` into it.
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
