//! The library half of the `deferlog` binary: configuration, inputs, the batch
//! engine and result formatting, so benches and tests drive the same code as the CLI.

pub mod config;
pub mod engine;
mod feed;
pub mod input;
pub mod metrics;
pub mod output;
mod route;
mod status;
pub mod stream;
