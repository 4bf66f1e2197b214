//! Command-line surface.

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use deferlog_app::size::{Size, parse_size};
use deferlog_event::Class;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "deferlog",
    version,
    about = "Per sending IP x MX host deferral evidence from MTA logs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Normalize log files (plain, .gz or .zst; `-` for stdin) into the Parquet archive.
    Replay(ReplayArgs),
    /// Reports over the archive.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Any SQL over the archive: tables `events` (DeliveryEvent rows), `hourly`
    /// (stored hourly rows, with scope, revision and final), as `queries/` reads them,
    /// and `rejects` (dead letters: mta, reason, origin, raw bytes, refused key or tenant).
    Sql(SqlArgs),
    /// Classify an SMTP reply (or one reply per stdin line).
    Classify(ClassifyArgs),
    /// Write a realistic seeded MTA log (and optionally the exact expected hourly rows).
    Gen(GenArgs),
    /// Generated traffic through the whole pipeline, its metrics served; no external
    /// service needed.
    Demo(DemoArgs),
    /// Consume MTA log records from Kafka into the archive, with hourly windows (see [kafka]).
    Run(ConfigArg),
    /// Send log lines to a Kafka topic, keyed by MTA host (feeds `run`).
    Produce(ProduceArgs),
    /// Print the records of a topic as JSON lines (inspect `run`'s topic outputs).
    Tail(TailArgs),
    /// Validate a configuration without running anything.
    Check(ConfigArg),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Brokers, `host:port[,host:port]`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The topic to read from its start, e.g. `run`'s `kafka.hourly_topic` or
    /// `kafka.dead_letter_topic`.
    #[arg(long)]
    pub topic: String,
    /// Stop after this long without a record.
    #[arg(long, default_value_t = 3000)]
    pub idle_ms: u64,
    /// Extra librdkafka properties, `key=value`.
    #[arg(long = "property", short = 'X')]
    pub properties: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Brokers, `host:port[,host:port]`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The topic to write (records keyed by each line's MTA host).
    #[arg(long, default_value = "mail")]
    pub topic: String,
    /// Create the topic first with this many partitions (an existing topic is kept).
    #[arg(long)]
    pub create_partitions: Option<i32>,
    /// Extra librdkafka properties, `key=value`.
    #[arg(long = "property", short = 'X')]
    pub properties: Vec<String>,
    /// Log files, plain, gzip or zstd; `-` reads stdin.
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// TOML configuration; DEFERLOG_* environment variables override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Archive root.
    #[arg(long, default_value = "archive")]
    pub out: PathBuf,
    /// Year context for stamps without a year (date or RFC 3339): a stamp up to 31
    /// days past it is its year's. Default: now, and a stamp over a day ahead is last
    /// year's.
    #[arg(long)]
    pub reference_time: Option<String>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// `auto` (default: each record's shape says which MTA wrote it), `postfix`, `exim`,
    /// `kumomta` or `powermta`.
    #[arg(long)]
    pub format: Option<String>,
    /// Serve Prometheus metrics of this replay on `metrics.listen` (default
    /// 127.0.0.1:9898) until SIGTERM or Ctrl-C: the counters appear once the whole
    /// input is read (`/readyz` says when).
    #[arg(long)]
    pub serve: bool,
    /// Add inputs that this archive already took from an earlier replay (known by
    /// their first lines, under any name, plain or compressed): they are refused otherwise,
    /// as their lines would be counted twice.
    #[arg(long)]
    pub again: bool,
    /// Read the one input from line N+1 on, its first N lines taken as added before
    /// (the line a refusal names: a log rewritten after an earlier replay of it), and
    /// record it as read from there, so that later replays of it go on after it.
    #[arg(long, value_name = "N", conflicts_with = "again")]
    pub from_line: Option<u64>,
    /// Log files, plain, gzip or zstd; `-` reads stdin.
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// One row per (hour, source_ip, mx_host, mx_group): attempts, delivered, deferred,
    /// bounced, expired, and whether the hour is final (every scope that counted in it
    /// has closed it).
    Hourly(ReportArgs),
    /// One row per (hour, source_ip, mx_group): attempts, deferred, the MTA's own holds
    /// apart, bounced, expired, the deferral ratio with holds left out beside the same hour a
    /// day before, and deferrals by cause: what throttling a destination needs.
    Destinations(ReportArgs),
    /// One row per (hour, source_ip, mx_group, class) of deferrals: how many, how many
    /// were tried again, and how soon (median and longest wait, seconds).
    Deferrals(DeferralsArgs),
}

#[derive(Debug, Args)]
pub struct DeferralsArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    /// Only deferrals of this cause (any case).
    #[arg(long, ignore_case = true, value_parser = deferral_causes())]
    pub class: Option<String>,
    /// With --to: how long after its hour a deferral's next try is looked for: 7d outlasts the
    /// MTAs' default queue lifetimes (Postfix 5d, Exim and PowerMTA 4d, KumoMTA 7d);
    /// `none` reads the archive to its end. Also 36h, 90m.
    #[arg(long, default_value = "7d", value_parser = horizon)]
    pub retry_horizon: Horizon,
}

/// How far past a range a query looks for what follows its rows, in µs; `None`: no
/// bound.
#[derive(Debug, Clone, Copy)]
pub struct Horizon(pub Option<i64>);

/// `7d`, `36h`, `90m`, or `none`.
fn horizon(s: &str) -> Result<Horizon, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Horizon(None));
    }
    let bad = || format!("{s:?} is not a horizon: a whole number of days, hours or minutes (7d, 36h, 90m), or none");
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let unit_us: i64 = match unit {
        "d" => 86_400_000_000,
        "h" => 3_600_000_000,
        "m" => 60_000_000,
        _ => return Err(bad()),
    };
    let n: i64 = n.parse().map_err(|_| bad())?;
    n.checked_mul(unit_us).map(|us| Horizon(Some(us))).ok_or_else(bad)
}

/// What a deferral's class can be: every class but `none` (deliveries) and `expired`.
fn deferral_causes() -> PossibleValuesParser {
    PossibleValuesParser::new(
        Class::ALL
            .iter()
            .filter(|c| !matches!(c, Class::None | Class::Expired))
            .map(|c| c.as_str()),
    )
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("sql").required(true).args(["file", "query"])))]
pub struct SqlArgs {
    /// Archive root (as given to `replay --out`).
    #[arg(long, default_value = "archive")]
    pub data: PathBuf,
    /// table, csv or json (JSON lines).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Read the SQL from this file (one of `queries/`, say) instead of QUERY.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The SQL text.
    pub query: Option<String>,
    #[command(flatten)]
    pub memory: MemoryArg,
}

#[derive(Debug, Args)]
pub struct MemoryArg {
    /// Caps what the query's sorts and grouping reserve (e.g. 512M, 4G; K, M, G and T
    /// are powers of 1024). Past it they spill to $TMPDIR, uncompressed (point it at a
    /// disk, not tmpfs); what cannot spill stops the query with an error. The process
    /// holds more besides (reading Parquet): leave headroom. Default: no limit.
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<Size>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Archive root (as given to `replay --out`).
    #[arg(long, default_value = "archive")]
    pub data: PathBuf,
    /// table, csv or json (JSON lines).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// From the hour that holds this date or RFC 3339 time (2026-11-08, or
    /// 2026-11-08T05:30:00Z, which keeps the 05:00 hour).
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this date or RFC 3339 time: hours that start before it (2026-11-09 ends
    /// with the 23:00 hour of the 8th; 2026-11-08T06:30:00Z keeps the 06:00 hour).
    #[arg(long)]
    pub to: Option<String>,
    /// Only rows of this sending IP (IPv4 or IPv6, any spelling), or `unknown`: rows
    /// whose sending IP was neither logged nor in the egress map.
    #[arg(long)]
    pub source_ip: Option<String>,
    /// Only rows of this MX group (`google`, `microsoft`, ..., or a domain), any case.
    #[arg(long)]
    pub mx_group: Option<String>,
    #[command(flatten)]
    pub memory: MemoryArg,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Show the normalized text and every rule tried.
    #[arg(long)]
    pub explain: bool,
    /// The reply, e.g. "421 4.7.0 Try again later"; none: read stdin.
    pub reply: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Log format to write: postfix, exim, kumomta or powermta.
    #[arg(long, default_value = "postfix")]
    pub format: String,
    /// About this many lines (messages in flight are finished).
    #[arg(long, default_value_t = 100_000)]
    pub lines: u64,
    /// The same seed writes the same log, byte for byte.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// First message time (date or RFC 3339); default: yesterday 00:00 UTC.
    #[arg(long)]
    pub start: Option<String>,
    /// Messages the fleet sends per hour of log time (each to one to a few recipients).
    #[arg(long, default_value_t = 6000, value_parser = clap::value_parser!(u32).range(1..))]
    pub messages_per_hour: u32,
    /// Also write the exact expected `report hourly` rows (CSV) here.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Print the egress configuration of the generated fleet instead of a log.
    #[arg(long)]
    pub print_config: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Archive root the demo fills.
    #[arg(long, default_value = "deferlog-demo")]
    pub out: PathBuf,
    /// Lines of generated traffic.
    #[arg(long, default_value_t = 300_000)]
    pub lines: u64,
    /// Seed of the generated traffic (as `gen --seed`).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated seconds per real second (0: as fast as possible).
    #[arg(long, default_value_t = 1800.0, value_parser = speed)]
    pub speed: f64,
    /// Rows shown per closed hour (the most deferred first).
    #[arg(long, default_value_t = 12)]
    pub rows_per_hour: usize,
    /// Where `/metrics`, `/healthz` and `/readyz` are served while it runs. Default
    /// 127.0.0.1:9898, or a free port (printed) when that one is taken.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

/// A pace in simulated seconds per second: 0 (as fast as it goes), or from 0.001 (a
/// slower pace would wait longer than a `Duration` holds) to any finite number.
fn speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v == 0.0 || (v.is_finite() && v >= 1e-3) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a pace: 0 (as fast as it goes) or simulated seconds per second from 0.001"
        )),
    }
}
