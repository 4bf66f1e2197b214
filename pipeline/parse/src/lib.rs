//! Turns raw MTA log records into [`deferlog_event::EventRow`]s.
//!
//! This crate owns log formats, timestamps, the egress map (which instance sends from
//! which IP), per-queue-id correlation and the reject/skip accounting. It must not know
//! about Kafka, DataFusion, Parquet or HTTP: it reads bytes and pushes rows into sinks.

mod correlate;
mod egress;
mod envelope;
mod exim;
mod handoff;
mod json;
mod kumo;
mod normalizer;
mod pmta;
mod postfix;
mod recipient;
mod redact;
mod stamp;
mod stats;
mod syslog;
mod text;

/// Hash maps keyed by input (queue ids, replies, hosts): foldhash is several times
/// faster than SipHash on short keys and still seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use correlate::MAX_RCPTS_PER_QUEUE_ID;
pub use egress::{Egress, EgressMap};
pub use envelope::{EnvelopeFields, valid_tenant};
pub use handoff::{Handoffs, IpRange, IpRangeError, LOOPBACK};
pub use normalizer::{Format, Normalizer, NormalizerConfig, NormalizerState, SyslogFields};
pub use pmta::fields_problem as pmta_fields_problem;
pub use redact::redact_recipients;
pub use stamp::{Zone, ZoneError};
pub use stats::{HostInstance, NoSourceIp, RejectReason, SkipKind, Stats};
pub use syslog::route_key;
