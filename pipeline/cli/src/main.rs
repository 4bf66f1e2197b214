//! `deferlog`: the binary. Argument parsing, configuration and wiring only; the work
//! happens in the `pipeline/` crates.

mod cli;
mod cmd;

use deferlog_app::{config, engine, input, metrics, output};

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
            eprintln!("error: {}", report(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, `: `-separated. The pipeline's errors write their cause
/// into their own message and also expose it as their source, so a cause the text so
/// far already ends with is not repeated.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
