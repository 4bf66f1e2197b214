//! The syslog frame around a record: `STAMP HOST PROGRAM[PID]: MESSAGE`.

use crate::stamp::StampParser;
use crate::text::find2;

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
    let (time_us, n) = stamps.parse(line.as_bytes()).ok_or(FrameError::Stamp)?;
    let rest = line[n..].strip_prefix(' ').ok_or(FrameError::Shape)?;
    let sp = rest.find(' ').ok_or(FrameError::Shape)?;
    let (host, rest) = (&rest[..sp], &rest[sp + 1..]);
    let colon = find2(rest, b':', b' ')
        .or_else(|| rest.strip_suffix(':').map(str::len))
        .ok_or(FrameError::Shape)?;
    let tag = &rest[..colon];
    if host.is_empty() || tag.is_empty() || tag.contains(' ') {
        return Err(FrameError::Shape);
    }
    let program = match tag.find('[') {
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
    fn bad_frames_say_what_is_missing() {
        assert_eq!(split(&mut stamps(), "hello world"), Err(FrameError::Stamp));
        assert_eq!(split(&mut stamps(), "Nov  8 08:14:01 hostonly"), Err(FrameError::Shape));
        assert_eq!(
            split(&mut stamps(), "Nov  8 08:14:01 h postfix/smtp[12"),
            Err(FrameError::Shape)
        );
    }
}
