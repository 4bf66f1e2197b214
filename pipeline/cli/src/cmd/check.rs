//! `deferlog check`: the configuration resolved as `replay` and `run` would, without
//! connecting to anything.

use crate::cli::ConfigArg;
use crate::config::{Config, Problems};
use anyhow::{Context, Result};
use deferlog_parse::NormalizerConfig;
use deferlog_stream::{HostFrom, TenantFrom, TopicConfig};
use std::io::Write;

/// Loads and resolves the configuration exactly as `replay` (and, with a `[kafka]`
/// section, `run`) would, and says so. Never connects to anything. Every section is
/// resolved before anything is printed, so no "ok" precedes an error.
pub fn run(a: ConfigArg) -> Result<()> {
    let cfg = Config::load(a.config.as_deref())?;
    let origin = cfg.origin(a.config.as_deref());
    // `run`'s settings hold the others; without [kafka], both are resolved and every
    // problem of either is reported.
    let (n, m, r) = if cfg.kafka.is_some() {
        let r = cfg.resolve_run(&origin, super::now_us())?;
        (r.stream.normalizer.clone(), r.metrics.clone(), Some(r))
    } else {
        let mut p = Problems::default();
        let n = p.take(cfg.resolve(&origin, super::now_us()));
        let m = p.take(cfg.resolve_metrics(&origin, None));
        let (n, m) = p.finish_with(n.zip(m))?;
        (n, m, None)
    };
    let mut out = String::new();
    let handoffs = match cfg.handoff_addresses.as_slice() {
        [] => "none".to_owned(),
        all => all.join(" "),
    };
    out.push_str(&format!(
        "{origin}: ok (timezone {}, tenant {}, {}, {}, hand-off addresses {handoffs})\n",
        cfg.timezone,
        n.tenant,
        count(n.egress.len(), "egress entry", "egress entries"),
        count(n.classifier.len(), "classification rule", "classification rules"),
    ));
    out.push_str(&format!(
        "{origin}: metrics ok ({}, instance {}, top {} MX hosts per group, {} series per tenant, top {} IP x group \
         pairs in the hour gauges)\n",
        m.listen.map_or("endpoint off".to_owned(), |a| format!("on {a}")),
        m.exporter.instance,
        m.exporter.top_k,
        m.exporter.tenant_series_budget,
        m.exporter.hour_pairs_top_k
    ));
    // Not a problem of the file's, but the first a `run` would meet.
    if let Some(addr) = m.listen
        && let Err(e) = std::net::TcpListener::bind(addr)
    {
        out.push_str(&format!(
            "{origin}: note: metrics.listen {addr} cannot be listened on now ({e}): `run` would stop there, unless it \
             is this configuration's own running deferlog\n"
        ));
    }
    match r {
        None => out.push_str(&format!(
            "{origin}: no [kafka] section: `replay` and `report` need none, `run` would refuse to start \
             ([stream] is checked with [kafka])\n"
        )),
        Some(r) => {
            out.push_str(&format!(
                "{origin}: kafka ok (brokers {}, group {}, out {}; not contacted)\n",
                r.client.brokers,
                r.group,
                r.stream.out.display()
            ));
            for t in &r.stream.topics {
                out.push_str(&format!("{origin}: {}\n", topic(t, &n)));
            }
        }
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("writing to stdout")
}

/// What `run` takes from a topic's records, where the configuration decides it.
fn topic(t: &TopicConfig, n: &NormalizerConfig) -> String {
    let tenant = match &t.tenant {
        TenantFrom::Fixed(v) => format!("tenant {v}"),
        TenantFrom::Key => "tenant from the record key".to_owned(),
        TenantFrom::Header(h) => format!("tenant from header {h}, else {}", n.tenant),
    };
    // Syslog lines always name their host: this is for the records that do not.
    let host = match &t.host {
        HostFrom::Default => format!("host {}", n.default_host),
        HostFrom::Fixed(v) => format!("host {v}"),
        HostFrom::Key => format!("host from the record key, else {}", n.default_host),
    };
    let format = format!("{:?}", t.format).to_lowercase();
    format!(
        "topic {} ({format} records; {tenant}; where a record names no host, {host})",
        t.name
    )
}

/// `1 egress entry`, `2 egress entries`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
