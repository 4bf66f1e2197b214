//! The knobs of one generator run.

/// What to generate. `lines` is a target, not an exact count: the generator
/// stops *starting* messages once the lines already written plus the lines
/// planned for messages in flight reach it, then lets every in-flight message
/// finish (delivered, bounced or expired). The output therefore ends with
/// complete message lives and is a few lines longer than `lines`, plus the
/// junk lines, which come on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    pub lines: u64,
    /// Time of the first message, unix seconds, UTC.
    pub start_unix: i64,
    /// Mean message arrival rate; the actual rate follows a mild daily curve
    /// around it (quieter at night UTC) so hourly rows differ.
    pub messages_per_hour: u32,
    /// Junk lines (cut, invalid UTF-8, empty, garbage) per million lines.
    pub junk_per_million: u32,
    /// Postfix `maximal_queue_lifetime`: a message still deferred at its first
    /// retry past this age is expired. Capped at [`MAX_QUEUE_LIFETIME_SECS`],
    /// since a message's whole life is planned when it arrives.
    pub queue_lifetime_secs: i64,
    /// Which MTA's log the plan is written as.
    pub format: LogFormat,
}

/// The MTA whose log lines the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Postfix via syslog.
    #[default]
    Postfix,
    /// Exim's main log via syslog (with Exim's own stamp).
    Exim,
    /// KumoMTA JSON log records.
    KumoMta,
    /// PowerMTA accounting CSV, with its header line.
    PowerMta,
}

/// Upper bound on `queue_lifetime_secs` (30 days): some recipients never
/// succeed, and their retries must end somewhere.
pub const MAX_QUEUE_LIFETIME_SECS: i64 = 30 * 86_400;

/// 2026-11-01T00:00:00Z.
pub const DEFAULT_START_UNIX: i64 = 1_793_491_200;

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            seed: 7,
            lines: 100_000,
            start_unix: DEFAULT_START_UNIX,
            messages_per_hour: 6000,
            junk_per_million: 1000,
            queue_lifetime_secs: 4 * 3600,
            format: LogFormat::Postfix,
        }
    }
}
