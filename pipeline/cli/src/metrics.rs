//! The process's exporter: built from `[metrics]`, served on a thread of its own, and
//! the last-final-hour gauges computed by `queries/hourly_gauges.sql`.

use crate::config::MetricsRun;
use crate::engine::run_query;
use anyhow::{Context, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use deferlog_metrics::{Exporter, HourRow};
use deferlog_query::{EventFilter, EventSource, Query};
use deferlog_stream::{EpochSink, StreamError};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// An exporter and, when `metrics.listen` is set, its HTTP endpoint; dropping it
/// stops the endpoint.
#[derive(Debug)]
pub struct Served {
    pub exporter: Arc<Exporter>,
    pub addr: Option<SocketAddr>,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    pub fn start(m: &MetricsRun) -> Result<Served> {
        let exporter = Arc::new(Exporter::new(m.exporter.clone()).context("starting the metrics exporter")?);
        let cancel = CancellationToken::new();
        let Some(listen) = m.listen else {
            return Ok(Served {
                exporter,
                addr: None,
                cancel,
                thread: None,
            });
        };
        // Bound here, so a taken port fails the start with its address.
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("metrics.listen: cannot listen on {listen}"))?;
        listener.set_nonblocking(true).context("metrics listener")?;
        let addr = listener.local_addr().context("metrics listener")?;
        let (e, c) = (exporter.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name("deferlog-metrics".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                let Ok(rt) = rt else {
                    eprintln!("deferlog: metrics endpoint: cannot start its runtime");
                    return;
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => deferlog_metrics::serve(l, e, c).await,
                        Err(err) => eprintln!("deferlog: metrics endpoint: {err}"),
                    }
                });
            })
            .context("starting the metrics thread")?;
        Ok(Served {
            exporter,
            addr: Some(addr),
            cancel,
            thread: Some(thread),
        })
    }

    /// `"http://ADDR/metrics"`, or a note that the endpoint is off.
    pub fn describe(&self) -> String {
        self.addr.map_or("metrics endpoint off".into(), |a| {
            format!("metrics on http://{a}/metrics")
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `deferlog_hour_*` gauges from stored hourly rows: `hourly_gauges.sql` over
/// them. Returns the hour (µs) they describe, `None` while no hour is final.
pub fn set_hour_gauges(exporter: &Exporter, hourly: EventSource) -> Result<Option<i64>> {
    let out = run_query(Query::HOURLY_GAUGES, hourly, &EventFilter::default())?;
    let mut hour = None;
    let mut rows = Vec::new();
    for b in &out {
        let hours = cast(
            b.column(0),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )?;
        let hours = hours.as_primitive::<TimestampMicrosecondType>();
        let text = |i: usize| cast(b.column(i), &DataType::Utf8);
        let (ip, group) = (text(1)?, text(2)?);
        let (ip, group) = (ip.as_string::<i32>(), group.as_string::<i32>());
        let int = |i: usize| cast(b.column(i), &DataType::Int64);
        let (att, def, exp) = (int(3)?, int(4)?, int(5)?);
        let (att, def, exp) = (
            att.as_primitive::<Int64Type>(),
            def.as_primitive::<Int64Type>(),
            exp.as_primitive::<Int64Type>(),
        );
        let ratio = cast(b.column(6), &DataType::Float64)?;
        let ratio = ratio.as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            hour = Some(hours.value(i));
            let s = |a: &arrow::array::StringArray| {
                if a.is_null(i) {
                    String::new()
                } else {
                    a.value(i).to_owned()
                }
            };
            rows.push(HourRow {
                source_ip: s(ip),
                mx_group: s(group),
                attempts: att.value(i),
                deferred: def.value(i),
                expired: exp.value(i),
                deferral_ratio: ratio.value(i),
            });
        }
    }
    if let Some(h) = hour {
        exporter.set_last_hour(h as f64 / 1e6, &rows);
    }
    Ok(hour)
}

/// Keeps the stream's recent hourly rows and refreshes the hour gauges from them
/// whenever an epoch brings rows.
#[derive(Debug)]
pub struct HourGauges {
    exporter: Arc<Exporter>,
    rows: Vec<RecordBatch>,
    /// Scopes whose rows are here: their stored rows are not added again.
    scopes: HashSet<String>,
}

impl HourGauges {
    pub fn new(exporter: Arc<Exporter>) -> Self {
        HourGauges {
            exporter,
            rows: Vec::new(),
            scopes: HashSet::new(),
        }
    }

    /// Adds rows and refreshes the gauges.
    fn add(&mut self, hourly: &[RecordBatch]) -> Result<()> {
        if hourly.is_empty() {
            return Ok(());
        }
        self.rows.extend(hourly.iter().cloned());
        let hour = set_hour_gauges(&self.exporter, EventSource::Batches(self.rows.clone()))?;
        if let Some(hour) = hour {
            // Rows only of hours before the last final one can no longer show.
            self.rows.retain(|b| max_hour(b).is_some_and(|h| h >= hour));
        }
        Ok(())
    }

    /// A scope taken on: the rows its holders stored last (`files`, newest first),
    /// unless this process has its rows already. After a restart the gauges show the
    /// last final hour at once instead of nothing until the next hour closes.
    pub fn restore(&mut self, scope: &str, files: &[PathBuf]) -> Result<()> {
        if !self.scopes.insert(scope.to_owned()) {
            return Ok(());
        }
        let mut rows = Vec::new();
        for f in files {
            rows.extend(deferlog_archive::read_parquet(f)?);
        }
        self.add(&rows)
    }
}

/// The latest hour (µs) in a batch of stored hourly rows.
fn max_hour(b: &RecordBatch) -> Option<i64> {
    let h = b.column(0).as_primitive_opt::<TimestampMicrosecondType>()?;
    arrow::compute::max(h)
}

/// The hour gauges as one of the stream's sinks.
#[derive(Debug)]
pub struct HourGaugeSink(pub Arc<Mutex<HourGauges>>);

impl EpochSink for HourGaugeSink {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], _dead: Option<&RecordBatch>) -> Result<(), StreamError> {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        g.scopes.insert(scope.to_owned());
        g.add(hourly).map_err(|e| StreamError::Output(e.into()))
    }
}
