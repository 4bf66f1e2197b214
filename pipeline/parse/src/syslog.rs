//! The syslog frame around a record: `STAMP HOST PROGRAM[PID]: MESSAGE` (RFC 3164 as
//! files have it), also after a `<PRI>` (as relays forward it), and RFC 5424's `<PRI>1
//! STAMP HOST APP PROCID MSGID SD MESSAGE` (rsyslog's protocol-23 format, which
//! shippers such as rsyslog's omkafka send on).

use crate::stamp::StampParser;
use crate::text::{Needle, byte, find2};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyslogLine<'a> {
    pub time_us: i64,
    pub host: &'a str,
    /// The program name without the `[pid]`, e.g. `postfix-out3/smtp`.
    pub program: &'a str,
    pub message: &'a str,
}

/// Why a line has no syslog frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No timestamp we understand at the start.
    Stamp,
    /// A stamp, but no `HOST PROGRAM: ` after it.
    Shape,
}

pub fn split<'a>(stamps: &mut StampParser, line: &'a str) -> Result<SyslogLine<'a>, FrameError> {
    match strip_pri(line) {
        Some(rest) => match rest.strip_prefix("1 ") {
            Some(rfc5424) => split_5424(stamps, rfc5424),
            None => split_3164(stamps, rest),
        },
        None => split_3164(stamps, line),
    }
}

/// What follows a leading `<PRI>` (one to three digits), if the line has one.
fn strip_pri(line: &str) -> Option<&str> {
    let rest = pri_rest(line.as_bytes())?;
    // The `<PRI>` is ASCII: what follows starts on a char boundary.
    line.get(line.len() - rest.len()..)
}

fn pri_rest(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"<")?;
    let close = memchr::memchr(b'>', &rest[..rest.len().min(4)])?;
    (close > 0 && rest[..close].iter().all(u8::is_ascii_digit)).then(|| &rest[close + 1..])
}

/// RFC 5424 after `<PRI>1 `: `STAMP HOST APP PROCID MSGID SD [MSG]`, `-` for a field
/// left out.
fn split_5424<'a>(stamps: &mut StampParser, s: &'a str) -> Result<SyslogLine<'a>, FrameError> {
    let (time_us, n) = stamps.parse(s.as_bytes()).ok_or(FrameError::Stamp)?;
    let mut rest = s.get(n..).and_then(|r| r.strip_prefix(' ')).ok_or(FrameError::Shape)?;
    let mut field = || -> Result<&'a str, FrameError> {
        let sp = byte(rest, b' ').ok_or(FrameError::Shape)?;
        let f = &rest[..sp];
        rest = &rest[sp + 1..];
        Ok(f)
    };
    let (host, program, _procid, _msgid) = (field()?, field()?, field()?, field()?);
    if host == "-" || program == "-" || host.is_empty() || program.is_empty() {
        return Err(FrameError::Shape);
    }
    // Structured data: `-`, or `[id k="v" ...]` elements, where `]` may be escaped
    // inside a quoted value.
    let message = match rest.strip_prefix('-') {
        Some(m) => m,
        None if rest.starts_with('[') => {
            let b = rest.as_bytes();
            let (mut i, mut quoted) = (0, false);
            while i < b.len() {
                match b[i] {
                    b'\\' if quoted => i += 1,
                    b'"' => quoted = !quoted,
                    b']' if !quoted && b.get(i + 1) != Some(&b'[') => break,
                    _ => {}
                }
                i += 1;
            }
            rest.get(i + 1..).ok_or(FrameError::Shape)?
        }
        None => return Err(FrameError::Shape),
    };
    let message = message.strip_prefix(' ').unwrap_or(message);
    Ok(SyslogLine {
        time_us,
        host,
        program,
        message: message.strip_prefix('\u{feff}').unwrap_or(message),
    })
}

fn split_3164<'a>(stamps: &mut StampParser, line: &'a str) -> Result<SyslogLine<'a>, FrameError> {
    let (time_us, n) = stamps.parse(line.as_bytes()).ok_or(FrameError::Stamp)?;
    // A stamp cut inside a multi-byte character ends off a char boundary.
    let rest = line
        .get(n..)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(FrameError::Shape)?;
    let sp = byte(rest, b' ').ok_or(FrameError::Shape)?;
    let (host, rest) = (&rest[..sp], &rest[sp + 1..]);
    let colon = find2(rest, b':', b' ')
        .or_else(|| rest.strip_suffix(':').map(str::len))
        .ok_or(FrameError::Shape)?;
    let tag = &rest[..colon];
    if host.is_empty() || tag.is_empty() || byte(tag, b' ').is_some() {
        return Err(FrameError::Shape);
    }
    let program = match byte(tag, b'[') {
        Some(b) if tag.ends_with(']') => &tag[..b],
        Some(_) => return Err(FrameError::Shape),
        None => tag,
    };
    let message = rest.get(colon + 2..).unwrap_or("");
    Ok(SyslogLine {
        time_us,
        host,
        program,
        message,
    })
}

/// What keeps a message's lines together when lines are spread (parser threads,
/// Kafka record keys), found without parsing the stamp: the host field of a syslog
/// line (after the first space of an RFC 3339 stamp, or after `HH:MM:SS ` of a BSD
/// one); for a line of Exim's own log, which names no host, its message id; for a
/// JSON record (KumoMTA), its `"id"`. Empty when the line has none of these shapes.
pub fn route_key(line: &[u8]) -> &[u8] {
    // `<PRI>` and RFC 5424's version: the host follows the stamp as in RFC 3164.
    let line = match pri_rest(line) {
        Some(after) => after.strip_prefix(b"1 ").unwrap_or(after),
        None => line,
    };
    // PowerMTA CSV: a file's records need its header line, so they stay together.
    if crate::pmta::looks_like_pmta(line) {
        return b"powermta";
    }
    if line.first() == Some(&b'{') {
        static ID: Needle = Needle::new("\"id\":\"");
        return ID
            .find(line)
            .map(|at| &line[at + ID.len()..])
            .map(|v| &v[..memchr::memchr(b'"', v).unwrap_or(v.len())])
            .unwrap_or_default();
    }
    if line.get(10) == Some(&b' ') && line.get(13) == Some(&b':') {
        // `YYYY-MM-DD HH:MM:SS[.fff] [+HHMM] [[pid]] ID ...`
        return line
            .split(|b| *b == b' ')
            .skip(2)
            .find(|t| !t.is_empty() && !t.starts_with(b"+") && !t.starts_with(b"-") && !t.starts_with(b"["))
            .unwrap_or_default();
    }
    let start = if line.first().is_some_and(u8::is_ascii_digit) {
        memchr::memchr(b' ', line).map(|i| i + 1)
    } else {
        memchr::memchr(b':', line).map(|i| i + 7)
    };
    let host = start.and_then(|s| line.get(s..)).unwrap_or_default();
    &host[..memchr::memchr(b' ', host).unwrap_or(host.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::Zone;

    fn stamps() -> StampParser {
        StampParser::new(Zone::default(), 1_795_000_000_000_000)
    }

    #[test]
    fn splits_host_program_and_message() {
        let l = "Feb 11 16:49:24 letterman postfix/relay/smtp[8204]: AAB4D259B1: to=<me@example.net>";
        let s = split(&mut stamps(), l).expect("frame");
        assert_eq!(s.host, "letterman");
        assert_eq!(s.program, "postfix/relay/smtp");
        assert_eq!(s.message, "AAB4D259B1: to=<me@example.net>");
    }

    #[test]
    fn programs_without_pid_and_messages_with_colons() {
        let l = "2026-03-03T10:45:29Z mx dovecot: imap(u): Disconnected: x";
        let s = split(&mut stamps(), l).expect("frame");
        assert_eq!(s.program, "dovecot");
        assert_eq!(s.message, "imap(u): Disconnected: x");
    }

    #[test]
    fn a_priority_and_rfc_5424_frame_the_same_record() {
        let bsd = "<22>Feb 11 16:49:24 letterman postfix/smtp[8204]: AAB4D259B1: to=<me@example.net>";
        let s = split(&mut stamps(), bsd).expect("frame");
        assert_eq!(
            (s.host, s.program, s.message),
            ("letterman", "postfix/smtp", "AAB4D259B1: to=<me@example.net>")
        );
        for line in [
            "<22>1 2026-11-08T08:14:01.123Z letterman postfix/smtp 8204 - - AAB4D259B1: to=<me@example.net>",
            "<22>1 2026-11-08T08:14:01.123Z letterman postfix/smtp 8204 - [origin ip=\"192.0.2.1\" x=\"a\\]b\"][meta seq=\"1\"] AAB4D259B1: to=<me@example.net>",
            "<22>1 2026-11-08T08:14:01.123Z letterman postfix/smtp - - - \u{feff}AAB4D259B1: to=<me@example.net>",
        ] {
            let s = split(&mut stamps(), line).expect("frame");
            assert_eq!(
                (s.host, s.program, s.message),
                ("letterman", "postfix/smtp", "AAB4D259B1: to=<me@example.net>"),
                "{line}"
            );
            assert_eq!(route_key(line.as_bytes()), b"letterman");
        }
        assert_eq!(route_key(bsd.as_bytes()), b"letterman");
        assert_eq!(
            split(&mut stamps(), "<22>1 2026-11-08T08:14:01Z - postfix/smtp - - - x"),
            Err(FrameError::Shape)
        );
        assert_eq!(
            split(&mut stamps(), "<x>Feb 11 16:49:24 h p: m"),
            Err(FrameError::Stamp)
        );
    }

    #[test]
    fn bad_frames_say_what_is_missing() {
        assert_eq!(split(&mut stamps(), "hello world"), Err(FrameError::Stamp));
        assert_eq!(split(&mut stamps(), "Nov  8 08:14:01 hostonly"), Err(FrameError::Shape));
        assert_eq!(
            split(&mut stamps(), "Nov  8 08:14:01 h postfix/smtp[12"),
            Err(FrameError::Shape)
        );
    }

    #[test]
    fn the_host_is_found_after_either_stamp() {
        assert_eq!(route_key(b"Nov  8 08:14:01 mta-out1 postfix/smtp[1]: x"), b"mta-out1");
        assert_eq!(route_key(b"Jan 6 08:39:06 mx postfix/qmgr[2]: x"), b"mx");
        assert_eq!(
            route_key(b"2026-11-08T08:14:01.1+00:00 relay-7 postfix/smtp[1]: x"),
            b"relay-7"
        );
        assert_eq!(route_key(b"garbage"), b"");
        assert_eq!(route_key(b""), b"");
    }

    #[test]
    fn json_records_are_routed_by_their_id() {
        assert_eq!(route_key(br#"{"type":"Delivery","id":"1d98076a","x":1}"#), b"1d98076a");
        assert_eq!(route_key(b"{\"type\":\"Delivery\""), b"");
    }

    #[test]
    fn exim_lines_are_routed_by_message_id() {
        assert_eq!(
            route_key(b"2016-03-25 15:06:10 1ajLoq-0001wC-Pk => a@b R=x"),
            b"1ajLoq-0001wC-Pk"
        );
        assert_eq!(
            route_key(b"2016-03-25 15:06:10.123 +0100 [4242] 1ajLoq-0001wC-Pk Completed"),
            b"1ajLoq-0001wC-Pk"
        );
    }
}
