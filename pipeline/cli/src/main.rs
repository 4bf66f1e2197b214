//! `deferlog`: the binary. Argument parsing, configuration and wiring only; the work
//! happens in the `pipeline/` crates.

mod cli;
mod cmd;

use deferlog_app::say;
use deferlog_app::{config, engine, input, metrics, output, query};

use clap::Parser;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (`| head`) is not an error worth a message.
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            say!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
