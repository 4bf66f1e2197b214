//! Postfix queue ids, unique per host for the whole run: a per-host counter
//! pushed through a seeded bijection, so ids look random but never repeat.

use crate::fleet::QidStyle;
use crate::rng::mix64;

/// A queue id, stored inline (the longest is 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Qid {
    buf: [u8; 16],
    len: u8,
}

impl Qid {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    fn push(&mut self, b: u8) {
        if usize::from(self.len) < self.buf.len() {
            self.buf[usize::from(self.len)] = b;
            self.len += 1;
        }
    }
}

/// Postfix's long-id alphabet: digits and consonants; `z` is kept out because
/// it separates the time part from the inode part.
const LONG_ALPHABET: &[u8; 51] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy";

/// A bijection on the low `bits` bits (odd multiplies and xor-shifts both
/// invert modulo 2^bits).
fn permute(x: u64, bits: u32, key: u64) -> u64 {
    let mask = (1u64 << bits) - 1;
    let mut x = (x ^ key) & mask;
    for round in 0..3u64 {
        x = x
            .wrapping_mul(0x9E37_79B9_7F4A_7C15 | 1)
            .wrapping_add(mix64(key ^ round))
            & mask;
        x ^= x >> (bits / 2);
    }
    x & mask
}

#[derive(Debug)]
pub(crate) struct QidGen {
    style: QidStyle,
    key: u64,
    counter: u64,
}

impl QidGen {
    pub(crate) fn new(style: QidStyle, seed: u64, host: usize) -> QidGen {
        QidGen {
            style,
            key: mix64(seed ^ mix64(host as u64 + 0x51D)),
            counter: 0,
        }
    }

    /// The next id; `t_us` feeds the time part of long ids (cosmetic only:
    /// uniqueness comes from the counter part).
    pub(crate) fn next(&mut self, t_us: i64) -> Qid {
        let n = self.counter;
        self.counter += 1;
        match self.style {
            QidStyle::Short => short(permute(n, 44, self.key)),
            QidStyle::Long => long(t_us, n, self.key),
        }
    }
}

/// Hex of a 44-bit value, at least 10 digits: injective, so distinct counters
/// give distinct ids of 10 or 11 characters.
fn short(v: u64) -> Qid {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut q = Qid { buf: [0; 16], len: 0 };
    let digits = if v >> 40 != 0 { 11 } else { 10 };
    for i in (0..digits).rev() {
        q.push(HEX[((v >> (4 * i)) & 0xF) as usize]);
    }
    q
}

fn push_base51(q: &mut Qid, mut v: u64, width: usize) {
    let mut tmp = [0u8; 12];
    for slot in tmp.iter_mut().take(width) {
        *slot = LONG_ALPHABET[(v % 51) as usize];
        v /= 51;
    }
    for &b in tmp[..width].iter().rev() {
        q.push(b);
    }
}

/// Seconds (6 chars) and microseconds (4 chars), `z`, then the counter part:
/// 4 chars for the first 2^22 ids of a host, 5 after (different lengths, so
/// still distinct).
fn long(t_us: i64, n: u64, key: u64) -> Qid {
    let mut q = Qid { buf: [0; 16], len: 0 };
    let t = t_us.max(0) as u64;
    push_base51(&mut q, t / 1_000_000, 6);
    push_base51(&mut q, t % 1_000_000, 4);
    q.push(b'z');
    if n < 1 << 22 {
        push_base51(&mut q, permute(n, 22, key), 4);
    } else {
        push_base51(&mut q, permute(n - (1 << 22), 28, key), 5);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn permute_is_a_bijection_on_small_widths() {
        let seen: HashSet<u64> = (0..1 << 12).map(|x| permute(x, 12, 99)).collect();
        assert_eq!(seen.len(), 1 << 12);
    }

    #[test]
    fn ids_are_unique_and_shaped() {
        for style in [QidStyle::Short, QidStyle::Long] {
            let mut g = QidGen::new(style, 7, 0);
            let mut seen = HashSet::new();
            for i in 0..200_000i64 {
                let q = g.next(1_793_491_200_000_000 + i);
                let s = std::str::from_utf8(q.as_bytes()).map(str::to_owned);
                let s = s.unwrap_or_default();
                match style {
                    QidStyle::Short => {
                        assert!(s.len() == 10 || s.len() == 11, "{s}");
                        assert!(s.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
                    }
                    QidStyle::Long => {
                        assert_eq!(s.len(), 15, "{s}");
                        assert_eq!(s.as_bytes()[10], b'z');
                    }
                }
                assert!(seen.insert(s));
            }
        }
    }
}
