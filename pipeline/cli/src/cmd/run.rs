//! `deferlog run`: the stream, until SIGTERM or Ctrl-C.

use crate::cli::ConfigArg;
use crate::config::Config;
use anyhow::{Context, Result};
use deferlog_app::say;
use deferlog_app::stream;
use deferlog_stream::STATE_DIR;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// After a stop is asked for, the stream has this long to write, commit and leave.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(60);

pub fn run(a: ConfigArg) -> Result<()> {
    let cfg = Config::load(a.config.as_deref())?;
    let origin = cfg.origin(a.config.as_deref());
    let mut settings = cfg.resolve_run(&origin, super::now_us())?;
    if !settings.hash_key_given {
        settings.stream.normalizer.hash_key = stable_hash_key(&settings.stream.out)?;
    }
    let cancel = CancellationToken::new();
    let worker_cancel = cancel.clone();
    let worker = std::thread::Builder::new()
        .name("deferlog-stream".into())
        .spawn(move || stream::run(settings, worker_cancel, stream::Hooks::default()))
        .context("starting the stream thread")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let finished = rt.block_on(async {
        let mut stop = super::StopSignals::new()?;
        let mut done = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                () = stop.recv() => break,
                _ = done.tick() => if worker.is_finished() { return Ok::<bool, anyhow::Error>(true) },
            }
        }
        say!("deferlog run: stopping (writing, committing, leaving the group)");
        cancel.cancel();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_LIMIT;
        while !worker.is_finished() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(worker.is_finished())
    })?;
    if !finished {
        // The checkpoint protocol makes this safe: a restart resumes from the last
        // checkpoint and redoes what was not committed.
        anyhow::bail!("the stream did not stop within {}s", SHUTDOWN_LIMIT.as_secs());
    }
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the stream thread panicked"))??;
    Ok(())
}

/// A recipient-hash key kept in the archive's state, so hashes and the correlation
/// state keyed by them stay the same across restarts of `run` and across the instances
/// sharing the archive. Created once: the first instance to link its key in place wins,
/// and every instance then reads the one key there.
fn stable_hash_key(out: &Path) -> Result<[u8; 16]> {
    let dir = out.join(STATE_DIR);
    let path = dir.join("hash_key");
    if !path.exists() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let hex: String = crate::config::random_hash_key()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tmp = dir.join(format!("hash_key.{hex}.tmp"));
        std::fs::write(&tmp, hex).with_context(|| format!("writing {}", tmp.display()))?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
    let hex = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    crate::config::parse_hash_key(&hex).with_context(|| format!("{} is corrupt", path.display()))
}

#[cfg(test)]
mod tests {
    use super::stable_hash_key;

    #[test]
    fn instances_starting_together_agree_on_one_hash_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let keys: Vec<[u8; 16]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| stable_hash_key(dir.path()).expect("key")))
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
        assert_eq!(
            stable_hash_key(dir.path()).expect("again"),
            keys[0],
            "a restart reads it back"
        );
    }
}
