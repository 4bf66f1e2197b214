//! Seeded randomness: a xoshiro256** stream per concern, seeded through
//! splitmix64, plus a stateless mixer for "is this hour a bad hour" questions.
//!
//! Everything here is integer or basic IEEE arithmetic (no libm), so a seed gives
//! the same bytes on every platform and toolchain, forever.

/// Stateless 64-bit mixer (the splitmix64 finaliser). Used to answer
/// time-window questions as pure functions, so they need no stored state.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes several words into one; order matters.
pub(crate) fn hash(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |acc, &w| mix64(acc ^ mix64(w)))
}

/// A uniform number in [0, 1) from a hash, for pure per-window draws.
pub(crate) fn hash_unit(words: &[u64]) -> f64 {
    to_unit(hash(words))
}

fn to_unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// xoshiro256** (Blackman & Vigna).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Independent streams for one seed: changing how much one concern draws
    /// (say, the junk rate) must not reshuffle the traffic.
    pub(crate) fn new(seed: u64, stream: u64) -> Rng {
        let mut sm = seed ^ mix64(stream.wrapping_add(0xD1B5_4A32_D192_ED03));
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(sm.wrapping_sub(0x9E37_79B9_7F4A_7C15))
        };
        let mut s = [next(), next(), next(), next()];
        if s == [0; 4] {
            // The all-zero state is xoshiro's only fixed point.
            s[0] = 1;
        }
        Rng { s }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, n); 0 when n is 0. Lemire's multiply-shift (the tiny bias
    /// is irrelevant here, and it keeps the draw count fixed per call).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [lo, hi] (inclusive).
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// Uniform index into a slice of length `len` (> 0).
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    pub(crate) fn unit(&mut self) -> f64 {
        to_unit(self.next_u64())
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponentially distributed with the given mean.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        // (0, 1]: never ln(0).
        let u = ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        -mean * ln(u)
    }

    /// Index drawn by weight from a cumulative weight table.
    pub(crate) fn weighted(&mut self, cumulative: &[u32]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0);
        let x = self.below(u64::from(total)) as u32;
        cumulative.partition_point(|&c| c <= x)
    }
}

/// Cumulative sums of weights, for `Rng::weighted`.
pub(crate) fn cumulative(weights: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut acc = 0u32;
    weights
        .into_iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

/// Natural log for x in (0, 1], from basic IEEE operations only: the platform's
/// libm may differ in the last bit between systems, which would break
/// "same seed, same bytes".
fn ln(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    const SQRT2: f64 = std::f64::consts::SQRT_2;
    let bits = x.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > SQRT2 {
        m /= 2.0;
        exp += 1;
    }
    // ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.172: 11 terms reach f64 precision.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    for _ in 0..11 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    exp as f64 * LN2 + 2.0 * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std() {
        for &x in &[1.0, 0.5, 0.1, 1e-9, 0.999_999, 0.707, 0.3333] {
            let ours = ln(x);
            let std = x.ln();
            assert!((ours - std).abs() < 1e-12, "{x}: {ours} vs {std}");
        }
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(7, 1).next_u64(), Rng::new(7, 2).next_u64());
        assert_ne!(Rng::new(7, 1).next_u64(), Rng::new(8, 1).next_u64());
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let cum = cumulative([0, 5, 0, 5]);
        let mut rng = Rng::new(1, 1);
        for _ in 0..1000 {
            let i = rng.weighted(&cum);
            assert!(i == 1 || i == 3);
        }
    }
}
