//! `deferlog report hourly|deferrals`: a report over an archive, filtered, as a table,
//! CSV or JSON. Reads only; refuses a directory that is not an archive.

use crate::cli::{ReportArgs, ReportCommand};
use crate::config::parse_time;
use crate::output::{self, Format};
use crate::query::{run_narrowed, run_query_within};
use anyhow::{Context, Result, bail};
use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use deferlog_app::say;
use deferlog_app::size::Size;
use deferlog_archive::{EVENTS_DIR, HOURLY_DIR, REJECTS_DIR};
use deferlog_event::Class;
use deferlog_query::{EventFilter, EventSource, Query, SourceIp};
use deferlog_stream::STATE_DIR;
use std::path::Path;

pub fn run(r: ReportCommand) -> Result<()> {
    match r {
        // Its rows are narrowed too, reading whole hours: an hour's `final` is every
        // scope's, whatever IP or MX group the rows asked for have.
        ReportCommand::Hourly(a) => report(a, Report::Hourly, None, Some(0)),
        // Narrowed by its rows too; each looks back a day.
        ReportCommand::Destinations(a) => report(a, Report::Destinations, None, Some(0)),
        ReportCommand::Deferrals(a) => {
            // clap has checked it is one of the causes, in any case.
            let class = a.class.map(|c| c.to_ascii_lowercase().parse::<Class>()).transpose()?;
            report(a.report, Report::Deferrals, class, a.retry_horizon.0)
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Report {
    /// `hourly_report.sql` over the stored hourly rows.
    Hourly,
    /// `deferrals.sql` over the events.
    Deferrals,
    /// `destinations.sql` over the events.
    Destinations,
}

impl Report {
    fn name(self) -> &'static str {
        match self {
            Report::Hourly => "hourly",
            Report::Deferrals => "deferrals",
            Report::Destinations => "destinations",
        }
    }

    /// The archive directory it reads.
    fn dir(self) -> &'static str {
        match self {
            Report::Hourly => HOURLY_DIR,
            Report::Deferrals | Report::Destinations => EVENTS_DIR,
        }
    }

    /// Why an archive has nothing in [`Report::dir`] yet, when it has something else.
    fn none_yet(self) -> &'static str {
        match self {
            Report::Hourly => {
                "no hours written yet (what was replayed or run into it had no delivery events, or no hour has closed)"
            }
            Report::Deferrals | Report::Destinations => {
                "no events written yet (what was replayed or run into it had no delivery events, or no hour is over)"
            }
        }
    }
}

/// The look back of `report destinations`: the same hour a day before.
const DAY_US: i64 = 24 * 3_600_000_000;

fn report(a: ReportArgs, what: Report, class: Option<Class>, lookahead_us: Option<i64>) -> Result<()> {
    let format: Format = a.format.parse().context("--format")?;
    let filter = EventFilter {
        from_us: a.from.as_deref().map(parse_time).transpose().context("--from")?,
        to_us: a.to.as_deref().map(parse_time).transpose().context("--to")?,
        // As stored: an IP in its canonical form, a group in lower case.
        source_ip: a.source_ip.as_deref().map(source_ip).transpose()?,
        mx_group: a.mx_group.map(|g| g.to_lowercase()),
        class,
        lookahead_us,
        lookback_us: matches!(what, Report::Destinations).then_some(DAY_US),
    };
    if let (Some(from), Some(to)) = (&a.from, &a.to)
        && filter.from_us >= filter.to_us
    {
        bail!("--from {from} is not before --to {to}: no hour lies between them");
    }
    crate::query::archive_dir(&a.data)?;
    let dir = a.data.join(what.dir());
    let source = if dir.exists() {
        EventSource::Dir(dir)
    } else {
        // A replay that found no events writes none, and a run writes hourly rows
        // once an hour closes or it stops: an empty report, not an error. A directory
        // holding something else is not an archive.
        let written = [EVENTS_DIR, HOURLY_DIR, REJECTS_DIR, STATE_DIR]
            .iter()
            .any(|d| a.data.join(d).exists());
        let empty = std::fs::read_dir(&a.data).is_ok_and(|mut d| d.next().is_none());
        if !written && !empty {
            bail!(
                "--data {}: not an archive (no {HOURLY_DIR}/, {EVENTS_DIR}/ or {REJECTS_DIR}/ in it); an archive is \
                 what `deferlog replay`, `run` or `demo` write",
                a.data.display()
            );
        }
        let why = if written {
            what.none_yet()
        } else {
            "nothing has been replayed or run into it yet"
        };
        say!("deferlog report: no {}/ under {}: {why}", what.dir(), a.data.display());
        EventSource::Batches(Vec::new())
    };
    let memory = a.memory.memory_limit.as_ref();
    let batches = match what {
        Report::Hourly => run_narrowed(Query::HOURLY_REPORT, source, &filter, memory),
        // Its rows are narrowed, not its input: a deferral's next try may come after
        // `--to` (up to `--retry-horizon`), from another IP, to another MX group or
        // with another class.
        Report::Deferrals => run_narrowed(Query::DEFERRALS, source, &filter, memory),
        Report::Destinations => run_narrowed(Query::DESTINATIONS, source, &filter, memory),
    }
    .with_context(|| format!("{} report over {}", what.name(), a.data.display()))?;
    if let Some(group) = &filter.mx_group
        && batches.iter().all(|b| b.num_rows() == 0)
    {
        name_the_groups(&a.data, &filter, group, memory);
    }
    output::write(format, &batches, &mut std::io::stdout().lock())
}

/// How many of the archive's groups [`name_the_groups`] names.
const GROUPS_NAMED: usize = 8;

/// After `--mx-group` matched no row: the groups the archive's events do have under
/// the other filters, busiest first, unless `group` is one of them (then the other
/// filters left nothing). A misspelt group, or a provider under a name of its own
/// `mx_groups` file, shows at once instead of as an empty report.
fn name_the_groups(data: &Path, filter: &EventFilter, group: &str, memory: Option<&Size>) {
    let events = data.join(EVENTS_DIR);
    if !events.is_dir() {
        return;
    }
    let others = EventFilter {
        mx_group: None,
        lookahead_us: None,
        lookback_us: None,
        ..filter.clone()
    };
    let batches = match run_query_within(Query::MX_GROUPS, EventSource::Dir(events), &others, memory) {
        Ok(b) => b,
        Err(e) => return say!("deferlog report: the archive's MX groups could not be listed: {e:#}"),
    };
    let mut groups = Vec::new();
    for b in &batches {
        // VARCHAR may come as either string layout.
        let names = arrow::compute::cast(b.column(0), &DataType::Utf8);
        let (Ok(names), Some(events)) = (names, b.column(1).as_primitive_opt::<Int64Type>()) else {
            return;
        };
        let names = names.as_string::<i32>();
        groups.extend((0..b.num_rows()).map(|i| (names.value(i).to_owned(), events.value(i))));
    }
    if groups.is_empty() || groups.iter().any(|(g, _)| g == group) {
        return;
    }
    let named: Vec<String> = groups
        .iter()
        .take(GROUPS_NAMED)
        .enumerate()
        .map(|(i, (g, n))| {
            if i == 0 {
                format!("{g} ({n} events)")
            } else {
                format!("{g} ({n})")
            }
        })
        .collect();
    let more = match groups.len().saturating_sub(GROUPS_NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let (which, there) = if others == EventFilter::default() {
        ("", "")
    } else {
        (" under the other filters", " there")
    };
    say!(
        "deferlog report: no event{which} has mx_group {group:?}; the archive's events{there} are in {}{more}",
        named.join(", ")
    );
}

/// `--source-ip`: an address in any spelling, or `unknown` for rows with none.
fn source_ip(s: &str) -> Result<SourceIp> {
    if s.eq_ignore_ascii_case("unknown") {
        return Ok(SourceIp::Unknown);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SourceIp::Addr(ip.to_string()))
        .map_err(|_| anyhow::anyhow!("--source-ip: {s:?} is neither an IP address nor `unknown`"))
}
