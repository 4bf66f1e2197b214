//! A classifier that remembers its verdicts, for the hot path.
//!
//! Replies repeat, but rarely byte for byte: receivers put queue ids, addresses and
//! timestamps in them. So verdicts are remembered twice: by the exact reply (a hit
//! costs one hash), and by what the rules actually look at — the envelope code and
//! enhanced status and the normalized text — so a reply that differs only in its ids
//! is matched by the rule set once, not once per message. Both maps are cleared when
//! full, which bounds memory under adversarial input.
//!
//! Where replies carry ids (most deferrals do), the exact map almost never hits and
//! costs a long hash and an allocation per reply; so it is probed over a window of
//! replies, switched off when it hits too rarely, and probed again later.

use crate::classifier::{Classifier, envelope};
use crate::normalize::normalize_into;
use deferlog_event::Class;
use std::collections::HashMap;

type Map = HashMap<Box<str>, Class, foldhash::fast::RandomState>;

/// Entries per map before it is cleared.
const LIMIT: usize = 16_384;
/// Replies per probe of the exact map; below one hit in `MIN_HIT_SHARE` it is switched
/// off for `OFF_WINDOWS` windows.
const WINDOW: u32 = 4096;
const MIN_HIT_SHARE: u32 = 8;
const OFF_WINDOWS: u32 = 16;

#[derive(Debug, Clone)]
pub struct Memo {
    classifier: Classifier,
    by_reply: Map,
    by_reduced: Map,
    key: String,
    exact: Exact,
}

/// Whether the exact map is in use, and how it fared in the current window.
#[derive(Debug, Clone, Default)]
struct Exact {
    off: bool,
    calls: u32,
    hits: u32,
}

impl Exact {
    /// Counts one reply; returns whether the exact map is used for it.
    fn count(&mut self, by_reply: &mut Map) -> bool {
        self.calls += 1;
        let span = if self.off { WINDOW * OFF_WINDOWS } else { WINDOW };
        if self.calls >= span {
            let useless = !self.off && self.hits * MIN_HIT_SHARE < self.calls;
            if useless {
                by_reply.clear();
            }
            *self = Exact {
                off: useless,
                ..Exact::default()
            };
        }
        !self.off
    }
}

impl Memo {
    pub fn new(classifier: Classifier) -> Memo {
        Memo {
            classifier,
            by_reply: Map::default(),
            by_reduced: Map::default(),
            key: String::new(),
            exact: Exact::default(),
        }
    }

    /// The class [`Classifier::classify`] gives this reply.
    pub fn class(&mut self, code: Option<u16>, enhanced: Option<&str>, text: &str) -> Class {
        let key = &mut self.key;
        key.clear();
        let exact = self.exact.count(&mut self.by_reply);
        if exact {
            push_envelope(key, code, enhanced);
            key.push_str(text);
            if let Some(c) = self.by_reply.get(key.as_str()) {
                self.exact.hits += 1;
                return *c;
            }
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
        if exact {
            insert(&mut self.by_reply, &key[..reduced], class);
        }
        class
    }
}

fn push_envelope(key: &mut String, code: Option<u16>, enhanced: Option<&str>) {
    if let Some(c) = code {
        deferlog_event::push_u64(key, u64::from(c));
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
    fn the_exact_map_is_left_while_it_misses_and_verdicts_stay_the_same() {
        let c = Classifier::builtin();
        let mut memo = Memo::new(c.clone());
        let reply = |i: u32| format!("421 4.7.0 Try again later, closing connection. zz{i:08}qkb.12 - gsmtp");
        let expected = c.classify(Some(421), Some("4.7.0"), &reply(0)).class;
        for i in 0..WINDOW {
            assert_eq!(memo.class(Some(421), Some("4.7.0"), &reply(i)), expected);
        }
        assert!(memo.exact.off && memo.by_reply.is_empty(), "every reply was new");
        assert_eq!(memo.class(Some(421), Some("4.7.0"), &reply(WINDOW)), expected);
        assert!(
            memo.by_reply.is_empty(),
            "off: nothing is remembered by the exact reply"
        );
        // One reply over and over: after the off windows the map is probed, and kept.
        for _ in 0..WINDOW * (OFF_WINDOWS + 2) {
            assert_eq!(memo.class(Some(421), Some("4.7.0"), &reply(1)), expected);
        }
        assert!(!memo.exact.off && memo.by_reply.len() == 1);
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
