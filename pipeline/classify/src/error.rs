//! The one error type of loading rule and MX-group files.
//!
//! Every variant says which file (`origin`: a path, or `builtin`) and, where the fault
//! is inside one entry, which entry (`kind` `rule`/`group`, its 1-based position and
//! its name) and which key, so a user can fix a file without reading this crate.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RulesError {
    /// Not TOML, or the top level holds something other than the entry array
    /// (`[[rule]]` or `[[group]]`); the TOML error carries line and column.
    #[error("{origin}: {cause}")]
    Toml { origin: String, cause: toml::de::Error },

    #[error("{origin}: {kind} #{index} ({name}): unknown key `{key}`")]
    UnknownKey {
        origin: String,
        kind: &'static str,
        index: usize,
        name: String,
        key: String,
    },

    #[error("{origin}: {kind} #{index} ({name}): missing key `{key}`")]
    MissingKey {
        origin: String,
        kind: &'static str,
        index: usize,
        name: String,
        key: &'static str,
    },

    /// Wrong type or a value outside what the key accepts.
    #[error("{origin}: {kind} #{index} ({name}): key `{key}`: {message}")]
    BadValue {
        origin: String,
        kind: &'static str,
        index: usize,
        name: String,
        key: &'static str,
        message: String,
    },

    #[error(
        "{origin}: rule #{index} ({name}): key `class`: unknown class {value:?}; rules may give \
         connection_limit, rate_limit, reputation, blocklist, auth, greylist, content, \
         recipient, policy, network, tls, local or other"
    )]
    UnknownClass {
        origin: String,
        index: usize,
        name: String,
        value: String,
    },

    #[error("{origin}: rule #{index} ({name}): key `text`: bad regex: {cause}")]
    BadRegex {
        origin: String,
        index: usize,
        name: String,
        cause: regex::Error,
    },

    #[error("{origin}: rule #{index} ({name}): no condition; give at least one of `code`, `enhanced`, `text`")]
    NoCondition { origin: String, index: usize, name: String },

    #[error("{origin}: {kind} #{index} ({name}): key `name`: already used by {kind} #{first}")]
    DuplicateName {
        origin: String,
        kind: &'static str,
        index: usize,
        name: String,
        first: usize,
    },

    #[error("{origin}: group #{index} ({name}): key `suffixes`: {suffix:?} is already in group {other:?}")]
    DuplicateSuffix {
        origin: String,
        index: usize,
        name: String,
        suffix: String,
        other: String,
    },

    /// Every pattern compiles alone, but all of them together exceed the regex size
    /// limits.
    #[error("{origin}: the rules' text patterns together are too large: {cause}")]
    TooLarge { origin: String, cause: regex::Error },
}
