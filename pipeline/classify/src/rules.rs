//! One classification rule: its file format, validation, and the code and enhanced
//! status conditions. (Text patterns are matched all at once by the classifier.)
//!
//! ```toml
//! [[rule]]
//! name = "google-unsolicited-rate"   # unique in its file, kebab-case
//! class = "rate_limit"               # a cause class, not none/expired
//! code = ["421"]                     # optional: prefixes of the 3-digit code
//! enhanced = ["4.7.28"]              # optional: enhanced status, whole components
//! text = 'unusual rate of unsolicited'  # optional regex on the normalized reply
//! ```

use crate::RulesError;
use crate::entries::Entry;
use deferlog_event::Class;
use serde::Deserialize;
use std::collections::HashMap;

const KEYS: &[&str] = &["name", "class", "code", "enhanced", "text"];

/// The name reported when no rule matched.
pub(crate) const DEFAULT_RULE: &str = "default";

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: String,
    pub class: Class,
    codes: Vec<String>,
    enhanced: Vec<String>,
    pub text: Option<String>,
}

/// The top level of a rules file: only `[[rule]]` entries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<toml::Table>,
}

/// Every rule of a file, in file order, each validated except for its regex (which
/// the classifier compiles, with the others, and reports per rule).
pub(crate) fn parse_file(src: &str, origin: &str) -> Result<Vec<Rule>, RulesError> {
    let file: RulesFile = toml::from_str(src).map_err(|cause| RulesError::Toml {
        origin: origin.to_owned(),
        cause,
    })?;
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(file.rule.len());
    for (position, table) in file.rule.into_iter().enumerate() {
        let mut entry = Entry::new(origin, "rule", position, table, KEYS)?;
        let rule = Rule::from_entry(&mut entry)?;
        if let Some(&first) = first_of.get(&rule.name) {
            return Err(RulesError::DuplicateName {
                origin: origin.to_owned(),
                kind: "rule",
                index: entry.index(),
                name: rule.name,
                first,
            });
        }
        first_of.insert(rule.name.clone(), entry.index());
        rules.push(rule);
    }
    Ok(rules)
}

impl Rule {
    fn from_entry(e: &mut Entry<'_>) -> Result<Rule, RulesError> {
        let name = e.kebab_name()?;
        if name == DEFAULT_RULE {
            return Err(e.bad("name", "\"default\" is reserved for replies no rule matches"));
        }
        let class_name = e.required_str("class")?;
        let class = match class_name.parse::<Class>() {
            Ok(c) if !matches!(c, Class::None | Class::Expired) => c,
            _ => {
                return Err(RulesError::UnknownClass {
                    origin: e.origin().to_owned(),
                    index: e.index(),
                    name,
                    value: class_name,
                });
            }
        };
        let codes = e.str_list("code", true)?;
        if let Some(bad) = codes.iter().find(|c| !valid_code_prefix(c)) {
            return Err(e.bad("code", format!("{bad:?} is not 1-3 digits of a 2xx-5xx code")));
        }
        let enhanced = e.str_list("enhanced", false)?;
        if let Some(bad) = enhanced.iter().find(|s| !valid_status_prefix(s)) {
            return Err(e.bad(
                "enhanced",
                format!("{bad:?} is not an enhanced status or a prefix of one (\"5\", \"5.1.\", \"4.7.650\")"),
            ));
        }
        let text = e.optional_str("text")?;
        if text.as_deref().is_some_and(str::is_empty) {
            return Err(e.bad("text", "empty pattern; leave the key out instead"));
        }
        // Normalization masked only an address's local part before 2026-12-07: a rule
        // written then would silently never match.
        if text.as_deref().is_some_and(|t| t.contains("<user>")) {
            return Err(e.bad(
                "text",
                "`<user>` no longer appears in the normalized text: a mail address is `<addr>` as a whole",
            ));
        }
        if codes.is_empty() && enhanced.is_empty() && text.is_none() {
            return Err(RulesError::NoCondition {
                origin: e.origin().to_owned(),
                index: e.index(),
                name,
            });
        }
        Ok(Rule {
            name,
            class,
            codes,
            enhanced,
            text,
        })
    }

    /// Whether the code and enhanced status conditions hold (absent ones hold).
    pub(crate) fn envelope_matches(&self, code: Option<u16>, enhanced: Option<&str>) -> bool {
        let code_ok = self.codes.is_empty()
            || code
                .and_then(code_digits)
                .is_some_and(|d| self.codes.iter().any(|p| d.starts_with(p.as_bytes())));
        let status_ok =
            self.enhanced.is_empty() || enhanced.is_some_and(|s| self.enhanced.iter().any(|p| status_matches(p, s)));
        code_ok && status_ok
    }
}

fn code_digits(code: u16) -> Option<[u8; 3]> {
    const D: &[u8; 10] = b"0123456789";
    let c = usize::from(code);
    (100..1000)
        .contains(&c)
        .then(|| [D[c / 100], D[c / 10 % 10], D[c % 10]])
}

fn valid_code_prefix(p: &str) -> bool {
    (1..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()) && matches!(p.as_bytes()[0], b'2'..=b'5')
}

/// `5`, `5.`, `5.1`, `5.1.`, `5.1.1`: class, subject and detail of 1-3 digits each.
fn valid_status_prefix(p: &str) -> bool {
    let body = p.strip_suffix('.').unwrap_or(p);
    let parts: Vec<&str> = body.split('.').collect();
    !body.is_empty()
        && parts.len() <= 3
        && !(parts.len() == 3 && p.ends_with('.'))
        && matches!(parts[0], "2" | "4" | "5")
        && parts
            .iter()
            .all(|c| (1..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
}

/// Prefix by whole components: `5.1.` and `5.1` match `5.1.1`, `4.7.1` matches only
/// `4.7.1` (not `4.7.10`), so a full status in a rule means exactly that status.
fn status_matches(prefix: &str, status: &str) -> bool {
    match status.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('.') || rest.starts_with('.'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_by_whole_components() {
        assert!(status_matches("5.1.", "5.1.1"));
        assert!(status_matches("5.1", "5.1.1"));
        assert!(status_matches("5", "5.7.1"));
        assert!(status_matches("4.7.650", "4.7.650"));
        assert!(!status_matches("4.7.1", "4.7.10"));
        assert!(!status_matches("4.7.6", "4.7.650"));
        assert!(!status_matches("5.1", "5.10.1"));
        assert!(!status_matches("5.1.1", "5.1"));
    }

    #[test]
    fn status_and_code_prefixes_are_validated() {
        for ok in ["5", "5.", "5.1", "5.1.", "4.7.650", "2.0.0"] {
            assert!(valid_status_prefix(ok), "{ok}");
        }
        for bad in ["", ".", "6.1.1", "5..1", "5.1.1.", "5.1.1.1", "5.1234.1", "x"] {
            assert!(!valid_status_prefix(bad), "{bad}");
        }
        for ok in ["4", "42", "421", "5"] {
            assert!(valid_code_prefix(ok), "{ok}");
        }
        for bad in ["", "4211", "6", "4x", "042"] {
            assert!(!valid_code_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn code_prefixes_match_digits() {
        let rule = Rule {
            name: "r".into(),
            class: Class::Other,
            codes: vec!["4".into(), "550".into()],
            enhanced: vec![],
            text: None,
        };
        assert!(rule.envelope_matches(Some(421), None));
        assert!(rule.envelope_matches(Some(550), None));
        assert!(!rule.envelope_matches(Some(554), None));
        assert!(!rule.envelope_matches(None, None));
        assert!(!rule.envelope_matches(Some(42), None));
    }
}
