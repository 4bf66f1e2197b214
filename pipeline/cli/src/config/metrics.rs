//! `[metrics]` checked into what the exporter runs with.

use super::{Config, Problems};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// The validated `[metrics]` section.
#[derive(Debug, Clone)]
pub struct MetricsRun {
    /// `None`: no endpoint.
    pub listen: Option<std::net::SocketAddr>,
    pub exporter: deferlog_metrics::ExporterConfig,
}

impl Config {
    /// Checks `[metrics]`; the ledger goes under `state_dir` when given.
    pub fn resolve_metrics(&self, origin: &str, state_dir: Option<PathBuf>) -> Result<MetricsRun> {
        let m = &self.metrics;
        let mut p = Problems::default();
        let listen = match m.listen.trim() {
            "" => None,
            l => p.take(l.parse::<std::net::SocketAddr>().with_context(|| {
                format!("{origin}: key `metrics.listen`: {l:?} is not an address like 127.0.0.1:9898")
            })),
        };
        for (name, v) in [
            ("metrics.mx_host_top_k", m.mx_host_top_k),
            ("metrics.tenant_series_budget", m.tenant_series_budget),
            ("metrics.hour_pairs_top_k", m.hour_pairs_top_k),
            ("metrics.scope_series_limit", m.scope_series_limit),
        ] {
            if v == 0 {
                p.note(format!("{origin}: key `{name}` must be at least 1"));
            }
        }
        if m.instance.as_ref().is_some_and(|i| i.trim().is_empty()) {
            p.note(format!("{origin}: key `metrics.instance` must not be empty"));
        }
        p.finish()?;
        let instance = match &m.instance {
            Some(i) => i.clone(),
            None => match listen.map_or(0, |a| a.port()) {
                0 => format!("{}:pid{}", hostname(), std::process::id()),
                port => format!("{}:{port}", hostname()),
            },
        };
        Ok(MetricsRun {
            listen,
            exporter: deferlog_metrics::ExporterConfig {
                instance,
                top_k: m.mx_host_top_k,
                tenant_series_budget: m.tenant_series_budget,
                hour_pairs_top_k: m.hour_pairs_top_k,
                state_dir,
            },
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
