//! What a stream is told: its archive, its topics and where their tenants come
//! from, its batch and window settings. Built by the binary from its configuration.

use deferlog_parse::NormalizerConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Where a topic's records get their tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantFrom {
    /// Every record of the topic: this tenant.
    Fixed(String),
    /// The record key.
    Key,
    /// A record header; records without it get the configured default tenant.
    Header(String),
}

/// Where a topic's records that name no host (KumoMTA, PowerMTA, Exim's own log) get
/// one; records that name theirs keep it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HostFrom {
    /// The normalizer's `default_host`.
    #[default]
    Default,
    /// Every such record of the topic: this host.
    Fixed(String),
    /// The record key (a record without one: `default_host`).
    Key,
}

#[derive(Debug, Clone)]
pub struct TopicConfig {
    pub name: String,
    pub tenant: TenantFrom,
    pub host: HostFrom,
    /// Which MTAs' records the topic carries.
    pub format: deferlog_parse::Format,
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The archive root (events, hourly, rejects, `_state`).
    pub out: PathBuf,
    pub normalizer: NormalizerConfig,
    pub topics: Vec<TopicConfig>,
    /// A batch closes at this many events, or at `batch_interval`, whichever first.
    pub batch_rows: usize,
    pub batch_interval: Duration,
    pub lateness_us: i64,
    /// A partition with no event for this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// Closed hours kept in state for late events, counted from the watermark (or
    /// from a partition's own progress, when that is behind it).
    pub keep_closed_hours: i64,
    /// Delivery label sets one scope counts before folding new MX hosts into `other`.
    pub series_limit: usize,
}
