//! The fixed fleet of outbound MTAs: hosts, their Postfix instances, how each
//! host stamps its lines and names its queue files, and the egress map that
//! tells a replay which source IP each instance sends from.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StampStyle {
    /// `Nov  1 08:14:01`: no year, no zone.
    Bsd,
    /// `2026-11-01T08:14:01.123456+00:00`
    Rfc3339,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QidStyle {
    /// Classic uppercase hex, 10–11 characters.
    Short,
    /// `enable_long_queue_ids = yes`: `3mPVKl0Mhjz7sXv`.
    Long,
}

#[derive(Debug)]
pub(crate) struct Host {
    pub name: &'static str,
    pub stamp: StampStyle,
    pub qid: QidStyle,
}

#[derive(Debug)]
pub(crate) struct Instance {
    pub host: usize,
    /// Postfix `syslog_name`; programs log as `NAME/SERVICE`.
    pub name: &'static str,
    /// The source IP a replay attributes to it; `None` when the instance is
    /// left out of the egress map (its rows carry an empty source_ip).
    pub egress_ip: Option<&'static str>,
    /// The address receivers see (they quote it in throttling replies). Equal
    /// to `egress_ip` where the map has one.
    pub wire_ip: &'static str,
}

impl Instance {
    pub(crate) fn source_ip(&self) -> &'static str {
        self.egress_ip.unwrap_or("")
    }
}

pub(crate) const HOSTS: [Host; 3] = [
    Host {
        name: "mta-out1",
        stamp: StampStyle::Bsd,
        qid: QidStyle::Short,
    },
    Host {
        name: "mta-out2",
        stamp: StampStyle::Rfc3339,
        qid: QidStyle::Long,
    },
    Host {
        name: "mta-out3",
        stamp: StampStyle::Bsd,
        qid: QidStyle::Short,
    },
];

pub(crate) const INSTANCES: [Instance; 6] = [
    Instance {
        host: 0,
        name: "postfix-ip1",
        egress_ip: Some("198.51.100.11"),
        wire_ip: "198.51.100.11",
    },
    Instance {
        host: 0,
        name: "postfix-ip2",
        egress_ip: Some("198.51.100.12"),
        wire_ip: "198.51.100.12",
    },
    Instance {
        host: 1,
        name: "postfix-ip3",
        egress_ip: Some("198.51.100.21"),
        wire_ip: "198.51.100.21",
    },
    Instance {
        host: 1,
        name: "postfix-ip4",
        egress_ip: Some("2001:db8:25::22"),
        wire_ip: "2001:db8:25::22",
    },
    // The default instance: deliberately absent from the egress map.
    Instance {
        host: 2,
        name: "postfix",
        egress_ip: None,
        wire_ip: "203.0.113.30",
    },
    // A multi-part syslog_name: programs are `postfix/relay/smtp`.
    Instance {
        host: 2,
        name: "postfix/relay",
        egress_ip: Some("203.0.113.31"),
        wire_ip: "203.0.113.31",
    },
];

/// The instance Gmail singles out for rate limiting (198.51.100.12).
pub(crate) const GMAIL_LIMITED_INSTANCE: usize = 1;

/// Whether the instance's address is IPv6, so it reaches MXes over IPv6.
pub(crate) fn is_v6(instance: usize) -> bool {
    INSTANCES[instance].wire_ip.contains(':')
}

/// The egress map of the generated fleet: (host, instance, source IP) of every
/// mapped instance.
pub fn fleet_egress() -> Vec<(&'static str, &'static str, &'static str)> {
    INSTANCES
        .iter()
        .filter_map(|inst| Some((HOSTS[inst.host].name, inst.name, inst.egress_ip?)))
        .collect()
}

/// The egress map of the generated fleet as deferlog config TOML, so a replay
/// attributes source IPs exactly as the truth does.
pub fn fleet_config_toml() -> String {
    let mut s = String::from("timezone = \"UTC\"\n");
    for (host, instance, ip) in fleet_egress() {
        let _ = write!(
            s,
            "\n[[egress]]\nhost = \"{host}\"\ninstance = \"{instance}\"\nip = \"{ip}\"\n"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_lists_mapped_instances_only() {
        let t = fleet_config_toml();
        assert!(t.starts_with("timezone = \"UTC\"\n"));
        assert_eq!(t.matches("[[egress]]").count(), 5);
        assert!(t.contains("instance = \"postfix/relay\"\nip = \"203.0.113.31\""));
        assert!(t.contains("ip = \"2001:db8:25::22\""));
        assert!(!t.contains("instance = \"postfix\"\n"));
    }
}
