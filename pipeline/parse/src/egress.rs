//! The egress map: which sending IP an MTA instance on a host uses, for MTAs (Postfix)
//! whose lines do not name it.

use crate::HashMap;

/// One `[[egress]]` entry of the configuration. A missing host or instance matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    pub host: Option<String>,
    pub instance: Option<String>,
    pub ip: String,
}

/// Lookups by (host, instance) without allocating: exact match first, then an entry
/// for the host with any instance, then one for the instance on any host. Host names
/// match in any case, as DNS's do (a syslog host `MTA1` is the entry's `mta1`);
/// instances (Postfix's `syslog_name`) as written.
#[derive(Debug, Clone, Default)]
pub struct EgressMap {
    // host ("" = any) -> instance ("" = any) -> ip
    by_host: HashMap<Box<str>, HashMap<Box<str>, Box<str>>>,
}

impl EgressMap {
    pub fn new(entries: &[Egress]) -> Self {
        let mut by_host: HashMap<Box<str>, HashMap<Box<str>, Box<str>>> = HashMap::default();
        for e in entries {
            by_host
                .entry(e.host.as_deref().unwrap_or("").to_ascii_lowercase().into())
                .or_default()
                .insert(e.instance.as_deref().unwrap_or("").into(), e.ip.as_str().into());
        }
        EgressMap { by_host }
    }

    pub fn lookup(&self, host: &str, instance: &str) -> Option<&str> {
        // Host names are written in lower case nearly always: only the rare other one
        // pays for a copy.
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        let in_host = |h: &str, i: &str| self.by_host.get(h).and_then(|m| m.get(i)).map(|ip| &**ip);
        in_host(host, instance)
            .or_else(|| in_host(host, ""))
            .or_else(|| in_host("", instance))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(host: Option<&str>, instance: Option<&str>, ip: &str) -> Egress {
        Egress {
            host: host.map(Into::into),
            instance: instance.map(Into::into),
            ip: ip.into(),
        }
    }

    #[test]
    fn exact_then_host_then_instance() {
        let m = EgressMap::new(&[
            e(Some("mta1"), Some("postfix-ip1"), "192.0.2.1"),
            e(Some("mta1"), None, "192.0.2.9"),
            e(None, Some("postfix-shared"), "192.0.2.7"),
        ]);
        assert_eq!(m.lookup("mta1", "postfix-ip1"), Some("192.0.2.1"));
        assert_eq!(m.lookup("mta1", "postfix"), Some("192.0.2.9"));
        assert_eq!(m.lookup("mta2", "postfix-shared"), Some("192.0.2.7"));
        assert_eq!(m.lookup("mta2", "postfix"), None);
    }

    #[test]
    fn host_names_match_in_any_case_instances_as_written() {
        let m = EgressMap::new(&[e(Some("Mta1.Example.NET"), Some("postfix-ip1"), "192.0.2.1")]);
        assert_eq!(m.lookup("mta1.example.net", "postfix-ip1"), Some("192.0.2.1"));
        assert_eq!(m.lookup("MTA1.EXAMPLE.NET", "postfix-ip1"), Some("192.0.2.1"));
        assert_eq!(m.lookup("mta1.example.net", "Postfix-IP1"), None);
    }
}
