//! Stopping on SIGTERM or Ctrl-C, for every command that runs until told.

use anyhow::{Context, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT (Ctrl-C), listened for from creation on: one that lands
/// between two waits is kept for the next, where a fresh `ctrl_c()` per wait would
/// miss it. Made inside a tokio runtime.
#[derive(Debug)]
pub struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    pub fn new() -> Result<Self> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Blocks until SIGTERM or Ctrl-C.
pub fn wait_for_stop() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    rt.block_on(async {
        StopSignals::new()?.recv().await;
        Ok(())
    })
}
