//! A small JSON reader for hot records: walks one object, hands the caller each key,
//! lets it read the values it wants (strings borrowed unless escaped) and skips the
//! rest without building anything. Records are read once per line at a million lines
//! a second; a general-purpose decoder spends most of its time on fields deferlog
//! never reads (headers, meta). Syntax errors are `None`, never a panic; nesting is
//! skipped iteratively, so depth cannot exhaust the stack.

use deferlog_event::short_eq;
use std::borrow::Cow;

/// Where the first `"` or `\` of `b` is. Strings in records are short (ids,
/// addresses, names), so the search's call and dispatch cost as much as the scan: on
/// x86-64, SSE2 is always there and its search inlines; elsewhere `memchr2` decides.
#[inline]
fn quote_or_escape(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(two) = memchr::arch::x86_64::sse2::memchr::Two::new(b'"', b'\\') {
        return two.find(b);
    }
    memchr::memchr2(b'"', b'\\', b)
}

pub(crate) struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Reader {
            s,
            b: s.as_bytes(),
            i: 0,
        }
    }

    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// `null`, consumed if next.
    pub(crate) fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return true;
        }
        false
    }

    /// A string if one comes next (`None` otherwise; `Some(None)` if it is broken).
    pub(crate) fn string_if_next(&mut self) -> Option<Option<Cow<'a, str>>> {
        (self.peek() == Some(b'"')).then(|| self.string())
    }

    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        let j = self.i + quote_or_escape(&self.b[self.i..])?;
        if self.b[j] == b'"' {
            self.i = j + 1;
            return Some(Cow::Borrowed(&self.s[start..j]));
        }
        // An escape: decode the rest into an owned string.
        let mut out = String::with_capacity(j - start + 16);
        out.push_str(&self.s[start..j]);
        self.i = j;
        self.escaped(out).map(Cow::Owned)
    }

    fn escaped(&mut self, mut out: String) -> Option<String> {
        loop {
            let j = self.i + quote_or_escape(&self.b[self.i..])?;
            out.push_str(&self.s[self.i..j]);
            if self.b[j] == b'"' {
                self.i = j + 1;
                return Some(out);
            }
            let e = *self.b.get(j + 1)?;
            self.i = j + 2;
            match e {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let hi = self.hex4()?;
                    let c = if (0xD800..0xDC00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
                        self.i += 2;
                        let lo = self.hex4()?;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + lo.checked_sub(0xDC00)?)
                    } else {
                        char::from_u32(hi)
                    };
                    out.push(c.unwrap_or('\u{fffd}'));
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    pub(crate) fn number(&mut self) -> Option<f64> {
        self.ws();
        let start = self.i;
        // Integers (stamps, codes, sizes) without the float parser; up to 15 digits
        // an f64 holds them exactly.
        let mut n = 0u64;
        let mut j = start;
        while let Some(d @ b'0'..=b'9') = self.b.get(j) {
            n = n * 10 + u64::from(d - b'0');
            j += 1;
            if j - start > 15 {
                break;
            }
        }
        if j > start && !matches!(self.b.get(j), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+')) {
            self.i = j;
            return Some(n as f64);
        }
        while matches!(self.b.get(self.i), Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
            self.i += 1;
        }
        self.s[start..self.i].parse().ok()
    }

    /// Walks an object whose keys of interest are `fields`, listed in the order its
    /// writer puts them: `f` gets each key's tag (`None` for a key not listed) and must
    /// read or skip its value. The key expected next is compared in place, so a record
    /// in its writer's order costs no key scans and no lookups; a key out of order is
    /// read and looked up, and the walk expects the one after it next.
    pub(crate) fn object<K: Copy>(
        &mut self,
        fields: &[(&[u8], K)],
        mut f: impl FnMut(&mut Self, Option<K>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let mut next = 0;
        loop {
            self.ws();
            let at = match fields.get(next) {
                Some((name, _)) if self.quoted_here(name) => {
                    self.i += name.len() + 2;
                    Some(next)
                }
                _ => {
                    let key = self.string()?;
                    fields.iter().position(|(name, _)| short_eq(name, key.as_bytes()))
                }
            };
            if let Some(at) = at {
                next = at + 1;
            }
            self.eat(b':')?;
            f(self, at.map(|at| fields[at].1))?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Whether `"name"` comes next, exactly.
    fn quoted_here(&self, name: &[u8]) -> bool {
        let rest = &self.b[self.i..];
        rest.len() > name.len() + 1
            && rest[0] == b'"'
            && short_eq(&rest[1..=name.len()], name)
            && rest[name.len() + 1] == b'"'
    }

    /// Skips one value of any kind.
    pub(crate) fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                // Brackets counted, strings jumped over: no recursion.
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'{' | b'[' => {
                            depth += 1;
                            self.i += 1;
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            self.i += 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                        b'"' => drop(self.string()?),
                        b',' | b':' => self.i += 1,
                        _ => self.scalar()?,
                    }
                }
            }
            _ => self.scalar(),
        }
    }

    fn scalar(&mut self) -> Option<()> {
        for word in [&b"true"[..], b"false", b"null"] {
            if self.b[self.i..].starts_with(word) {
                self.i += word.len();
                return Some(());
            }
        }
        self.number().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Key {
        A,
        B,
        C,
    }
    const KEYS: &[(&[u8], Key)] = &[(b"a", Key::A), (b"b", Key::B), (b"c", Key::C)];

    #[test]
    fn reads_what_it_is_asked_and_skips_the_rest() {
        let text = r#" {"a": "x\"y\u00e9\ud83d\ude00", "skip": {"n": [1, {"deep": [true, null]}], "s": "}"}, "b": 12.5, "c": null} "#;
        let mut r = Reader::new(text);
        let (mut a, mut b, mut c_null) = (None, None, false);
        r.object(KEYS, |r, k| match k {
            Some(Key::A) => r.string().map(|s| a = Some(s.into_owned())),
            Some(Key::B) => r.number().map(|n| b = Some(n)),
            Some(Key::C) => {
                c_null = r.null();
                Some(())
            }
            None => r.skip(),
        })
        .expect("object");
        assert!(r.at_end());
        assert_eq!(a.as_deref(), Some("x\"yé😀"));
        assert_eq!((b, c_null), (Some(12.5), true));
    }

    #[test]
    fn keys_are_tagged_in_any_order_and_only_when_whole() {
        // In order, out of order, repeated, escaped, a listed key's prefix and
        // extension, a key at the very end of the text.
        for (text, want) in [
            (r#"{"a":1,"b":2,"c":3}"#, vec![Some(Key::A), Some(Key::B), Some(Key::C)]),
            (r#"{"c":1,"a":2,"b":3}"#, vec![Some(Key::C), Some(Key::A), Some(Key::B)]),
            (r#"{"b":1,"b":2}"#, vec![Some(Key::B), Some(Key::B)]),
            (r#"{"\u0061":1, "b" :2}"#, vec![Some(Key::A), Some(Key::B)]),
            (r#"{"ab":1,"":2,"a":3,"bb":4}"#, vec![None, None, Some(Key::A), None]),
        ] {
            let mut seen = Vec::new();
            let mut r = Reader::new(text);
            r.object(KEYS, |r, k| {
                seen.push(k);
                r.skip()
            })
            .expect(text);
            assert_eq!(seen, want, "{text}");
        }
        assert!(Reader::new(r#"{"a"#).object(KEYS, |r, _| r.skip()).is_none());
        assert!(Reader::new(r#"{"a""#).object(KEYS, |r, _| r.skip()).is_none());
    }

    #[test]
    fn strings_short_and_long_end_at_their_quote() {
        // Every length around the search's vector widths, with bytes next to the
        // quote's and UTF-8.
        let chars = ['x', '!', '#', '[', ']', 'é', '€', '\u{1}'];
        for len in (0..=40).chain([100]) {
            let body: String = (0..len).map(|i| chars[i % chars.len()]).collect();
            for text in [format!("\"{body}\" "), format!("\"{body}\\n\"")] {
                let mut r = Reader::new(&text);
                let s = r.string().expect("string");
                assert_eq!(s.trim_end_matches('\n'), body, "{text}");
                assert!(r.at_end(), "{text}");
            }
            let mut r = Reader::new("\"");
            assert!(r.string().is_none());
            let open = format!("\"{body}");
            assert!(Reader::new(&open).string().is_none(), "{open}");
        }
    }

    #[test]
    fn numbers_integral_or_not() {
        for (text, want) in [
            ("0", Some(0.0)),
            ("1795737600", Some(1_795_737_600.0)),
            ("1795737600.25", Some(1_795_737_600.25)),
            ("-3", Some(-3.0)),
            ("2e3", Some(2000.0)),
            ("123456789012345678", Some(123_456_789_012_345_678.0)),
            ("-", None),
        ] {
            let mut r = Reader::new(text);
            assert_eq!(r.number(), want, "{text}");
            if want.is_some() {
                assert!(r.at_end(), "{text}");
            }
        }
    }

    #[test]
    fn broken_json_is_none_never_a_panic() {
        for t in [
            "",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":\"\\u12",
            "{\"a\":\"\\q\"}",
            "{\"a\":[1,}",
            "{1:2}",
            "[[[[[[",
        ] {
            let mut r = Reader::new(t);
            let _ = r.object(KEYS, |r, _| r.skip());
        }
        let deep = "{\"a\":".to_owned() + &"[".repeat(100_000) + &"]".repeat(100_000) + "}";
        let mut r = Reader::new(&deep);
        assert!(r.object(KEYS, |r, _| r.skip()).is_some());
    }
}
