//! The correlation state one `replay` leaves for the next into the same archive, so
//! that logs added day by day (rotated files, replayed as they rotate) read as one log:
//! a recipient deferred in Monday's file and expired in Friday's has its expiry on the
//! MX and IP it was last tried at, and its attempts are numbered on.
//!
//! `OUT/_state/replay-correlation.json` holds each parser thread's state, in thread
//! order. Lines go to a thread by their route key, so a thread's state is only right
//! for the thread that routes the same way: the next replay runs as many parser
//! threads as wrote it, whatever `limits.parser_threads` says. Counts are
//! kept out (each replay reports its own). Written, synced and named into place after
//! the run and its record; a run that fails leaves the file as it was. A file that
//! cannot be read is said and set aside, not a stop: the state only attributes.
//!
//! Owns only that file; it never reads or writes the archive's data.

use anyhow::{Context, Result};
use deferlog_parse::NormalizerState;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carried {
    /// One per parser thread, in order.
    pub parsers: Vec<NormalizerState>,
}

fn path(out: &Path) -> PathBuf {
    out.join("_state").join("replay-correlation.json")
}

/// What the last replay into `out` left, if anything. An unreadable file is renamed
/// aside (`.unreadable`) with a note, and the run starts without it.
pub fn load(out: &Path) -> Option<Carried> {
    let p = path(out);
    let bytes = std::fs::read(&p).ok()?;
    match serde_json::from_slice::<Carried>(&bytes) {
        Ok(c) if !c.parsers.is_empty() => Some(c),
        Ok(_) => None,
        Err(e) => {
            let aside = p.with_extension("json.unreadable");
            let _ = std::fs::rename(&p, &aside);
            crate::say!(
                "deferlog replay: {} could not be read ({e}); moved to {}. This run starts without the \
                 earlier replays' correlation: expiries of recipients tried before it have no MX or IP",
                p.display(),
                aside.display()
            );
            None
        }
    }
}

/// Stores the parsers' states for the next replay into `out`, counts left out.
pub fn store(out: &Path, parsers: Vec<NormalizerState>) -> Result<()> {
    let parsers = parsers.into_iter().map(NormalizerState::without_counts).collect();
    let p = path(out);
    let tmp = p.with_extension("json.tmp");
    let write = || -> Result<()> {
        use std::io::Write;
        let text = serde_json::to_vec(&Carried { parsers }).context("encoding the correlation state")?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        Ok(())
    };
    write()
        .with_context(|| format!("writing {}", p.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}
