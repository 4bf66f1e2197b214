//! The exporter, the dashboards and the alert rules against a real Prometheus server
//! (Debian's `prometheus` package; `scripts/test` installs it): `run` consumes
//! generated traffic from a real broker while Prometheus scrapes it every second.

use crate::broker::{free_port, wait_for};
use crate::stream::{Case, produce, sigterm, start_run_with};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(rel)
}

fn tool(name: &str) -> PathBuf {
    let env = format!("DEFERLOG_{}", name.to_uppercase());
    if let Ok(p) = std::env::var(&env) {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found (set {env}); scripts/test installs Debian's prometheus package");
}

/// `GET path` over HTTP/1.0 (no chunking): (status code, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_owned())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A child killed if the test fails before stopping it.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path, target: &str) -> Server {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: deferlog\n    static_configs:\n      - targets: [\"{target}\"]\n",
                deploy("prometheus/rules.yml").display()
            ),
        )
        .expect("prometheus.yml");
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("prometheus.log")).expect("log"),
            ))
            .spawn()
            .expect("start prometheus");
        let s = Server { child, addr };
        wait_for("prometheus ready", Duration::from_secs(60), || {
            std::net::TcpStream::connect(&s.addr).is_ok() && get(&s.addr, "/-/ready").0 == 200
        });
        s
    }

    /// An instant query's result vector.
    fn query(&self, q: &str) -> Vec<Value> {
        let (code, body) = get(&self.addr, &format!("/api/v1/query?query={}", urlencode(q)));
        assert_eq!(code, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {body}"));
        assert_eq!(v["status"], "success", "{q}: {body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// `sum by (label)` results as (label value, number).
    fn by(&self, q: &str, label: &str) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .query(q)
            .iter()
            .map(|r| {
                let l = r["metric"][label].as_str().unwrap_or_default().to_owned();
                let v = r["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                (l, v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Every PromQL expression of every panel of a dashboard, its query variables as
/// `.*` (their "All"); a variable the dashboard does not declare is an error.
fn panel_queries(dashboard: &Path) -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(dashboard).expect("dashboard")).expect("json");
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| v["name"].as_str().expect("variable name"))
        .collect();
    assert!(vars.len() >= 4, "{vars:?}");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let (mut all, mut rest) = (String::new(), t["expr"].as_str().expect("expr"));
            while let Some(at) = rest.find('$') {
                all.push_str(&rest[..at]);
                let after = &rest[at + 1..];
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let name = &after[..len];
                assert!(
                    vars.contains(&name),
                    "{}: ${name} is not a variable of the dashboard",
                    p["title"]
                );
                all.push_str(".*");
                rest = &after[len..];
            }
            all.push_str(rest);
            out.push((p["title"].as_str().unwrap_or_default().to_owned(), all));
        }
    }
    out
}

/// Sums of a truth CSV's count columns: attempts, delivered, deferred, bounced, expired.
fn truth_sums(truth: &str) -> [f64; 5] {
    let mut s = [0.0; 5];
    for line in truth.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        for (i, v) in f[4..9].iter().enumerate() {
            s[i] += v.parse::<f64>().expect("count");
        }
    }
    s
}

/// A truth CSV's attempts per source_ip, an empty one named `unknown`, in label order.
fn truth_by_source_ip(truth: &str) -> Vec<(String, f64)> {
    let mut by = std::collections::BTreeMap::<String, f64>::new();
    for line in truth.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let ip = if f[1].is_empty() { "unknown" } else { f[1] };
        *by.entry(ip.to_owned()).or_default() += f[4].parse::<f64>().expect("attempts");
    }
    by.into_iter().collect()
}

#[test]
fn prometheus_scrapes_the_exporter_and_every_dashboard_query_and_rule_works() {
    let c = Case::new(30_000, 41);
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let prom = Server::start(c.dir.path(), &target);
    let config = c.config("metrics", 2, "");
    let log = c.dir.path().join("run.log");
    let mut run = Killed(start_run_with(&config, &log, &[("DEFERLOG_METRICS__LISTEN", &target)]));
    // Traffic once Prometheus watches, as in a fleet that runs: every delivery series
    // is born at a scrape after the exporter's first.
    wait_for("Prometheus scraping the exporter", Duration::from_secs(60), || {
        !prom.query("up == 1").is_empty()
    });
    let n = produce(&c.broker, &c.g.log);

    // Counters move at checkpoints; once Prometheus has scraped every record, the
    // delivery counters summed over their labels are the generated traffic's truth.
    let truth = truth_sums(&c.truth);
    let scraped = |q: &str| {
        prom.query(q)
            .first()
            .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
    };
    wait_for("every record scraped", Duration::from_secs(240), || {
        scraped("sum(deferlog_records_total)") == Some(n as f64)
    });
    let attempts = prom.by("sum by (outcome) (deferlog_attempts_total)", "outcome");
    let want = vec![
        ("bounced".to_owned(), truth[3]),
        ("deferred".to_owned(), truth[2]),
        ("delivered".to_owned(), truth[1]),
    ];
    assert_eq!(attempts, want, "attempts by outcome vs gen --truth");
    assert_eq!(scraped("sum(deferlog_attempts_total)"), Some(truth[0]));
    // Attempts with no sending IP known (the generated fleet's `mta-out3` has no
    // egress entry) are labelled `unknown`, not left without the label.
    let per_ip = truth_by_source_ip(&c.truth);
    assert!(per_ip.iter().any(|(ip, _)| ip == "unknown"), "{per_ip:?}");
    assert_eq!(
        prom.by("sum by (source_ip) (deferlog_attempts_total)", "source_ip"),
        per_ip,
        "attempts by source_ip vs gen --truth"
    );
    assert_eq!(scraped("sum(deferlog_deferrals_total)"), Some(truth[2]));
    assert_eq!(scraped("sum(deferlog_expiries_total)"), Some(truth[4]));

    // No counter went down while Prometheus watched (checkpoints only add).
    for family in ["attempts", "deferrals", "expiries", "records", "events"] {
        let q = format!("sum(resets(deferlog_{family}_total[10m]))");
        assert_eq!(scraped(&q), Some(0.0), "{q}");
    }

    // The exposition passes Prometheus' own linter.
    let (code, text) = get(&target, "/metrics");
    assert_eq!(code, 200);
    let mut lint = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    lint.stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = lint.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
    assert_eq!(get(&target, "/healthz").0, 200);
    assert_eq!(get(&target, "/readyz").0, 200);

    // Every panel's query returns data once a few more scrapes give rates two samples
    // and the watermark has closed an hour (the hour gauges).
    let queries = panel_queries(&deploy("grafana/deferlog.json"));
    assert!(queries.len() >= 15, "{} panel queries", queries.len());
    // topk over a range picks its k at every step: more than k series, and stale ones.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/deferlog.json")).expect("dashboard"))
            .expect("json");
    for p in dashboard["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            if t["expr"].as_str().is_some_and(|e| e.contains("topk(")) {
                assert_eq!(
                    t["instant"],
                    Value::Bool(true),
                    "{}: a topk panel is an instant query",
                    p["title"]
                );
            }
        }
    }
    let started = std::time::Instant::now();
    loop {
        let empty: Vec<_> = queries.iter().filter(|(_, q)| prom.query(q).is_empty()).collect();
        if empty.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "panel queries without data: {empty:#?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // deferlog creates a series at its first count, already above 0, and increase()
    // alone never sees that count. The panels count a series born in their window
    // whole: every series here was born while this Prometheus watched, so the last
    // hour's attempts and expiries are the whole run's, the truth's.
    let panel = |title: &str| {
        let (_, q) = queries.iter().find(|(t, _)| t == title).expect("panel");
        q.clone()
    };
    assert_eq!(
        prom.by(&panel("Attempts per hour"), "outcome"),
        want,
        "Attempts per hour"
    );
    let expiries: f64 = prom
        .by(&panel("Expiries per hour"), "mx_group")
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(expiries, truth[4], "Expiries per hour");

    // Prometheus loaded the alert rules; promtool checks them and runs their tests.
    let (_, rules) = get(&prom.addr, "/api/v1/rules");
    let rules: Value = serde_json::from_str(&rules).expect("rules json");
    let loaded: usize = rules["data"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
        .sum();
    // rules.yml: 26 recorded series (12 increases per target, 3 baseline gaps, 3 sets of
    // destinations those gaps leave out, 8 sums of the rest), 3 deliverability
    // alerts, 6 pipeline alerts.
    assert_eq!(loaded, 35, "{rules}");
    let dir = deploy("prometheus");
    for args in [["check", "rules", "rules.yml"], ["test", "rules", "rules_test.yml"]] {
        let out = Command::new(tool("promtool"))
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let status = sigterm(&mut run.0);
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Restarted with nothing new to read, every partition still has a lag (0): a
    // consumer stuck after a restart must not leave the lag alert without data.
    // On a new port: other tests may have taken the old one since the first run let go.
    let log = c.dir.path().join("run2.log");
    let target = format!("127.0.0.1:{}", free_port());
    // A new group (checkpoints are per partition, not per group): under the whole
    // suite's load tansu left a member restarted into the old group unassigned for
    // over a minute, as if the first run's members still held the partitions.
    let env = [
        ("DEFERLOG_METRICS__LISTEN", target.as_str()),
        ("DEFERLOG_KAFKA__GROUP_ID", "metrics-again"),
    ];
    let mut run = Killed(start_run_with(&config, &log, &env));
    wait_for("metrics served again", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&target).is_ok()
    });
    let lags = || {
        let (_, text) = get(&target, "/metrics");
        text.lines()
            .filter(|l| l.starts_with("deferlog_kafka_lag_records{"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let started = std::time::Instant::now();
    while lags().len() < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a lag for all 6 partitions after a restart: {:?}\n{}",
            lags(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Counted from the checkpoints' offsets (tansu's log end is approximate): about
    // 0, not the whole topic.
    let total: f64 = lags()
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(total < n as f64 / 10.0, "lag {total} of {n} records: {:?}", lags());

    // The hour gauges come back at once from the partitions' restored windows,
    // before any hour closes here: the last final hour, its attempts summed over
    // every partition as the truth has them.
    let (_, text) = get(&target, "/metrics");
    let hour = exposition_sums(&text, "deferlog_hour_start_timestamp_seconds", "");
    let hour = hour.get("").copied().unwrap_or_default();
    assert!(hour > 0.0, "the hour gauges after a restart: {text}");
    let hour = chrono::DateTime::from_timestamp(hour as i64, 0)
        .expect("hour")
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let want: f64 = c
        .truth
        .lines()
        .filter(|l| l.starts_with(&hour))
        .map(|l| {
            l.split(',')
                .nth(4)
                .and_then(|v| v.parse::<f64>().ok())
                .expect("attempts")
        })
        .sum();
    let attempts: f64 = exposition_sums(&text, "deferlog_hour_attempts", "").values().sum();
    assert!(want > 0.0, "{hour} in the truth");
    assert_eq!(attempts, want, "attempts of {hour} after a restart");
    assert!(sigterm(&mut run.0).success());
}

/// Sum of a family's samples in an exposition, by one label (`""` when unlabelled).
fn exposition_sums(text: &str, family: &str, label: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with(family)) {
        let (series, value) = line.rsplit_once(' ').expect("sample");
        if series != family && !series.starts_with(&format!("{family}{{")) {
            continue;
        }
        let key = series
            .split_once(&format!("{label}=\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or(String::new(), |(v, _)| v.to_owned());
        *out.entry(key).or_default() += value.parse::<f64>().expect("value");
    }
    out
}

#[test]
fn replay_serve_publishes_the_replayed_counts_until_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = crate::support::generate(dir.path(), 8_000, 5);
    let truth = truth_sums(&std::fs::read_to_string(&g.truth).expect("truth"));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut replay = Killed(
        crate::support::deferlog()
            .env("DEFERLOG_METRICS__LISTEN", &addr)
            .args([
                "replay",
                "--serve",
                "--quiet",
                "--reference-time",
                "2026-11-10T00:00:00Z",
                "--config",
            ])
            .arg(&g.config)
            .arg("--out")
            .arg(dir.path().join("archive"))
            .arg(&g.log)
            .stderr(Stdio::null())
            .spawn()
            .expect("replay --serve"),
    );
    wait_for("the replay done and served", Duration::from_secs(120), || {
        std::net::TcpStream::connect(&addr).is_ok() && get(&addr, "/readyz").0 == 200
    });
    let (_, text) = get(&addr, "/metrics");
    let attempts = exposition_sums(&text, "deferlog_attempts_total", "outcome");
    let want: std::collections::BTreeMap<String, f64> = [
        ("bounced".to_owned(), truth[3]),
        ("deferred".to_owned(), truth[2]),
        ("delivered".to_owned(), truth[1]),
    ]
    .into();
    assert_eq!(attempts, want, "attempts by outcome vs gen --truth");
    assert_eq!(
        exposition_sums(&text, "deferlog_expiries_total", "")
            .values()
            .sum::<f64>(),
        truth[4]
    );
    let hour = exposition_sums(&text, "deferlog_hour_start_timestamp_seconds", "");
    assert!(hour.values().all(|h| *h > 0.0) && !hour.is_empty(), "{hour:?}");
    // A replay has no watermark: none exported (a 0 reads as 1970 on the dashboard).
    assert!(
        exposition_sums(&text, "deferlog_watermark_timestamp_seconds", "").is_empty(),
        "{text}"
    );
    let status = sigterm(&mut replay.0);
    assert!(status.success(), "{status:?}");
}
