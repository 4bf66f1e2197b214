//! Junk lines: present at the configured rate, never counted, and without
//! effect on the traffic underneath.

use super::{big, is_junk, lines, read_back, run, truth_map};
use crate::GenConfig;

#[test]
fn junk_comes_at_the_configured_rate_and_is_never_counted() {
    let (out, _) = big();
    let junk = lines(out).filter(|l| is_junk(l)).count();
    // 1000 per million of ~300k lines: 300, Poisson sd ~17.
    assert!((200..=420).contains(&junk), "{junk}");

    let cfg = GenConfig {
        lines: 20_000,
        junk_per_million: 50_000,
        ..GenConfig::default()
    };
    let (noisy, truth) = run(cfg.clone());
    let junk = lines(&noisy).filter(|l| is_junk(l)).count();
    assert!((700..=1400).contains(&junk), "{junk}");
    assert!(lines(&noisy).any(|l| l.is_empty()));
    assert!(lines(&noisy).any(|l| std::str::from_utf8(l).is_err()));
    assert_eq!(read_back(&noisy, 2026), truth_map(&truth));
    // Junk is drawn from its own stream: the traffic underneath is unchanged.
    let (clean, clean_truth) = run(GenConfig {
        junk_per_million: 0,
        ..cfg
    });
    assert!(!lines(&clean).any(is_junk));
    assert!(lines(&clean).eq(lines(&noisy).filter(|l| !is_junk(l))));
    assert_eq!(clean_truth, truth);
}
