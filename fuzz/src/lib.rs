//! What every fuzz target checks: bytes in as records of one format, split at
//! newlines; no panic, and every record accounted for exactly once (an event, an
//! expiry line, a skip or a reject).

use deferlog_event::{Origin, OwnedSummary, RejectRow, RejectSink};
use deferlog_parse::{Format, Normalizer, NormalizerConfig};
use std::sync::OnceLock;

struct Discard;

impl RejectSink for Discard {
    fn reject(&mut self, _: &RejectRow<'_>) {}
}

/// Feeds `data` to a fresh normalizer reading `format`.
pub fn run(format: Format, data: &[u8]) {
    // Building the classifier compiles its rules: once per process, not per input.
    static BASE: OnceLock<NormalizerConfig> = OnceLock::new();
    let mut cfg = BASE
        .get_or_init(|| NormalizerConfig::new(1_794_268_800_000_000))
        .clone();
    cfg.format = format;
    cfg.max_queue_ids = 64;
    let mut n = Normalizer::new(cfg);
    let mut events: Vec<OwnedSummary> = Vec::new();
    let lines = data.split(|b| *b == b'\n');
    let mut count = 0u64;
    for line in lines {
        n.process_line(line, Origin::Text("fuzz"), &mut events, &mut Discard);
        count += 1;
    }
    let st = n.stats();
    assert_eq!(st.lines, count);
    assert_eq!(st.lines, st.accounted_lines(), "{st:?}");
    assert!(st.state_size <= 64);
}
