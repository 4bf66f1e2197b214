//! The library half of the `deferlog` binary: configuration, inputs, the batch
//! engine, the query runners and result formatting, so benches and tests drive the same code as the CLI.

/// `eprintln!` for log lines, except that a stderr which cannot be written (a closed
/// pipe, a full disk) loses the line instead of panicking: a log line never stops the
/// work it reports on.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod carried;
pub mod config;
pub mod engine;
pub mod input;
pub mod metrics;
pub mod output;
pub mod query;
pub mod replayed;
pub mod runs;
pub mod size;
pub mod stop;
pub mod stream;
