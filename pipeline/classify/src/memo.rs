//! A classifier that remembers its verdicts, for the hot path.
//!
//! Replies repeat, but rarely byte for byte: receivers put queue ids, addresses and
//! timestamps in them. So verdicts are remembered twice: by the exact reply (a hit
//! costs one hash), and by what the rules actually look at — the envelope code and
//! enhanced status and the normalized text — so a reply that differs only in its ids
//! is matched by the rule set once, not once per message. Both maps are cleared when
//! full, which bounds memory under adversarial input.

use crate::classifier::{Classifier, envelope};
use crate::normalize::normalize_into;
use deferlog_event::Class;
use std::collections::HashMap;

type Map = HashMap<Box<str>, Class, foldhash::fast::RandomState>;

/// Entries per map before it is cleared.
const LIMIT: usize = 16_384;

#[derive(Debug, Clone)]
pub struct Memo {
    classifier: Classifier,
    by_reply: Map,
    by_reduced: Map,
    key: String,
}

impl Memo {
    pub fn new(classifier: Classifier) -> Memo {
        Memo {
            classifier,
            by_reply: Map::default(),
            by_reduced: Map::default(),
            key: String::new(),
        }
    }

    /// The class [`Classifier::classify`] gives this reply.
    pub fn class(&mut self, code: Option<u16>, enhanced: Option<&str>, text: &str) -> Class {
        let key = &mut self.key;
        key.clear();
        push_envelope(key, code, enhanced);
        key.push_str(text);
        if let Some(c) = self.by_reply.get(key.as_str()) {
            return *c;
        }
        let (code, enhanced) = envelope(code, enhanced, text);
        let reduced = key.len();
        push_envelope(key, code, enhanced);
        let normalized = key.len();
        normalize_into(text, key);
        let class = match self.by_reduced.get(&key[reduced..]) {
            Some(c) => *c,
            None => {
                let class = self.classifier.verdict(code, enhanced, &key[normalized..]).class;
                insert(&mut self.by_reduced, &key[reduced..], class);
                class
            }
        };
        insert(&mut self.by_reply, &key[..reduced], class);
        class
    }
}

fn push_envelope(key: &mut String, code: Option<u16>, enhanced: Option<&str>) {
    if let Some(c) = code {
        let _ = deferlog_event::write_u64(key, u64::from(c));
    }
    key.push('\u{1f}');
    key.push_str(enhanced.unwrap_or(""));
    key.push('\u{1f}');
}

fn insert(map: &mut Map, key: &str, class: Class) {
    if map.len() >= LIMIT {
        map.clear();
    }
    map.insert(key.into(), class);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_same_verdict_the_classifier_gives() {
        let c = Classifier::builtin();
        let mut memo = Memo::new(c.clone());
        let replies = [
            (
                Some(421),
                Some("4.7.0"),
                "421 4.7.0 Try again later, closing connection. a1si1234567qkb.12 - gsmtp",
            ),
            (
                Some(421),
                Some("4.7.0"),
                "421 4.7.0 Try again later, closing connection. zz9si7654321abc.12 - gsmtp",
            ),
            (None, None, "550 5.1.1 user unknown"),
            (Some(550), Some("5.1.1"), "user unknown"),
            (Some(450), None, "user unknown"),
            (
                None,
                None,
                "451 4.7.650 The mail server [203.0.113.9] has been temporarily rate limited",
            ),
        ];
        // Twice, so the second round is answered from the maps.
        for _ in 0..2 {
            for (code, enhanced, text) in replies {
                assert_eq!(
                    memo.class(code, enhanced, text),
                    c.classify(code, enhanced, text).class,
                    "{text}"
                );
            }
        }
        assert!(
            memo.by_reduced.len() < memo.by_reply.len(),
            "ids did not share a reduced entry"
        );
    }

    #[test]
    fn stays_bounded() {
        let mut memo = Memo::new(Classifier::builtin());
        for i in 0..(LIMIT * 2 + 5) {
            memo.class(Some(451), None, &format!("451 try later word{i}x"));
        }
        assert!(memo.by_reply.len() <= LIMIT && memo.by_reduced.len() <= LIMIT);
    }
}
