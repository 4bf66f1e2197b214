use crate::cli::GenArgs;
use crate::config::parse_time;
use anyhow::{Context, Result, bail};
use deferlog_gen::{GenConfig, LogFormat, fleet_config_toml, write_log};
use std::io::{BufWriter, Write};

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
    if let Some(path) = &a.truth {
        let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::new(f);
        truth.write_csv(&mut w)?;
        w.flush()?;
    }
    Ok(())
}
