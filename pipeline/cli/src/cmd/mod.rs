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

/// Blocks until SIGTERM or Ctrl-C.
pub fn wait_for_stop() -> Result<()> {
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
