//! Where a delivery went and what the receiver said, from `relay=` and the status text.

use crate::text::{self, Needle};

/// `host[ip]:port` → (host, ip). `none`, `local`, `virtual` → (that word, None).
/// The ip is dropped when the brackets hold a socket path (`private/dovecot-lmtp`).
pub fn split_relay(relay: &str) -> Option<(&str, Option<&str>)> {
    match text::byte(relay, b'[') {
        None => (!relay.is_empty()).then_some((relay, None)),
        Some(b) => {
            let close = text::byte(&relay[b..], b']')? + b;
            let host = &relay[..b];
            let inside = &relay[b + 1..close];
            (!host.is_empty()).then_some((host, is_ip(inside).then_some(inside)))
        }
    }
}

fn is_ip(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
}

/// Phrases after which Postfix names the host it talked to as `HOST[IP]`.
static HOST_MARKERS: [Needle; 5] = [
    Needle::new("connect to "),
    Needle::new("conversation with "),
    Needle::new("connection with "),
    Needle::new("host "),
    // A relay's SASL refusal: `SASL authentication failed; server X[ip] said: ...`.
    Needle::new("server "),
];
/// How Postfix's status text starts when it did not try the site: it holds the
/// recipient after an earlier failure there.
pub const HOLD: &str = "delivery temporarily suspended";
/// What comes before the receiver's reply in a status text.
static REPLY_MARKERS: [Needle; 2] = [Needle::new("said: "), Needle::new("refused to talk to me: ")];
static IN_REPLY_TO: Needle = Needle::new(" (in reply to ");

/// The `HOST[IP]` (or `HOST[socket]`) Postfix names in a status text, as `relay=`
/// would give it, for `relay=none` lines:
/// `connect to mx.example.com[192.0.2.1]:25: Connection refused`,
/// `delivery temporarily suspended: lost connection with HOST[IP] while ...`.
pub fn hop_in_text(text: &str) -> Option<&str> {
    HOST_MARKERS
        .iter()
        .filter_map(|m| m.find(text).map(|at| at + m.len()))
        .filter_map(|start| {
            let rest = &text[start..];
            let b = rest.find('[')?;
            let host = &rest[..b];
            if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == ':') {
                return None;
            }
            let hop = rest.get(..rest[b..].find(']')? + b + 1)?;
            split_relay(hop).map(|_| (start, hop))
        })
        .min_by_key(|(start, _)| *start)
        .map(|(_, hop)| hop)
}

/// The receiver's reply inside a status text: after `said: ` or `refused to talk to
/// me: `, without Postfix's trailing `(in reply to ... command)`. Other texts
/// (`connect to ...: Connection refused`, `250 2.0.0 Ok`) are the reply themselves.
pub fn reply_of(text: &str) -> &str {
    let reply = REPLY_MARKERS
        .iter()
        .find_map(|m| m.find(text).map(|at| &text[at + m.len()..]))
        .unwrap_or(text);
    match IN_REPLY_TO.rfind(reply) {
        Some(at) if reply.ends_with("command)") => &reply[..at],
        _ => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_with_ipv4_ipv6_sockets_and_words() {
        assert_eq!(
            split_relay("mx.a.com[192.0.2.1]:25"),
            Some(("mx.a.com", Some("192.0.2.1")))
        );
        assert_eq!(
            split_relay("gmail-smtp-in.l.google.com[2607:f8b0:400e:c04::1b]:25"),
            Some(("gmail-smtp-in.l.google.com", Some("2607:f8b0:400e:c04::1b")))
        );
        assert_eq!(
            split_relay("sub1.example.com[private/dovecot-lmtp]"),
            Some(("sub1.example.com", None))
        );
        assert_eq!(split_relay("none"), Some(("none", None)));
        assert_eq!(split_relay("x[1.2.3.4"), None);
    }

    #[test]
    fn the_host_named_in_a_relay_none_text() {
        let t = "connect to dc-452452f6.bar.com[63.200.300.49]:25: Connection timed out";
        assert_eq!(hop_in_text(t), Some("dc-452452f6.bar.com[63.200.300.49]"));
        let t = "delivery temporarily suspended: lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO";
        assert_eq!(hop_in_text(t), Some("mta7.am0.yahoodns.net[98.136.216.22]"));
        let t = "conversation with mx00.gmx.com[74.208.5.4] timed out while receiving the initial server greeting";
        assert_eq!(hop_in_text(t), Some("mx00.gmx.com[74.208.5.4]"));
        let t = "connect to mail.example.com[private/dovecot-lmtp]: No such file or directory";
        assert_eq!(hop_in_text(t), Some("mail.example.com[private/dovecot-lmtp]"));
        assert_eq!(hop_in_text("Host or domain name not found. Name service error"), None);
        let t = "delivery temporarily suspended: SASL authentication failed; server smtp.sendgrid.net[167.89.115.54] \
                 said: 451 Authentication failed: Maximum credits exceeded";
        assert_eq!(hop_in_text(t), Some("smtp.sendgrid.net[167.89.115.54]"));
        let t = "host mta5.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from 198.51.100.21 \
                 temporarily deferred by the server [x]";
        assert_eq!(hop_in_text(t), Some("mta5.am0.yahoodns.net[67.195.204.72]"));
    }

    #[test]
    fn replies_lose_the_said_prefix_and_command_suffix() {
        let t = "host mail.domain.com[1.1.1.1] said: 451 DT:SPM 163 mx40, please try again 15min later (in reply to end of DATA command)";
        assert_eq!(reply_of(t), "451 DT:SPM 163 mx40, please try again 15min later");
        let t = "host mg2.egov.bg[213.91.191.86] refused to talk to me: 450 4.3.2 try again later";
        assert_eq!(reply_of(t), "450 4.3.2 try again later");
        assert_eq!(reply_of("250 2.0.0 Ok: queued as X"), "250 2.0.0 Ok: queued as X");
    }
}
