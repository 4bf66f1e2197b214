//! The Prometheus registry of one deferlog process and the state behind it.
//!
//! Delivery and pipeline counters come only from committed counts (see `ledger`):
//! they move when a checkpoint lands, so what Prometheus saw is never undone by a
//! crash, and a restart continues from the stored ledger. Gauges (lag, state sizes,
//! the last final hour) and the batch latency histogram are live.

use crate::counts::{Counts, Family, split};
use crate::error::MetricsError;
use crate::fold::{OTHER, Rendered, render};
use crate::ledger::{Ledger, ledger_path, load, lock_ledger, store};
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// This process among the group's instances: names its ledger file and is written
    /// as the owner into the checkpoints it stores.
    pub instance: String,
    /// `mx_host` series per MX group.
    pub top_k: usize,
    /// Delivery series per tenant.
    pub tenant_series_budget: usize,
    /// Sending IP × MX group pairs of the last final hour with their own hour gauges.
    pub hour_pairs_top_k: usize,
    /// Where the ledger is stored; `None` keeps it in memory only (tests, replay).
    pub state_dir: Option<PathBuf>,
}

/// One row of `queries/hourly_gauges.sql`: a source IP × MX group in the last final hour.
#[derive(Debug, Clone, PartialEq)]
pub struct HourRow {
    pub source_ip: String,
    pub mx_group: String,
    pub attempts: i64,
    pub deferred: i64,
    pub expired: i64,
    pub deferral_ratio: f64,
}

struct Gauges {
    /// Without labels; a vector so that `replay`, which has no group, exports none.
    ready: IntGaugeVec,
    folded: IntGaugeVec,
    lag: IntGaugeVec,
    correlation_entries: IntGauge,
    windows_open: IntGauge,
    /// Without labels; vectors so that nothing is exported until a value is known
    /// (a 0 would read as 1970 in `time() - watermark`).
    watermark: GaugeVec,
    batch_latency: Histogram,
    /// This process's, from its start: a restart's zero is a counter reset to
    /// Prometheus, which `rate` and `increase` allow for.
    kafka_errors: IntCounterVec,
    /// Exported at 0 from the start, so that `increase` sees the first loss.
    partitions_lost: IntCounter,
    hour_start: GaugeVec,
    hour_attempts: IntGaugeVec,
    hour_deferrals: IntGaugeVec,
    hour_expiries: IntGaugeVec,
    hour_ratio: GaugeVec,
}

struct State {
    ledger: Ledger,
    /// Values already added to the Prometheus counters, by rendered key.
    exported: HashMap<String, u64>,
}

pub struct Exporter {
    cfg: ExporterConfig,
    /// Held while the exporter lives: one process per ledger (see `ledger::lock_ledger`).
    _ledger_lock: Option<std::fs::File>,
    registry: Registry,
    counters: HashMap<Family, IntCounterVec>,
    gauges: Gauges,
    state: Mutex<State>,
    ready: AtomicBool,
    /// Each consumer-group member's `set_assigned`.
    members: Mutex<HashMap<usize, bool>>,
    /// Which worker set each partition's lag gauge last.
    lag_owners: Mutex<HashMap<(String, i32), usize>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("instance", &self.cfg.instance)
            .finish_non_exhaustive()
    }
}

/// The `source_ip` shown for attempts with no sending IP known (NULL in the archive),
/// the word `report --source-ip` takes for them. Stored counts keep the empty value;
/// exported empty, the label would vanish (Prometheus reads `source_ip=""` as no
/// label), so Grafana's variable could not select those series and alerts would name
/// no IP.
pub const UNKNOWN_SOURCE_IP: &str = "unknown";

/// A stored label value as Prometheus is shown it.
fn shown<'a>(label: &str, value: &'a str) -> &'a str {
    if label == "source_ip" && value.is_empty() {
        UNKNOWN_SOURCE_IP
    } else {
        value
    }
}

/// The `k` pairs with the most attempts (then deferrals, then by name, so that a tie
/// does not flap between hours), and the others summed into one `other` row; with
/// how many pairs went into it.
fn top_pairs(rows: &[HourRow], k: usize) -> (Vec<HourRow>, usize) {
    if rows.len() <= k {
        return (rows.to_vec(), 0);
    }
    let mut sorted: Vec<&HourRow> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        (b.attempts, b.deferred)
            .cmp(&(a.attempts, a.deferred))
            .then_with(|| (&a.source_ip, &a.mx_group).cmp(&(&b.source_ip, &b.mx_group)))
    });
    let mut other = HourRow {
        source_ip: OTHER.to_owned(),
        mx_group: OTHER.to_owned(),
        attempts: 0,
        deferred: 0,
        expired: 0,
        deferral_ratio: 0.0,
    };
    for r in &sorted[k..] {
        other.attempts += r.attempts;
        other.deferred += r.deferred;
        other.expired += r.expired;
    }
    // As hourly_gauges.sql computes it.
    if other.attempts > 0 {
        other.deferral_ratio = other.deferred as f64 / other.attempts as f64;
    }
    let folded = sorted.len() - k;
    let mut kept: Vec<HourRow> = sorted[..k].iter().map(|r| (*r).clone()).collect();
    kept.push(other);
    (kept, folded)
}

impl Exporter {
    pub fn new(cfg: ExporterConfig) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let mut counters = HashMap::new();
        for f in Family::ALL {
            let c = IntCounterVec::new(Opts::new(f.name(), f.help()), f.labels())?;
            registry.register(Box::new(c.clone()))?;
            // A family without labels has one series: 0 from the start, so "nothing
            // read yet" shows as 0 rather than as no data.
            if f.labels().is_empty() {
                c.with_label_values(&[] as &[&str]);
            }
            counters.insert(*f, c);
        }
        let gauges = Gauges::register(&registry)?;
        let path = cfg.state_dir.as_deref().map(|d| ledger_path(d, &cfg.instance));
        let ledger_lock = path
            .as_deref()
            .map(|p| lock_ledger(p, &cfg.instance))
            .transpose()?
            .flatten();
        let ledger = match path {
            Some(p) if p.exists() => load(&p)?,
            _ => Ledger::new(),
        };
        let exporter = Exporter {
            cfg,
            _ledger_lock: ledger_lock,
            registry,
            counters,
            gauges,
            state: Mutex::new(State {
                ledger,
                exported: HashMap::new(),
            }),
            ready: AtomicBool::new(false),
            members: Mutex::new(HashMap::new()),
            lag_owners: Mutex::new(HashMap::new()),
        };
        exporter.refresh(&mut exporter.lock());
        Ok(exporter)
    }

    pub fn instance(&self) -> &str {
        &self.cfg.instance
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data: every
        // update below is applied whole before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A scope is taken on with the counts of its checkpoint, stored by `owner`.
    pub fn acquire(&self, scope: &str, cum: &Counts, owner: Option<&str>) {
        let mut s = self.lock();
        s.ledger.acquire(scope, cum, owner == Some(self.cfg.instance.as_str()));
        self.refresh(&mut s);
    }

    /// Checkpoints of these scopes landed with these cumulative counts: export their
    /// growth and store the ledger.
    pub fn commit(&self, scopes: &[(&str, &Counts)]) -> Result<(), MetricsError> {
        let mut s = self.lock();
        for (scope, cum) in scopes {
            s.ledger.commit(scope, cum);
        }
        self.refresh(&mut s);
        match self.cfg.state_dir.as_deref() {
            Some(dir) => store(&ledger_path(dir, &self.cfg.instance), &s.ledger),
            None => Ok(()),
        }
    }

    /// Adds what the rendering grew by to the Prometheus counters.
    fn refresh(&self, s: &mut State) {
        let Rendered {
            series,
            hosts_folded,
            series_over_budget,
        } = render(&mut s.ledger, self.cfg.top_k, self.cfg.tenant_series_budget);
        for (k, v) in series {
            let Some((family, mut labels)) = split(&k) else {
                continue;
            };
            for (v, name) in labels.iter_mut().zip(family.labels()) {
                *v = shown(name, v);
            }
            let before = s.exported.get(&k).copied().unwrap_or(0);
            if let Some(c) = self.counters.get(&family) {
                // First sight creates the series at its count: no scrape sees a 0
                // before it, which is why the rules and panels count a series born
                // in their window whole (README, Metrics).
                c.with_label_values(&labels).inc_by(v.saturating_sub(before));
            }
            s.exported.insert(k, v.max(before));
        }
        let g = &self.gauges.folded;
        g.with_label_values(&["mx_host_top_k"]).set(hosts_folded as i64);
        g.with_label_values(&["tenant_budget"]).set(series_over_budget as i64);
    }

    /// The instance's committed totals, before folding.
    pub fn totals(&self) -> Counts {
        self.lock().ledger.totals.clone()
    }

    pub fn observe_batch_latency(&self, d: Duration) {
        self.gauges.batch_latency.observe(d.as_secs_f64());
    }

    /// An error the consumer's poll returned (the broker away, a topic missing), by
    /// librdkafka's code name.
    pub fn count_kafka_error(&self, code: &str) {
        self.gauges.kafka_errors.with_label_values(&[code]).inc();
    }

    /// Partitions this process lost: out of its group longer than the session timeout.
    pub fn count_partitions_lost(&self, n: u64) {
        self.gauges.partitions_lost.inc_by(n);
    }

    /// Sets (or, with `None`, removes) a partition's lag for `owner`, the worker that
    /// holds it: a worker the partition has moved away from removes nothing that its
    /// new holder already set.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: Option<i64>, owner: usize) {
        let p = partition.to_string();
        let mut owners = self.lag_owners.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (topic.to_owned(), partition);
        match lag {
            Some(l) => {
                owners.insert(key, owner);
                self.gauges.lag.with_label_values(&[topic, &p]).set(l.max(0));
            }
            None => {
                if owners.get(&key).is_none_or(|o| *o == owner) {
                    owners.remove(&key);
                    let _ = self.gauges.lag.remove_label_values(&[topic, &p]);
                }
            }
        }
    }

    /// State sizes and the watermark (seconds since the epoch), summed over the
    /// process's scopes by the caller.
    pub fn set_state(&self, correlation_entries: u64, open_hours: u64, watermark_s: Option<f64>) {
        self.gauges.correlation_entries.set(correlation_entries as i64);
        self.gauges.windows_open.set(open_hours as i64);
        // None: no hour is final everywhere now (a worker with hours open has no
        // watermark, say after a rebalance), so a value kept from before would
        // overstate finality.
        match watermark_s {
            Some(w) => self.gauges.watermark.with_label_values::<&str>(&[]).set(w),
            None => self.gauges.watermark.reset(),
        }
    }

    /// The last final hour's rows replace the previous hour's. The busiest
    /// `hour_pairs_top_k` pairs get their own gauges and the rest are summed under
    /// `source_ip`, `mx_group` "other": rows come from the input (a B2B fleet meets
    /// thousands of MX groups an hour), and four gauges a pair, renewed every hour,
    /// would otherwise be as unbounded as the input.
    pub fn set_last_hour(&self, hour_start_s: f64, rows: &[HourRow]) {
        let g = &self.gauges;
        self.clear_last_hour();
        g.hour_start.with_label_values::<&str>(&[]).set(hour_start_s);
        let (rows, folded) = top_pairs(rows, self.cfg.hour_pairs_top_k);
        self.gauges
            .folded
            .with_label_values(&["hour_pairs_top_k"])
            .set(folded as i64);
        for r in &rows {
            let l = [shown("source_ip", &r.source_ip), r.mx_group.as_str()];
            g.hour_attempts.with_label_values(&l).set(r.attempts);
            g.hour_deferrals.with_label_values(&l).set(r.deferred);
            g.hour_expiries.with_label_values(&l).set(r.expired);
            g.hour_ratio.with_label_values(&l).set(r.deferral_ratio);
        }
    }

    /// No last final hour (this instance holds no rows of one): the gauges go.
    pub fn clear_last_hour(&self) {
        let g = &self.gauges;
        g.hour_attempts.reset();
        g.hour_deferrals.reset();
        g.hour_expiries.reset();
        g.hour_ratio.reset();
        g.hour_start.reset();
        g.folded.with_label_values(&["hour_pairs_top_k"]).set(0);
    }

    /// `/readyz` answers 200 once this is set (input open: `replay`).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether consumer-group `member` of this process holds an assignment. The
    /// process is ready (`/readyz`, the `deferlog_ready` gauge) while every member
    /// that has said so does: one out of the group is enough to stop consuming its share.
    pub fn set_assigned(&self, member: usize, assigned: bool) {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members.insert(member, assigned);
        let all = members.values().all(|a| *a);
        self.ready.store(all, Ordering::Relaxed);
        self.gauges.ready.with_label_values(&[] as &[&str]).set(i64::from(all));
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

impl Gauges {
    fn register(r: &Registry) -> Result<Self, MetricsError> {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> Result<T, MetricsError> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let sip_group = &["source_ip", "mx_group"];
        let build = IntGaugeVec::new(
            Opts::new(
                "deferlog_build_info",
                "Always 1; the version label says which deferlog.",
            ),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        reg(r, build)?;
        Ok(Gauges {
            ready: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "deferlog_ready",
                        "1 while every consumer-group member of the process holds an assignment (what /readyz \
                         says); 0 before they join and while one is out of the group.",
                    ),
                    &[],
                )?,
            )?,
            folded: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "deferlog_folded_series",
                        "Label sets exported under an `other` series: MX hosts past the top K of their group, delivery \
                         series past their tenant's budget, last-hour pairs past hour_pairs_top_k. A partition past \
                         scope_series_limit folds before any of these: see deferlog_state_folded_events_total.",
                    ),
                    &["reason"],
                )?,
            )?,
            lag: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "deferlog_kafka_lag_records",
                        "Records between the consumer's position and the partition's end.",
                    ),
                    &["topic", "partition"],
                )?,
            )?,
            correlation_entries: reg(
                r,
                IntGauge::new("deferlog_correlation_entries", "Queue ids held in correlation state.")?,
            )?,
            windows_open: reg(
                r,
                IntGauge::new(
                    "deferlog_windows_open",
                    "Hourly windows held open or kept for late events.",
                )?,
            )?,
            watermark: reg(
                r,
                GaugeVec::new(
                    Opts::new(
                        "deferlog_watermark_timestamp_seconds",
                        "Event-time watermark: hours ending before it are final.",
                    ),
                    &[],
                )?,
            )?,
            batch_latency: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "deferlog_batch_latency_seconds",
                        "From a batch's first event in to its rows archived and windowed.",
                    )
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                )?,
            )?,
            kafka_errors: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "deferlog_kafka_errors_total",
                        "Errors the consumer's poll returned, by librdkafka's code (brokers down, topic missing).",
                    ),
                    &["code"],
                )?,
            )?,
            partitions_lost: reg(
                r,
                IntCounter::new(
                    "deferlog_partitions_lost_total",
                    "Partitions lost to the group: out of it longer than session.timeout.ms; reread from checkpoints.",
                )?,
            )?,
            hour_start: reg(
                r,
                GaugeVec::new(
                    Opts::new(
                        "deferlog_hour_start_timestamp_seconds",
                        "Start of the last final hour the deferlog_hour_* gauges describe.",
                    ),
                    &[],
                )?,
            )?,
            hour_attempts: reg(
                r,
                IntGaugeVec::new(
                    Opts::new("deferlog_hour_attempts", "Attempts in the last final hour."),
                    sip_group,
                )?,
            )?,
            hour_deferrals: reg(
                r,
                IntGaugeVec::new(
                    Opts::new("deferlog_hour_deferrals", "Deferrals in the last final hour."),
                    sip_group,
                )?,
            )?,
            hour_expiries: reg(
                r,
                IntGaugeVec::new(
                    Opts::new("deferlog_hour_expiries", "Expiries in the last final hour."),
                    sip_group,
                )?,
            )?,
            hour_ratio: reg(
                r,
                GaugeVec::new(
                    Opts::new(
                        "deferlog_hour_deferral_ratio",
                        "Deferrals / attempts in the last final hour.",
                    ),
                    sip_group,
                )?,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::{DeliveryRow, key};
    use std::path::Path;

    fn cfg(dir: &Path) -> ExporterConfig {
        ExporterConfig {
            instance: "host:9898".into(),
            top_k: 10,
            tenant_series_budget: 1000,
            hour_pairs_top_k: 1000,
            state_dir: Some(dir.to_path_buf()),
        }
    }

    fn delivered(c: &mut Counts, n: u64) {
        c.add_delivery(
            &DeliveryRow {
                tenant: "t",
                mta: "postfix",
                source_ip: "192.0.2.1",
                mx_group: "google",
                mx_host: "gmail-smtp-in.l.google.com",
                outcome: "delivered",
                class: "none",
                events: n,
            },
            usize::MAX,
        );
    }

    /// An exporter with no stored ledger.
    fn in_memory() -> Exporter {
        Exporter::new(ExporterConfig {
            state_dir: None,
            ..cfg(Path::new("/nonexistent"))
        })
        .expect("exporter")
    }

    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn counters_continue_from_the_stored_ledger_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let attempts = r#"deferlog_attempts_total{mx_group="google",mx_host="gmail-smtp-in.l.google.com",outcome="delivered",source_ip="192.0.2.1",tenant="t"}"#;
        let mut c = Counts::default();
        delivered(&mut c, 40);
        let e = Exporter::new(cfg(dir.path())).expect("exporter");
        e.acquire("p0", &Counts::default(), None);
        e.commit(&[("p0", &c)]).expect("commit");
        assert_eq!(sample(&e.render().expect("render"), attempts), Some(40.0));
        drop(e);

        let e = Exporter::new(cfg(dir.path())).expect("exporter");
        assert_eq!(sample(&e.render().expect("render"), attempts), Some(40.0));
        e.acquire("p0", &c, Some("host:9898"));
        delivered(&mut c, 2);
        e.commit(&[("p0", &c)]).expect("commit");
        assert_eq!(sample(&e.render().expect("render"), attempts), Some(42.0));
        assert_eq!(e.totals().get(&key(Family::Events, &["postfix"])), 42);
    }

    #[test]
    fn two_live_exporters_cannot_share_one_instance_ledger() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Exporter::new(cfg(dir.path())).expect("exporter");
        let Err(err) = Exporter::new(cfg(dir.path())) else {
            panic!("refused while the first lives")
        };
        assert!(matches!(err, MetricsError::InstanceInUse { .. }), "{err}");
        assert!(err.to_string().contains("\"host:9898\" is in use"), "{err}");
        // Another name is another ledger; the same one again once the first is gone.
        let other = Exporter::new(ExporterConfig {
            instance: "host:9899".into(),
            ..cfg(dir.path())
        });
        assert!(other.is_ok());
        drop(first);
        assert!(Exporter::new(cfg(dir.path())).is_ok());
    }

    #[test]
    fn counters_without_labels_are_0_before_anything_counts() {
        let text = in_memory().render().expect("render");
        for family in Family::ALL.iter().filter(|f| f.labels().is_empty()) {
            assert_eq!(sample(&text, &format!("{} ", family.name())), Some(0.0), "{text}");
        }
        // Labelled ones appear with their first labels.
        assert!(!text.contains("deferlog_attempts_total{"), "{text}");
    }

    #[test]
    fn a_partitions_lag_is_removed_only_by_the_worker_that_holds_it() {
        let e = in_memory();
        let series = r#"deferlog_kafka_lag_records{partition="3",topic="mail"}"#;
        e.set_lag("mail", 3, Some(7), 1);
        e.set_lag("mail", 3, Some(5), 0);
        // Worker 1 lets go after worker 0 took the partition over: it stays.
        e.set_lag("mail", 3, None, 1);
        assert_eq!(sample(&e.render().expect("render"), series), Some(5.0));
        e.set_lag("mail", 3, None, 0);
        assert_eq!(sample(&e.render().expect("render"), series), None);
    }

    #[test]
    fn watermark_and_hour_start_are_absent_while_unknown() {
        let e = in_memory();
        e.set_state(0, 0, None);
        let text = e.render().expect("render");
        assert!(!text.contains("deferlog_watermark_timestamp_seconds "), "{text}");
        assert!(!text.contains("deferlog_hour_start_timestamp_seconds "), "{text}");
        e.set_state(0, 0, Some(3600.0));
        e.set_last_hour(0.0, &[]);
        let text = e.render().expect("render");
        assert_eq!(sample(&text, "deferlog_watermark_timestamp_seconds"), Some(3600.0));
        assert_eq!(sample(&text, "deferlog_hour_start_timestamp_seconds"), Some(0.0));
        e.clear_last_hour();
        // A watermark known once and then not (a worker holding hours open lost its
        // own) is absent again, not the old value.
        e.set_state(0, 0, None);
        let text = e.render().expect("render");
        assert!(!text.contains("deferlog_hour_start_timestamp_seconds "), "{text}");
        assert!(!text.contains("deferlog_watermark_timestamp_seconds "), "{text}");
    }

    #[test]
    fn attempts_without_a_sending_ip_are_exported_as_unknown() {
        let e = in_memory();
        let mut c = Counts::default();
        c.add_delivery(
            &DeliveryRow {
                tenant: "t",
                mta: "postfix",
                source_ip: "",
                mx_group: "google",
                mx_host: "gmail-smtp-in.l.google.com",
                outcome: "deferred",
                class: "rate_limit",
                events: 3,
            },
            usize::MAX,
        );
        e.commit(&[("s", &c)]).expect("commit");
        e.set_last_hour(
            3600.0,
            &[HourRow {
                source_ip: String::new(),
                mx_group: "google".into(),
                attempts: 3,
                deferred: 3,
                expired: 0,
                deferral_ratio: 1.0,
            }],
        );
        let text = e.render().expect("render");
        for series in [
            r#"deferlog_attempts_total{mx_group="google",mx_host="gmail-smtp-in.l.google.com",outcome="deferred",source_ip="unknown",tenant="t"}"#,
            r#"deferlog_deferrals_total{class="rate_limit",mx_group="google",source_ip="unknown",tenant="t"}"#,
            r#"deferlog_hour_attempts{mx_group="google",source_ip="unknown"}"#,
        ] {
            assert_eq!(sample(&text, series), Some(3.0), "{series} in\n{text}");
        }
        assert!(!text.contains(r#"source_ip="""#), "{text}");
        // The stored key keeps the empty value, as the archive keeps NULL.
        assert_eq!(e.totals(), c);
    }

    #[test]
    fn last_hour_gauges_replace_the_previous_hour() {
        let e = in_memory();
        let row = |ip: &str| HourRow {
            source_ip: ip.into(),
            mx_group: "google".into(),
            attempts: 10,
            deferred: 5,
            expired: 1,
            deferral_ratio: 0.5,
        };
        e.set_last_hour(3600.0, &[row("192.0.2.1")]);
        e.set_last_hour(7200.0, &[row("192.0.2.2")]);
        let text = e.render().expect("render");
        assert!(!text.contains("192.0.2.1"), "{text}");
        assert_eq!(
            sample(
                &text,
                r#"deferlog_hour_deferral_ratio{mx_group="google",source_ip="192.0.2.2"}"#
            ),
            Some(0.5)
        );
        assert_eq!(sample(&text, "deferlog_hour_start_timestamp_seconds"), Some(7200.0));
    }

    #[test]
    fn past_hour_pairs_top_k_the_quietest_pairs_are_one_other_row() {
        let e = Exporter::new(ExporterConfig {
            state_dir: None,
            hour_pairs_top_k: 2,
            ..cfg(Path::new("/nonexistent"))
        })
        .expect("exporter");
        let row = |ip: &str, group: &str, attempts: i64, deferred: i64| HourRow {
            source_ip: ip.into(),
            mx_group: group.into(),
            attempts,
            deferred,
            expired: 1,
            deferral_ratio: deferred as f64 / attempts as f64,
        };
        let rows = [
            row("192.0.2.1", "google", 100, 10),
            row("192.0.2.1", "yahoo", 5, 4),
            row("192.0.2.2", "google", 40, 0),
            row("192.0.2.2", "yahoo", 40, 20),
            row("192.0.2.3", "example.com", 15, 0),
        ];
        e.set_last_hour(3600.0, &rows);
        let text = e.render().expect("render");
        let pairs = text
            .lines()
            .filter(|l| l.starts_with("deferlog_hour_attempts{"))
            .count();
        assert_eq!(pairs, 3, "two pairs and other:\n{text}");
        let at = |name: &str, ip: &str, group: &str| {
            sample(&text, &format!(r#"{name}{{mx_group="{group}",source_ip="{ip}"}}"#))
        };
        assert_eq!(at("deferlog_hour_attempts", "192.0.2.1", "google"), Some(100.0));
        // A tie on attempts goes to the pair with more deferrals.
        assert_eq!(at("deferlog_hour_deferrals", "192.0.2.2", "yahoo"), Some(20.0));
        assert_eq!(at("deferlog_hour_attempts", "192.0.2.2", "google"), None);
        assert_eq!(at("deferlog_hour_attempts", "other", "other"), Some(60.0));
        assert_eq!(at("deferlog_hour_deferrals", "other", "other"), Some(4.0));
        assert_eq!(at("deferlog_hour_expiries", "other", "other"), Some(3.0));
        let ratio = at("deferlog_hour_deferral_ratio", "other", "other").expect("ratio");
        assert!((ratio - 4.0 / 60.0).abs() < 1e-12, "{ratio}");
        assert_eq!(
            sample(&text, r#"deferlog_folded_series{reason="hour_pairs_top_k"}"#),
            Some(3.0)
        );
        // An hour within the limit has no `other` row.
        e.set_last_hour(7200.0, &rows[..2]);
        let text = e.render().expect("render");
        assert!(!text.contains(r#"source_ip="other""#), "{text}");
        assert_eq!(
            sample(&text, r#"deferlog_folded_series{reason="hour_pairs_top_k"}"#),
            Some(0.0)
        );
    }
}
