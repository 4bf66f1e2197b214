//! deferlog-gen: a seeded generator of realistic Postfix logs for a fleet of
//! outbound MTAs, together with the exact hourly report those logs must
//! produce (the "truth"), computed from the generator's own model.
//!
//! The same [`GenConfig`] always yields the same bytes and the same truth.
//! Output streams: memory follows the messages in flight, not the run length.
//!
//! Layout: [`Generator`] (generator.rs) drives a time-ordered queue
//! (schedule.rs) of messages whose whole life is planned on arrival
//! (plan.rs for its rounds, session.rs for each delivery session, against
//! receivers' behaviour in behaviour.rs and the catalog in providers.rs /
//! replies.rs), rendered by postfix.rs, exim.rs, kumo.rs or pmta.rs, with background lines
//! (noise.rs) and junk (junk.rs) mixed in; truth.rs keeps the expected rows.

mod behaviour;
mod config;
mod exim;
mod fleet;
mod generator;
mod junk;
mod kumo;
mod message;
mod noise;
mod out;
mod pids;
mod plan;
mod pmta;
mod postfix;
mod providers;
mod qid;
mod replies;
mod rng;
mod schedule;
mod session;
mod stamp;
mod truth;

#[cfg(test)]
mod tests;

pub use config::{DEFAULT_START_UNIX, GenConfig, LogFormat, MAX_QUEUE_LIFETIME_SECS};
pub use fleet::{fleet_config_toml, fleet_egress};
pub use generator::{Generator, write_log};
pub use truth::{CSV_HEADER, Counts, Truth, TruthRow};
