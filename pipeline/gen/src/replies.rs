//! Receivers' SMTP replies, modelled on real ones (shared/corpus/responses.tsv),
//! and their rendering. Texts are templates: `{src}` the sending IP, `{rcpt}`
//! and `{domain}` the recipient, `{msgid}` the Message-ID, `{ts}` the unix
//! time, `{tok}`/`{hex}`/`{n}` receiver-side ids, `{gid}` a Gmail one.

use crate::out::push_u64;
use crate::rng::Rng;

/// Where in the SMTP dialogue the reply came, which decides how Postfix
/// words the status text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `host H[IP] refused to talk to me: ...`
    Greeting,
    MailFrom,
    RcptTo,
    Data,
}

impl Stage {
    /// The `(in reply to ... command)` suffix, if the stage has one.
    pub(crate) fn in_reply_to(self) -> Option<&'static str> {
        match self {
            Stage::Greeting => None,
            Stage::MailFrom => Some(" (in reply to MAIL FROM command)"),
            Stage::RcptTo => Some(" (in reply to RCPT TO command)"),
            Stage::Data => Some(" (in reply to end of DATA command)"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Reply {
    /// What Postfix logs as `dsn=`: the reply's enhanced code, else X.0.0.
    pub dsn: &'static str,
    pub text: &'static str,
    pub stage: Stage,
}

macro_rules! reply {
    ($name:ident, $dsn:literal, $stage:ident, $text:expr) => {
        pub(crate) const $name: Reply = Reply {
            dsn: $dsn,
            text: $text,
            stage: Stage::$stage,
        };
    };
}

// Google (gmail-smtp-in, aspmx).
reply!(
    GMAIL_RATE_4728,
    "4.7.28",
    Data,
    "421-4.7.28 [{src}] Our system has detected an unusual rate of 421-4.7.28 unsolicited mail originating from your IP address. To protect our 421-4.7.28 users from spam, mail sent from your IP address has been temporarily 421 4.7.28 rate limited. Please visit 421 4.7.28 https://support.google.com/mail/?p=UnsolicitedRateLimitError to 421 4.7.28 review our Bulk Email Senders Guidelines. {gid}.{n} - gsmtp"
);
reply!(
    GMAIL_UNSOLICITED_470,
    "4.7.0",
    Data,
    "421-4.7.0 [{src}      15] Our system has detected an unusual rate of 421-4.7.0 unsolicited mail originating from your IP address. To protect our 421-4.7.0 users from spam, mail sent from your IP address has been temporarily 421-4.7.0 rate limited. Please visit 421-4.7.0  https://support.google.com/mail/answer/81126 to review our Bulk Email 421 4.7.0 Senders Guidelines. {gid}.{n} - gsmtp"
);
reply!(
    GMAIL_RCPT_RATE_421,
    "4.2.1",
    RcptTo,
    "450-4.2.1 The user you are trying to contact is receiving mail at a rate that 450-4.2.1 prevents additional messages from being delivered. Please resend your 450-4.2.1 message at a later time. If the user is able to receive mail at that 450-4.2.1 time, your message will be delivered. For more information, please 450 4.2.1 visit https://support.google.com/mail/?p=ReceivingRate {gid}.{n} - gsmtp"
);
reply!(
    GMAIL_NO_USER,
    "5.1.1",
    RcptTo,
    "550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. For more information, go to 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser {gid}.{n} - gsmtp"
);
reply!(
    GMAIL_FULL,
    "5.2.2",
    RcptTo,
    "552-5.2.2 The recipient's inbox is out of storage space. Please direct the 552-5.2.2 recipient to 552 5.2.2  https://support.google.com/mail/?p=OverQuotaPerm {gid}.{n} - gsmtp"
);
reply!(
    GMAIL_QUOTA,
    "4.2.2",
    RcptTo,
    "452-4.2.2 The recipient's inbox is out of storage space and inbound mail 452-4.2.2 cannot be delivered. Please try again later. For more information, 452 4.2.2 go to https://support.google.com/mail/?p=OverQuotaTemp {gid}.{n} - gsmtp"
);
reply!(
    GMAIL_SPAM,
    "5.7.1",
    Data,
    "550-5.7.1 [{src}      12] Our system has detected that this 550-5.7.1 message is likely unsolicited mail. To reduce the amount of spam sent 550-5.7.1 to Gmail, this message has been blocked. Please visit 550-5.7.1 https://support.google.com/mail/?p=UnsolicitedMessageError for 550 5.7.1 more information. {gid}.{n} - gsmtp"
);

// Microsoft (Outlook.com consumer and Exchange Online tenants).
reply!(
    MS_IP_REPUTATION,
    "4.7.650",
    MailFrom,
    "451 4.7.650 The mail server [{src}] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://aka.ms/postmaster (S775) [Name=Protocol Filter Agent][AGT=PFA][MxId=11BD{hex}] [AMS0EPF0000019C.eurprd05.prod.outlook.com]"
);
reply!(
    MS_CONCURRENT,
    "4.3.2",
    Data,
    "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information. [Hostname=AM9PR04MB{n}.eurprd04.prod.outlook.com]"
);
reply!(
    MS_BUSY,
    "4.7.500",
    RcptTo,
    "451 4.7.500 Server busy. Please try again later from [{src}]. (S77719) [DB5PEPF00014B8E.eurprd02.prod.outlook.com]"
);
reply!(
    MS_NO_USER,
    "5.5.0",
    RcptTo,
    "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [AM4PEPF00027A6C.eurprd04.prod.outlook.com]"
);
reply!(
    MS_FULL,
    "5.2.2",
    Data,
    "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot open mailbox.[EndDiagnosticData]"
);
reply!(
    MS_QUOTA,
    "4.2.2",
    RcptTo,
    "452 4.2.2 The recipient's mailbox is full and can't accept messages now. Please try resending this message later, or contact the recipient directly. [AM4PEPF00027A6C.eurprd04.prod.outlook.com]"
);

// Yahoo and AOL.
reply!(
    YAHOO_TSS04,
    "4.7.0",
    Greeting,
    "421 4.7.0 [TSS04] Messages from {src} temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
);
reply!(
    YAHOO_INTERNAL,
    "4.3.2",
    MailFrom,
    "451 4.3.2 Internal error reading data"
);
reply!(
    YAHOO_NO_USER,
    "5.0.0",
    RcptTo,
    "554 delivery error: dd This user doesn't have a yahoo.com account ({rcpt}) [0] - mta{n}.mail.gq1.yahoo.com"
);
reply!(
    YAHOO_FULL,
    "5.0.0",
    RcptTo,
    "552 1 Requested mail action aborted, mailbox full"
);
reply!(
    YAHOO_QUOTA,
    "4.2.2",
    RcptTo,
    "452 4.2.2 Mailbox over quota, please try again later"
);

// Apple iCloud.
reply!(
    APPLE_VOLUME,
    "4.7.1",
    RcptTo,
    "421 4.7.1 Messages to {rcpt} deferred due to excessive volume. Try again later - https://support.apple.com/en-us/HT204137"
);
reply!(
    APPLE_UNAVAILABLE,
    "4.7.1",
    Data,
    "451 4.7.1 Service unavailable - try again later"
);
reply!(
    APPLE_NO_USER,
    "5.1.1",
    RcptTo,
    "550 5.1.1 <{rcpt}>: user does not exist"
);
reply!(APPLE_FULL, "5.2.2", RcptTo, "552 5.2.2 <{rcpt}>: user is over quota");

// Generic receivers.
reply!(
    TOO_MANY_CONNECTIONS,
    "4.7.0",
    Greeting,
    "421 4.7.0 Too many connections"
);
reply!(
    TOO_MANY_FROM,
    "4.7.0",
    Greeting,
    "421 4.7.0 Error: too many connections from {src}"
);
reply!(
    GREYLISTED,
    "4.2.0",
    RcptTo,
    "450 4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/{domain}.html"
);
reply!(
    NO_REVERSE,
    "4.7.1",
    RcptTo,
    "450 4.7.1 Client host rejected: cannot find your reverse hostname, [{src}]"
);
reply!(QUEUE_WRITE, "4.3.0", Data, "451 4.3.0 Error: queue file write error");
reply!(
    POSTFIX_NO_USER,
    "5.1.1",
    RcptTo,
    "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"
);
reply!(POSTFIX_FULL, "5.2.2", Data, "552 5.2.2 Mailbox full");
reply!(
    POSTFIX_QUOTA,
    "4.2.2",
    RcptTo,
    "452 4.2.2 <{rcpt}>: Recipient address rejected: Mailbox over quota"
);

// Comcast.
reply!(COMCAST_NO_USER, "5.1.1", RcptTo, "550 5.1.1 <{rcpt}> Not our Customer");

// GMX / WEB.DE.
reply!(
    GMX_POLICY,
    "4.0.0",
    Greeting,
    "421-gmx.net (mxgmx{n}) Nemesis ESMTP Service not available 421-Service unavailable 421-Reject due to policy restrictions. 421 For explanation visit https://postmaster.gmx.net/en/case?c=hi&i=ip&v={src}&r={tok}"
);
reply!(
    GMX_NO_USER,
    "5.0.0",
    RcptTo,
    "550 Requested action not taken: mailbox unavailable"
);
reply!(
    GMX_FULL,
    "5.0.0",
    RcptTo,
    "552 Requested mail action aborted: exceeded storage allocation"
);

// Orange.
reply!(
    ORANGE_CONNECTIONS,
    "4.0.0",
    Greeting,
    "421 mwinf5c{n} ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR005_104 [104]"
);
reply!(
    ORANGE_NO_USER,
    "5.1.1",
    RcptTo,
    "550 5.1.1 Adresse d au moins un destinataire invalide. Invalid recipient. OFR_416 [416]"
);

// Deutsche Telekom.
reply!(
    TELEKOM_BUSY,
    "4.0.0",
    Greeting,
    "421 Service not available, closing transmission channel"
);
reply!(
    TELEKOM_NO_USER,
    "5.1.1",
    RcptTo,
    "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
);

// Mail.ru.
reply!(MAILRU_LATER, "4.7.0", RcptTo, "451 4.7.0 Try again later");
reply!(
    MAILRU_NO_USER,
    "5.0.0",
    RcptTo,
    "550 Message was not accepted -- invalid mailbox.  Local mailbox {rcpt} is unavailable: user not found"
);

// Yandex.
reply!(
    YANDEX_LATER,
    "4.7.1",
    Data,
    "451 4.7.1 Sorry, the service is currently unavailable. Please come back later. {ts}-{tok}"
);
reply!(YANDEX_NO_USER, "5.7.1", RcptTo, "550 5.7.1 No such user!");

// Tencent QQ.
reply!(
    QQ_LATER,
    "4.0.0",
    Data,
    "451 Temporary failure, please try again later. [{tok}]"
);
reply!(QQ_NO_USER, "5.0.0", RcptTo, "550 Mailbox not found or access denied");

// NetEase 163.com.
reply!(
    NETEASE_SPAM_DEFER,
    "4.0.0",
    Data,
    "451 DT:SPM 163 mx13,{tok}--.23796S3 {ts}, please try again 15min later"
);
reply!(
    NETEASE_SPAM_BOUNCE,
    "5.0.0",
    Data,
    "554 DT:SPM 163 mx9,{tok}--.26016S3 {ts},please see http://mail.163.com/help/help_spam_16.htm?ip={src}"
);
reply!(NETEASE_NO_USER, "5.0.0", RcptTo, "550 User not found or user suspended");

// Proofpoint.
reply!(
    PROOFPOINT_BUSY,
    "4.3.2",
    Greeting,
    "421 4.3.2 All screening ports are busy"
);
reply!(PROOFPOINT_NO_USER, "5.1.1", RcptTo, "550 5.1.1 User Unknown");

// Mimecast.
reply!(
    MIMECAST_UNAVAILABLE,
    "4.0.0",
    RcptTo,
    "451 Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451 [{tok}.uk{n}]"
);
reply!(
    MIMECAST_NO_USER,
    "5.0.0",
    RcptTo,
    "550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [{tok}.uk{n}]"
);

/// What a receiver says on success, by provider family.
pub(crate) mod sent {
    pub(crate) const GMAIL: &str = "250 2.0.0 OK  {ts} {gid}.{n} - gsmtp";
    pub(crate) const MICROSOFT: &str = "250 2.6.0 {msgid} [InternalId={n}{n}, Hostname=AM9PR04MB{n}.eurprd04.prod.outlook.com] Queued mail for delivery";
    pub(crate) const YAHOO: &str = "250 ok dirdel";
    pub(crate) const APPLE: &str = "250 2.0.0 Ok: queued as {hex}";
    pub(crate) const ACCEPTED: &str = "250 2.0.0 {tok} mail accepted for delivery";
    pub(crate) const GMX: &str = "250 Requested mail action okay, completed: id={tok}";
    pub(crate) const TELEKOM: &str = "250 2.0.0 Message accepted.";
    pub(crate) const MAILRU: &str = "250 OK id={tok}";
    pub(crate) const YANDEX: &str =
        "250 2.0.0 Ok: queued on mail-nwsmtp-mxfront-production-main-{n}.vla.yp-c.yandex.net {ts}-{tok}";
    pub(crate) const QQ: &str = "250 OK: queued as.";
    pub(crate) const NETEASE: &str = "250 Mail OK queued as mx20,{tok}--.{n}S2 {ts}";
    pub(crate) const PROOFPOINT: &str = "250 2.0.0 {tok}-1 Message accepted for delivery";
    pub(crate) const MIMECAST: &str = "250 Ok eu-smtp-1-{tok}";
    pub(crate) const POSTFIX: &str = "250 2.0.0 Ok: queued as {hex}";
}

/// The values a template may refer to.
#[derive(Debug)]
pub(crate) struct Vars<'a> {
    pub src: &'a str,
    pub rcpt_local: u32,
    pub domain: &'a str,
    pub msgid: &'a [u8],
    pub unix: i64,
}

pub(crate) fn push_rcpt(out: &mut Vec<u8>, local: u32, domain: &str) {
    out.push(b'u');
    push_u64(out, u64::from(local));
    out.push(b'@');
    out.extend_from_slice(domain.as_bytes());
}

const TOK: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(crate) fn render(template: &str, v: &Vars<'_>, rng: &mut Rng, out: &mut Vec<u8>) {
    let mut rest = template.as_bytes();
    while let Some(open) = rest.iter().position(|&b| b == b'{') {
        out.extend_from_slice(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.iter().position(|&b| b == b'}') else {
            out.extend_from_slice(&rest[open..]);
            return;
        };
        match &after[..close] {
            b"src" => out.extend_from_slice(v.src.as_bytes()),
            b"rcpt" => push_rcpt(out, v.rcpt_local, v.domain),
            b"domain" => out.extend_from_slice(v.domain.as_bytes()),
            b"msgid" => out.extend_from_slice(v.msgid),
            b"ts" => push_u64(out, v.unix.max(0) as u64),
            b"n" => push_u64(out, rng.range(10, 999)),
            b"hex" => {
                for _ in 0..10 {
                    out.push(b"0123456789ABCDEF"[rng.index(16)]);
                }
            }
            b"gid" => {
                // As in real Gmail replies: `bv15si15610322wjb`.
                let lower = |rng: &mut Rng, out: &mut Vec<u8>, k: usize| {
                    for _ in 0..k {
                        out.push(b'a' + rng.index(26) as u8);
                    }
                };
                lower(rng, out, 2);
                push_u64(out, rng.range(1, 99));
                out.extend_from_slice(b"si");
                push_u64(out, rng.range(1_000_000, 99_999_999));
                lower(rng, out, 3);
            }
            b"tok" => {
                let len = rng.range(8, 14);
                for _ in 0..len {
                    out.push(TOK[rng.index(TOK.len())]);
                }
            }
            other => {
                out.push(b'{');
                out.extend_from_slice(other);
                out.push(b'}');
            }
        }
        rest = &after[close + 1..];
    }
    out.extend_from_slice(rest);
}
