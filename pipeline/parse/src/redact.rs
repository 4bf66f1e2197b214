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
    mask_addresses(text, None)
}

/// [`redact_addresses`], with the local parts it masked added to `locals` (as
/// ranges of `text`).
fn mask_addresses<'a>(text: &'a [u8], mut locals: Option<&mut Vec<(usize, usize)>>) -> Cow<'a, [u8]> {
    let cut = cut_tail(text);
    if memchr::memchr(b'@', text).is_none() && cut.is_none() {
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
        let quoted = match before.last() {
            // A quote that opens a string (`{"@timestamp":` in a shipper's JSON record)
            // ends no quoted local part: the `@` starts the text, no address is before it.
            Some(b'"') if opens_string(text, at - 1, &mut quotes) => Some(before.len()),
            // CSV doubles a quote inside a quoted field: `""jane""@x` opens at `""`.
            Some(b'"') if before.ends_with(b"\"\"") => open_quote(before, b"\"\""),
            Some(b'"') => open_quote(before, b"\""),
            _ => None,
        };
        let mut start = match (quoted, before.last()) {
            (Some(p), _) => copied + p,
            // Ending in a byte no local part ends in (`a(b)@x`, a comment): masked back
            // to the start of the word, the safe side.
            (None, Some(&b)) if !is_local_char(b) && !b.is_ascii_whitespace() => before
                .iter()
                .rposition(|c| c.is_ascii_whitespace() || matches!(c, b'<' | b','))
                .map_or(copied, |p| copied + p + 1),
            // A quote that opens nothing (`"@x.org"`, `jane"@x`) is the word's own.
            _ => {
                let from = copied + word_start(before);
                // A quote that opens no quoted local part (this one ends in no quote)
                // opens the string around the address (`"sender":"jane@x"` in a JSON
                // record): kept, so the record stays what it was.
                from + text[from..at].iter().take_while(|b| **b == b'"').count()
            }
        };
        // `to=jane@x` (`orig_to=`) in a log line: the key is not part of the address;
        // in `photo=jane@x` the whole is.
        if let Some(p) = TO.rfind(&text[start..at])
            && matches!(&text[start..start + p], b"" | b"orig_")
        {
            start += p + 3;
        }
        if start < at {
            out.extend_from_slice(&text[copied..start]);
            out.push(b'*');
            if let Some(l) = locals.as_deref_mut() {
                l.push((start, at));
            }
            copied = at;
        }
    }
    match cut {
        Some(start) if start >= copied => {
            out.extend_from_slice(&text[copied..start]);
            out.push(b'*');
            if let Some(l) = locals {
                l.push((start, tail_end(text)));
            }
            copied = tail_end(text);
        }
        _ => {}
    }
    out.extend_from_slice(&text[copied..]);
    Cow::Owned(out)
}

/// Where the word before an `@` starts in `before`: back over local-part bytes, and
/// over JSON's `\uXXXX` escapes of non-ASCII ones (`"j\u00f6rg@x"` as a shipper
/// writes it).
fn word_start(before: &[u8]) -> usize {
    let mut end = before.len();
    loop {
        match before[..end].iter().rposition(|b| !is_local_char(*b)) {
            Some(p)
                if before[p] == b'\\'
                    && before.get(p + 1) == Some(&b'u')
                    && before
                        .get(p + 2..p + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                end = p;
            }
            Some(p) => return p + 1,
            None => return 0,
        }
    }
}

/// Where the quote (`"`, or CSV's doubled `""`) that opens a quoted local part
/// closed by the `unit` that ends `before` is: the nearest one escaped as the closing
/// one is (`"a\"b"`: the quoted-pair's quote has a backslash more; inside a JSON
/// string every quote has one more again). `None`: no quote opens it.
fn open_quote(before: &[u8], unit: &[u8]) -> Option<usize> {
    let escapes = |end: usize| before[..end].iter().rev().take_while(|b| **b == b'\\').count();
    let close = before.len() - unit.len();
    let k = escapes(close);
    let mut end = close - k;
    while let Some(p) = memchr::memmem::rfind(&before[..end], unit) {
        if escapes(p) == k {
            return Some(p - k);
        }
        end = p + unit.len() - 1;
    }
    None
}

/// The end of `text` without its line break.
fn tail_end(text: &[u8]) -> usize {
    text.len() - text.iter().rev().take_while(|b| matches!(b, b'\n' | b'\r')).count()
}

/// Where a local part cut off with the text begins, if the text ends in one: after
/// `<` (a reply or line cut inside `<jane`), after a JSON `"recipient":"` (a KumoMTA
/// record cut short), or as a CSV field after an address's field (PowerMTA's `rcpt`
/// after `orig`). Postfix's `to=<jane` is [`redact_recipients`]'s.
fn cut_tail(text: &[u8]) -> Option<usize> {
    let end = tail_end(text);
    let run = text[..end]
        .iter()
        .rev()
        .take_while(|b| is_local_char(**b) && !matches!(b, b'"' | b'\\'))
        .count();
    if run == 0 {
        return None;
    }
    let start = end - run;
    let head = &text[..start];
    let key = key_before(head);
    let after_address_field = head.strip_suffix(b",").is_some_and(|h| {
        let field = &h[h.iter().rposition(|b| *b == b',').map_or(0, |p| p + 1)..];
        memchr::memchr(b'@', field).is_some() && !field.iter().any(u8::is_ascii_whitespace)
    });
    // A JSON key: its quote, a colon and the value's quote (`"recipient": "`), not a
    // reply's `recipient unknown`.
    let json_key = key.ends_with(b"recipient") && {
        let between = &head[key.len()..];
        between.contains(&b':') && between.iter().filter(|b| **b == b'"').count() >= 2
    };
    let opened = head.ends_with(b"<") || json_key || after_address_field;
    opened.then_some(start)
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
    mask_word_but(text, word, |_, _| false)
}

/// [`mask_word`], but for the matches (`at..end`) `keep` says to keep.
fn mask_word_but(text: &[u8], word: &[u8], keep: impl Fn(usize, usize) -> bool) -> Option<Vec<u8>> {
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
        if whole && text[at..end].eq_ignore_ascii_case(word) && !keep(at, end) {
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
    // Each quote on its own: Exim names an address cut at its space `"jane`.
    l.trim_matches('"')
}

/// A reply as stored: every address masked ([`redact_addresses_str`]), and the
/// recipient's own local part wherever it stands as a word, since receivers also
/// echo it bare (`550 5.1.1 No such user (jane)`, `... writing to /var/mail/jane`),
/// also the mailbox of a tagged one (`jane` of `jane+news`).
pub fn redact_reply<'a>(reply: &'a str, recipient: &str) -> Cow<'a, str> {
    let masked = redact_addresses_str(reply);
    let mut out: Option<Vec<u8>> = None;
    for word in forms(local_part(recipient).as_bytes()) {
        if let Some(v) = mask_word(out.as_deref().unwrap_or(masked.as_bytes()), word) {
            out = Some(v);
        }
    }
    match out {
        // Whole words of ASCII ends were replaced by ASCII, so this cannot fail.
        Some(v) => Cow::Owned(String::from_utf8(v).unwrap_or_default()),
        None => masked,
    }
}

/// The words a local part is echoed as: itself, and the mailbox in it: before a `+`
/// tag (Postfix's `recipient_delimiter`, Exim's `local_part_suffix`, Gmail's), after
/// a bang path's last `!`, before a percent hack's `%`.
fn forms(local: &[u8]) -> impl Iterator<Item = &[u8]> {
    let after_bang = memchr::memrchr(b'!', local).map_or(local, |p| &local[p + 1..]);
    let mailbox = &after_bang[..memchr::memchr2(b'+', b'%', after_bang).unwrap_or(after_bang.len())];
    let mailbox = (!mailbox.is_empty() && mailbox.len() < local.len()).then_some(mailbox);
    std::iter::once(local).chain(mailbox)
}

/// Masks every address (see [`redact_addresses`]), the local part after every `to=`
/// (also `orig_to=`), bracketed or bare, when it is cut off before its `@`
/// (`to=<u83`), and the recipients' local parts wherever else they stand as a word (a
/// reply that echoes one bare), in any MTA's record. Of a record that did not parse,
/// every address not named as a sender's is taken for a recipient's.
pub fn redact_recipients(raw: &[u8]) -> Cow<'_, [u8]> {
    // The local parts named, before masking takes them away.
    let mut spans = Vec::new();
    let masked = mask_addresses(raw, Some(&mut spans));
    spans.retain(|(start, _)| !senders(raw, *start));
    spans.extend(to_values(raw));
    let mut locals: Vec<&[u8]> = Vec::new();
    for (start, end) in spans {
        let local = &raw[start..end];
        // A quoted one is echoed without its quotes (as in `local_part`).
        let local = local.strip_prefix(b"\"").unwrap_or(local);
        let local = local.strip_suffix(b"\"").unwrap_or(local);
        for word in forms(local) {
            if !word.is_empty() && !locals.contains(&word) {
                locals.push(word);
            }
        }
    }
    if locals.is_empty() {
        return masked;
    }
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
        if let Some(v) = mask_word_but(&out, local, |at, end| structural(&out, at, end)) {
            out = v;
        }
    }
    Cow::Owned(out)
}

/// Whether the word at `at..end` is a JSON record's own structure, a key or the value
/// of its `"type"` (`"type":"Bounce"` of a recipient `bounce@` or `type@`), also
/// inside a JSON string (a shipper's envelope): masking it would leave no record to
/// mend and replay. Any other string, a reply's text, is an echo.
fn structural(t: &[u8], at: usize, end: usize) -> bool {
    let opened = at.checked_sub(1).is_some_and(|i| t[i] == b'"');
    let closed = match t.get(end..) {
        Some([b'"', ..]) => Some(end + 1),
        Some([b'\\', b'"', ..]) => Some(end + 2),
        _ => None,
    };
    let Some(closed) = closed.filter(|_| opened) else {
        return false;
    };
    if t[closed..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':') {
        return true;
    }
    let before = &t[..at - 1];
    let before = before.strip_suffix(b"\\").unwrap_or(before).trim_ascii_end();
    before
        .strip_suffix(b":")
        .is_some_and(|b| key_before(b).ends_with(b"\"type"))
}

/// `head` without what ends a key and opens its value (`":"`, `: "`, `=<`, JSON's
/// escapes of those inside a string).
fn key_before(head: &[u8]) -> &[u8] {
    let n = head
        .iter()
        .rev()
        .take_while(|b| matches!(b, b'"' | b'\\' | b'<' | b':' | b' '))
        .count();
    &head[..head.len() - n]
}

/// Whether the local part at `start` is named as a sender's: Postfix's `from=`,
/// Exim's `<=` `F=` `P=`, a JSON `"sender"`, a CSV field before another address's
/// (PowerMTA's `orig` before `rcpt`). Its words stay: a sender such as `bounce@`
/// would otherwise mask KumoMTA's `"type":"Bounce"` in the record kept for replay.
fn senders(raw: &[u8], start: usize) -> bool {
    let head = &raw[..start];
    let key = key_before(head);
    if key.ends_with(b"recipient") {
        return false;
    }
    if [&b"sender"[..], b"from=", b"F=", b"P="]
        .iter()
        .any(|k| key.ends_with(k))
        || head.ends_with(b"<= ")
    {
        return true;
    }
    let csv_field = key.len() == head.len() && head.last().is_none_or(|b| *b == b',') || head.ends_with(b",\"");
    csv_field && {
        let rest = &raw[start..];
        let next = memchr::memchr(b',', rest).map(|p| &rest[p + 1..]).unwrap_or_default();
        let next = &next[..memchr::memchr(b',', next).unwrap_or(next.len())];
        memchr::memchr(b'@', next).is_some()
    }
}

/// Where each `to=` value's local part is: after `to=` (and its `<`) up to its `@`,
/// `>`, `,`, space or line end (a quoted one to its closing quote, or the line end
/// when it is cut before), as (start, end).
fn to_values(s: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let at = TO.find(&s[i..])?;
        let mut start = i + at + 3;
        if s.get(start) == Some(&b'<') {
            start += 1;
        }
        let line_end = |from: usize| {
            s[from..]
                .iter()
                .position(|b| matches!(b, b'\n' | b'\r'))
                .map_or(s.len(), |p| from + p)
        };
        let end = if s.get(start) == Some(&b'"') {
            let mut j = start + 1;
            loop {
                match s[j..line_end(j)].iter().position(|b| matches!(b, b'"' | b'\\')) {
                    Some(p) if s[j + p] == b'\\' => j += p + 2,
                    Some(p) => break j + p + 1,
                    None => break line_end(j),
                }
                if j >= line_end(start) {
                    break line_end(start);
                }
            }
        } else {
            s[start..]
                .iter()
                .position(|b| matches!(b, b'@' | b'>' | b',' | b' ' | b'\n' | b'\r'))
                .map_or(s.len(), |p| start + p)
        };
        i = end.max(start);
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
    fn a_quoted_local_part_with_an_escaped_quote_is_masked_whole() {
        let s = |t: &str| redact_addresses_str(t).into_owned();
        assert_eq!(
            s(r#"550 5.1.1 <"zz03\"b"@example.com>: rejected"#),
            "550 5.1.1 <*@example.com>: rejected"
        );
        // Inside a JSON string, every quote has a backslash more.
        assert_eq!(
            s(r#""recipient": "\"zz81\\\"q\"@example.com""#),
            r#""recipient": "*@example.com""#
        );
        // In a CSV field, quotes doubled.
        assert_eq!(
            s(r#"b,x,"""zz81\""b""@example.com",ip1,y"#),
            r#"b,x,"*@example.com",ip1,y"#
        );
        // A JSON escape of a non-ASCII byte is part of the local part.
        assert_eq!(
            s(r#""recipient": "zz80\u00fc@example.com""#),
            r#""recipient": "*@example.com""#
        );
        // A quote that opens nothing masks no text before it (the provider's reason).
        let t = r#"553 5.1.3 domain-only address "@news.example.net" not allowed"#;
        assert_eq!(s(t), t);
        // `to=` is a key only where it starts the word.
        assert_eq!(s("photo=jane@x.org"), "*@x.org");
    }

    #[test]
    fn dead_letters_of_every_mta_mask_the_recipients_words_not_the_senders() {
        assert_eq!(
            r(br#"{"type":"Bounce","id":"k82","sender":"bounce@x.example","recipient":"zz82@example.com","response":{"content":"mailbox zz82 unknown"}}"#),
            r#"{"type":"Bounce","id":"k82","sender":"*@x.example","recipient":"*@example.com","response":{"content":"mailbox * unknown"}}"#
        );
        // A recipient named as a key or the record's type keeps the record whole, in
        // a shipper's envelope too; a quoted echo in a reply is still an echo.
        assert_eq!(
            r(br#"{"type":"Delivery","recipient":"delivery@example.com","timestamp":"x"}"#),
            r#"{"type":"Delivery","recipient":"*@example.com","timestamp":"x"}"#
        );
        assert_eq!(
            r(br#"{"message":"{\"type\": \"Bounce\", \"recipient\":\"type@x.org\"}"}"#),
            r#"{"message":"{\"type\": \"Bounce\", \"recipient\":\"*@x.org\"}"}"#
        );
        assert_eq!(
            r(br#"{"type":"Bounce","recipient":"zz203@x.org","response":{"content":"\"zz203\""}}"#),
            r#"{"type":"Bounce","recipient":"*@x.org","response":{"content":"\"*\""}}"#
        );
        assert_eq!(
            r(br#"postfix/smtp[1]: 4F2A: to=<zz201@x.org>, status=bounced (550 5.1.1 "zz201" mailbox unknown)"#),
            r#"postfix/smtp[1]: 4F2A: to=<*@x.org>, status=bounced (550 5.1.1 "*" mailbox unknown)"#
        );
        assert_eq!(
            r(b"b,notatime,1796637000,bounce@news.example.net,zz88+t@example.com,ip1,failed,\"smtp;550 user zz88 unknown\""),
            "b,notatime,1796637000,*@news.example.net,*@example.com,ip1,failed,\"smtp;550 user * unknown\""
        );
        assert_eq!(
            r(b"2026-12-07 10:03:20 E0-0-AB ** zz62@example.com F=<bounce@x.org> R=d: 550 bounce: user zz62 unknown"),
            "2026-12-07 10:03:20 E0-0-AB ** *@example.com F=<*@x.org> R=d: 550 bounce: user * unknown"
        );
    }

    #[test]
    fn a_record_cut_before_the_recipients_at_keeps_none_of_it() {
        assert_eq!(
            r(b"{\"type\":\"Bounce\",\"id\":\"k73\",\"sender\":\"s@x.example\",\"recipient\":\"zz73\n"),
            "{\"type\":\"Bounce\",\"id\":\"k73\",\"sender\":\"*@x.example\",\"recipient\":\"*\n"
        );
        assert_eq!(
            r(b"b,2026-12-07 10:11:00+0000,1796637000,bounce@news.example.net,zz83\n"),
            "b,2026-12-07 10:11:00+0000,1796637000,*@news.example.net,*\n"
        );
        assert_eq!(r(br#"Q: to=<"john zz120"#), "Q: to=<*");
        assert_eq!(redact_reply("550 5.1.1 <zz27lo", "zz27longname@x"), "550 5.1.1 <*");
        // A reply that ends in words is no cut record.
        for reply in ["550 5.1.1 <*@x.org>: recipient unknown", "550 5.7.1 recipient rejected"] {
            assert_eq!(redact_reply(reply, "jdoe@x.org"), reply);
        }
    }

    #[test]
    fn the_mailbox_of_a_tagged_bang_or_quoted_recipient_is_masked_too() {
        for (reply, rcpt, want) in [
            (
                "550 5.1.1 user zz04 unknown",
                "zz04+news@example.com",
                "550 5.1.1 user * unknown",
            ),
            (
                "550 relay!zz08... User unknown; zz08... User unknown",
                "relay!zz08@x",
                "550 *... User unknown; *... User unknown",
            ),
            (
                "550 no zz09 here",
                "zz09%example.org@relay.example.com",
                "550 no * here",
            ),
            // Exim names an address with a space cut at it.
            ("452 mailbox zz70 full", "\"zz70", "452 mailbox * full"),
        ] {
            assert_eq!(redact_reply(reply, rcpt), want, "{reply} for {rcpt}");
        }
    }

    #[test]
    fn lines_without_recipients_are_untouched() {
        assert!(matches!(redact_recipients(b"no address here"), Cow::Borrowed(_)));
    }
}
