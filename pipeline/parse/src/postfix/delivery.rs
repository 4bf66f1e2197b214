//! The fields of a Postfix delivery status line, after `QUEUEID: `:
//! `to=<rcpt>, [orig_to=<..>,] relay=R, [conn_use=N,] delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=S (TEXT)`.

use crate::stats::RejectReason;
use crate::text::{self, find2};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Delivery<'a> {
    pub to: &'a str,
    pub relay: Option<&'a str>,
    pub delay: Option<f64>,
    pub dsn: Option<&'a str>,
    pub status: &'a str,
    /// The text between the parentheses after the status, if any.
    pub text: Option<&'a str>,
    /// The text lacks its `)`: the line was cut within it.
    pub cut_reply: bool,
}

/// Parses the fields; `rest` starts with `to=`. Anything cut before `status=WORD` is
/// `Truncated`; a `(TEXT` cut before its `)` is kept as far as it goes.
pub fn parse(rest: &str) -> Result<Delivery<'_>, RejectReason> {
    let mut d = Delivery::default();
    let mut s = rest;
    loop {
        let eq = text::byte(s, b'=').ok_or(RejectReason::Truncated)?;
        let key = &s[..eq];
        let v = &s[eq + 1..];
        if key == "status" {
            let end = text::byte(v, b' ').unwrap_or(v.len());
            d.status = &v[..end];
            // Lower case, but for `SOFTBOUNCE`: a bounce `soft_bounce = yes` kept queued.
            if d.status.is_empty() || !d.status.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
                return Err(RejectReason::BadStatus);
            }
            let tail = v[end..].trim();
            if !tail.is_empty() {
                // Without its `)`: a reply cut by syslog's line limit (long Gmail and
                // Microsoft replies reach it). The try and its status are whole, and
                // the reply's start (code, enhanced status) with them: still an attempt.
                let inner = tail.strip_prefix('(').ok_or(RejectReason::Truncated)?;
                d.text = Some(inner.strip_suffix(')').unwrap_or(inner));
                d.cut_reply = !inner.ends_with(')');
            }
            return Ok(d);
        }
        // An address in angle brackets may itself hold ", " (quoted local parts).
        let value_end = if v.starts_with('<') {
            text::byte(v, b'>').map(|i| i + 1).ok_or(match key {
                "to" | "orig_to" => RejectReason::Truncated,
                _ => RejectReason::BadRecipient,
            })?
        } else {
            find2(v, b',', b' ').ok_or(RejectReason::Truncated)?
        };
        let value = &v[..value_end];
        match key {
            "to" => {
                d.to = value
                    .strip_prefix('<')
                    .and_then(|x| x.strip_suffix('>'))
                    .unwrap_or(value)
            }
            "relay" => d.relay = Some(value),
            "delay" => d.delay = value.parse().ok(),
            "dsn" => d.dsn = Some(value),
            _ => {}
        }
        s = v[value_end..].strip_prefix(", ").ok_or(RejectReason::Truncated)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_fields_of_a_deferral() {
        let d = parse(
            "to=<u@yahoo.com>, relay=none, delay=63495, delays=63350/144/0/0, dsn=4.4.2, status=deferred (delivery temporarily suspended: lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO)",
        )
        .expect("parses");
        assert_eq!(d.to, "u@yahoo.com");
        assert_eq!(d.relay, Some("none"));
        assert_eq!(d.delay, Some(63495.0));
        assert_eq!(d.dsn, Some("4.4.2"));
        assert_eq!(d.status, "deferred");
        assert!(d.text.is_some_and(|t| t.starts_with("delivery temporarily suspended")));
    }

    #[test]
    fn orig_to_conn_use_and_bare_addresses() {
        let d = parse("to=56597@continuity.delivery, orig_to=<x@y>, relay=a[1.2.3.4]:25, conn_use=2, delay=0.51, delays=0.44/0.01/0.05/0.01, dsn=2.0.0, status=sent (250 ok)")
            .expect("parses");
        assert_eq!(d.to, "56597@continuity.delivery");
        assert_eq!(d.relay, Some("a[1.2.3.4]:25"));
        assert_eq!(d.text, Some("250 ok"));
    }

    #[test]
    fn quoted_local_parts_with_commas() {
        let d = parse(
            "to=<\"a, b\"@example.com>, relay=x[1.1.1.1]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (ok)",
        )
        .expect("parses");
        assert_eq!(d.to, "\"a, b\"@example.com");
    }

    #[test]
    fn truncated_lines_are_rejected_as_such() {
        for cut in [
            "to=<56597@con",
            "to=<a@b>, relay=gmail-smtp-in.l.goo",
            "to=<a@b>, relay=x[1.1.1.1]:25, delay=1",
        ] {
            assert_eq!(parse(cut), Err(RejectReason::Truncated), "{cut}");
        }
    }

    #[test]
    fn a_reply_cut_short_still_makes_an_attempt() {
        let d = parse(
            "to=<a@b>, relay=x[1.1.1.1]:25, delay=1, dsn=4.7.28, status=deferred (host x[1.1.1.1] said: 421-4.7.28 Our system has detected an unus",
        )
        .expect("parses");
        assert_eq!(d.status, "deferred");
        assert_eq!(
            d.text,
            Some("host x[1.1.1.1] said: 421-4.7.28 Our system has detected an unus")
        );
        assert!(d.cut_reply, "said, so that it is counted");
        let whole = parse("to=<a@b>, relay=x[1.1.1.1]:25, delay=1, dsn=2.0.0, status=sent (250 ok)").expect("parses");
        assert!(!whole.cut_reply);
    }

    #[test]
    fn a_status_that_is_not_a_word_is_rejected() {
        assert_eq!(
            parse("to=<a@b>, relay=x, status=SENT! (x)"),
            Err(RejectReason::BadStatus)
        );
    }
}
