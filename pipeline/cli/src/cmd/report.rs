use crate::cli::{HourlyArgs, ReportCommand};
use crate::config::parse_time;
use crate::engine::run_query;
use crate::output::{self, Format};
use anyhow::{Context, Result, bail};
use deferlog_archive::HOURLY_DIR;
use deferlog_query::{EventFilter, EventSource, Query};

pub fn run(r: ReportCommand) -> Result<()> {
    match r {
        ReportCommand::Hourly(a) => hourly(a),
    }
}

fn hourly(a: HourlyArgs) -> Result<()> {
    let format: Format = a.format.parse().context("--format")?;
    let filter = EventFilter {
        from_us: a.from.as_deref().map(parse_time).transpose().context("--from")?,
        to_us: a.to.as_deref().map(parse_time).transpose().context("--to")?,
        // As stored: an IP in its canonical form, a group in lower case.
        source_ip: a
            .source_ip
            .map(|s| {
                s.parse::<std::net::IpAddr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| anyhow::anyhow!("--source-ip: {s:?} is not an IP address"))
            })
            .transpose()?,
        mx_group: a.mx_group.map(|g| g.to_ascii_lowercase()),
    };
    if !a.data.is_dir() {
        let why = if a.data.exists() {
            "not a directory"
        } else {
            "no such directory"
        };
        bail!(
            "--data {}: {why}; an archive is what `deferlog replay`, `run` or `demo` write",
            a.data.display()
        );
    }
    let hourly = a.data.join(HOURLY_DIR);
    // A replay that found no events writes no hourly rows: an empty report, not an error.
    let source = if hourly.exists() {
        EventSource::Dir(hourly)
    } else {
        eprintln!(
            "deferlog report: no {HOURLY_DIR}/ under {}: nothing has been replayed or run into it yet",
            a.data.display()
        );
        EventSource::Batches(Vec::new())
    };
    let batches = run_query(Query::HOURLY_REPORT, source, &filter)
        .with_context(|| format!("hourly report over {}", a.data.display()))?;
    output::write(format, &batches, &mut std::io::stdout().lock())
}
