use crate::cli::{HourlyArgs, ReportCommand};
use crate::config::parse_time;
use crate::engine::run_query;
use crate::output::{self, Format};
use anyhow::{Context, Result};
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
        source_ip: a.source_ip,
        mx_group: a.mx_group,
    };
    let batches = run_query(Query::HOURLY_REPORT, EventSource::Dir(a.data.join(HOURLY_DIR)), &filter)
        .with_context(|| format!("hourly report over {}", a.data.display()))?;
    output::write(format, &batches, &mut std::io::stdout().lock())
}
