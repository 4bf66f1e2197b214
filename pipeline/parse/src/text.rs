//! Byte searches for the hot path: `str::find` with a string pattern builds a
//! two-way searcher per call, which costs more than the search on short log lines.

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

/// Position of the first occurrence of `needle`.
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    memchr::memmem::find(hay.as_bytes(), needle.as_bytes())
}

/// Position of the last occurrence of `needle`.
pub fn rfind(hay: &str, needle: &str) -> Option<usize> {
    memchr::memmem::rfind(hay.as_bytes(), needle.as_bytes())
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
        assert_eq!(find("x, status=sent", ", status="), Some(1));
        assert_eq!(rfind("a (in reply to b (in reply to c", " (in reply to "), Some(16));
    }
}
