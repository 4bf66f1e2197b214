//! The builtin data files, user overrides, and the errors bad rule files give.

use deferlog_classify::{Class, Classifier, MxGroups, RulesError};
use std::collections::HashSet;

const RULES_TOML: &str = include_str!("../../../../schemas/classify.toml");

#[test]
fn builtin_rules_load_with_unique_names_and_rule_classes() {
    let c = Classifier::builtin();
    assert!(!c.is_empty());
    // `explain` of a reply no rule matches lists every rule.
    let e = c.explain(None, None, "");
    assert_eq!(e.rule, "default");
    assert_eq!(e.class, Class::Other);
    assert_eq!(e.tried.len(), c.len());
    let names: HashSet<&str> = e.tried.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), c.len(), "duplicate rule names");
    assert!(e.tried.iter().all(|(_, matched)| !matched));

    // Every class named in the file is one rules may produce.
    let doc: toml::Table = toml::from_str(RULES_TOML).expect("classify.toml is TOML");
    let rules = doc["rule"].as_array().expect("[[rule]] entries");
    assert_eq!(rules.len(), c.len());
    for r in rules {
        let class: Class = r["class"].as_str().expect("class").parse().expect("a class");
        assert!(!matches!(class, Class::None | Class::Expired), "{r:?}");
    }
}

#[test]
fn builtin_mx_groups_load_with_the_fixed_names() {
    let g = MxGroups::builtin();
    let cases = [
        ("gmail-smtp-in.l.google.com", "google"),
        ("aspmx.l.googlemail.com", "google"),
        ("hotmail-com.olc.protection.outlook.com", "microsoft"),
        ("example-com.mail.protection.outlook.com", "microsoft"),
        ("mta7.am0.yahoodns.net", "yahoo"),
        ("mx-aol.mail.gm0.yahoodns.net", "yahoo"),
        ("mx01.mail.icloud.com", "apple"),
        ("mx2.comcast.net", "comcast"),
        ("mx00.gmx.com", "gmx"),
        ("mx-ha03.web.de", "gmx"),
        ("mx01.kundenserver.de", "gmx"),
        ("smtp-in.orange.fr", "orange"),
        ("mx00.t-online.de", "telekom"),
        ("mxs.mail.ru", "mailru"),
        ("mx.yandex.ru", "yandex"),
        ("mx1.qq.com", "tencent"),
        ("163mx01.mxmail.netease.com", "netease"),
        ("mx.zoho.eu", "zoho"),
        ("mx0a-001.pphosted.com", "proofpoint"),
        ("mx1-us1.ppe-hosted.com", "proofpoint"),
        ("eu-smtp-inbound-1.mimecast.com", "mimecast"),
        ("d123.ess.barracudanetworks.com", "barracuda"),
        ("route1.mx.cloudflare.net", "cloudflare"),
    ];
    for (host, group) in cases {
        assert_eq!(g.provider(host), Some(group), "{host}");
    }
    assert_eq!(g.provider("notgoogle.com"), None);
    assert_eq!(g.provider("gmail.com.example"), None);
    assert_eq!(
        g.mx_group(Some("mx1.example.co.uk"), Some("example.org")),
        "example.co.uk"
    );
    assert_eq!(
        g.mx_group(Some("10.2.2.85"), Some("continuity.delivery")),
        "continuity.delivery"
    );
    assert_eq!(g.mx_group(None, Some("example.org")), "example.org");
    assert_eq!(g.mx_group(None, None), "unknown");
    // Providers' own mailbox domains, when no MX host says.
    for (domain, group) in [
        ("gmail.com", "google"),
        ("hotmail.com", "microsoft"),
        ("aol.com", "yahoo"),
        ("me.com", "apple"),
        ("web.de", "gmx"),
        ("163.com", "netease"),
    ] {
        assert_eq!(g.mx_group(None, Some(domain)), group, "{domain}");
    }
    assert_eq!(
        g.mx_group(None, Some("google.com")),
        "google.com",
        "no mailbox domain of Google's"
    );
}

#[test]
fn mta_own_messages_classify_without_a_code() {
    let c = Classifier::builtin();
    let cases = [
        (
            "delivery temporarily suspended: lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO",
            Class::Local,
        ),
        (
            "delivery temporarily suspended: connect to 24.200.177.247[24.200.177.247]:25: Connection timed out",
            Class::Local,
        ),
        ("retry time not reached", Class::Local),
        // KumoMTA's own: its configuration refused to try, or the network failed.
        (
            "KumoMTA internal: failed to connect to any candidate hosts: All failures are related to having an unplumbed source address",
            Class::Local,
        ),
        (
            "451 4.4.4 KumoMTA internal: MX consisted solely of hosts on the skip_hosts list",
            Class::Local,
        ),
        (
            "KumoMTA internal: failed to resolve MX for example.com: no such domain",
            Class::Network,
        ),
        ("KumoMTA internal: Timed Out waiting 60s to write Data", Class::Network),
        ("Retry time not yet reached", Class::Local),
        (
            "connect to intern.nl[194.109.6.98]:25: Connection timed out",
            Class::Network,
        ),
        (
            "connect to mail2.crabruzzo.it[2.115.207.21]:25: No route to host",
            Class::Network,
        ),
        (
            "connect to aspmx.l.google.com[2a00:1450:400b:c02::1a]:25: Network is unreachable",
            Class::Network,
        ),
        (
            "conversation with mx00.gmx.com[74.208.5.4] timed out while receiving the initial server greeting",
            Class::Network,
        ),
        (
            "lost connection with hotmail-com.olc.protection.outlook.com[104.47.55.161] while sending RCPT TO",
            Class::Network,
        ),
        (
            "Host or domain name not found. Name service error for name=example.invalid type=MX: Host not found, try again",
            Class::Network,
        ),
        ("Network Error", Class::Network),
        ("Cannot start TLS: handshake failure", Class::Tls),
        (
            "SSL_connect error to mail.example.org[112.63.65.2]:25: lost connection",
            Class::Tls,
        ),
        (
            "TLS is required, but was not offered by host mx.example.com[192.0.2.1]",
            Class::Tls,
        ),
        // Exim's own words for a failed handshake.
        (
            "TLS error on connection to mx.example.org [192.0.2.7] (SSL_connect): error:0A000086:SSL routines::certificate verify failed",
            Class::Tls,
        ),
        (
            "TLS session: (SSL_connect): error:0A000086:SSL routines::certificate verify failed",
            Class::Tls,
        ),
        (
            "Remote host host117.enginereliable.com [205.204.86.119] closed connection in response to end of data",
            Class::Network,
        ),
        (
            "mailbox is full (MTA-imposed quota exceeded while writing to /var/mail/c)",
            Class::Recipient,
        ),
        ("User unknown in virtual alias table", Class::Recipient),
        ("Unrouteable address", Class::Recipient),
        // The name of the host tried is no verdict: a block list's or an anti-spam
        // vendor's MX that did not answer is the network's.
        (
            "connect to bigcorp-example.in.tmes.trendmicro.eu[52.1.2.3]:25: Connection timed out",
            Class::Network,
        ),
        (
            "lost connection with mx.manitu.net[217.11.48.1] while receiving the initial server greeting",
            Class::Network,
        ),
        (
            "conversation with mx01.anti-spam.de[192.0.2.9] timed out while receiving the initial server greeting",
            Class::Network,
        ),
        (
            "connect to mx1.spamcop.net[192.0.2.10]:25: Connection refused",
            Class::Network,
        ),
        // Exim's: the host, a space, its IP.
        (
            "Remote host mx01.anti-spam.de [192.0.2.9] closed connection in response to end of data",
            Class::Network,
        ),
        // KumoMTA holding messages it did not try.
        (
            "KumoMTA internal: all possible sources for outlook.com are suspended",
            Class::Local,
        ),
        (
            "451 4.4.1 KumoMTA internal: scheduled queue is suspended: too many rate limit replies",
            Class::Local,
        ),
        (
            "451 4.4.1 KumoMTA internal: returning message to scheduled queue",
            Class::Local,
        ),
        ("451 4.4.1 No answer from any hosts listed in MX", Class::Local),
        // The sender's own content filter or proxies.
        (
            "connect to localhost[127.0.0.1]:10024: Connection refused",
            Class::Local,
        ),
        (
            "connect to 127.0.0.1[127.0.0.1]:10025: Connection refused",
            Class::Local,
        ),
        (
            "connect to localhost.localdomain[127.0.0.1]:10024: Connection refused",
            Class::Local,
        ),
        // A domain whose MX is localhost: port 25, the recipient domain's fault.
        ("connect to localhost[127.0.0.1]:25: Connection refused", Class::Network),
        (
            "Remote host localhost [127.0.0.1] closed connection in response to end of data",
            Class::Network,
        ),
        (
            "400 KumoMTA internal: failed to connect to any candidate hosts: All failures are related to proxy connection issues",
            Class::Local,
        ),
        (
            "H=mx.example.org [192.0.2.7]: a TLS session is required, but an attempt to start TLS failed",
            Class::Tls,
        ),
        (
            "unable to look up host mx.example.org: Name or service not known",
            Class::Network,
        ),
        // Exim's smtp transport when every host's address lookup deferred.
        ("all host address lookups failed temporarily", Class::Network),
    ];
    for (text, class) in cases {
        let v = c.classify(None, None, text);
        assert_eq!(v.class, class, "{text:?} fired {}", v.rule);
    }
}

#[test]
fn replies_classify_by_their_own_code_and_status() {
    let c = Classifier::builtin();
    let cases = [
        // The receiving Postfix could not write its queue file: its trouble, not a
        // hold of the sender's (`local`).
        ("451 4.3.0 Error: queue file write error", Class::Other),
        // Gmail refusing the session at EHLO ("usually ... a Denial of Service ... at the
        // HELO stage", Google's SMTP error list): too many connections, or too fast.
        (
            "421 4.7.0 Try again later, closing connection. (EHLO) - gsmtp",
            Class::ConnectionLimit,
        ),
        ("451 Zu viele Verbindungen von Ihrer IP", Class::ConnectionLimit),
        // Microsoft's S3115 shares 4.7.652 with its reputation rate limits.
        (
            "451 4.7.652 The mail server [203.0.113.9] has exceeded the maximum number of connections. (S3115)",
            Class::ConnectionLimit,
        ),
        (
            "451 Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451",
            Class::Greylist,
        ),
        ("450 4.2.1 Mailbox busy, try again later", Class::Recipient),
        (
            "554 5.7.1 Message rejected because of unacceptable content",
            Class::Content,
        ),
        ("550 5.7.1 TLS certificate expired", Class::Tls),
        // The sender's address or domain, not the recipient's (Exim, sendmail, GMX).
        (
            "550-Verification failed for <bounce@news.example> 550-No Such User Here 550 Sender verify failed",
            Class::Policy,
        ),
        (
            "553 5.1.8 <b@x.example>... Domain of sender address b@x.example does not exist",
            Class::Policy,
        ),
        (
            "550-Requested action not taken: mailbox unavailable 550 invalid DNS MX or A/AAAA resource record",
            Class::Policy,
        ),
        (
            "451 4.1.8 Domain of sender address b@x.example does not resolve",
            Class::Policy,
        ),
        // NetEase MI:DMC is too many messages on one connection.
        (
            "450 MI:DMC 163 smtp14,EsCowAD3 1700000000 http://mail.163.com/help/help_spam_16.htm?ip=1.2.3.4",
            Class::RateLimit,
        ),
        (
            "550-5.7.1 [203.0.113.9] Our system has detected that this message is not RFC 5322 compliant: 'From' header is missing. To reduce the amount of spam sent to Gmail, this message has been blocked.",
            Class::Policy,
        ),
        (
            "421 4.4.2 Message submission rate for this client has exceeded the configured limit",
            Class::RateLimit,
        ),
        (
            "550 5.2.121 Recipient's per hour message receive limit from specific sender exceeded.",
            Class::RateLimit,
        ),
        (
            "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; Delivery restriction check failed as sender not authenticated",
            Class::Policy,
        ),
        (
            "550 5.7.1 <x@y.example>... Relaying denied. Proper authentication required.",
            Class::Policy,
        ),
        (
            "421 4.7.0 mx.example Error: too much mail from 203.0.113.9",
            Class::RateLimit,
        ),
        (
            "421 4.7.0 mx.example Error: too many new TLS sessions from 203.0.113.9",
            Class::ConnectionLimit,
        ),
        ("421 4.3.2 Connection rate limit exceeded.", Class::ConnectionLimit),
        (
            "421 4.7.0 Your IP address 198.51.100.7 has been temporarily blocked",
            Class::Reputation,
        ),
        (
            "421-mx.gmx.net Reject due to policy restrictions. 421 For explanation visit https://postmaster.gmx.net/en/case?c=r0101",
            Class::Reputation,
        ),
        (
            "421 Too many spams from your IP (198.51.100.7), please visit http://postmaster.free.fr/",
            Class::Reputation,
        ),
        ("450 4.7.1 You have exceeded your messaging limits", Class::RateLimit),
        (
            "Domain x.example has exceeded the max emails per hour (500/500 (100%)) allowed. Message will be reattempted later",
            Class::Local,
        ),
        ("552 5.2.2 user has exceeded the mail quota", Class::Recipient),
        ("550 5.7.1 Sender blocked by recipient", Class::Policy),
        ("550 #5.1.0 Address rejected someone@x.example", Class::Recipient),
        ("550 Rejected by header based Anti-Spoofing policy", Class::Policy),
        (
            "552 5.7.0 Our system detected an illegal attachment on your message",
            Class::Content,
        ),
        (
            "421 4.7.0 [198.51.100.7] Too many connections - see https://ipcheck.proofpoint.com/?ip=198.51.100.7",
            Class::ConnectionLimit,
        ),
        (
            "421 4.7.0 Temporarily rejected: your IP is on a temporary block due to spam complaints",
            Class::Reputation,
        ),
        ("450 4.7.3 Organization queue quota exceeded.", Class::RateLimit),
        (
            "421 4.7.1 : (DYN:T1) https://postmaster.aol.com/error-codes#421dynt1",
            Class::Reputation,
        ),
        (
            "554 5.7.1 : (RTR:BL) https://postmaster.aol.com/error-codes#554rtrbl",
            Class::Blocklist,
        ),
        ("550 5.7.1 You are blocked by the recipient", Class::Policy),
        ("Deferred: Connection refused by spam.example.edu.", Class::Network),
        // A quoted address decides nothing, whatever its domain says.
        (
            "550 5.1.1 <john@trendmicro.com>: Recipient address rejected: User unknown",
            Class::Recipient,
        ),
        (
            "421-4.7.28 [203.0.113.42] Our system has detected an unusual rate of 421-4.7.28 unsolicited mail",
            Class::RateLimit,
        ),
        (
            "550-5.7.26 This mail has been blocked because the sender is unauthenticated. - gsmtp",
            Class::Auth,
        ),
        (
            "550-5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR record setup - gsmtp",
            Class::Auth,
        ),
        (
            "421-4.7.29 Your email has been rate limited because this message wasn't sent over a TLS connection. - gsmtp",
            Class::Tls,
        ),
        // Rate limited for want of SPF or DKIM: the fix is authentication.
        (
            "421-4.7.26 This mail has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.",
            Class::Auth,
        ),
        (
            "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2.",
            Class::Tls,
        ),
        (
            "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
            Class::Reputation,
        ),
        (
            "452 4.2.2 The email account that you tried to reach is over quota. - gsmtp",
            Class::Recipient,
        ),
        ("554 5.7.1 <x@example.com>: Relay access denied", Class::Policy),
        (
            "554 IP=192.0.2.1 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.)",
            Class::Reputation,
        ),
        ("552 5.3.4 Message size exceeds fixed limit", Class::Policy),
        (
            "421 Too many concurrent SMTP connections from this IP address; please try again later.",
            Class::ConnectionLimit,
        ),
        (
            "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Customer Block list (AS16012607)",
            Class::Policy,
        ),
        (
            "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
            Class::Recipient,
        ),
        (
            "554 5.7.1 Message rejected under suspicion of SPAM; https://ya.cc/1IrBc",
            Class::Content,
        ),
        (
            "421 4.7.0 [GL01] Message from (192.0.2.1) temporarily deferred - 4.16.50",
            Class::Reputation,
        ),
        (
            "553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed.",
            Class::Reputation,
        ),
        (
            "550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo requires all senders to authenticate with either SPF or DKIM.",
            Class::Auth,
        ),
        (
            "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)",
            Class::ConnectionLimit,
        ),
        (
            "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
            Class::Blocklist,
        ),
        (
            "550 5.7.606 Access denied, banned sending IP [192.0.2.1].",
            Class::Blocklist,
        ),
        (
            "550-5.7.1 [192.0.2.1] The IP you're using to send mail is not authorized to send email directly to our servers.",
            Class::Policy,
        ),
        (
            "451 4.7.1 Greylisting in action, please come back later",
            Class::Greylist,
        ),
        (
            "421 mwinf5c03 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR005_104 [104]",
            Class::ConnectionLimit,
        ),
        (
            "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel",
            Class::ConnectionLimit,
        ),
        (
            "550-Requested action not taken: mailbox unavailable 550 invalid DNS PTR resource record",
            Class::Auth,
        ),
        (
            "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied",
            Class::Policy,
        ),
        (
            "452-4.2.2 The recipient's inbox is out of storage space. - gsmtp",
            Class::Recipient,
        ),
        (
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            Class::Recipient,
        ),
        ("530 5.7.0 Must issue a STARTTLS command first", Class::Tls),
        (
            "550 5.7.23 The message was rejected because of Sender Policy Framework violation",
            Class::Auth,
        ),
        ("452 4.3.1 Insufficient system storage", Class::Other),
        // Exim's log escapes a multi-line reply's breaks; they are breaks.
        (
            "450-4.2.1 The user you are trying to contact is receiving mail at a rate that\\n450-4.2.1 prevents additional messages from being delivered. Please resend your\\n450-4.2.1 message at a later time. - gsmtp",
            Class::RateLimit,
        ),
        // A cap on messages per session, or per hour: fewer, or slower.
        (
            "421 Max message per connection reached, closing transmission channel",
            Class::RateLimit,
        ),
        (
            "421 RP-001 (BAY004-MC1F21) Unfortunately, some messages from 198.51.100.7 weren't sent. Please try again. We have limits for how many messages can be sent per hour and per day.",
            Class::RateLimit,
        ),
    ];
    for (text, class) in cases {
        let v = c.classify(None, None, text);
        assert_eq!(v.class, class, "{text:?} fired {}", v.rule);
    }
}

#[test]
fn explain_shows_the_normalized_text_and_the_rules_tried() {
    let c = Classifier::builtin();
    let e = c.explain(
        Some(450),
        Some("4.7.1"),
        "450 4.7.1 <sam@example.com>: Recipient address rejected: Greylisted for 20 minutes",
    );
    assert_eq!(e.class, Class::Greylist);
    assert_eq!(
        e.normalized,
        "<<addr>>: recipient address rejected: greylisted for 20 minutes"
    );
    let (last, matched) = e.tried.last().expect("a rule fired");
    assert_eq!((last.as_str(), *matched), (e.rule.as_str(), true));
    assert!(e.tried[..e.tried.len() - 1].iter().all(|(_, m)| !m));
    let v = c.classify(
        Some(450),
        Some("4.7.1"),
        "450 4.7.1 <sam@example.com>: Recipient address rejected: Greylisted",
    );
    assert_eq!(v.rule, e.rule);
}

#[test]
fn enhanced_status_comes_from_the_text_when_not_given() {
    let rules = r#"
        [[rule]]
        name = "flood"
        class = "rate_limit"
        enhanced = ["4.7.28"]
    "#;
    let c = Classifier::from_toml(rules, "t").expect("loads");
    assert_eq!(c.classify(None, None, "421 4.7.28 x").class, Class::RateLimit);
    assert_eq!(c.classify(Some(421), Some(""), "421-4.7.28 x").class, Class::RateLimit);
    // The caller's status wins over the text's.
    assert_eq!(c.classify(Some(421), Some("4.7.0"), "421 4.7.28 x").class, Class::Other);
}

#[test]
fn user_rules_are_tried_first_and_replace_namesakes() {
    let builtin = Classifier::builtin();
    let text = "450 4.2.0 Recipient address rejected: Greylisted";
    let before = builtin.classify(None, None, text);
    assert_eq!(before.class, Class::Greylist);
    let builtin_len = builtin.len();

    let user = r#"
        [[rule]]
        name = "our-greylist-is-policy"
        class = "policy"
        text = 'greylisted'

        [[rule]]
        name = "too-many-connections"   # same name as a builtin rule: replaces it
        class = "rate_limit"
        code = ["421"]
        text = 'too many connections'
    "#;
    let c = builtin
        .with_user_rules(user, "/etc/deferlog/classify.toml")
        .expect("user rules load");
    assert_eq!(c.len(), builtin_len + 1);
    let v = c.classify(None, None, text);
    assert_eq!((v.class, v.rule), (Class::Policy, "our-greylist-is-policy"));
    let v = c.classify(None, None, "421 4.7.0 Error: too many connections from 192.0.2.1");
    assert_eq!((v.class, v.rule), (Class::RateLimit, "too-many-connections"));
    // Replies the user did not mention still reach the builtin rules.
    assert_eq!(
        c.classify(None, None, "550 5.1.1 <a@b>: user unknown").class,
        Class::Recipient
    );
}

fn load_err(src: &str) -> RulesError {
    Classifier::from_toml(src, "rules/bad.toml").expect_err("must not load")
}

#[test]
fn bad_rule_files_name_origin_rule_and_key() {
    let ok = "[[rule]]\nname = \"fine\"\nclass = \"other\"\ntext = 'x'\n";
    let cases = [
        (
            format!("{ok}[[rule]]\nname = \"broken\"\nclass = \"other\"\ntext = '(unclosed'\n"),
            "rule #2 (broken): key `text`: bad regex",
        ),
        (
            "[[rule]]\nname = \"weird\"\nclass = \"throttled\"\ntext = 'x'\n".to_owned(),
            "rule #1 (weird): key `class`: unknown class \"throttled\"",
        ),
        (
            "[[rule]]\nname = \"dead\"\nclass = \"expired\"\ntext = 'x'\n".to_owned(),
            "rule #1 (dead): key `class`: unknown class \"expired\"",
        ),
        (
            "[[rule]]\nname = \"typo\"\nclass = \"other\"\ntexts = 'x'\n".to_owned(),
            "rule #1 (typo): unknown key `texts`",
        ),
        (
            "[[rule]]\nname = \"empty\"\nclass = \"other\"\n".to_owned(),
            "rule #1 (empty): no condition",
        ),
        (
            "[[rule]]\nname = \"old\"\nclass = \"reputation\"\ntext = '<user>@rx\\.t-online'\n".to_owned(),
            "rule #1 (old): key `text`: `<user>` no longer appears",
        ),
        (
            "[[rule]]\nname = \"c\"\nclass = \"other\"\ncode = [\"4x\"]\n".to_owned(),
            "rule #1 (c): key `code`: \"4x\"",
        ),
        (
            "[[rule]]\nname = \"e\"\nclass = \"other\"\nenhanced = [\"4.7.1.\"]\n".to_owned(),
            "rule #1 (e): key `enhanced`: \"4.7.1.\"",
        ),
        (
            "[[rule]]\nname = \"t\"\nclass = 4\ntext = 'x'\n".to_owned(),
            "rule #1 (t): key `class`: expected a string, found integer",
        ),
        (
            "[[rule]]\nclass = \"other\"\ntext = 'x'\n".to_owned(),
            "rule #1 (unnamed): missing key `name`",
        ),
        (
            "[[rule]]\nname = \"Not_Kebab\"\nclass = \"other\"\ntext = 'x'\n".to_owned(),
            "rule #1 (Not_Kebab): key `name`",
        ),
        (
            format!("{ok}{ok}"),
            "rule #2 (fine): key `name`: already used by rule #1",
        ),
        ("[[rules]]\nname = \"a\"\n".to_owned(), "unknown field `rules`"),
        ("[[rule]\n".to_owned(), "rules/bad.toml: "),
    ];
    for (src, want) in cases {
        let err = load_err(&src).to_string();
        assert!(err.starts_with("rules/bad.toml: "), "{err}");
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }
    assert!(matches!(
        load_err("[[rule]]\nname = \"x\"\nclass = \"other\"\ntext = '('\n"),
        RulesError::BadRegex { index: 1, .. }
    ));
}

#[test]
fn user_rule_errors_name_the_user_file() {
    let err = Classifier::builtin()
        .with_user_rules(
            "[[rule]]\nname = \"mine\"\nclass = \"other\"\ntext = '['\n",
            "/etc/deferlog/classify.toml",
        )
        .expect_err("bad regex");
    let msg = err.to_string();
    assert!(
        msg.starts_with("/etc/deferlog/classify.toml: rule #1 (mine): key `text`: bad regex"),
        "{msg}"
    );
}

#[test]
fn integer_codes_and_single_strings_are_accepted() {
    let rules = "[[rule]]\nname = \"a\"\nclass = \"policy\"\ncode = [550, \"4\"]\nenhanced = \"5.7.\"\n";
    let c = Classifier::from_toml(rules, "t").expect("loads");
    assert_eq!(c.classify(Some(550), Some("5.7.1"), "x").class, Class::Policy);
    assert_eq!(c.classify(Some(554), Some("5.7.1"), "x").class, Class::Other);
}

#[test]
fn non_ascii_letters_match_literally_and_fold_through_normalization() {
    let rules = "[[rule]]\nname = \"de-quota\"\nclass = \"recipient\"\ntext = 'speicherplatz .*überschritten'\n";
    let c = Classifier::from_toml(rules, "t").expect("loads");
    assert_eq!(
        c.classify(Some(422), None, "422 Speicherplatz des Kontos ÜBERSCHRITTEN")
            .class,
        Class::Recipient
    );
    assert_eq!(
        c.classify(Some(422), None, "422 Speicherplatz des Kontos ueberschritten")
            .class,
        Class::Other
    );
}
