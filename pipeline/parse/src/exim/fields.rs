//! The pieces of one Exim delivery line after its flag: the address, the `K=V`
//! fields, the `defer (N)` code and the reason text, and the reply inside the reason.

use crate::text::Needle;

/// Where a delivery went and how, from one `=>` `->` `==` `**` line.
#[derive(Debug, Default, PartialEq)]
pub struct Delivery<'a> {
    pub address: &'a str,
    pub transport: Option<&'a str>,
    /// `H=host [ip]`: the host name (absent with `H=[ip]`) and the IP.
    pub host: Option<&'a str>,
    pub host_ip: Option<&'a str>,
    /// `I=[ip]:port`: the outgoing interface, the sending IP.
    pub interface: Option<&'a str>,
    /// `C="..."`: the receiver's confirmation of a delivery.
    pub confirmation: Option<&'a str>,
    /// `QT=`: time since the message arrived, seconds.
    pub queue_time: Option<f64>,
    pub size: Option<u64>,
    /// `defer (-53)`: Exim's own error number.
    pub defer_errno: Option<i32>,
    /// What follows the fields after `: `, e.g. `SMTP error from remote mail server
    /// after RCPT TO:<a@b>: 451 4.7.650 ...` or `retry timeout exceeded`.
    pub reason: Option<&'a str>,
}

/// Splits `ADDR [<orig>] [(parent)] [fields] [: reason]`. `None` when there is no address.
pub fn parse(body: &str) -> Option<Delivery<'_>> {
    // A quoted local part (`"john doe"@example.com`) may hold spaces.
    let from = body.strip_prefix('"').and_then(|r| r.find('"')).map_or(0, |q| q + 2);
    let end = body[from..].find(' ').map_or(body.len(), |e| from + e);
    let mut address = &body[..end];
    let mut rest = &body[end..];
    // `** addr: retry timeout exceeded`: the reason follows the address at once.
    if let Some(a) = address.strip_suffix(':') {
        address = a;
        rest = &body[end - 1..];
    }
    if address.is_empty() {
        return None;
    }
    let mut d = Delivery {
        address,
        ..Delivery::default()
    };
    let (fields, reason) = split_reason(rest);
    d.reason = reason;
    let mut toks = Tokens { s: fields };
    while let Some(t) = toks.next() {
        if let Some(v) = t.strip_prefix("T=") {
            d.transport = Some(v);
        } else if let Some(v) = t.strip_prefix("H=") {
            // `H=host [ip]:port*`, `H=[ip]:port`, or `H=host (helo) [ip]` on arrivals.
            match bracketed(v) {
                Some(ip) => d.host_ip = Some(ip),
                None => {
                    d.host = Some(v);
                    while let Some(next) = toks.peek() {
                        // `(helo)` on arrivals; `DS` for a host found by DNSSEC.
                        if next.starts_with('(') || next == "DS" {
                            toks.next();
                            continue;
                        }
                        if let Some(ip) = bracketed(next) {
                            d.host_ip = Some(ip);
                            toks.next();
                        }
                        break;
                    }
                }
            }
        } else if let Some(v) = t.strip_prefix("I=") {
            d.interface = bracketed(v);
        } else if let Some(v) = t.strip_prefix("C=") {
            d.confirmation = Some(v.trim_matches('"'));
        } else if let Some(v) = t.strip_prefix("QT=") {
            d.queue_time = duration(v);
        } else if let Some(v) = t.strip_prefix("S=") {
            d.size = v.parse().ok();
        } else if t == "defer"
            && let Some(code) = toks
                .peek()
                .and_then(|n| n.strip_prefix('('))
                .and_then(|n| n.strip_suffix(')'))
        {
            d.defer_errno = code.parse().ok();
            toks.next();
        }
    }
    // `defer (dd): Connection timed out H=host [ip]: SMTP timeout ...`: the host is
    // named inside the reason.
    static HOST: Needle = Needle::new(" H=");
    if d.host.is_none()
        && d.host_ip.is_none()
        && let Some(r) = d.reason
        && let Some(at) = HOST.find(r)
    {
        let mut toks = Tokens { s: &r[at + 3..] };
        if let Some(h) = toks.next() {
            match bracketed(h.trim_end_matches(':')) {
                Some(ip) => d.host_ip = Some(ip),
                None => {
                    d.host = Some(h);
                    d.host_ip = toks.next().and_then(|t| bracketed(t.trim_end_matches(':')));
                }
            }
        }
        // `... [ip]:25 I=[ip]:port: SMTP timeout ...`: the interface follows the host.
        if let Some(i) = toks.next().and_then(|t| t.strip_prefix("I=")) {
            d.interface = bracketed(i.trim_end_matches(':'));
        }
        d.reason = Some(&r[..at]);
    }
    // `defer (-18): Remote host HOST [ip] closed connection ...`: the host it went to.
    static REMOTE: Needle = Needle::new("Remote host ");
    if d.host.is_none()
        && d.host_ip.is_none()
        && let Some(r) = d.reason
        && let Some(at) = REMOTE.find(r)
    {
        let mut toks = Tokens {
            s: &r[at + REMOTE.len()..],
        };
        if let (Some(h), Some(ip)) = (toks.next(), toks.next().and_then(bracketed)) {
            d.host = Some(h);
            d.host_ip = Some(ip);
        }
    }
    // Older releases name the host inside the SMTP error: `SMTP error from remote mail
    // server after RCPT TO:<a@b>: host mx0.gmx.com [74.208.5.90]: 450 4.3.2 ...`.
    if d.host.is_none()
        && d.host_ip.is_none()
        && let Some((h, ip, _)) = d.reason.and_then(|r| host_before_reply(smtp_error_tail(r)))
    {
        d.host = Some(h);
        d.host_ip = Some(ip);
    }
    Some(d)
}

/// `host NAME [IP]: REPLY` as older releases write it after `SMTP error from remote
/// mail server after ...: `: the host, its IP and the reply.
fn host_before_reply(s: &str) -> Option<(&str, &str, &str)> {
    let (name, r) = s.strip_prefix("host ")?.split_once(" [")?;
    let (ip, r) = r.split_once(']')?;
    // `[ip]: 450 ...`, or with the port, `[ip]:25: 450 ...`.
    let r = r.strip_prefix(':')?;
    let reply = match r.strip_prefix(' ') {
        Some(reply) => reply,
        None => {
            r.split_once(": ")
                .filter(|(port, _)| port.bytes().all(|b| b.is_ascii_digit()))?
                .1
        }
    };
    let plausible = !name.is_empty() && !name.contains(' ') && !ip.is_empty() && !ip.contains(' ');
    plausible.then_some((name, ip, reply))
}

/// Fields, then the reason after the first `: ` outside quotes.
fn split_reason(s: &str) -> (&str, Option<&str>) {
    let b = s.as_bytes();
    let mut quoted = false;
    for i in 0..b.len() {
        match b[i] {
            b'"' => quoted = !quoted,
            b':' if !quoted && b.get(i + 1).is_none_or(|c| *c == b' ') => {
                let reason = s[i + 1..].trim_start();
                return (&s[..i], (!reason.is_empty()).then_some(reason));
            }
            _ => {}
        }
    }
    (s, None)
}

/// Space-separated tokens, a quoted value (`C="250 OK id=1"`) being one token.
struct Tokens<'a> {
    s: &'a str,
}

impl<'a> Tokens<'a> {
    fn peek(&self) -> Option<&'a str> {
        let mut copy = Tokens { s: self.s };
        copy.next()
    }

    fn next(&mut self) -> Option<&'a str> {
        let s = self.s.trim_start_matches(' ');
        if s.is_empty() {
            self.s = s;
            return None;
        }
        let b = s.as_bytes();
        let mut i = 0;
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'"' => quoted = !quoted,
                // A backslash escapes a quote inside a quoted value.
                b'\\' if quoted => i += 1,
                b' ' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        let i = i.min(s.len());
        self.s = &s[i..];
        Some(&s[..i])
    }
}

/// `[ip]`, `[ip]:port` or `[ip]:port*` → ip.
fn bracketed(t: &str) -> Option<&str> {
    let inner = t.strip_prefix('[')?;
    let close = inner.find(']')?;
    let ip = &inner[..close];
    (!ip.is_empty()).then_some(ip)
}

/// Exim's `1d2h3m4s` (also `w`, fractional seconds) → seconds.
fn duration(v: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match c {
            'w' => 604_800.0,
            'd' => 86_400.0,
            'h' => 3_600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += num.parse::<f64>().ok()? * unit;
        num.clear();
    }
    num.is_empty().then_some(total)
}

/// The receiver's reply in a reason: after `SMTP error from remote mail server after
/// COMMAND: `; other reasons (`Connection timed out`, `retry time not reached`) are
/// the text themselves.
pub fn reply_of(reason: &str) -> &str {
    let tail = smtp_error_tail(reason);
    host_before_reply(tail).map_or(tail, |(_, _, reply)| reply)
}

/// What follows `SMTP error from remote mail server after COMMAND: ` (`remote mailer`
/// in older releases), else the reason.
fn smtp_error_tail(reason: &str) -> &str {
    static MARKS: [Needle; 2] = [
        Needle::new("SMTP error from remote mail server after "),
        Needle::new("SMTP error from remote mailer after "),
    ];
    static COLON: Needle = Needle::new(": ");
    match MARKS.iter().find_map(|m| m.find(reason).map(|at| at + m.len())) {
        Some(end) => {
            let after = &reason[end..];
            match COLON.find(after) {
                Some(c) => &after[c + 2..],
                None => after,
            }
        }
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_names_host_interface_and_confirmation() {
        let d = parse(
            "recipient@gmail.com R=dkim_lookuphost T=dkim_remote_smtp H=gmail-smtp-in.l.google.com [74.125.200.27] \
             X=TLSv1.2:ECDHE-RSA-AES128-GCM-SHA256:128 CV=yes C=\"250 2.0.0 OK 1458889573 vy4si17489309pab.124 - gsmtp\"",
        )
        .expect("delivery");
        assert_eq!(d.address, "recipient@gmail.com");
        assert_eq!(d.transport, Some("dkim_remote_smtp"));
        assert_eq!(d.host, Some("gmail-smtp-in.l.google.com"));
        assert_eq!(d.host_ip, Some("74.125.200.27"));
        assert_eq!(
            d.confirmation,
            Some("250 2.0.0 OK 1458889573 vy4si17489309pab.124 - gsmtp")
        );
        assert_eq!(d.reason, None);
    }

    #[test]
    fn a_quoted_local_part_and_a_dnssec_host_are_read_whole() {
        let d = parse(
            "\"john doe\"@example.com R=dnslookup T=remote_smtp H=mx.dnssec.example DS [192.0.2.44]:25* \
             I=[198.51.100.11] C=\"250 OK\"",
        )
        .expect("delivery");
        assert_eq!(d.address, "\"john doe\"@example.com");
        assert_eq!((d.host, d.host_ip), (Some("mx.dnssec.example"), Some("192.0.2.44")));
        assert_eq!(d.interface, Some("198.51.100.11"));
        // An opening quote without its close is no quoted local part.
        assert_eq!(parse("\"x@y R=r").expect("cut").address, "\"x@y");
    }

    #[test]
    fn a_deferral_keeps_its_code_interface_and_reply() {
        let d = parse(
            "userz@domain.com R=all T=smtp defer (-45) H=127.0.0.1 [127.0.0.1]:PORT_S I=[127.0.0.1]:10001: \
             SMTP error from remote mail server after MAIL FROM:<>: 450 not right now, sorry",
        )
        .expect("deferral");
        assert_eq!(d.defer_errno, Some(-45));
        assert_eq!(
            (d.host, d.host_ip, d.interface),
            (Some("127.0.0.1"), Some("127.0.0.1"), Some("127.0.0.1"))
        );
        assert_eq!(reply_of(d.reason.expect("reason")), "450 not right now, sorry");
    }

    #[test]
    fn a_host_named_inside_the_reason_is_found() {
        let d = parse(
            "userx@x.y R=r1 T=t1 defer (dd): Connection timed out H=127.0.0.1 [127.0.0.1]: SMTP timeout after end of data",
        )
        .expect("deferral");
        assert_eq!((d.host, d.host_ip), (Some("127.0.0.1"), Some("127.0.0.1")));
        assert_eq!(d.reason, Some("Connection timed out"));
        // With the outgoing interface after the host, as `deferral_log()` writes it.
        let d = parse(
            "x2@gmail.com R=dnslookup T=remote_smtp defer (110): Connection timed out \
             H=gmail-smtp-in.l.google.com [142.250.1.28]:25 I=[198.51.100.9]:41236: SMTP timeout after initial connection",
        )
        .expect("deferral");
        assert_eq!(
            (d.host, d.host_ip, d.interface),
            (
                Some("gmail-smtp-in.l.google.com"),
                Some("142.250.1.28"),
                Some("198.51.100.9")
            )
        );
        // `Remote host HOST [ip] closed connection`: no `H=` at all.
        let d = parse(
            "zz@host117.example.com R=dnslookup T=remote_smtp defer (-18): Remote host \
             host117.enginereliable.com [205.204.86.119] closed connection in response to end of data",
        )
        .expect("deferral");
        assert_eq!(
            (d.host, d.host_ip),
            (Some("host117.enginereliable.com"), Some("205.204.86.119"))
        );
        assert!(d.reason.is_some_and(|r| r.contains("closed connection")));
    }

    #[test]
    fn an_address_with_a_colon_is_followed_by_its_reason() {
        let d = parse("userx@x.y: retry timeout exceeded").expect("expiry");
        assert_eq!((d.address, d.reason), ("userx@x.y", Some("retry timeout exceeded")));
        let d = parse("xxx@yahoo.com routing defer (-51): retry time not reached").expect("hold");
        assert_eq!(d.defer_errno, Some(-51));
        assert_eq!(d.reason, Some("retry time not reached"));
    }

    #[test]
    fn queue_times_add_up_their_units() {
        assert_eq!(duration("1d2h3m4s"), Some(93_784.0));
        assert_eq!(duration("1.5s"), Some(1.5));
        assert_eq!(duration("3x"), None);
        assert_eq!(duration("12"), None);
    }

    #[test]
    fn nothing_panics_on_fragments() {
        for s in [
            "",
            " ",
            ":",
            "a",
            "a:",
            "a R=",
            "a H=",
            "a H=[",
            "a defer (",
            "a C=\"x",
            "a: ",
            "\"",
            "a H=x [",
        ] {
            let _ = parse(s);
        }
    }
}
