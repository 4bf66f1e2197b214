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

pub use deferlog_app::stop::{StopSignals, wait_for_stop};

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
