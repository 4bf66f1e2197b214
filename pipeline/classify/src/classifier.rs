//! The classifier: an ordered rule list, first match wins, with the text patterns of
//! all rules compiled into one `RegexSet` so a reply is scanned once however many
//! rules there are.
//!
//! Patterns are compiled without Unicode mode (`\b`, `\w`, `\d` and case folding
//! are ASCII; non-ASCII letters match literally, and the text they meet is already
//! lower-cased). With Unicode word boundaries the set's lazy DFA gives up and every
//! reply goes through the much slower PikeVM: about 50 µs a reply instead of 1.5 µs
//! for the builtin rules.

use crate::normalize::normalize;
use crate::rules::{self, DEFAULT_RULE, Rule};
use crate::{RulesError, split_reply};
use deferlog_event::Class;
use regex::bytes::{RegexBuilder, RegexSet, RegexSetBuilder};
use std::collections::HashSet;
use std::sync::Arc;

const BUILTIN: &str = include_str!("../../../schemas/classify.toml");
const BUILTIN_ORIGIN: &str = "builtin";

/// Room for user files with many more rules than the builtin ones: the regex defaults
/// (10 MiB compiled, 2 MiB lazy DFA cache) are sized for a single pattern, and a set
/// whose DFA cache keeps filling falls back to a much slower engine.
const SIZE_LIMIT: usize = 64 << 20;
const DFA_SIZE_LIMIT: usize = 16 << 20;

/// Result of classifying one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub class: Class,
    /// The name of the rule that fired; `default` when none did (class `other`).
    pub rule: &'a str,
}

/// How a reply was classified, for `deferlog classify`.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The text the rules' patterns were matched against.
    pub normalized: String,
    /// Every rule in order up to and including the one that fired, with whether it
    /// matched; all of them when none did.
    pub tried: Vec<(String, bool)>,
    pub class: Class,
    pub rule: String,
}

#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
    /// For each rule with a `text`, the index of its pattern in `set`.
    slots: Vec<Option<usize>>,
    /// Shared by clones: cloning a `RegexSet` gives the clone an empty pool of lazy-DFA
    /// caches, so every partition's normalizer (a clone) would build its DFA states
    /// again from cold. Shared, each thread keeps one warm cache for all of them.
    set: Arc<RegexSet>,
}

impl Classifier {
    /// The rules of `schemas/classify.toml`, compiled in.
    pub fn builtin() -> Classifier {
        Classifier::from_toml(BUILTIN, BUILTIN_ORIGIN).expect("the builtin rules load (tested)")
    }

    /// Rules from a file's text; `origin` (a path) is what errors name.
    pub fn from_toml(src: &str, origin: &str) -> Result<Classifier, RulesError> {
        let rules = rules::parse_file(src, origin)?;
        let new = rules.len();
        Classifier::build(rules, origin, new)
    }

    /// These rules plus user rules, which are tried first so they can override. A
    /// user rule with the name of an existing one replaces it, so names stay unique
    /// and the rule a verdict names is never ambiguous.
    pub fn with_user_rules(self, src: &str, origin: &str) -> Result<Classifier, RulesError> {
        let mut rules = rules::parse_file(src, origin)?;
        let new = rules.len();
        let names: HashSet<String> = rules.iter().map(|r| r.name.clone()).collect();
        rules.extend(self.rules.into_iter().filter(|r| !names.contains(&r.name)));
        Classifier::build(rules, origin, new)
    }

    /// Compiles the patterns; the first `new` rules come from `origin` in file order
    /// (the rest were compiled before, so only these can hold a bad regex).
    fn build(rules: Vec<Rule>, origin: &str, new: usize) -> Result<Classifier, RulesError> {
        let mut patterns = Vec::new();
        let slots = rules
            .iter()
            .map(|r| {
                r.text.as_deref().map(|t| {
                    patterns.push(t);
                    patterns.len() - 1
                })
            })
            .collect();
        let set = RegexSetBuilder::new(&patterns)
            .unicode(false)
            .case_insensitive(true)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|source| blame(&rules[..new], origin, source))?;
        Ok(Classifier {
            rules,
            slots,
            set: Arc::new(set),
        })
    }

    pub fn classify(&self, code: Option<u16>, enhanced: Option<&str>, text: &str) -> Verdict<'_> {
        let (code, enhanced) = envelope(code, enhanced, text);
        self.verdict(code, enhanced, &normalize(text))
    }

    /// The verdict on a reply already reduced to its envelope and normalized text.
    pub(crate) fn verdict(&self, code: Option<u16>, enhanced: Option<&str>, normalized: &str) -> Verdict<'_> {
        let hits = self.set.matches(normalized.as_bytes());
        let fired = self
            .rules
            .iter()
            .zip(&self.slots)
            .find(|(rule, slot)| slot.is_none_or(|s| hits.matched(s)) && rule.envelope_matches(code, enhanced));
        match fired {
            Some((rule, _)) => Verdict {
                class: rule.class,
                rule: &rule.name,
            },
            None => Verdict {
                class: Class::Other,
                rule: DEFAULT_RULE,
            },
        }
    }

    pub fn explain(&self, code: Option<u16>, enhanced: Option<&str>, text: &str) -> Explanation {
        let (code, enhanced) = envelope(code, enhanced, text);
        let normalized = normalize(text);
        let hits = self.set.matches(normalized.as_bytes());
        let mut tried = Vec::new();
        let mut fired = None;
        for (rule, slot) in self.rules.iter().zip(&self.slots) {
            let matched = slot.is_none_or(|s| hits.matched(s)) && rule.envelope_matches(code, enhanced);
            tried.push((rule.name.clone(), matched));
            if matched {
                fired = Some(rule);
                break;
            }
        }
        let (class, rule) = fired.map_or((Class::Other, DEFAULT_RULE), |r| (r.class, r.name.as_str()));
        Explanation {
            normalized,
            tried,
            class,
            rule: rule.to_owned(),
        }
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The code and enhanced status the conditions test: the caller's, else the ones at
/// the front of the reply. An empty status counts as none.
pub(crate) fn envelope<'a>(
    code: Option<u16>,
    enhanced: Option<&'a str>,
    text: &'a str,
) -> (Option<u16>, Option<&'a str>) {
    let enhanced = enhanced.map(str::trim).filter(|s| !s.is_empty());
    if code.is_some() && enhanced.is_some() {
        return (code, enhanced);
    }
    let (c, e) = split_reply(text);
    (code.or(c), enhanced.or(e))
}

/// The set failed to build: name the first of the new rules whose pattern fails on
/// its own, or, if each compiles alone, say the set as a whole is too large.
fn blame(new: &[Rule], origin: &str, set_error: regex::Error) -> RulesError {
    for (position, rule) in new.iter().enumerate() {
        let Some(text) = &rule.text else { continue };
        let compiled = RegexBuilder::new(text)
            .unicode(false)
            .case_insensitive(true)
            .size_limit(SIZE_LIMIT)
            .build();
        if let Err(source) = compiled {
            return RulesError::BadRegex {
                origin: origin.to_owned(),
                index: position + 1,
                name: rule.name.clone(),
                cause: source,
            };
        }
    }
    RulesError::TooLarge {
        origin: origin.to_owned(),
        cause: set_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_compiled_set_and_its_dfa_caches() {
        let c = Classifier::builtin();
        let d = c.clone();
        assert!(Arc::ptr_eq(&c.set, &d.set));
    }
}
