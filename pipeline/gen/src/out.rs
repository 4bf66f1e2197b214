//! Appending numbers to byte buffers without going through `fmt`, which is the
//! bulk of the per-line cost otherwise.

pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Zero-padded to `width` digits.
pub(crate) fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut n = n;
    while n > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = buf.len().saturating_sub(width).min(i);
    out.extend_from_slice(&buf[start..]);
}

/// A duration the way Postfix's `delay=` / `delays=` print it
/// (`log_adhoc.c`): whole seconds from 10 s up, one decimal from 1 s, two
/// significant decimals below 1 s, and `0` below the 10 ms resolution.
pub(crate) fn push_delay(out: &mut Vec<u8>, us: i64) {
    let us = us.max(0) as u64;
    let secs = us / 1_000_000;
    if secs >= 10 {
        push_u64(out, secs);
    } else if secs >= 1 {
        push_u64(out, secs);
        out.push(b'.');
        push_u64(out, (us % 1_000_000) / 100_000);
    } else {
        let centis = us / 10_000;
        if centis == 0 {
            out.push(b'0');
        } else {
            out.extend_from_slice(b"0.");
            out.push(b'0' + (centis / 10) as u8);
            if !centis.is_multiple_of(10) {
                out.push(b'0' + (centis % 10) as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delay(us: i64) -> String {
        let mut v = Vec::new();
        push_delay(&mut v, us);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn delays_print_like_postfix() {
        assert_eq!(delay(0), "0");
        assert_eq!(delay(9_000), "0");
        assert_eq!(delay(80_000), "0.08");
        assert_eq!(delay(100_000), "0.1");
        assert_eq!(delay(510_000), "0.51");
        assert_eq!(delay(6_234_000), "6.2");
        assert_eq!(delay(11_900_000), "11");
        assert_eq!(delay(2_017_000_000), "2017");
    }

    #[test]
    fn padding() {
        let mut v = Vec::new();
        push_padded(&mut v, 7, 2);
        push_padded(&mut v, 0, 3);
        push_padded(&mut v, 123_456, 6);
        push_padded(&mut v, 42, 6);
        assert_eq!(v, b"07000123456000042");
    }
}
