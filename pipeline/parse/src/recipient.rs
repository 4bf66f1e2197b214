//! Recipient addresses: the domain is kept, the local part only as a keyed hash.

use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// Splits `local@Domain` into the keyed hash of the whole address (domain lower-cased,
/// so case variants of one mailbox hash alike) and the lower-cased domain.
///
/// The domain is written into `domain_buf` so the caller can borrow it without a
/// fresh allocation per line.
pub fn split_recipient<'b>(
    key: &SipHasher13,
    address: &str,
    domain_buf: &'b mut String,
) -> (Option<u64>, Option<&'b str>) {
    if address.is_empty() {
        return (None, None);
    }
    let mut h = *key;
    match address.rfind('@') {
        Some(at) if at + 1 < address.len() => {
            let (local, domain) = (&address[..at], &address[at + 1..]);
            domain_buf.clear();
            crate::normalizer::push_lowercase(domain_buf, domain);
            let domain = domain_buf.trim_end_matches('.');
            h.write(local.as_bytes());
            h.write_u8(b'@');
            h.write(domain.as_bytes());
            // `a@.` has no domain worth a column (nor an mx_group fallback).
            (Some(h.finish()), (!domain.is_empty()).then_some(domain))
        }
        _ => {
            h.write(address.as_bytes());
            (Some(h.finish()), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SipHasher13 {
        SipHasher13::new_with_key(&[7; 16])
    }

    #[test]
    fn domain_is_lower_cased_and_local_part_only_hashed() {
        let mut buf = String::new();
        let (h1, d) = split_recipient(&key(), "Alice.Smith@GMail.COM", &mut buf);
        assert_eq!(d, Some("gmail.com"));
        let h1 = h1.expect("hash");
        let mut buf2 = String::new();
        let (h2, _) = split_recipient(&key(), "Alice.Smith@gmail.com", &mut buf2);
        assert_eq!(Some(h1), h2);
        let (h3, _) = split_recipient(&key(), "bob@gmail.com", &mut buf2);
        assert_ne!(Some(h1), h3);
    }

    #[test]
    fn a_non_ascii_domain_is_lower_cased_by_unicode_rules() {
        let mut buf = String::new();
        let (h1, d) = split_recipient(&key(), "jan@BÜCHER.Example.", &mut buf);
        assert_eq!(d, Some("bücher.example"));
        let mut buf2 = String::new();
        let (h2, _) = split_recipient(&key(), "jan@bücher.example", &mut buf2);
        assert_eq!(h1, h2, "case variants of one mailbox hash alike");
    }

    #[test]
    fn hosts_are_lower_cased_by_unicode_rules_without_their_root_dot() {
        use crate::normalizer::lower;
        let mut buf = String::new();
        assert_eq!(lower("MX.BÜCHER.example.", &mut buf), "mx.bücher.example");
        assert_eq!(lower("mx1.Example.NET", &mut buf), "mx1.example.net");
        assert_eq!(lower("mx.bücher.example", &mut buf), "mx.bücher.example");
        assert_eq!(lower("mx.example.", &mut buf), "mx.example");
    }

    #[test]
    fn the_hash_depends_on_the_key() {
        let mut buf = String::new();
        let other = SipHasher13::new_with_key(&[8; 16]);
        let a = split_recipient(&key(), "a@b.example", &mut buf).0;
        let b = split_recipient(&other, "a@b.example", &mut buf).0;
        assert_ne!(a, b);
    }

    #[test]
    fn addresses_without_domain_or_empty_are_handled() {
        let mut buf = String::new();
        assert_eq!(split_recipient(&key(), "", &mut buf), (None, None));
        let (h, d) = split_recipient(&key(), "system", &mut buf);
        assert!(h.is_some());
        assert_eq!(d, None);
    }
}
