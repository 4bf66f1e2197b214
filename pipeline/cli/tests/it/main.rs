//! End-to-end tests of the `deferlog` binary, one test binary for the crate.

mod broker;
mod cli;
mod exact;
mod external_reader;
mod privacy;
mod prometheus;
mod stream;
mod support;
