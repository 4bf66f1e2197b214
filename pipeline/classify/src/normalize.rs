//! Reply normalization: the text rule patterns are matched against.
//!
//! In one pass over the reply, producing one String:
//! - a leading DSN type `smtp;`, the leading reply code and enhanced status are dropped
//!   (rules test those with `code`/`enhanced`, not with `text`);
//! - multi-line continuation markers (`421-4.7.0 `, `554-`) are dropped anywhere, and
//!   so is a code followed by an enhanced status (`421 4.7.28 `) and a bare repeat of
//!   the leading code, as receivers print them again before the last line;
//! - IPv4 and IPv6 literals, also bracketed (`[1.2.3.4]`, `[IPv6:2001:db8::1]`) and
//!   with a port (`1.2.3.4:25`, `[2001:db8::1]:25`), become `<ip>` (`<loopback>` for a
//!   loopback one with a port other than 25: the sending host's own filter), and a host
//!   name right before a bracketed one (the MTA's `mx.example.com[1.2.3.4]`) `<host>`;
//! - per-message ids become `<id>`: a run of 12 or more ASCII letters and digits with
//!   at least three digits (`bv15si15610322wjb`, `08DEADB0994CCD76`), or of 8 or more
//!   mixing upper case, lower case and a digit (base62 ids such as `SbFXaNg2`); a
//!   `.NNN` right after an id is part of it (Gmail's `bv15si15610322wjb.142`);
//! - a mail address becomes `<addr>`: receivers quote the recipient, and a verdict
//!   must depend neither on who it was nor on the words of its domain
//!   (`<u@trendmicro.com>: user unknown` is no block list's);
//! - everything is lower-cased and runs of whitespace (Exim's escaped `\n` too)
//!   become one space, trimmed.
//!
//! `schemas/classify.toml` repeats this at its top for rule authors.

use crate::reply::{code_at, enhanced_at, skip_diagnostic_type, skip_spaces};
use std::net::{IpAddr, Ipv4Addr};

/// Shortest alphanumeric run taken for an id: shorter ones are words or codes rules
/// may name (`rl000001`, `s77719`, `mxgmx104`).
const ID_MIN_LEN: usize = 12;
const ID_MIN_DIGITS: usize = 3;
/// Mixed-case runs are ids from this length: words are lower-case or capitalized,
/// codes upper-case (`S2017062302`).
const MIXED_ID_MIN_LEN: usize = 8;
/// Most digits of a `.NNN` sequence suffix after an id.
const ID_SUFFIX_MAX_DIGITS: usize = 4;

pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize`], appended to `into`.
pub(crate) fn normalize_into(text: &str, into: &mut String) {
    let b = text.as_bytes();
    let mut out = Out {
        start: into.len(),
        s: into,
        space: false,
    };
    let (lead, mut i) = leading_reply(b);
    let has_at = memchr::memchr(b'@', b).is_some();

    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            out.space = true;
            i += 1;
            continue;
        }
        if escaped_space_at(b, i) {
            out.space = true;
            i += 2;
            continue;
        }
        let prev = i.checked_sub(1).map(|p| b[p]);
        let after_escape = escaped_space_before(b, i);
        let after_space = after_escape || prev.is_none_or(|p| p.is_ascii_whitespace());
        let word_start = after_escape || prev.is_none_or(|p| !p.is_ascii_alphanumeric());
        // Most of a reply is plain words. Letters alone, ended by a space or by
        // punctuation that joins no address, id or IP, can be nothing but a word: each
        // test below needs a digit, a `[`, or a byte such as `@ . : _` after the run.
        if word_start && c.is_ascii_alphabetic() {
            let end = i + b[i..].iter().take_while(|c| c.is_ascii_alphabetic()).count();
            if b.get(end).is_none_or(|&n| ends_plain_word(n, b.get(end + 1))) {
                out.push_lower(&text[i..end]);
                i = end;
                continue;
            }
        }
        if after_space && let Some(end) = reply_marker(b, i, lead) {
            out.space = true;
            i = end;
            continue;
        }
        // Brackets count wherever they are: Postfix writes `host[1.2.3.4]:25`.
        if (c == b'[' || word_start)
            && let Some((end, placeholder)) = ip_literal(text, i)
        {
            if c == b'[' {
                out.host_before_ip();
            }
            out.push_str(placeholder);
            i = end;
            continue;
        }
        if has_at
            && word_start
            && c.is_ascii_alphanumeric()
            && let Some(at) = local_part(b, i)
        {
            out.push_str("<addr>");
            i = domain_end(b, at + 1);
            continue;
        }
        if word_start {
            // Whole, so no address is found inside a longer dotted number (`1.2.3.4.5`).
            if let Some(end) = dotted_run(b, i) {
                out.push_lower(&text[i..end]);
                i = end;
                continue;
            }
            if c.is_ascii_alphanumeric() {
                let end = i + b[i..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                let word = &text[i..end];
                if is_id(word) {
                    out.push_str("<id>");
                    i = id_suffix_end(b, end);
                    continue;
                } else {
                    out.push_lower(word);
                }
                i = end;
                continue;
            }
        }
        if c.is_ascii() {
            out.push_char(char::from(c.to_ascii_lowercase()));
            i += 1;
            continue;
        }
        // One character; `i` is always on a char boundary because every branch above
        // advances over ASCII bytes only.
        let Some(ch) = text[i..].chars().next() else {
            break;
        };
        if ch.is_whitespace() {
            out.space = true;
        } else {
            for l in ch.to_lowercase() {
                out.push_char(l);
            }
        }
        i += ch.len_utf8();
    }
}

/// Exim logs a multi-line reply with its line breaks escaped (`...at a rate
/// that\n450-4.2.1 prevents ...`): `\n`, `\r` and `\t` are whitespace here.
fn escaped_space_at(b: &[u8], i: usize) -> bool {
    b[i] == b'\\' && matches!(b.get(i + 1), Some(b'n' | b'r' | b't'))
}

fn escaped_space_before(b: &[u8], i: usize) -> bool {
    i >= 2 && escaped_space_at(b, i - 2)
}

/// Whether `n` (then `next`) after a run of letters leaves it a plain word.
fn ends_plain_word(n: u8, next: Option<&u8>) -> bool {
    match n {
        b',' | b';' | b')' | b']' | b'>' | b'!' | b'?' | b'"' | b'\'' => true,
        // A sentence's end, not a dotted name or address.
        b'.' => next.is_none_or(u8::is_ascii_whitespace),
        _ => n.is_ascii_whitespace(),
    }
}

/// The output with a pending separator, so whitespace collapses and never leads or
/// trails.
struct Out<'a> {
    s: &'a mut String,
    /// Where this text begins in `s`.
    start: usize,
    space: bool,
}

impl Out<'_> {
    fn sep(&mut self) {
        if self.space && self.s.len() > self.start {
            self.s.push(' ');
        }
        self.space = false;
    }

    fn push_char(&mut self, c: char) {
        self.sep();
        self.s.push(c);
    }

    fn push_str(&mut self, t: &str) {
        self.sep();
        self.s.push_str(t);
    }

    /// An MTA names the host it tried before its bracketed IP: Postfix as `host[ip]`
    /// (`connect to mx.manitu.net[...]`), Exim as `host [ip]` (`Remote host
    /// mx01.anti-spam.de [...] closed connection`). The host name just written becomes
    /// `<host>`, so that a verdict never comes from it (a block list's name, or `spam`,
    /// in an MX's). Only a dotted name of two or more labels: a sentence's last word
    /// (`rejected.[1.2.3.4]`) stays.
    fn host_before_ip(&mut self) {
        let written = &self.s[self.start..];
        let len = written
            .bytes()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
            .count();
        let name = &written[written.len() - len..];
        let labels_ok = name
            .split('.')
            .all(|l| l.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()));
        if name.contains('.') && labels_ok {
            let at = self.s.len() - len;
            self.s.truncate(at);
            self.s.push_str("<host>");
        }
    }

    fn push_lower(&mut self, ascii: &str) {
        self.sep();
        let at = self.s.len();
        self.s.push_str(ascii);
        self.s[at..].make_ascii_lowercase();
    }
}

/// The leading `smtp;`, code and enhanced status (or an enhanced status alone, as in
/// `4.7.0 [TS02] ...`): the code's three bytes, to recognise repeats, and where the
/// text proper begins.
fn leading_reply(b: &[u8]) -> (Option<&[u8]>, usize) {
    let i = skip_diagnostic_type(b, 0);
    let (lead, i) = match code_at(b, i) {
        Some((_, after)) => (Some(&b[i..i + 3]), skip_spaces(b, after)),
        None => (None, i),
    };
    match enhanced_at(b, i) {
        Some(end) if b.get(end).is_none_or(u8::is_ascii_whitespace) => (lead, end),
        _ => (lead, i),
    }
}

/// A reply marker at `i` (which follows whitespace): `ddd-` with an optional enhanced
/// status, `ddd d.d.d`, or a bare repeat of the leading code. Returns where it ends.
fn reply_marker(b: &[u8], i: usize, lead: Option<&[u8]>) -> Option<usize> {
    let (_, after) = code_at(b, i)?;
    let status_end = enhanced_at(b, after).filter(|&e| b.get(e).is_none_or(u8::is_ascii_whitespace));
    match status_end {
        Some(end) => Some(end),
        // Without a status a number could be anything (`300-400 messages`), so only a
        // repeat of the reply's own code counts.
        None => (lead == Some(&b[i..i + 3])).then_some(after),
    }
}

/// An IP literal starting at `i`, bracketed or not, with an optional port: its end,
/// and its placeholder: `<loopback>` for a loopback address with a port other than 25
/// (the sending host's own filter or proxy, not a receiver: an MX of `localhost` is
/// tried on 25), `<ip>` for any other.
fn ip_literal(text: &str, i: usize) -> Option<(usize, &'static str)> {
    let placeholder = |ip: IpAddr, port: Option<&str>| {
        if ip.is_loopback() && port.is_some_and(|p| p != "25") {
            "<loopback>"
        } else {
            "<ip>"
        }
    };
    let b = text.as_bytes();
    if b[i] == b'[' {
        let close = i + 1 + b[i + 1..].iter().take(64).position(|&c| c == b']')?;
        let inner = &text[i + 1..close];
        let inner = match inner.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("ipv6:") => &inner[5..],
            _ => inner,
        };
        let ip = inner.parse::<IpAddr>().ok()?;
        let end = port_end(b, close + 1);
        return Some((end, placeholder(ip, text.get(close + 2..end))));
    }
    let is_ip_byte = |c: &u8| c.is_ascii_hexdigit() || *c == b'.' || *c == b':';
    let run_end = i + b[i..].iter().take_while(|c| is_ip_byte(c)).count();
    if b.get(run_end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        return None;
    }
    // A sentence may end right after an address: `from 1.2.3.4.`
    let mut end = run_end;
    while end > i && matches!(b[end - 1], b'.' | b':') {
        end -= 1;
    }
    let cand = &text[i..end];
    if !cand.bytes().any(|c| c.is_ascii_digit()) || !cand.contains(['.', ':']) {
        return None;
    }
    if let Ok(ip) = cand.parse::<IpAddr>() {
        return Some((end, placeholder(ip, None)));
    }
    let (host, port) = cand.rsplit_once(':')?;
    let port_ok = (1..=5).contains(&port.len()) && port.bytes().all(|c| c.is_ascii_digit());
    let ip = host.parse::<Ipv4Addr>().ok().filter(|_| port_ok)?;
    Some((end, placeholder(IpAddr::V4(ip), Some(port))))
}

/// The end of a run of hex digits, dots and colons holding a digit and a dot or colon.
fn dotted_run(b: &[u8], i: usize) -> Option<usize> {
    let run = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_hexdigit() || **c == b'.' || **c == b':')
        .count();
    let run = &b[i..i + run];
    (run.iter().any(u8::is_ascii_digit) && run.iter().any(|c| *c == b'.' || *c == b':')).then_some(i + run.len())
}

/// After a bracketed address, the end of a `:port` if one follows.
fn port_end(b: &[u8], i: usize) -> usize {
    if b.get(i) != Some(&b':') {
        return i;
    }
    let n = b[i + 1..].iter().take(5).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 { i } else { i + 1 + n }
}

fn is_id(word: &str) -> bool {
    let b = word.as_bytes();
    if b.len() < MIXED_ID_MIN_LEN {
        return false;
    }
    let (mut digits, mut upper, mut lower) = (0, false, false);
    for c in b {
        digits += usize::from(c.is_ascii_digit());
        upper |= c.is_ascii_uppercase();
        lower |= c.is_ascii_lowercase();
    }
    (b.len() >= ID_MIN_LEN && digits >= ID_MIN_DIGITS && (upper || lower)) || (digits > 0 && upper && lower)
}

/// The local part of a mail address at `i` (`u123@`, `first.last+tag@`): where its `@`
/// is.
fn local_part(b: &[u8], i: usize) -> Option<usize> {
    let n = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'='))
        .count();
    let at = i + n;
    (b.get(at) == Some(&b'@') && b.get(at + 1).is_some_and(u8::is_ascii_alphanumeric)).then_some(at)
}

/// The end of the domain of an address whose `@` is just before `i`; a sentence's
/// full stop after it is not the domain's.
fn domain_end(b: &[u8], i: usize) -> usize {
    let n = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-'))
        .count();
    let mut end = i + n;
    while end > i && b[end - 1] == b'.' {
        end -= 1;
    }
    end
}

/// Past a `.NNN` that follows an id at `end`, or `end`.
fn id_suffix_end(b: &[u8], end: usize) -> usize {
    if b.get(end) != Some(&b'.') {
        return end;
    }
    let digits = b[end + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
    let after = end + 1 + digits;
    let whole = b.get(after).is_none_or(|c| !c.is_ascii_alphanumeric());
    if (1..=ID_SUFFIX_MAX_DIGITS).contains(&digits) && whole {
        after
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn continuation_markers_and_the_leading_code_go() {
        let gmail = "421-4.7.28 [203.0.113.42] Our system has detected an unusual rate of 421-4.7.28 \
                     unsolicited mail originating from your IP address. To protect our \
                     421-4.7.28 users from spam, mail sent from your IP address has been \
                     temporarily 421 4.7.28 rate limited. Please visit 421 4.7.28 \
                     https://support.google.com/mail/?p=UnsolicitedRateLimitError to - gsmtp";
        assert_eq!(
            normalize(gmail),
            "<ip> our system has detected an unusual rate of unsolicited mail originating from \
             your ip address. to protect our users from spam, mail sent from your ip address has \
             been temporarily rate limited. please visit \
             https://support.google.com/mail/?p=unsolicitedratelimiterror to - gsmtp"
        );
        assert_eq!(
            normalize("554-gmx.net (mxgmx104) Nemesis ESMTP Service not available 554-No SMTP service"),
            "gmx.net (mxgmx104) nemesis esmtp service not available no smtp service"
        );
        assert_eq!(
            normalize("554-smtp2.example.net 554 Your access to this mail system"),
            "smtp2.example.net your access to this mail system"
        );
        assert_eq!(normalize("smtp;421 4.7.0 [TSS04] Messages"), "[tss04] messages");
        // Exim's escaped line breaks are breaks: the marker after one goes too.
        assert_eq!(
            normalize("450-4.2.1 receiving mail at a rate that\\n450-4.2.1 prevents additional\\r\\nmessages"),
            "receiving mail at a rate that prevents additional messages"
        );
        assert_eq!(
            normalize("4.7.0 [TS02] Temporarily deferred"),
            "[ts02] temporarily deferred"
        );
    }

    #[test]
    fn other_numbers_stay() {
        assert_eq!(normalize("451 please wait 300 seconds"), "please wait 300 seconds");
        assert_eq!(normalize("qq write error (#4.3.0)"), "qq write error (#4.3.0)");
        assert_eq!(
            normalize("Server Busy (S77719) AS(201806281)"),
            "server busy (s77719) as(201806281)"
        );
        assert_eq!(normalize("1999-03-02 09:44:33 x"), "1999-03-02 09:44:33 x");
    }

    #[test]
    fn ip_literals_become_placeholders() {
        assert_eq!(normalize("client [1.2.3.4] blocked"), "client <ip> blocked");
        assert_eq!(
            normalize("connect to mx.example[192.0.2.1]:25: refused"),
            "connect to <host><ip>: refused"
        );
        // The name of the host the MTA tried decides nothing; a name in the reply's
        // own words is kept, and so is a word before a bracket with a space or no dot.
        assert_eq!(
            normalize("lost connection with mx.manitu.net[217.11.48.1] while x"),
            "lost connection with <host><ip> while x"
        );
        assert_eq!(
            normalize("blocked using zen.spamhaus.org; host [1.2.3.4]"),
            "blocked using zen.spamhaus.org; host <ip>"
        );
        assert_eq!(normalize("client[1.2.3.4] x"), "client<ip> x");
        assert_eq!(
            normalize("Remote host mx01.anti-spam.de [192.0.2.9] closed connection"),
            "remote host <host> <ip> closed connection"
        );
        assert_eq!(normalize("Message rejected.[1.2.3.4]"), "message rejected.<ip>");
        assert_eq!(normalize("see <x>.[1.2.3.4]"), "see <x>.<ip>");
        assert_eq!(
            normalize("connect to localhost[127.0.0.1]:10024: Connection refused"),
            "connect to localhost<loopback>: connection refused"
        );
        assert_eq!(
            normalize("from ::1 and 127.0.0.1:25"),
            "from <ip> and <ip>",
            "no port, or 25"
        );
        assert_eq!(
            normalize("[::1]:10024 and 127.0.0.1:10025"),
            "<loopback> and <loopback>"
        );
        assert_eq!(
            normalize("connect to localhost[127.0.0.1]:25: Connection refused"),
            "connect to localhost<ip>: connection refused"
        );
        assert_eq!(normalize("from 198.51.100.7."), "from <ip>.");
        assert_eq!(normalize("host 198.51.100.7:2525 x"), "host <ip> x");
        assert_eq!(normalize("via 2607:f8b0:400e:c04::1b now"), "via <ip> now");
        assert_eq!(normalize("via [IPv6:2001:db8::1]:25 now"), "via <ip> now");
        assert_eq!(normalize("(2001:558:fe21:2a::6)"), "(<ip>)");
        assert_eq!(normalize("[1.2.3.4      15] our"), "[<ip> 15] our");
        assert_eq!(
            normalize("x.x.x.x105 and 1.2.3.4.5 and 1.2.3"),
            "x.x.x.x105 and 1.2.3.4.5 and 1.2.3"
        );
        assert_eq!(normalize("at 10:30:15 t15:49:33.598z"), "at 10:30:15 t15:49:33.598z");
    }

    #[test]
    fn odd_input_never_panics_and_stays_trimmed() {
        const PIECES: &[&str] = &[
            "421",
            "-",
            " ",
            "4.7.0",
            "[",
            "]",
            ":",
            ".",
            "25",
            "é",
            "Ü",
            "smtp;",
            "IPv6:",
            "::",
            "1.2.3.4",
            "2001:db8::1",
            "\u{a0}",
            "\t",
            "x",
            "abc123def456",
            "\u{1F600}",
        ];
        // A fixed LCG, so a failure reproduces.
        let mut seed: u64 = 0x5eed;
        for _ in 0..5_000 {
            let mut text = String::new();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for k in 0..(seed >> 60) + 1 {
                let pick = (seed >> (k * 4 % 56)) as usize % PIECES.len();
                text.push_str(PIECES[pick]);
            }
            let n = normalize(&text);
            assert_eq!(n.trim(), n, "{text:?}");
            assert!(!n.contains("  "), "{text:?} -> {n:?}");
        }
    }

    #[test]
    fn ids_become_placeholders_and_case_and_space_fold() {
        assert_eq!(
            normalize("Guidelines. bv15si15610322wjb.142 - gsmtp"),
            "guidelines. <id> - gsmtp"
        );
        assert_eq!(normalize("OK id=O3MA8dQ3bbsr and r=SbFXaNg2"), "ok id=<id> and r=<id>");
        // Words, codes and versions are not ids.
        assert_eq!(
            normalize("UnsolicitedRateLimitError S2017062302 mxgmx104 <id>.1.2 IPv6"),
            "unsolicitedratelimiterror s2017062302 mxgmx104 <id>.1.2 ipv6"
        );
        assert_eq!(normalize("bv15si15610322wjb.12345 x"), "<id>.12345 x");
        assert_eq!(
            normalize("550 5.1.1 <First.Last+x@Example.org>: Recipient address rejected (u1@mail.ru) a@ @b"),
            "<<addr>>: recipient address rejected (<addr>) a@ @b"
        );
        assert_eq!(normalize("[MxId=11BD5B61254CB1FC]"), "[mxid=<id>]");
        assert_eq!(normalize("  Über\t\n GROSS \u{a0} Mail  "), "über gross mail");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("421"), "");
    }

    #[test]
    fn words_end_where_an_address_id_or_ip_could_not_start() {
        assert_eq!(
            normalize("Try LATER. (Mail, said:) \"ok\"! face.b00c"),
            "try later. (mail, said:) \"ok\"! face.b00c"
        );
        // The same words run on into an address, an IP or an id.
        assert_eq!(
            normalize("later.Me@x.org from dead:beef::1 ab:cd, Mailbox.name@x SbFXaNg2"),
            "<addr> from <ip> ab:cd, <addr> <id>"
        );
    }
}
