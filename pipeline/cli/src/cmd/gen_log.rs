//! `deferlog gen`: a seeded log of a generated fleet, and optionally the exact hourly
//! rows `report hourly` must give for it (`--truth`). Writes nothing else.

use crate::cli::GenArgs;
use crate::config::parse_time;
use anyhow::{Context, Result, bail};
use deferlog_gen::{GenConfig, LogFormat, fleet_config_toml, write_log};
use std::io::{BufWriter, Write};

/// 2199-01-01T00:00:00Z: a generated log spans days to months, never a year.
const LATEST_START_UNIX: i64 = 7_226_582_400;

pub fn run(a: GenArgs) -> Result<()> {
    if a.print_config {
        print!("{}", fleet_config_toml());
        return Ok(());
    }
    let format = match a.format.as_str() {
        "postfix" => LogFormat::Postfix,
        "exim" => LogFormat::Exim,
        "kumomta" => LogFormat::KumoMta,
        "powermta" => LogFormat::PowerMta,
        f => bail!("--format {f}: `postfix`, `exim`, `kumomta` or `powermta`"),
    };
    let start_unix = match &a.start {
        Some(s) => parse_time(s).context("--start")? / 1_000_000,
        None => (chrono::Utc::now().timestamp() / 86_400 - 1) * 86_400,
    };
    // deferlog reads stamps from 1970 to 2200 as times (DESIGN.md); a log starting
    // outside, or running past 2200, would not replay to its own truth.
    if !(0..LATEST_START_UNIX).contains(&start_unix) {
        bail!("--start: the log must lie between 1970 and 2200 (give a start from 1970-01-01 to 2198-12-31)");
    }
    // Before the log is written: a truth that cannot be kept makes the log useless.
    let truth_file = a
        .truth
        .as_ref()
        .map(|p| std::fs::File::create(p).with_context(|| format!("--truth: creating {}", p.display())))
        .transpose()?;
    let cfg = GenConfig {
        seed: a.seed,
        lines: a.lines,
        start_unix,
        messages_per_hour: a.messages_per_hour,
        format,
        ..GenConfig::default()
    };
    let stdout = std::io::stdout();
    let truth = write_log(cfg, BufWriter::with_capacity(1 << 20, stdout.lock()))?;
    if let Some(f) = truth_file {
        let mut w = BufWriter::new(f);
        truth.write_csv(&mut w)?;
        w.flush()?;
    }
    Ok(())
}
