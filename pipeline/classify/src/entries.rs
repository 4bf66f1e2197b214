//! Reading one entry (`[[rule]]` or `[[group]]` table) of a data file key by key.
//!
//! The files' top level is decoded with serde (`deny_unknown_fields`); each entry is
//! then read here by hand rather than derived, because a derived decoder reports a
//! wrong entry by line and column only, and errors must name the entry and the key.

use crate::RulesError;
use toml::{Table, Value};

/// One entry being read, with what its errors need to say where it is.
pub(crate) struct Entry<'a> {
    origin: &'a str,
    kind: &'static str,
    /// 1-based, as a user counts entries in the file.
    index: usize,
    name: String,
    table: Table,
}

impl<'a> Entry<'a> {
    /// Rejects keys outside `allowed` before anything else, so a misspelt key is
    /// reported as such and not as the missing key it was meant to be.
    pub(crate) fn new(
        origin: &'a str,
        kind: &'static str,
        position: usize,
        table: Table,
        allowed: &[&str],
    ) -> Result<Self, RulesError> {
        let name = match table.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => "unnamed".to_owned(),
        };
        let entry = Entry {
            origin,
            kind,
            index: position + 1,
            name,
            table,
        };
        if let Some(key) = entry.table.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(RulesError::UnknownKey {
                origin: origin.to_owned(),
                kind,
                index: entry.index,
                name: entry.name.clone(),
                key: key.clone(),
            });
        }
        Ok(entry)
    }

    pub(crate) fn origin(&self) -> &'a str {
        self.origin
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn bad(&self, key: &'static str, message: impl Into<String>) -> RulesError {
        RulesError::BadValue {
            origin: self.origin.to_owned(),
            kind: self.kind,
            index: self.index,
            name: self.name.clone(),
            key,
            message: message.into(),
        }
    }

    /// The entry's `name`: present, kebab-case (lower-case ASCII letters, digits and
    /// inner dashes), because names end up in explain output, metrics and configs.
    pub(crate) fn kebab_name(&mut self) -> Result<String, RulesError> {
        let name = self.optional_str("name")?.ok_or_else(|| RulesError::MissingKey {
            origin: self.origin.to_owned(),
            kind: self.kind,
            index: self.index,
            name: self.name.clone(),
            key: "name",
        })?;
        let kebab = !name.is_empty()
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !kebab {
            return Err(self.bad("name", format!("{name:?} is not kebab-case (a-z, 0-9, inner dashes)")));
        }
        Ok(name)
    }

    pub(crate) fn required_str(&mut self, key: &'static str) -> Result<String, RulesError> {
        self.optional_str(key)?.ok_or_else(|| RulesError::MissingKey {
            origin: self.origin.to_owned(),
            kind: self.kind,
            index: self.index,
            name: self.name.clone(),
            key,
        })
    }

    pub(crate) fn optional_str(&mut self, key: &'static str) -> Result<Option<String>, RulesError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.bad(key, format!("expected a string, found {}", v.type_str()))),
        }
    }

    /// A list of strings; absent is empty. A lone string is taken as a list of one,
    /// and with `integers` so is a non-negative integer (`code = [421]` is the natural
    /// way to write a reply code).
    pub(crate) fn str_list(&mut self, key: &'static str, integers: bool) -> Result<Vec<String>, RulesError> {
        let items = match self.table.remove(key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(v) => vec![v],
        };
        items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                Value::Integer(i) if integers && i >= 0 => Ok(i.to_string()),
                v => Err(self.bad(
                    key,
                    format!("expected a list of strings, found a {} in it", v.type_str()),
                )),
            })
            .collect()
    }
}
