//! Who the mail goes to: recipient domains (weighted like a real consumer
//! list plus a long tail of companies), their MX hosts and addresses, and each
//! MX's `mx_group`.
//!
//! Groups are hard-coded, never computed: provider names must equal the
//! classifier's data file, and the tail's registrable domains are written down
//! by whoever invents the host, so the truth does not depend on a suffix list.

use crate::replies::{self, Reply};

#[derive(Debug)]
pub(crate) struct Mx {
    pub host: &'static str,
    pub group: &'static str,
    pub v4: &'static [&'static str],
    /// Non-empty for receivers reachable over IPv6 (Google, Microsoft).
    pub v6: &'static [&'static str],
}

/// Provider families: they share reply texts and pushback habits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Google,
    Microsoft,
    Yahoo,
    Apple,
    Comcast,
    Gmx,
    Orange,
    Telekom,
    MailRu,
    Yandex,
    Tencent,
    Netease,
    Proofpoint,
    Mimecast,
    /// A company running its own MX; may greylist, may go down for an hour.
    Company,
    /// A domain whose MX stopped answering for good: everything expires.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnFail {
    TimedOut,
    Refused,
    NoRoute,
}

impl ConnFail {
    pub(crate) fn text(self) -> &'static str {
        match self {
            ConnFail::TimedOut => "Connection timed out",
            ConnFail::Refused => "Connection refused",
            ConnFail::NoRoute => "No route to host",
        }
    }

    /// How long smtp spends on one MX before giving up on it.
    pub(crate) fn cost_us(self) -> (u64, u64) {
        match self {
            ConnFail::TimedOut => (30_000_000, 30_050_000),
            ConnFail::Refused => (2_000, 60_000),
            ConnFail::NoRoute => (2_900_000, 3_100_000),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Domain {
    pub name: &'static str,
    /// Relative share of recipients.
    pub weight: u32,
    /// In MX preference order.
    pub mxs: &'static [Mx],
    pub kind: Kind,
    /// Greylists a recipient's first delivery.
    pub greylist: bool,
    /// How its connections fail when it is down.
    pub fails: ConnFail,
}

/// The texts one provider family answers with.
#[derive(Debug)]
pub(crate) struct Texts {
    pub sent: &'static str,
    pub no_user: &'static Reply,
    pub full: &'static Reply,
    pub quota: &'static Reply,
    /// A rare permanent content rejection.
    pub content: Option<&'static Reply>,
}

impl Kind {
    pub(crate) fn texts(self) -> &'static Texts {
        use replies::*;
        match self {
            Kind::Google => &Texts {
                sent: sent::GMAIL,
                no_user: &GMAIL_NO_USER,
                full: &GMAIL_FULL,
                quota: &GMAIL_QUOTA,
                content: Some(&GMAIL_SPAM),
            },
            Kind::Microsoft => &Texts {
                sent: sent::MICROSOFT,
                no_user: &MS_NO_USER,
                full: &MS_FULL,
                quota: &MS_QUOTA,
                content: None,
            },
            Kind::Yahoo => &Texts {
                sent: sent::YAHOO,
                no_user: &YAHOO_NO_USER,
                full: &YAHOO_FULL,
                quota: &YAHOO_QUOTA,
                content: None,
            },
            Kind::Apple => &Texts {
                sent: sent::APPLE,
                no_user: &APPLE_NO_USER,
                full: &APPLE_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Comcast => &Texts {
                sent: sent::ACCEPTED,
                no_user: &COMCAST_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Gmx => &Texts {
                sent: sent::GMX,
                no_user: &GMX_NO_USER,
                full: &GMX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Orange => &Texts {
                sent: sent::ACCEPTED,
                no_user: &ORANGE_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Telekom => &Texts {
                sent: sent::TELEKOM,
                no_user: &TELEKOM_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::MailRu => &Texts {
                sent: sent::MAILRU,
                no_user: &MAILRU_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Yandex => &Texts {
                sent: sent::YANDEX,
                no_user: &YANDEX_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Tencent => &Texts {
                sent: sent::QQ,
                no_user: &QQ_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Netease => &Texts {
                sent: sent::NETEASE,
                no_user: &NETEASE_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: Some(&NETEASE_SPAM_BOUNCE),
            },
            Kind::Proofpoint => &Texts {
                sent: sent::PROOFPOINT,
                no_user: &PROOFPOINT_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Mimecast => &Texts {
                sent: sent::MIMECAST,
                no_user: &MIMECAST_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
            Kind::Company | Kind::Dead => &Texts {
                sent: sent::POSTFIX,
                no_user: &POSTFIX_NO_USER,
                full: &POSTFIX_FULL,
                quota: &POSTFIX_QUOTA,
                content: None,
            },
        }
    }
}

macro_rules! mx {
    ($host:literal, $group:literal, [$($v4:literal),*]) => {
        Mx { host: $host, group: $group, v4: &[$($v4),*], v6: &[] }
    };
    ($host:literal, $group:literal, [$($v4:literal),*], [$($v6:literal),*]) => {
        Mx { host: $host, group: $group, v4: &[$($v4),*], v6: &[$($v6),*] }
    };
}

const GMAIL_MXS: &[Mx] = &[
    mx!(
        "gmail-smtp-in.l.google.com",
        "google",
        ["142.250.27.26", "142.250.153.27", "74.125.136.26", "108.177.14.26"],
        ["2a00:1450:4013:c01::1b", "2a00:1450:400c:c0b::1a"]
    ),
    mx!(
        "alt1.gmail-smtp-in.l.google.com",
        "google",
        ["142.250.153.26"],
        ["2a00:1450:4010:c1c::1b"]
    ),
    mx!(
        "alt2.gmail-smtp-in.l.google.com",
        "google",
        ["74.125.200.27"],
        ["2404:6800:4003:c00::1a"]
    ),
    mx!(
        "alt3.gmail-smtp-in.l.google.com",
        "google",
        ["142.250.150.27"],
        ["2a00:1450:4025:401::1b"]
    ),
    mx!(
        "alt4.gmail-smtp-in.l.google.com",
        "google",
        ["142.251.9.27"],
        ["2a00:1450:4025:c03::1a"]
    ),
];
const HOTMAIL_MXS: &[Mx] = &[mx!(
    "hotmail-com.olc.protection.outlook.com",
    "microsoft",
    ["52.101.68.17", "52.101.73.27", "104.47.55.161"],
    ["2a01:111:f403:c201::1", "2a01:111:f403:c202::3"]
)];
const OUTLOOK_MXS: &[Mx] = &[mx!(
    "outlook-com.olc.protection.outlook.com",
    "microsoft",
    ["52.101.11.16", "52.101.42.2"],
    ["2a01:111:f403:c100::2"]
)];
const CONTOSO_MXS: &[Mx] = &[mx!(
    "contoso-example.mail.protection.outlook.com",
    "microsoft",
    ["52.101.64.12", "52.101.65.8"],
    ["2a01:111:f403:c90a::3"]
)];
const YAHOO_MXS: &[Mx] = &[
    mx!("mta5.am0.yahoodns.net", "yahoo", ["67.195.204.72", "98.136.96.74"]),
    mx!("mta6.am0.yahoodns.net", "yahoo", ["67.195.228.94", "98.136.96.91"]),
    mx!("mta7.am0.yahoodns.net", "yahoo", ["98.136.216.22", "66.196.118.34"]),
];
const AOL_MXS: &[Mx] = &[mx!(
    "mx-aol.mail.gm0.yahoodns.net",
    "yahoo",
    ["67.195.204.79", "98.136.96.77"]
)];
const ICLOUD_MXS: &[Mx] = &[
    mx!("mx01.mail.icloud.com", "apple", ["17.57.155.32", "17.57.154.23"]),
    mx!("mx02.mail.icloud.com", "apple", ["17.42.251.62", "17.56.9.31"]),
];
const COMCAST_MXS: &[Mx] = &[
    mx!("mx1a1.comcast.net", "comcast", ["96.103.145.165"]),
    mx!("mx2c1.comcast.net", "comcast", ["96.102.18.146"]),
];
const GMX_MXS: &[Mx] = &[
    mx!("mx00.emig.gmx.net", "gmx", ["212.227.15.9"]),
    mx!("mx01.emig.gmx.net", "gmx", ["212.227.17.5"]),
];
const WEBDE_MXS: &[Mx] = &[
    mx!("mx-ha03.web.de", "gmx", ["212.227.17.8"]),
    mx!("mx-ha02.web.de", "gmx", ["212.227.15.41"]),
];
const ORANGE_MXS: &[Mx] = &[mx!("smtp-in.orange.fr", "orange", ["80.12.242.82", "193.252.22.65"])];
const TONLINE_MXS: &[Mx] = &[mx!("mx00.t-online.de", "telekom", ["194.25.134.8", "194.25.134.72"])];
const MAILRU_MXS: &[Mx] = &[mx!("mxs.mail.ru", "mailru", ["217.69.139.150", "94.100.180.31"])];
const YANDEX_MXS: &[Mx] = &[mx!("mx.yandex.ru", "yandex", ["77.88.21.249", "213.180.204.89"])];
const QQ_MXS: &[Mx] = &[mx!("mx1.qq.com", "tencent", ["183.3.226.35", "157.148.54.34"])];
const NETEASE_MXS: &[Mx] = &[mx!(
    "163mx01.mxmail.netease.com",
    "netease",
    ["220.181.12.7", "220.181.12.11"]
)];
const PPHOSTED_MXS: &[Mx] = &[
    mx!("mx0a-001.pphosted.com", "proofpoint", ["67.231.149.189"]),
    mx!("mx0b-001.pphosted.com", "proofpoint", ["67.231.157.123"]),
];
const MIMECAST_MXS: &[Mx] = &[
    mx!("eu-smtp-inbound-1.mimecast.com", "mimecast", ["195.130.217.221"]),
    mx!("eu-smtp-inbound-2.mimecast.com", "mimecast", ["91.220.42.221"]),
];
const WORKSPACE_MXS: &[Mx] = &[
    mx!(
        "aspmx.l.google.com",
        "google",
        ["142.250.102.27"],
        ["2a00:1450:400c:c0a::1b"]
    ),
    mx!(
        "alt1.aspmx.l.google.com",
        "google",
        ["142.250.153.26"],
        ["2a00:1450:4010:c1c::1a"]
    ),
];
const ACME_MXS: &[Mx] = &[
    mx!("mx1.acme-widgets.com", "acme-widgets.com", ["192.0.2.25"]),
    mx!("mx2.acme-widgets.com", "acme-widgets.com", ["192.0.2.26"]),
];
const SHOP_MXS: &[Mx] = &[mx!("mail.example-shop.co.uk", "example-shop.co.uk", ["192.0.2.41"])];
const FIRMA_MXS: &[Mx] = &[mx!("mx.firma-beispiel.de", "firma-beispiel.de", ["192.0.2.53"])];
const UNI_MXS: &[Mx] = &[mx!(
    "mx01.university-example.ac.jp",
    "university-example.ac.jp",
    ["192.0.2.67"]
)];
const LOJA_MXS: &[Mx] = &[mx!("mx.loja-exemplo.com.br", "loja-exemplo.com.br", ["192.0.2.80"])];
/// A shared hosting MX: its group is the host's registrable domain, not the
/// recipient's.
const HOSTING_MXS: &[Mx] = &[
    mx!("mx.hosting-example.net", "hosting-example.net", ["192.0.2.94"]),
    mx!("mx-backup.hosting-example.net", "hosting-example.net", ["192.0.2.95"]),
];
const DEFUNCT_MXS: &[Mx] = &[mx!("mail.defunct-example.org", "defunct-example.org", ["192.0.2.111"])];

macro_rules! domain {
    ($name:literal, $w:literal, $mxs:ident, $kind:ident) => {
        domain!($name, $w, $mxs, $kind, false, TimedOut)
    };
    ($name:literal, $w:literal, $mxs:ident, $kind:ident, $grey:literal, $fail:ident) => {
        Domain {
            name: $name,
            weight: $w,
            mxs: $mxs,
            kind: Kind::$kind,
            greylist: $grey,
            fails: ConnFail::$fail,
        }
    };
}

pub(crate) const DOMAINS: &[Domain] = &[
    domain!("gmail.com", 300, GMAIL_MXS, Google),
    domain!("googlemail.com", 15, GMAIL_MXS, Google),
    domain!("hotmail.com", 70, HOTMAIL_MXS, Microsoft),
    domain!("outlook.com", 60, OUTLOOK_MXS, Microsoft),
    domain!("contoso-example.com", 8, CONTOSO_MXS, Microsoft),
    domain!("yahoo.com", 80, YAHOO_MXS, Yahoo),
    domain!("aol.com", 20, AOL_MXS, Yahoo),
    domain!("icloud.com", 45, ICLOUD_MXS, Apple),
    domain!("me.com", 8, ICLOUD_MXS, Apple),
    domain!("comcast.net", 20, COMCAST_MXS, Comcast),
    domain!("gmx.de", 35, GMX_MXS, Gmx),
    domain!("web.de", 30, WEBDE_MXS, Gmx),
    domain!("orange.fr", 20, ORANGE_MXS, Orange),
    domain!("t-online.de", 30, TONLINE_MXS, Telekom),
    domain!("mail.ru", 15, MAILRU_MXS, MailRu),
    domain!("yandex.ru", 12, YANDEX_MXS, Yandex),
    domain!("qq.com", 8, QQ_MXS, Tencent),
    domain!("163.com", 6, NETEASE_MXS, Netease),
    domain!("bigcorp-example.com", 10, PPHOSTED_MXS, Proofpoint),
    domain!("lawfirm-example.co.uk", 8, MIMECAST_MXS, Mimecast),
    domain!("startup-example.io", 10, WORKSPACE_MXS, Google),
    domain!("acme-widgets.com", 10, ACME_MXS, Company, false, Refused),
    domain!("example-shop.co.uk", 8, SHOP_MXS, Company, false, TimedOut),
    domain!("firma-beispiel.de", 8, FIRMA_MXS, Company, true, Refused),
    domain!("university-example.ac.jp", 6, UNI_MXS, Company, true, NoRoute),
    domain!("loja-exemplo.com.br", 5, LOJA_MXS, Company, false, TimedOut),
    domain!("boulangerie-example.fr", 4, HOSTING_MXS, Company, false, Refused),
    domain!("verein-beispiel.de", 4, HOSTING_MXS, Company, true, Refused),
    domain!("defunct-example.org", 4, DEFUNCT_MXS, Dead, false, TimedOut),
];

/// The group of a row that names no MX host (an MTA's own hold): the provider whose
/// mailboxes the domain is, as `schemas/mx_groups.toml`'s `domains` list them, else
/// the domain. Written out here rather than read from that file, so that the truth
/// does not come from the code it checks.
pub(crate) fn group_of_domain(domain: &Domain) -> &'static str {
    match domain.name {
        "gmail.com" | "googlemail.com" => "google",
        "hotmail.com" | "outlook.com" => "microsoft",
        "yahoo.com" | "aol.com" => "yahoo",
        "icloud.com" | "me.com" => "apple",
        "comcast.net" => "comcast",
        "gmx.de" | "web.de" => "gmx",
        "orange.fr" => "orange",
        "t-online.de" => "telekom",
        "mail.ru" => "mailru",
        "yandex.ru" => "yandex",
        "qq.com" => "tencent",
        "163.com" => "netease",
        name => name,
    }
}

/// The `mx_group` of an MX host this generator uses, for cross-checks.
#[cfg(test)]
pub(crate) fn group_of(host: &str) -> Option<&'static str> {
    DOMAINS
        .iter()
        .flat_map(|d| d.mxs)
        .find(|m| m.host == host)
        .map(|m| m.group)
}

/// Where the mail comes from: the sending streams and the instances they use.
#[derive(Debug)]
pub(crate) struct Sender {
    pub address: &'static str,
    pub domain: &'static str,
    pub weight: u32,
    pub instances: &'static [usize],
    /// Submitted through smtpd by this client (`None`: local pickup).
    pub client: Option<(&'static str, &'static str)>,
    /// Typical size in bytes.
    pub size: (u64, u64),
}

pub(crate) const SENDERS: &[Sender] = &[
    Sender {
        address: "bounce@news.shop-example.com",
        domain: "news.shop-example.com",
        weight: 35,
        instances: &[0, 1],
        client: Some(("app1.internal", "10.0.0.5")),
        size: (18_000, 95_000),
    },
    Sender {
        address: "noreply@mailer.bank-example.de",
        domain: "mailer.bank-example.de",
        weight: 20,
        instances: &[2, 3],
        client: Some(("app2.internal", "10.0.0.6")),
        size: (4_000, 22_000),
    },
    Sender {
        address: "no-reply@notify.saas-example.io",
        domain: "notify.saas-example.io",
        weight: 15,
        instances: &[5, 2],
        client: None,
        size: (2_500, 9_000),
    },
    Sender {
        address: "newsletter@newsletter.verlag-beispiel.de",
        domain: "newsletter.verlag-beispiel.de",
        weight: 15,
        instances: &[0, 1, 2, 3],
        client: Some(("crm.internal", "10.0.1.20")),
        size: (25_000, 140_000),
    },
    Sender {
        address: "bounce@info.travel-example.fr",
        domain: "info.travel-example.fr",
        weight: 10,
        instances: &[3, 5],
        client: Some(("app1.internal", "10.0.0.5")),
        size: (12_000, 60_000),
    },
    Sender {
        address: "monitoring@ops-example.net",
        domain: "ops-example.net",
        weight: 5,
        instances: &[4],
        client: None,
        size: (1_200, 4_000),
    },
];
