//! A real Kafka-protocol broker for the tests: tansu, on a free loopback port, in
//! memory, killed when dropped. `scripts/test` installs it and sets DEFERLOG_TANSU.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    child: Child,
    pub addr: String,
}

fn tansu() -> PathBuf {
    if let Ok(p) = std::env::var("DEFERLOG_TANSU") {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-tansu");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; the stream tests need the tansu broker", script.display()));
    assert!(out.status.success(), "{} failed", script.display());
    PathBuf::from(String::from_utf8(out.stdout).expect("path").trim())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Broker {
    pub fn start() -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut child = Command::new(tansu())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("tansu did not get ready");
        Broker {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }
}

impl Broker {
    /// Sends the broker `sig` (`-STOP`: it hangs, as a broker behind a dead network
    /// does, rather than refusing connections; `-CONT`: it goes on).
    pub fn signal(&self, sig: &str) {
        let s = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(s.success(), "kill {sig}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cond` holds, polling; panics with `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `deploy/local-broker.sh` with `PORT` and this build's binary; its output in `log`.
fn local_broker_script(port: u16, lines: &str, log: &Path) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local-broker.sh");
    let out = std::fs::File::create(log).expect("log");
    let err = out.try_clone().expect("log");
    let mut c = Command::new("bash");
    c.arg(script)
        .arg(lines)
        .env("PORT", port.to_string())
        .env("DEFERLOG", env!("CARGO_BIN_EXE_deferlog"))
        .stdout(out)
        .stderr(err);
    // Its own process group, so the broker it started goes down with it.
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn().expect("start deploy/local-broker.sh")
}

#[test]
fn the_local_broker_script_feeds_a_topic_and_refuses_a_port_in_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("script.log");
    let port = free_port();
    let mut script = local_broker_script(port, "2000", &log);
    wait_for("the topic fed", Duration::from_secs(120), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("broker on"))
    });
    let said = std::fs::read_to_string(&log).expect("log");
    let produced: usize = said
        .split("deferlog produce: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {said}"));
    let tail = crate::support::deferlog()
        .args(["tail", "--brokers", &format!("127.0.0.1:{port}"), "--topic", "mail"])
        .args(["--idle-ms", "3000", "-X", "session.timeout.ms=6000"])
        .output()
        .expect("tail");
    assert!(tail.status.success(), "{}", String::from_utf8_lossy(&tail.stderr));
    assert_eq!(String::from_utf8_lossy(&tail.stdout).lines().count(), produced);
    // A topic the broker does not have (`run`'s hourly topic before it is set): said
    // at once, not waited on.
    let none = crate::support::deferlog()
        .args([
            "tail",
            "--brokers",
            &format!("127.0.0.1:{port}"),
            "--topic",
            "deferlog-hourly",
        ])
        .output()
        .expect("tail");
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no topic deferlog-hourly") && err.contains("kafka.hourly_topic"),
        "{err}"
    );

    // A second script on the same port: the first one's broker answers there, and
    // gets no generated traffic from it.
    let log2 = dir.path().join("again.log");
    let status = local_broker_script(port, "100", &log2).wait().expect("wait");
    let said = std::fs::read_to_string(&log2).expect("log");
    assert!(!status.success(), "{said}");
    assert!(said.contains("already listens"), "{said}");
    assert!(!said.contains("deferlog produce:"), "{said}");

    let pgid = script.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .status()
        .expect("kill");
    assert!(killed.success());
    script.wait().expect("reap");
}
