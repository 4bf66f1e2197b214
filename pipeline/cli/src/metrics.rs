//! The process's exporter: built from `[metrics]`, served on a thread of its own, and
//! the last-final-hour gauges computed by `queries/hourly_gauges.sql`.

use crate::config::MetricsRun;
use crate::query::run_query;
use anyhow::{Context, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use deferlog_metrics::{Exporter, HourRow};
use deferlog_query::{EventFilter, EventSource, LocalEngine, Query};
use deferlog_stream::{EpochSink, StreamError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
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
                    say!("deferlog: metrics endpoint: cannot start its runtime");
                    return;
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => deferlog_metrics::serve(l, e, c).await,
                        Err(err) => say!("deferlog: metrics endpoint: {err}"),
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
/// them; none while no hour is final. Left as they were if the query fails.
pub fn set_hour_gauges(exporter: &Exporter, hourly: EventSource) -> Result<()> {
    let out = run_query(Query::HOURLY_GAUGES, hourly, &EventFilter::default())?;
    publish_hour_gauges(exporter, &out)
}

/// The hour gauges from the rows `hourly_gauges.sql` gave.
fn publish_hour_gauges(exporter: &Exporter, out: &[RecordBatch]) -> Result<()> {
    let mut hour = None;
    let mut rows = Vec::new();
    for b in out {
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
    match hour {
        Some(h) => exporter.set_last_hour(h as f64 / 1e6, &rows),
        None => exporter.clear_last_hour(),
    }
    Ok(())
}

/// The hourly rows of the scopes this process holds, and the hour gauges over them:
/// refreshed when an epoch brings rows, when a scope is taken on (the rows of its
/// newest closed hour, from its restored windows) and when one goes (its rows leave
/// with it, so two instances never both export a partition's rows).
#[derive(Debug)]
pub struct HourGauges {
    exporter: Arc<Exporter>,
    /// Runs `hourly_gauges.sql` on the thread that refreshes (a worker's, at its
    /// checkpoint), planned once.
    engine: LocalEngine,
    /// By scope: the group member holding it, and its rows from its own last final
    /// hour on.
    rows: BTreeMap<String, (usize, Vec<RecordBatch>)>,
}

/// The latest hour (µs) a batch of stored hourly rows holds as final.
fn max_final_hour(b: &RecordBatch) -> Option<i64> {
    use deferlog_query::schema::col;
    let hour = b
        .column_by_name(col::HOUR)?
        .as_primitive_opt::<TimestampMicrosecondType>()?;
    let fin = b.column_by_name(col::FINAL)?.as_boolean_opt()?;
    (0..b.num_rows()).filter(|i| fin.value(*i)).map(|i| hour.value(i)).max()
}

impl HourGauges {
    pub fn new(exporter: Arc<Exporter>) -> Result<Self> {
        Ok(HourGauges {
            exporter,
            engine: LocalEngine::new()?,
            rows: BTreeMap::new(),
        })
    }

    /// Refreshes the gauges over `rows`, which replace the held ones only if the
    /// query takes them: rows it fails on must not fail every later epoch.
    fn refresh(&mut self, mut rows: BTreeMap<String, (usize, Vec<RecordBatch>)>) -> Result<()> {
        let all: Vec<RecordBatch> = rows.values().flat_map(|(_, b)| b).cloned().collect();
        if all.iter().all(|b| b.num_rows() == 0) {
            self.exporter.clear_last_hour();
        } else {
            let out = self.engine.run(Query::HOURLY_GAUGES, all)?;
            publish_hour_gauges(&self.exporter, &out)?;
        }
        // Each scope keeps its own last final hour on: if the scope that brought the
        // newest hour goes, the others' still show theirs.
        for (_, batches) in rows.values_mut() {
            if let Some(own) = batches.iter().filter_map(max_final_hour).max() {
                batches.retain(|b| max_hour(b).is_some_and(|h| h >= own));
            }
        }
        self.rows = rows;
        Ok(())
    }

    /// Epochs' rows of scopes that group member `member` holds: one refresh for all.
    fn add(&mut self, member: usize, epochs: &[(String, Vec<RecordBatch>)]) -> Result<()> {
        if epochs.is_empty() {
            return Ok(());
        }
        let mut rows = self.rows.clone();
        for (scope, hourly) in epochs {
            let held = rows.entry(scope.clone()).or_insert((member, Vec::new()));
            held.0 = member;
            held.1.extend(hourly.iter().cloned());
        }
        self.refresh(rows)
    }

    /// Scopes member `member` took on, with the rows of their newest closed hour;
    /// they replace what this process held of them.
    pub fn restore(&mut self, member: usize, taken: Vec<(String, Vec<RecordBatch>)>) -> Result<()> {
        if taken.is_empty() {
            return Ok(());
        }
        let mut rows = self.rows.clone();
        rows.extend(taken.into_iter().map(|(scope, b)| (scope, (member, b))));
        self.refresh(rows)
    }

    /// Scopes member `member` let go: their rows leave the gauges (unless another
    /// member of this process holds the scope by now).
    pub fn forget(&mut self, member: usize, scopes: &[String]) -> Result<()> {
        let mine = |s: &String| self.rows.get(s).is_some_and(|(m, _)| *m == member);
        if !scopes.iter().any(mine) {
            return Ok(());
        }
        let mut rows = self.rows.clone();
        rows.retain(|s, (m, _)| *m != member || !scopes.contains(s));
        self.refresh(rows)
    }
}

/// The latest hour (µs) in a batch of stored hourly rows.
fn max_hour(b: &RecordBatch) -> Option<i64> {
    let h = b.column(0).as_primitive_opt::<TimestampMicrosecondType>()?;
    arrow::compute::max(h)
}

/// The hour gauges as one of a worker's sinks: it gathers the epochs of a checkpoint
/// and refreshes the gauges once for them (each refresh is a query, run under the lock
/// every worker shares).
#[derive(Debug)]
pub struct HourGaugeSink {
    gauges: Arc<Mutex<HourGauges>>,
    member: usize,
    pending: Vec<(String, Vec<RecordBatch>)>,
}

impl HourGaugeSink {
    pub fn new(gauges: Arc<Mutex<HourGauges>>, member: usize) -> Self {
        HourGaugeSink {
            gauges,
            member,
            pending: Vec::new(),
        }
    }
}

impl EpochSink for HourGaugeSink {
    fn epoch(&mut self, scope: &str, hourly: &[RecordBatch], _dead: &[RecordBatch]) -> Result<(), StreamError> {
        if !hourly.is_empty() {
            self.pending.push((scope.to_owned(), hourly.to_vec()));
        }
        Ok(())
    }

    fn checkpointed(&mut self) -> Result<(), StreamError> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        let mut g = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
        // The gauges only: a failure here must not fail the checkpoint. Rows the
        // query refuses cost only their own epoch's place in the gauges.
        if g.add(self.member, &pending).is_err() {
            for epoch in pending.chunks(1) {
                if let Err(e) = g.add(self.member, epoch) {
                    say!("deferlog run: hour gauges not refreshed: {e:#}");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use deferlog_metrics::ExporterConfig;
    use deferlog_query::schema::{partial_schema, to_hourly};

    const H: i64 = 3_600_000_000;

    /// Stored rows of one scope: `(hour, source_ip, attempts, deferred)`, one revision.
    fn stored(scope: &str, revision: i64, is_final: bool, rows: &[(i64, &str, i64, i64)]) -> RecordBatch {
        let partial = RecordBatch::try_new(
            partial_schema(),
            vec![
                Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.0)).with_timezone("UTC")),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "mx.example"))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "google"))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2 - r.3))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|_| 0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|_| 0))),
            ],
        )
        .expect("partial");
        to_hourly(&partial, scope, revision, is_final).expect("hourly")
    }

    fn gauges() -> (Arc<Exporter>, HourGauges) {
        let e = Arc::new(
            Exporter::new(ExporterConfig {
                instance: "test".into(),
                top_k: 10,
                tenant_series_budget: 1000,
                hour_pairs_top_k: 1000,
                state_dir: None,
            })
            .expect("exporter"),
        );
        (e.clone(), HourGauges::new(e).expect("gauges"))
    }

    /// `(hour start in s, attempts summed over the series)`, or `None` when absent.
    fn shown(e: &Exporter) -> Option<(f64, f64)> {
        let text = e.render().expect("render");
        let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        let hour = text
            .lines()
            .find(|l| l.starts_with("deferlog_hour_start_timestamp_seconds "))
            .and_then(value)?;
        let attempts = text
            .lines()
            .filter(|l| l.starts_with("deferlog_hour_attempts{"))
            .filter_map(value)
            .sum();
        Some((hour, attempts))
    }

    #[test]
    fn a_scope_taken_on_brings_its_rows_and_takes_them_along_when_it_goes() {
        let (e, mut g) = gauges();
        // mail-1 closed hour 1 with 10 attempts; mail-3 closed it with 5, and hour 2 is
        // open there.
        let one = stored("mail-1", 4, true, &[(H, "192.0.2.1", 10, 2)]);
        let three = stored("mail-3", 7, true, &[(H, "192.0.2.2", 5, 1)]);
        let three_open = stored("mail-3", 8, false, &[(2 * H, "192.0.2.2", 3, 0)]);
        g.restore(0, vec![("mail-1".into(), vec![one.clone()])])
            .expect("restore");
        assert_eq!(shown(&e), Some((3600.0, 10.0)));
        g.restore(0, vec![("mail-3".into(), vec![three_open, three])])
            .expect("restore");
        assert_eq!(shown(&e), Some((3600.0, 15.0)));
        // Taken on again (another holder wrote more since): the rows replace the ones
        // held, they are not added twice.
        let one_revised = stored("mail-1", 9, true, &[(H, "192.0.2.1", 12, 2)]);
        g.restore(0, vec![("mail-1".into(), vec![one_revised])])
            .expect("restore");
        assert_eq!(shown(&e), Some((3600.0, 17.0)));
        // mail-1 goes to another instance: its rows leave these gauges.
        g.forget(0, &["mail-1".into()]).expect("forget");
        assert_eq!(shown(&e), Some((3600.0, 5.0)));
        // Another member of this process took mail-3 on before member 0 let it go.
        let three_again = stored("mail-3", 9, true, &[(H, "192.0.2.2", 6, 1)]);
        g.restore(1, vec![("mail-3".into(), vec![three_again])])
            .expect("restore");
        g.forget(0, &["mail-3".into()]).expect("forget");
        assert_eq!(shown(&e), Some((3600.0, 6.0)), "member 1's rows stay");
        g.forget(1, &["mail-3".into()]).expect("forget");
        assert_eq!(shown(&e), None, "no rows held, no hour shown");
    }

    #[test]
    fn a_scope_that_goes_leaves_the_others_last_final_hours() {
        let (e, mut g) = gauges();
        // mail-1 has closed hour 2; mail-3 only hour 1 so far.
        let three = stored("mail-3", 1, true, &[(H, "192.0.2.2", 5, 1)]);
        g.restore(0, vec![("mail-3".into(), vec![three])]).expect("restore");
        let one = stored("mail-1", 1, true, &[(2 * H, "192.0.2.1", 8, 0)]);
        g.restore(0, vec![("mail-1".into(), vec![one])]).expect("restore");
        assert_eq!(shown(&e), Some((7200.0, 8.0)));
        g.forget(0, &["mail-1".into()]).expect("forget");
        assert_eq!(shown(&e), Some((3600.0, 5.0)), "mail-3's hour 1 was kept");
    }

    #[test]
    fn rows_the_query_cannot_take_are_not_kept() {
        let (e, mut g) = gauges();
        g.restore(
            0,
            vec![(
                "mail-1".into(),
                vec![stored("mail-1", 1, true, &[(H, "192.0.2.1", 4, 1)])],
            )],
        )
        .expect("restore");
        let wrong = RecordBatch::try_new(
            Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
                "x",
                DataType::Int64,
                false,
            )])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .expect("batch");
        assert!(g.restore(0, vec![("mail-2".into(), vec![wrong.clone()])]).is_err());
        // The next epoch is not refused for them; and an epoch the gauges cannot take
        // is still stored (the sink does not fail it), the gauges as they were.
        let mut sink = HourGaugeSink::new(Arc::new(Mutex::new(g)), 0);
        let next = stored("mail-1", 2, true, &[(2 * H, "192.0.2.1", 6, 0)]);
        sink.epoch("mail-1", &[next], &[]).expect("epoch");
        sink.checkpointed().expect("checkpointed");
        assert_eq!(shown(&e), Some((7200.0, 6.0)));
        // Refused with another scope's good epoch in the same checkpoint: that one
        // still comes through.
        let three = stored("mail-3", 2, true, &[(3 * H, "192.0.2.3", 9, 0)]);
        sink.epoch("mail-2", &[wrong], &[])
            .expect("the gauges never fail an epoch");
        sink.epoch("mail-3", &[three], &[]).expect("epoch");
        sink.checkpointed().expect("the gauges never fail a checkpoint");
        assert_eq!(shown(&e), Some((10800.0, 9.0)));
    }
}
