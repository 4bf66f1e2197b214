//! Hand-offs: deliveries to something on the sending side rather than to a receiver —
//! Postfix's `content_filter` to amavis on `127.0.0.1:10024`, a DKIM-signing proxy,
//! a second MTA instance on the same host. They are not attempts: counted, a message
//! through a filter would be two attempts from its sending IP, one of them to a
//! "destination" that is the host itself.
//!
//! This module owns which receiving addresses are hand-offs; each parser asks it once
//! per delivery record and decides what a hand-off leaves in its correlation state.

use std::net::IpAddr;
use std::str::FromStr;

/// One address or CIDR range (`127.0.0.0/8`, `::1`, `10.20.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpRangeError {
    #[error("{0:?} is not an IP address or a CIDR range (192.0.2.0/24, 2001:db8::/32)")]
    Syntax(String),
    #[error("{0:?}: the prefix length is longer than the address")]
    Prefix(String),
    #[error("{0:?}: bits are set past the prefix length (did you mean {1}?)")]
    HostBits(String, String),
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip.to_canonical()) {
            (IpAddr::V4(b), IpAddr::V4(a)) => masked(u32::from(a).into(), 32, self.prefix) == u32::from(b).into(),
            (IpAddr::V6(b), IpAddr::V6(a)) => masked(u128::from(a), 128, self.prefix) == u128::from(b),
            _ => false,
        }
    }
}

/// `bits` (an address of `width` bits) with everything past `prefix` cleared.
fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    match width - prefix {
        0 => bits,
        host if host >= 128 => 0,
        host => bits >> host << host,
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let base: IpAddr = addr.parse().map_err(|_| IpRangeError::Syntax(s.to_owned()))?;
        let width = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p.parse::<u8>().map_err(|_| IpRangeError::Syntax(s.to_owned()))?,
        };
        if prefix > width {
            return Err(IpRangeError::Prefix(s.to_owned()));
        }
        // Addresses are compared in their canonical form (IPv4-mapped as IPv4): so is
        // a range written as mapped (`::ffff:10.0.0.0/104`).
        let (base, width, prefix) = match base {
            IpAddr::V6(a) if prefix >= 96 => match a.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), 32, prefix - 96),
                None => (base, width, prefix),
            },
            _ => (base, width, prefix),
        };
        let bits = match base {
            IpAddr::V4(a) => u32::from(a).into(),
            IpAddr::V6(a) => u128::from(a),
        };
        let net = masked(bits, width, prefix);
        if net != bits {
            // `10.1.2.3/8` is most likely a typo for an address or for `10.0.0.0/8`:
            // say so rather than guess which.
            let base = match base {
                IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(net as u32)),
                IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(net)),
            };
            return Err(IpRangeError::HostBits(s.to_owned(), format!("{base}/{prefix}")));
        }
        Ok(IpRange { base, prefix })
    }
}

/// The receiving addresses that are hand-offs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoffs(Vec<IpRange>);

impl Handoffs {
    /// The default: loopback, which no receiver can be.
    pub fn loopback() -> Self {
        Handoffs(LOOPBACK.iter().filter_map(|r| r.parse().ok()).collect())
    }

    pub fn new(ranges: Vec<IpRange>) -> Self {
        Handoffs(ranges)
    }

    /// Whether a receiving IP as a log writes it is a hand-off. Text that is no IP is
    /// not: a receiver stays a receiver unless its address says otherwise.
    pub fn contains(&self, ip: &str) -> bool {
        if self.0.is_empty() {
            return false;
        }
        match ip.parse::<IpAddr>() {
            Ok(ip) => self.0.iter().any(|r| r.contains(ip)),
            Err(_) => false,
        }
    }
}

impl Default for Handoffs {
    fn default() -> Self {
        Handoffs::loopback()
    }
}

/// The ranges of [`Handoffs::loopback`], as configuration spells them.
pub const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1"];

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> IpRange {
        s.parse().expect("range")
    }

    #[test]
    fn ranges_contain_what_their_prefix_covers() {
        let r = range("10.20.0.0/16");
        assert!(r.contains("10.20.255.1".parse().expect("ip")));
        assert!(!r.contains("10.21.0.1".parse().expect("ip")));
        assert!(range("0.0.0.0/0").contains("203.0.113.9".parse().expect("ip")));
        assert!(range("2001:db8::/32").contains("2001:db8:ffff::1".parse().expect("ip")));
        assert!(!range("2001:db8::/32").contains("2001:db9::1".parse().expect("ip")));
        assert!(range("::/0").contains("2a00:1450::1b".parse().expect("ip")));
        // An address alone is a range of one.
        assert!(range("192.0.2.7").contains("192.0.2.7".parse().expect("ip")));
        assert!(!range("192.0.2.7").contains("192.0.2.8".parse().expect("ip")));
        // Families never match each other, except an IPv4-mapped IPv6 address.
        assert!(!range("0.0.0.0/0").contains("::1".parse().expect("ip")));
        assert!(range("127.0.0.0/8").contains("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(range("::ffff:10.0.0.0/104").contains("10.9.8.7".parse().expect("ip")));
        assert!(range("::ffff:10.1.2.3").contains("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(!range("::ffff:10.0.0.0/104").contains("11.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        assert_eq!(
            "mx.example".parse::<IpRange>(),
            Err(IpRangeError::Syntax("mx.example".into()))
        );
        assert_eq!(
            "10.0.0.0/x".parse::<IpRange>(),
            Err(IpRangeError::Syntax("10.0.0.0/x".into()))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<IpRange>(),
            Err(IpRangeError::Prefix("10.0.0.0/33".into()))
        );
        assert_eq!(
            "10.1.2.3/8".parse::<IpRange>(),
            Err(IpRangeError::HostBits("10.1.2.3/8".into(), "10.0.0.0/8".into()))
        );
        assert_eq!(
            "2001:db8::1/32".parse::<IpRange>(),
            Err(IpRangeError::HostBits("2001:db8::1/32".into(), "2001:db8::/32".into()))
        );
    }

    #[test]
    fn loopback_is_the_default_and_only_loopback() {
        let h = Handoffs::default();
        for ip in ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"] {
            assert!(h.contains(ip), "{ip}");
        }
        for ip in [
            "128.0.0.1",
            "10.0.0.1",
            "::2",
            "2607:f8b0:4002:c06::1a",
            "",
            "localhost",
            "private/lmtp",
        ] {
            assert!(!h.contains(ip), "{ip}");
        }
        assert!(!Handoffs::new(Vec::new()).contains("127.0.0.1"));
    }
}
