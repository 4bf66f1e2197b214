//! Classification of delivery replies into the cause classes of `shared/DESIGN.md`, and
//! the grouping of receiving MX hosts into providers.
//!
//! This crate owns the rule and MX-group data formats, their loading and validation,
//! reply normalization, and the matching itself. Both data sets ship as files in
//! `schemas/` (`classify.toml`, `mx_groups.toml`) compiled into the binary; users
//! extend them with files in the same format, which take precedence.
//!
//! It knows nothing about log formats: callers hand it a reply (and, when they have
//! them, the SMTP code and enhanced status they found) or an MX host name.

mod classifier;
mod entries;
mod error;
mod memo;
mod mx;
mod normalize;
mod reply;
mod rules;

pub use classifier::{Classifier, Explanation, Verdict};
pub use deferlog_event::Class;
pub use error::RulesError;
pub use memo::Memo;
pub use mx::MxGroups;
pub use reply::split_reply;
