//! Byte searches for the hot path: `str::find` with a string pattern builds a
//! two-way searcher per call, which costs more than the search on short log lines.

use memchr::memmem::{Finder, FinderRev};
use std::sync::OnceLock;

/// Position of the first `b` (SIMD; std's `str::find(char)` scans bytewise on
/// lines this short).
pub fn byte(hay: &str, b: u8) -> Option<usize> {
    memchr::memchr(b, hay.as_bytes())
}

/// Position of the first `a` immediately followed by `b`.
pub fn find2(hay: &str, a: u8, b: u8) -> Option<usize> {
    let bytes = hay.as_bytes();
    memchr::memchr_iter(a, bytes).find(|&i| bytes.get(i + 1) == Some(&b))
}

/// A constant needle with its searchers, built on first use and kept: building a
/// searcher costs more than running it on a short log line, and a plain
/// `memmem::find` builds one per call.
pub struct Needle {
    text: &'static str,
    fwd: OnceLock<Finder<'static>>,
    rev: OnceLock<FinderRev<'static>>,
}

impl Needle {
    pub const fn new(text: &'static str) -> Needle {
        Needle {
            text,
            fwd: OnceLock::new(),
            rev: OnceLock::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Position of the first occurrence in `hay`.
    pub fn find(&self, hay: impl AsRef<[u8]>) -> Option<usize> {
        let f = self.fwd.get_or_init(|| Finder::new(self.text.as_bytes()));
        f.find(hay.as_ref())
    }

    /// Position of the last occurrence in `hay`.
    pub fn rfind(&self, hay: impl AsRef<[u8]>) -> Option<usize> {
        let f = self.rev.get_or_init(|| FinderRev::new(self.text.as_bytes()));
        f.rfind(hay.as_ref())
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounding_respects_char_boundaries() {
        assert_eq!(bounded("héllo", 2), "h");
        assert_eq!(bounded("abc", 10), "abc");
    }

    #[test]
    fn pairs_and_needles() {
        assert_eq!(find2("a:b: c", b':', b' '), Some(3));
        assert_eq!(find2("a:b:", b':', b' '), None);
        static STATUS: Needle = Needle::new(", status=");
        static IN_REPLY: Needle = Needle::new(" (in reply to ");
        assert_eq!(STATUS.find("x, status=sent"), Some(1));
        assert_eq!(STATUS.find("x, status"), None);
        // The second use runs the searcher the first one built.
        assert_eq!(STATUS.find("ab, status=sent, status="), Some(2));
        assert_eq!(IN_REPLY.rfind("a (in reply to b (in reply to c"), Some(16));
        assert_eq!(IN_REPLY.find("a (in reply to b (in reply to c"), Some(1));
    }
}
