//! The framing of an SMTP reply: the 3-digit code (RFC 5321) and the enhanced status
//! code (RFC 3463) at its front, and the same pair repeated as multi-line
//! continuation markers inside it.

/// Pulls the SMTP code and enhanced status off the front of a raw reply such as
/// `"421-4.7.0 [1.2.3.4] Our system ..."`, `"550 5.1.1 <x>: user unknown"` or
/// `"451 DT:SPM ..."`: `(Some(421), Some("4.7.0"))`, `(Some(550), Some("5.1.1"))`,
/// `(Some(451), None)`.
///
/// Leading whitespace and a DSN diagnostic type `smtp;` (as in bounce and accounting
/// records: `smtp;550 5.1.1 ...`) are skipped. The code must be 2xx–5xx followed by a
/// space, a dash or the end; otherwise the answer is `(None, None)`, also when the
/// text starts with an enhanced status but no code.
pub fn split_reply(text: &str) -> (Option<u16>, Option<&str>) {
    let b = text.as_bytes();
    let start = skip_diagnostic_type(b, 0);
    let Some((code, after)) = code_at(b, start) else {
        return (None, None);
    };
    let at = skip_spaces(b, after);
    let enhanced = enhanced_at(b, at).map(|end| &text[at..end]);
    (Some(code), enhanced)
}

/// Index after leading whitespace and an optional `smtp;` with its own whitespace.
pub(crate) fn skip_diagnostic_type(b: &[u8], i: usize) -> usize {
    let i = skip_spaces(b, i);
    match b.get(i..i + 5) {
        Some(t) if t.eq_ignore_ascii_case(b"smtp;") => skip_spaces(b, i + 5),
        _ => i,
    }
}

pub(crate) fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// A reply code at `i`: three digits, the first 2–5, then a space, a dash or the end.
/// Returns the code and the index just after the separator.
pub(crate) fn code_at(b: &[u8], i: usize) -> Option<(u16, usize)> {
    let d = b.get(i..i + 3)?;
    if !(b'2'..=b'5').contains(&d[0]) || !d[1].is_ascii_digit() || !d[2].is_ascii_digit() {
        return None;
    }
    let code = d.iter().fold(0u16, |n, c| n * 10 + u16::from(c - b'0'));
    match b.get(i + 3) {
        None => Some((code, i + 3)),
        Some(b' ' | b'\t' | b'-') => Some((code, i + 4)),
        _ => None,
    }
}

/// An enhanced status at `i`: class 2, 4 or 5, then subject and detail of 1–3 digits,
/// not followed by more of a dotted number. Returns the index of its end.
pub(crate) fn enhanced_at(b: &[u8], i: usize) -> Option<usize> {
    if !matches!(b.get(i), Some(b'2' | b'4' | b'5')) || b.get(i + 1) != Some(&b'.') {
        return None;
    }
    let end_subject = digits(b, i + 2, 3)?;
    if b.get(end_subject) != Some(&b'.') {
        return None;
    }
    let end = digits(b, end_subject + 1, 3)?;
    let more = match b.get(end) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.') => b.get(end + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    };
    (!more).then_some(end)
}

/// End of a run of 1..=max digits starting at `i`.
fn digits(b: &[u8], i: usize, max: usize) -> Option<usize> {
    let n = b[i.min(b.len())..]
        .iter()
        .take(max)
        .take_while(|c| c.is_ascii_digit())
        .count();
    (n > 0).then_some(i + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_enhanced_status_come_off_the_front() {
        assert_eq!(
            split_reply("421-4.7.0 [1.2.3.4] Our system ..."),
            (Some(421), Some("4.7.0"))
        );
        assert_eq!(split_reply("550 5.1.1 <x>: user unknown"), (Some(550), Some("5.1.1")));
        assert_eq!(split_reply("451 DT:SPM 163 mx13"), (Some(451), None));
        assert_eq!(split_reply("451 4.7.650 The mail server"), (Some(451), Some("4.7.650")));
        assert_eq!(split_reply("421-failure in DNS look-up."), (Some(421), None));
        assert_eq!(split_reply("450"), (Some(450), None));
    }

    #[test]
    fn a_diagnostic_type_and_leading_space_are_skipped() {
        assert_eq!(
            split_reply("smtp;421 4.7.0 [TSS04] Messages"),
            (Some(421), Some("4.7.0"))
        );
        assert_eq!(split_reply("  SMTP; 550 5.7.1 x"), (Some(550), Some("5.7.1")));
    }

    #[test]
    fn text_without_a_leading_code_has_neither() {
        assert_eq!(split_reply("Server is not currently available"), (None, None));
        assert_eq!(split_reply("4.7.0 [TS02] Messages from"), (None, None));
        assert_eq!(split_reply("1514512449 x"), (None, None));
        assert_eq!(split_reply("4510 x"), (None, None));
        assert_eq!(split_reply("600 x"), (None, None));
        assert_eq!(split_reply("42"), (None, None));
        assert_eq!(split_reply(""), (None, None));
    }

    #[test]
    fn a_dotted_number_that_is_not_a_status_is_left_alone() {
        assert_eq!(split_reply("421 4.16.55.1 x"), (Some(421), None));
        assert_eq!(split_reply("421 4.7.0000 x"), (Some(421), None));
        assert_eq!(split_reply("421 4.7.0. x"), (Some(421), Some("4.7.0")));
        assert_eq!(split_reply("421 4.7. x"), (Some(421), None));
    }
}
