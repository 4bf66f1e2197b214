//! `deferlog run`: the stream, until SIGTERM or Ctrl-C.

use crate::cli::ConfigArg;
use crate::config::{self, Config};
use anyhow::{Context, Result};
use deferlog_app::say;
use deferlog_app::stream;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// After a stop is asked for, the stream has this long to write, commit and leave.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(60);

pub fn run(a: ConfigArg) -> Result<()> {
    let cfg = Config::load(a.config.as_deref())?;
    let origin = cfg.origin(a.config.as_deref());
    let mut settings = cfg.resolve_run(&origin, super::now_us())?;
    let state = settings.stream.out.join(deferlog_stream::STATE_DIR);
    std::fs::create_dir_all(&state)
        .with_context(|| format!("{origin}: key `stream.out`: creating {}", state.display()))?;
    if !settings.hash_key_given {
        let out = &settings.stream.out;
        settings.stream.normalizer.hash_key = match config::archive_hash_key(out)? {
            Some(k) => k,
            None => config::keep_hash_key(out, config::random_hash_key())?,
        };
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
