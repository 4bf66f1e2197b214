//! Masking recipient local parts in raw bytes kept for the dead-letter output: the
//! local part is never written anywhere, not even inside a line we could not parse.

use std::borrow::Cow;

/// Replaces the local part after every `to=` (also `orig_to=`), bracketed or bare,
/// with `*`. A cut-off address (`to=<56597@con`, `to=<u83`) is masked up to the `@`
/// or to the end of the token.
pub fn redact_recipients(raw: &[u8]) -> Cow<'_, [u8]> {
    let finder = memchr::memmem::Finder::new(b"to=");
    if finder.find(raw).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(at) = finder.find(&raw[i..]) {
        let mut start = i + at + 3;
        if raw.get(start) == Some(&b'<') {
            start += 1;
        }
        let end = raw[start..]
            .iter()
            .position(|b| matches!(b, b'@' | b'>' | b',' | b' ' | b'\n' | b'\r'))
            .map_or(raw.len(), |p| start + p);
        out.extend_from_slice(&raw[i..start]);
        if end > start {
            out.push(b'*');
        }
        i = end;
    }
    out.extend_from_slice(&raw[i..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &[u8]) -> String {
        String::from_utf8_lossy(&redact_recipients(s)).into_owned()
    }

    #[test]
    fn local_parts_are_masked_domains_kept() {
        assert_eq!(
            r(b"Q: to=<alice@gmail.com>, orig_to=<bob@x.org>, relay=none"),
            "Q: to=<*@gmail.com>, orig_to=<*@x.org>, relay=none"
        );
        assert_eq!(r(b"Q: to=56597@continuity.delivery, relay"), "Q: to=*@continuity.delivery, relay");
    }

    #[test]
    fn cut_addresses_are_masked_too() {
        assert_eq!(r(b"Q: to=<56597@con"), "Q: to=<*@con");
        assert_eq!(r(b"Q: to=<u83"), "Q: to=<*");
        assert_eq!(r(b"\xff to=<x\xfe@y>"), "\u{fffd} to=<*@y>");
    }

    #[test]
    fn lines_without_recipients_are_untouched() {
        assert!(matches!(redact_recipients(b"no address here"), Cow::Borrowed(_)));
    }
}
