//! MX groups: which provider runs a receiving MX host, and the `mx_group` column of
//! DESIGN.md built on it.
//!
//! ```toml
//! [[group]]
//! name = "google"                           # kebab-case; a metric label value
//! suffixes = ["google.com", "googlemail.com"]
//! domains = ["gmail.com", "googlemail.com"] # mailbox domains it receives for
//! ```
//!
//! A host belongs to a group when it equals one of its suffixes or ends with `.` and
//! the suffix; the longest matching suffix wins. A row with no MX host to go by (an
//! MTA's own hold, a DNS failure, an expiry before any attempt) takes the group whose
//! `domains` hold its recipient domain. A user file adds groups, adds suffixes and
//! domains to a group of the same name, and takes over one another group had: a group
//! that takes over a provider's MX suffixes takes its `domains` too only if it lists
//! them.

use crate::RulesError;
use crate::entries::Entry;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;

const BUILTIN: &str = include_str!("../../../schemas/mx_groups.toml");
const KEYS: &[&str] = &["name", "suffixes", "domains"];

/// Longest DNS name (RFC 1035); longer hosts are not lower-cased for lookup.
const MAX_HOST: usize = 253;

#[derive(Debug, Clone)]
pub struct MxGroups {
    names: Vec<String>,
    /// Suffix (lower-case, no dot at either end) → index into `names`.
    by_suffix: HashMap<String, usize>,
    /// Mailbox domain (lower-case) → index into `names`.
    by_domain: HashMap<String, usize>,
}

/// The top level of a groups file: only `[[group]]` entries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsFile {
    #[serde(default)]
    group: Vec<toml::Table>,
}

struct Group {
    name: String,
    suffixes: Vec<String>,
    domains: Vec<String>,
}

impl MxGroups {
    /// The groups of `schemas/mx_groups.toml`, compiled in.
    pub fn builtin() -> MxGroups {
        MxGroups::from_toml(BUILTIN, "builtin").expect("the builtin MX groups load (tested)")
    }

    /// Groups from a file's text; `origin` (a path) is what errors name.
    pub fn from_toml(src: &str, origin: &str) -> Result<MxGroups, RulesError> {
        let empty = MxGroups {
            names: Vec::new(),
            by_suffix: HashMap::new(),
            by_domain: HashMap::new(),
        };
        empty.with_user_groups(src, origin)
    }

    /// These groups plus a user's, which win where both list the same suffix.
    pub fn with_user_groups(mut self, src: &str, origin: &str) -> Result<MxGroups, RulesError> {
        for group in parse_file(src, origin)? {
            let index = match self.names.iter().position(|n| *n == group.name) {
                Some(i) => i,
                None => {
                    self.names.push(group.name);
                    self.names.len() - 1
                }
            };
            for suffix in group.suffixes {
                self.by_suffix.insert(suffix, index);
            }
            for domain in group.domains {
                self.by_domain.insert(domain, index);
            }
        }
        Ok(self)
    }

    /// The provider group of an MX host, by the longest listed suffix it ends with on
    /// a label boundary (`notgoogle.com` is not `google.com`). A trailing dot is
    /// ignored; hosts are expected lower-case, and upper-case ones are folded on the
    /// stack.
    pub fn provider(&self, mx_host: &str) -> Option<&str> {
        let host = mx_host.strip_suffix('.').unwrap_or(mx_host);
        if host.bytes().any(|c| c.is_ascii_uppercase()) && host.len() <= MAX_HOST {
            let mut buf = [0u8; MAX_HOST];
            let lower = &mut buf[..host.len()];
            lower.copy_from_slice(host.as_bytes());
            lower.make_ascii_lowercase();
            // Lower-casing ASCII bytes of a str keeps it UTF-8.
            return std::str::from_utf8(lower).ok().and_then(|h| self.lookup(h));
        }
        self.lookup(host)
    }

    /// The group whose mailboxes a recipient domain (lower-case) is: `gmail.com` →
    /// `google`. Exact: a company's domain on a provider's MX is known only by its MX.
    pub fn mailbox_provider(&self, domain: &str) -> Option<&str> {
        self.by_domain.get(domain).map(|&i| self.names[i].as_str())
    }

    fn lookup(&self, host: &str) -> Option<&str> {
        let mut rest = host;
        loop {
            if let Some(&i) = self.by_suffix.get(rest) {
                return Some(&self.names[i]);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// The `mx_group` column of DESIGN.md: the provider of the MX, else the MX's
    /// registrable domain (public suffix list), else the recipient domain, else
    /// `unknown`. An MX given as an IP literal, or without a registrable domain
    /// (`localhost`), falls through to the recipient domain: a hop was seen (a
    /// smarthost, say), and its pushback is not the provider's. With no MX at all, a
    /// provider's own mailbox domain gives the provider.
    pub fn mx_group<'a>(&'a self, mx_host: Option<&'a str>, recipient_domain: Option<&'a str>) -> &'a str {
        let host = mx_host
            .map(|h| h.strip_suffix('.').unwrap_or(h))
            .filter(|h| !h.is_empty());
        if let Some(host) = host {
            if let Some(provider) = self.provider(host) {
                return provider;
            }
            // Only under a suffix the list knows: for `mx.bad-tld` the list's
            // catch-all rule would make up a "registrable domain".
            if !is_ip_literal(host)
                && let Some(d) = psl::domain(host.as_bytes())
                && d.suffix().is_known()
                && let Ok(domain) = std::str::from_utf8(d.as_bytes())
            {
                return domain;
            }
            return recipient_domain.filter(|d| !d.is_empty()).unwrap_or("unknown");
        }
        match recipient_domain.filter(|d| !d.is_empty()) {
            Some(d) => self.mailbox_provider(d).unwrap_or(d),
            None => "unknown",
        }
    }
}

fn is_ip_literal(host: &str) -> bool {
    let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let inner = inner.strip_prefix("ipv6:").unwrap_or(inner);
    inner.parse::<IpAddr>().is_ok()
}

fn parse_file(src: &str, origin: &str) -> Result<Vec<Group>, RulesError> {
    let file: GroupsFile = toml::from_str(src).map_err(|cause| RulesError::Toml {
        origin: origin.to_owned(),
        cause,
    })?;
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut domain_owner: HashMap<String, String> = HashMap::new();
    let mut groups = Vec::with_capacity(file.group.len());
    for (position, table) in file.group.into_iter().enumerate() {
        let mut e = Entry::new(origin, "group", position, table, KEYS)?;
        let name = e.kebab_name()?;
        if let Some(&first) = first_of.get(&name) {
            return Err(RulesError::DuplicateName {
                origin: origin.to_owned(),
                kind: "group",
                index: e.index(),
                name,
                first,
            });
        }
        first_of.insert(name.clone(), e.index());
        let raw = e.str_list("suffixes", false)?;
        let raw_domains = e.str_list("domains", false)?;
        if raw.is_empty() && raw_domains.is_empty() {
            return Err(e.bad("suffixes", "no suffixes or domains; list at least one"));
        }
        let mut domains = Vec::new();
        for d in raw_domains {
            let domain = d.trim_matches('.').to_ascii_lowercase();
            if !valid_suffix(&domain) {
                return Err(e.bad("domains", format!("{d:?} is not a domain name")));
            }
            if let Some(other) = domain_owner.insert(domain.clone(), name.clone()) {
                return Err(e.bad("domains", format!("{domain:?} is already in group {other:?}")));
            }
            domains.push(domain);
        }
        let mut suffixes = Vec::with_capacity(raw.len());
        for s in raw {
            let suffix = s.trim_matches('.').to_ascii_lowercase();
            if !valid_suffix(&suffix) {
                return Err(e.bad("suffixes", format!("{s:?} is not a domain name")));
            }
            if let Some(other) = owner.insert(suffix.clone(), name.clone()) {
                return Err(RulesError::DuplicateSuffix {
                    origin: origin.to_owned(),
                    index: e.index(),
                    name,
                    suffix,
                    other,
                });
            }
            suffixes.push(suffix);
        }
        groups.push(Group {
            name,
            suffixes,
            domains,
        });
    }
    Ok(groups)
}

/// Dot-separated non-empty labels of letters, digits, dashes and underscores.
fn valid_suffix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOST
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPS: &str = r#"
        [[group]]
        name = "google"
        suffixes = ["google.com", "googlemail.com"]
        domains = ["gmail.com", "googlemail.com"]

        [[group]]
        name = "microsoft"
        suffixes = ["outlook.com", "olc.protection.outlook.com"]
        domains = ["Outlook.com."]

        [[group]]
        name = "m365"
        suffixes = ["mail.protection.outlook.com"]
    "#;

    fn groups() -> MxGroups {
        MxGroups::from_toml(GROUPS, "test").expect("groups load")
    }

    #[test]
    fn suffixes_match_on_label_boundaries() {
        let g = groups();
        assert_eq!(g.provider("gmail-smtp-in.l.google.com"), Some("google"));
        assert_eq!(g.provider("google.com"), Some("google"));
        assert_eq!(g.provider("alt1.aspmx.l.google.com."), Some("google"));
        assert_eq!(g.provider("notgoogle.com"), None);
        assert_eq!(g.provider("google.com.evil.example"), None);
        assert_eq!(g.provider("com"), None);
        assert_eq!(g.provider(""), None);
    }

    #[test]
    fn the_longest_suffix_wins() {
        let g = groups();
        assert_eq!(g.provider("example-com.mail.protection.outlook.com"), Some("m365"));
        assert_eq!(g.provider("hotmail-com.olc.protection.outlook.com"), Some("microsoft"));
        assert_eq!(g.provider("x.protection.outlook.com"), Some("microsoft"));
    }

    #[test]
    fn upper_case_hosts_are_folded() {
        assert_eq!(groups().provider("ALT1.ASPMX.L.Google.COM"), Some("google"));
    }

    #[test]
    fn user_groups_take_over_suffixes_and_extend_groups() {
        let user = r#"
            [[group]]
            name = "gmail"
            suffixes = ["google.com"]

            [[group]]
            name = "microsoft"
            suffixes = ["mail.protection.outlook.com"]
        "#;
        let g = groups().with_user_groups(user, "user.toml").expect("user groups load");
        assert_eq!(g.provider("aspmx.l.google.com"), Some("gmail"));
        assert_eq!(g.mailbox_provider("gmail.com"), Some("google"));
        let g = g
            .with_user_groups(
                "[[group]]\nname = \"gmail\"\nsuffixes = [\"gmail.com\"]\ndomains = [\"gmail.com\"]\n",
                "more.toml",
            )
            .expect("loads");
        assert_eq!(g.mailbox_provider("gmail.com"), Some("gmail"));
        // Domains alone extend a group.
        let g = g
            .with_user_groups("[[group]]\nname = \"google\"\ndomains = [\"gmail.co.uk\"]\n", "uk.toml")
            .expect("loads");
        assert_eq!(g.mailbox_provider("gmail.co.uk"), Some("google"));
        assert_eq!(g.provider("x.googlemail.com"), Some("google"));
        assert_eq!(g.provider("example-com.mail.protection.outlook.com"), Some("microsoft"));
    }

    #[test]
    fn mx_group_falls_back_from_provider_to_domain_to_recipient() {
        let g = groups();
        assert_eq!(g.mx_group(Some("aspmx.l.google.com"), Some("example.org")), "google");
        assert_eq!(
            g.mx_group(Some("mx1.example.co.uk"), Some("example.org")),
            "example.co.uk"
        );
        assert_eq!(g.mx_group(Some("mx1.example.co.uk."), None), "example.co.uk");
        assert_eq!(
            g.mx_group(Some("10.2.2.85"), Some("continuity.delivery")),
            "continuity.delivery"
        );
        assert_eq!(g.mx_group(Some("2001:db8::1"), Some("example.org")), "example.org");
        assert_eq!(g.mx_group(Some("[10.2.2.85]"), Some("example.org")), "example.org");
        assert_eq!(g.mx_group(Some("localhost"), Some("example.org")), "example.org");
        // A suffix the list does not know gives no registrable domain.
        assert_eq!(g.mx_group(Some("v4net.0.0.1"), Some("example.org")), "example.org");
        assert_eq!(
            g.mx_group(Some("mx.example.notatld"), Some("example.org")),
            "example.org"
        );
        assert_eq!(g.mx_group(None, Some("example.org")), "example.org");
        // With no MX to go by, a provider's own mailbox domain is the provider's; a
        // company's domain is its own, whoever runs its MX.
        assert_eq!(g.mx_group(None, Some("gmail.com")), "google");
        assert_eq!(g.mx_group(Some(""), Some("outlook.com")), "microsoft");
        // A hop that says nothing (a smarthost by IP) is not the provider's.
        assert_eq!(g.mx_group(Some("10.2.2.85"), Some("outlook.com")), "outlook.com");
        assert_eq!(g.mx_group(None, Some("mail.gmail.com")), "mail.gmail.com");
        assert_eq!(
            g.mx_group(Some("mx1.example.co.uk"), Some("gmail.com")),
            "example.co.uk"
        );
        assert_eq!(g.mx_group(Some(""), None), "unknown");
        assert_eq!(g.mx_group(None, None), "unknown");
        assert_eq!(g.mx_group(Some("10.2.2.85"), None), "unknown");
    }

    #[test]
    fn bad_group_files_name_the_group_and_key() {
        let cases = [
            (
                "[[group]]\nname = \"a\"\nsuffix = [\"a.com\"]\n",
                "group #1 (a): unknown key `suffix`",
            ),
            (
                "[[group]]\nname = \"a\"\n",
                "group #1 (a): key `suffixes`: no suffixes or domains",
            ),
            (
                "[[group]]\nname = \"a\"\nsuffixes = [\"a..com\"]\n",
                "group #1 (a): key `suffixes`: \"a..com\"",
            ),
            (
                "[[group]]\nname = \"A\"\nsuffixes = [\"a.com\"]\n",
                "group #1 (A): key `name`",
            ),
            (
                "[[group]]\nname = \"a\"\nsuffixes = [\"a.com\"]\n[[group]]\nname = \"b\"\nsuffixes = [\"A.com\"]\n",
                "group #2 (b): key `suffixes`: \"a.com\" is already in group \"a\"",
            ),
            (
                "[[group]]\nname = \"a\"\nsuffixes = [\"a.com\"]\n[[group]]\nname = \"a\"\nsuffixes = [\"b.com\"]\n",
                "group #2 (a): key `name`: already used by group #1",
            ),
            ("[[groups]]\nname = \"a\"\n", "unknown field `groups`"),
            (
                "[[group]]\nname = \"a\"\nsuffixes = [\"a.com\"]\ndomains = [\"a com\"]\n",
                "group #1 (a): key `domains`: \"a com\" is not a domain name",
            ),
            (
                "[[group]]\nname = \"a\"\nsuffixes = [\"a.com\"]\ndomains = [\"a.com\"]\n[[group]]\nname = \"b\"\nsuffixes = [\"b.com\"]\ndomains = [\"A.com\"]\n",
                "group #2 (b): key `domains`: \"a.com\" is already in group \"a\"",
            ),
        ];
        for (src, want) in cases {
            let err = MxGroups::from_toml(src, "my/groups.toml").expect_err(src).to_string();
            assert!(err.starts_with("my/groups.toml: "), "{err}");
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }
}
