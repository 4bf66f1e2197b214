use crate::cli::ConfigArg;
use crate::config::Config;
use anyhow::Result;

/// Loads and resolves the configuration exactly as `replay` would, and says so.
pub fn run(a: ConfigArg) -> Result<()> {
    let cfg = Config::load(a.config.as_deref())?;
    let origin = a
        .config
        .as_ref()
        .map_or("(defaults)".to_owned(), |p| p.display().to_string());
    let n = cfg.resolve(&origin, super::now_us())?;
    println!(
        "{origin}: ok (timezone {}, tenant {}, {} egress entries, {} classification rules)",
        cfg.timezone,
        n.tenant,
        n.egress.len(),
        n.classifier.len()
    );
    Ok(())
}
