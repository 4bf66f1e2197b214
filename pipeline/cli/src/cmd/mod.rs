//! One module per subcommand.

mod check;
mod classify;
mod demo;
mod gen_log;
mod produce;
mod replay;
mod report;
mod run;
mod tail;

use crate::cli::Command;
use anyhow::Result;

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Replay(a) => replay::run(a),
        Command::Report(r) => report::run(r),
        Command::Classify(a) => classify::run(a),
        Command::Gen(a) => gen_log::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Run(a) => run::run(a),
        Command::Produce(a) => produce::run(a),
        Command::Tail(a) => tail::run(a),
        Command::Check(a) => check::run(a),
    }
}

/// How a configuration's source is named in messages: its path, or `(defaults)`.
pub fn origin(config: Option<&std::path::Path>) -> String {
    config.map_or("(defaults)".to_owned(), |p| p.display().to_string())
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
