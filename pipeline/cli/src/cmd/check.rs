use crate::cli::ConfigArg;
use crate::config::Config;
use anyhow::Result;

/// Loads and resolves the configuration exactly as `replay` (and, with a `[kafka]`
/// section, `run`) would, and says so. Never connects to anything.
pub fn run(a: ConfigArg) -> Result<()> {
    let cfg = Config::load(a.config.as_deref())?;
    let origin = cfg.origin(a.config.as_deref());
    let n = cfg.resolve(&origin, super::now_us())?;
    println!(
        "{origin}: ok (timezone {}, tenant {}, {} egress entries, {} classification rules)",
        cfg.timezone,
        n.tenant,
        n.egress.len(),
        n.classifier.len()
    );
    let m = cfg.resolve_metrics(&origin, None)?;
    println!(
        "{origin}: metrics ok ({}, instance {}, top {} MX hosts per group, {} series per tenant)",
        m.listen.map_or("endpoint off".to_owned(), |a| format!("on {a}")),
        m.exporter.instance,
        m.exporter.top_k,
        m.exporter.tenant_series_budget
    );
    if cfg.kafka.is_some() {
        let r = cfg.resolve_run(&origin, super::now_us())?;
        let topics: Vec<&str> = r.stream.topics.iter().map(|t| t.name.as_str()).collect();
        println!(
            "{origin}: kafka ok (brokers {}, group {}, topics {}, out {}; not contacted)",
            r.client.brokers,
            r.group,
            topics.join(","),
            r.stream.out.display()
        );
    }
    Ok(())
}
