//! Masking recipient local parts: in reply texts (receivers echo the address:
//! `550 5.1.1 <jane@example.com>: User unknown`) and in raw bytes kept for the
//! dead-letter output. A local part is never written anywhere.

use crate::text::Needle;
use std::borrow::Cow;

static TO: Needle = Needle::new("to=");

/// Bytes of a local part; non-ASCII ones too (RFC 6531 allows UTF-8 local parts).
fn is_local_char(b: u8) -> bool {
    b >= 0x80 || b.is_ascii_alphanumeric() || b"._%+-=!#$&'*/?^`{|}~\"".contains(&b)
}

/// Replaces the local part of every `local@…` in `text` with `*`, whatever follows the
/// `@`: masking too much is the safe side. A quoted local part (`"a, b"@x`) is masked
/// back to its opening quote. A replaced span starts after an ASCII byte (or at the
/// start) and ends at `@`, so valid UTF-8 stays valid.
pub fn redact_addresses(text: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'@', text).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut copied = 0;
    let mut quotes = Quotes::default();
    for at in memchr::memchr_iter(b'@', text) {
        if at < copied {
            continue;
        }
        let before = &text[copied..at];
        let mut start = match before.last() {
            // A quote that opens a string (`{"@timestamp":` in a shipper's JSON record)
            // ends no quoted local part: the `@` starts the text, no address is before it.
            Some(b'"') if opens_string(text, at - 1, &mut quotes) => at,
            // CSV doubles a quote inside a quoted field: `""jane""@x` opens at `""`.
            Some(b'"') if before.ends_with(b"\"\"") => {
                memchr::memmem::rfind(&before[..before.len() - 2], b"\"\"").map_or(copied, |p| copied + p)
            }
            Some(b'"') => memchr::memrchr(b'"', &before[..before.len() - 1]).map_or(copied, |p| copied + p),
            // Ending in a byte no local part ends in (`a(b)@x`, a comment): masked back
            // to the start of the word, the safe side.
            Some(&b) if !is_local_char(b) && !b.is_ascii_whitespace() => before
                .iter()
                .rposition(|c| c.is_ascii_whitespace() || matches!(c, b'<' | b','))
                .map_or(copied, |p| copied + p + 1),
            _ => {
                let from = before
                    .iter()
                    .rposition(|b| !is_local_char(*b))
                    .map_or(copied, |p| copied + p + 1);
                // A quote that opens no quoted local part (this one ends in no quote)
                // opens the string around the address (`"sender":"jane@x"` in a JSON
                // record): kept, so the record stays what it was.
                from + text[from..at].iter().take_while(|b| **b == b'"').count()
            }
        };
        // `to=jane@x` in a log line: the key is not part of the address.
        if let Some(p) = TO.rfind(&text[start..at]) {
            start += p + 3;
        }
        if start < at {
            out.extend_from_slice(&text[copied..start]);
            out.push(b'*');
            copied = at;
        }
    }
    out.extend_from_slice(&text[copied..]);
    Cow::Owned(out)
}

/// Unescaped quotes counted so far, from the start of the text: the `@`s of one text
/// are visited in order, so each byte is counted once however many there are.
#[derive(Default)]
struct Quotes {
    upto: usize,
    n: usize,
}

impl Quotes {
    fn before(&mut self, text: &[u8], q: usize) -> usize {
        for i in self.upto..q {
            if text[i] == b'"' && (i == 0 || text[i - 1] != b'\\') {
                self.n += 1;
            }
        }
        self.upto = self.upto.max(q);
        self.n
    }
}

/// Whether the quote at `q` (an `@` after it) opens a string rather than closing a
/// quoted local part: JSON's place for a string to begin (the start, or after `{` `[`
/// `,` `:` and spaces), an even number of quotes before it, and a key's name after the
/// `@`, closed by a quote (`"@timestamp"`, not `"jane,"@x.org`). All three, since a
/// local part may end in any of those bytes and a stray quote upsets the count:
/// masking too much is the safe side.
fn opens_string(text: &[u8], q: usize, quotes: &mut Quotes) -> bool {
    let before = text[..q].iter().rposition(|b| !b.is_ascii_whitespace());
    let placed = before.is_none_or(|i| matches!(text[i], b'{' | b'[' | b',' | b':'));
    // A key's name after the `@`, closed by its quote: no domain (`"jane,"@x.org`,
    // `@mailhost>`, `@[IPv6:...]`).
    let after = text.get(q + 2..).unwrap_or_default();
    let name = after
        .iter()
        .take(256)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        .count();
    let named = after.get(name) == Some(&b'"');
    placed && named && quotes.before(text, q).is_multiple_of(2)
}

/// [`redact_addresses`] for text known to be UTF-8.
pub fn redact_addresses_str(text: &str) -> Cow<'_, str> {
    match redact_addresses(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        // Whole characters were replaced by ASCII, so this cannot fail.
        Cow::Owned(v) => Cow::Owned(String::from_utf8(v).unwrap_or_default()),
    }
}

/// Bytes that continue a word around a bare local part: a receiver echoing `jane`
/// writes `(jane)`, `rcpt=jane`, `/var/mail/jane`, so `(`, `=` and `/` end it.
fn is_word_char(b: u8) -> bool {
    b >= 0x80 || b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'%')
}

/// `text` with every whole-word occurrence of `word` (ASCII case ignored) replaced by
/// `*`; `None` when there is none. Both ends of a match are ASCII bytes (or the ends
/// of `text`), so valid UTF-8 stays valid.
fn mask_word(text: &[u8], word: &[u8]) -> Option<Vec<u8>> {
    let first = *word.first()?;
    let last_start = text.len().checked_sub(word.len())?;
    let mut out: Option<Vec<u8>> = None;
    let (mut copied, mut i) = (0, 0);
    while i <= last_start {
        let Some(p) = memchr::memchr2(
            first.to_ascii_lowercase(),
            first.to_ascii_uppercase(),
            &text[i..=last_start],
        ) else {
            break;
        };
        let (at, end) = (i + p, i + p + word.len());
        // The ends first: most candidates are a letter inside some other word. Dots
        // after it end a sentence (`No such user: jane.`, sendmail's `jane... User
        // unknown`) unless a word goes on after them (`jane.doe` is another).
        let after = text[end..].iter().position(|b| *b != b'.').map(|n| end + n);
        let whole = (at == 0 || !is_word_char(text[at - 1])) && after.is_none_or(|j| !is_word_char(text[j]));
        if whole && text[at..end].eq_ignore_ascii_case(word) {
            let o = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
            o.extend_from_slice(&text[copied..at]);
            o.push(b'*');
            copied = end;
            i = end;
        } else {
            i = at + 1;
        }
    }
    out.map(|mut o| {
        o.extend_from_slice(&text[copied..]);
        o
    })
}

/// The local part of an address as a parser has it (`jane@x`, `<jane@x>`, `jane`).
fn local_part(recipient: &str) -> &str {
    let r = recipient.strip_prefix('<').unwrap_or(recipient);
    let r = r.strip_suffix('>').unwrap_or(r);
    let l = r.rsplit_once('@').map_or(r, |(l, _)| l);
    l.strip_prefix('"').and_then(|l| l.strip_suffix('"')).unwrap_or(l)
}

/// A reply as stored: every address masked ([`redact_addresses_str`]), and the
/// recipient's own local part wherever it stands as a word, since receivers also
/// echo it bare (`550 5.1.1 No such user (jane)`, `... writing to /var/mail/jane`).
pub fn redact_reply<'a>(reply: &'a str, recipient: &str) -> Cow<'a, str> {
    let masked = redact_addresses_str(reply);
    match mask_word(masked.as_bytes(), local_part(recipient).as_bytes()) {
        // Whole words of ASCII ends were replaced by ASCII, so this cannot fail.
        Some(v) => Cow::Owned(String::from_utf8(v).unwrap_or_default()),
        None => masked,
    }
}

/// Masks every address (see [`redact_addresses`]), the local part after every `to=`
/// (also `orig_to=`), bracketed or bare, when it is cut off before its `@`
/// (`to=<u83`), and those local parts wherever else they stand as a word (a reply
/// that echoes one bare).
pub fn redact_recipients(raw: &[u8]) -> Cow<'_, [u8]> {
    if TO.find(raw).is_none() {
        return redact_addresses(raw);
    }
    // The local parts named, before masking takes them away: a line has one or two.
    let mut locals: Vec<&[u8]> = Vec::new();
    for (start, end) in to_values(raw) {
        if end > start && !locals.contains(&&raw[start..end]) {
            locals.push(&raw[start..end]);
        }
    }
    let masked = redact_addresses(raw);
    let mut out = Vec::with_capacity(masked.len());
    let mut copied = 0;
    for (start, end) in to_values(&masked) {
        out.extend_from_slice(&masked[copied..start]);
        if end > start {
            out.push(b'*');
        }
        copied = end;
    }
    out.extend_from_slice(&masked[copied..]);
    for local in locals {
        if let Some(v) = mask_word(&out, local) {
            out = v;
        }
    }
    Cow::Owned(out)
}

/// Where each `to=` value's local part is: after `to=` (and its `<`) up to its `@`,
/// `>`, `,`, space or line end, as (start, end).
fn to_values(s: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let at = TO.find(&s[i..])?;
        let mut start = i + at + 3;
        if s.get(start) == Some(&b'<') {
            start += 1;
        }
        let end = s[start..]
            .iter()
            .position(|b| matches!(b, b'@' | b'>' | b',' | b' ' | b'\n' | b'\r'))
            .map_or(s.len(), |p| start + p);
        i = end;
        Some((start, end))
    })
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
        assert_eq!(
            r(b"Q: to=56597@continuity.delivery, relay"),
            "Q: to=*@continuity.delivery, relay"
        );
    }

    #[test]
    fn quotes_around_an_address_are_kept() {
        assert_eq!(
            r(br#"{"sender":"user@shop.example","recipient": "bob.x@y.org","n":1}"#),
            r#"{"sender":"*@shop.example","recipient": "*@y.org","n":1}"#
        );
        assert_eq!(
            redact_addresses_str(r#"say "jane@x.com" twice"#),
            r#"say "*@x.com" twice"#
        );
    }

    #[test]
    fn a_json_key_or_value_that_starts_with_an_at_is_kept_whole() {
        let rec = br#"{"@timestamp":1761830367.1,"log":"Q: to=<jane@x.org>","@version":"1","h":"@home"}"#;
        assert_eq!(
            r(rec),
            r#"{"@timestamp":1761830367.1,"log":"Q: to=<*@x.org>","@version":"1","h":"@home"}"#
        );
        assert_eq!(r(br#""@timestamp""#), r#""@timestamp""#);
        // With spaces as JSON allows them.
        let spaced = br#"{"a": 1, "@timestamp": 2, "log": "to=<jane@x.org>"}"#;
        assert_eq!(r(spaced), r#"{"a": 1, "@timestamp": 2, "log": "to=<*@x.org>"}"#);
        // A quoted local part still is one, whatever it ends in.
        assert_eq!(r(br#"rcpt "jane doe"@x.org"#), r#"rcpt *@x.org"#);
        for local in [r#""jane,""#, r#""jane:""#, r#""jane{""#, r#""a, b ""#] {
            let line = format!("Q: to=<{local}@x.org>, status=bounced");
            assert_eq!(r(line.as_bytes()), "Q: to=<*@x.org>, status=bounced", "{local}");
            // A stray quote before it does not change that.
            let stray = format!("say \" x, <{local}@x.org>");
            assert_eq!(redact_addresses_str(&stray), "say \" x, <*@x.org>", "{local}");
            for domain in ["mailhost", "[IPv6:2001:db8::1]"] {
                let stray = format!("say \" x, <{local}@{domain}>");
                assert_eq!(
                    redact_addresses_str(&stray),
                    format!("say \" x, <*@{domain}>"),
                    "{local}"
                );
            }
        }
        // A quoted local part in a CSV field, its quotes doubled.
        assert_eq!(
            redact_addresses_str(r#"b,"rcpt <""jane""@x.org> unknown",x"#),
            r#"b,"rcpt <*@x.org> unknown",x"#
        );
    }

    #[test]
    fn cut_addresses_are_masked_too() {
        assert_eq!(r(b"Q: to=<56597@con"), "Q: to=<*@con");
        assert_eq!(r(b"Q: to=<u83"), "Q: to=<*");
        assert_eq!(r(b"\xff to=<x\xfe@y>"), "\u{fffd} to=<*@y>");
    }

    #[test]
    fn addresses_echoed_in_replies_are_masked() {
        let t = "452 4.2.2 <u634730@yandex.ru>: Recipient address rejected; also bob.x+tag@ex.com and @ alone";
        assert_eq!(
            redact_addresses_str(t),
            "452 4.2.2 <*@yandex.ru>: Recipient address rejected; also *@ex.com and @ alone"
        );
        assert_eq!(redact_addresses_str("ÄÖ jöhn@x.de"), "ÄÖ *@x.de");
        assert!(matches!(redact_addresses_str("250 2.0.0 OK"), Cow::Borrowed(_)));
    }

    #[test]
    fn unusual_addresses_are_masked_whatever_follows_the_at() {
        assert_eq!(
            redact_addresses_str("<jane@ñandu.es> <bob@-x> <\"a, b\"@x.com>"),
            "<*@ñandu.es> <*@-x> <*@x.com>"
        );
        assert_eq!(r(b"Q: to=<\"a, b\"@x>, relay=none"), "Q: to=<*@x>, relay=none");
        assert_eq!(
            redact_addresses_str("550 <jane(work)@x.com>: unknown, also bob[1]@y.org, and @ alone"),
            "550 <*@x.com>: unknown, also *@y.org, and @ alone"
        );
        assert_eq!(r(b"Q: to=jane(x)@y, relay"), "Q: to=*@y, relay");
    }

    #[test]
    fn a_local_part_echoed_bare_is_masked_too() {
        for (reply, rcpt, want) in [
            (
                "550 5.1.1 No such user (pc.secret3)",
                "pc.secret3@x.org",
                "550 5.1.1 No such user (*)",
            ),
            ("452 rcpt=PG.Secret7 unknown", "<pg.secret7@x>", "452 rcpt=* unknown"),
            (
                "mailbox is full (MTA-imposed quota exceeded while writing to TESTSUITE/test-mail/c)",
                "c@test.ex",
                "mailbox is full (MTA-imposed quota exceeded while writing to TESTSUITE/test-mail/*)",
            ),
            // Inside a longer word it is not the local part.
            (
                "550 jane.doe2 unknown, not jane",
                "jane@x",
                "550 jane.doe2 unknown, not *",
            ),
            // Dots after it end a sentence, or sendmail's `name... User unknown`.
            (
                "550 5.1.1 zz44... User unknown",
                "zz44@x",
                "550 5.1.1 *... User unknown",
            ),
            ("550 No such user here: zz46.", "zz46@x", "550 No such user here: *."),
            (
                "452 4.2.2 over quota: zz47. Please direct",
                "zz47@x",
                "452 4.2.2 over quota: *. Please direct",
            ),
            ("550 user zz48.doe... unknown", "zz48.doe@x", "550 user *... unknown"),
            // A word going on after the dot is another one.
            ("550 zz49.doe unknown", "zz49@x", "550 zz49.doe unknown"),
            ("250 2.0.0 OK", "ok@x", "250 2.0.0 *"),
            ("250 2.0.0 Ok: queued", "nobody@x", "250 2.0.0 Ok: queued"),
        ] {
            assert_eq!(redact_reply(reply, rcpt), want, "{reply} for {rcpt}");
        }
        assert_eq!(
            r(b"Q: to=<pk.secret11@ex.example>, relay=x, status=bounced (User unknown: pk.secret11 at ex.example)"),
            "Q: to=<*@ex.example>, relay=x, status=bounced (User unknown: * at ex.example)"
        );
    }

    #[test]
    fn lines_without_recipients_are_untouched() {
        assert!(matches!(redact_recipients(b"no address here"), Cow::Borrowed(_)));
    }
}
