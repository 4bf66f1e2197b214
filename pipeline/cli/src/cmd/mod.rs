//! One module per subcommand.

mod check;
mod classify;
mod demo;
mod gen_log;
mod produce;
mod replay;
mod report;
mod run;
mod sql;
mod tail;

use crate::cli::Command;
use anyhow::Result;

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Replay(a) => replay::run(a),
        Command::Report(r) => report::run(r),
        Command::Sql(a) => sql::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Gen(a) => gen_log::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Run(a) => run::run(a),
        Command::Produce(a) => produce::run(a),
        Command::Tail(a) => tail::run(a),
        Command::Check(a) => check::run(a),
    }
}

/// SIGTERM and SIGINT (Ctrl-C), listened for from creation on: one that lands
/// between two waits is kept for the next, where a fresh `ctrl_c()` per wait would
/// miss it. Made inside a tokio runtime.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub fn new() -> Result<Self> {
        use anyhow::Context;
        use tokio::signal::unix::{SignalKind, signal};
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
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    rt.block_on(async {
        StopSignals::new()?.recv().await;
        Ok(())
    })
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
