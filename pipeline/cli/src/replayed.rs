//! Which inputs an archive has already taken from `replay`, so that the same log
//! replayed again (under any name, plain or gzip) is refused instead of counted twice.
//!
//! An input is known by the first lines of its content (at least [`PREFIX`] bytes
//! once decompressed): a rotated `mail.log` → `mail.log.1.gz` keeps them, and so does
//! a log that has grown since it was replayed — whose first lines would be counted
//! twice just the same. Each successful replay stores its inputs' fingerprints in
//! `OUT/_state/replayed/RUN.json`; a failed one stores nothing (its files are removed
//! too). stdin is not fingerprinted: it cannot be read twice to check.
//!
//! Owns only those manifest files; it never reads or writes the archive's data.

use crate::input::{self, ByteCounter};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// How much of an input names it: a few hundred log lines.
const PREFIX: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// SipHash-1-3 (128 bits, zero key) of the first whole lines.
    pub hash: String,
    /// How many bytes of content it covers.
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    input: String,
    fingerprint: Fingerprint,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    run: String,
    inputs: Vec<Entry>,
}

fn dir(out: &Path) -> PathBuf {
    out.join("_state").join("replayed")
}

/// The fingerprint of a file's content; `None` for stdin and for an empty input.
pub fn fingerprint(path: &str) -> Result<Option<Fingerprint>> {
    if path == "-" {
        return Ok(None);
    }
    let mut input = input::open(path, &ByteCounter::default())?;
    let mut h = SipHasher13::new_with_keys(0, 0);
    let mut bytes = 0;
    while bytes < PREFIX
        && let Some(line) = input.next_line().with_context(|| format!("reading input {path}"))?
    {
        h.write(line);
        bytes += line.len();
    }
    Ok((bytes > 0).then(|| Fingerprint {
        hash: format!("{:032x}", h.finish128().as_u128()),
        bytes: bytes as u64,
    }))
}

/// The inputs that `out` already holds, by fingerprint: (run, the input's name then).
fn known(out: &Path) -> Result<Vec<(Fingerprint, String, String)>> {
    let d = dir(out);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", d.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e.with_context(|| format!("reading {}", d.display()))?.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let m: Manifest =
            serde_json::from_str(&text).with_context(|| format!("{}: not a replay manifest", p.display()))?;
        out.extend(m.inputs.into_iter().map(|i| (i.fingerprint, m.run.clone(), i.input)));
    }
    Ok(out)
}

/// The inputs' fingerprints, after refusing any that `out` already holds (unless
/// `again`).
pub fn check(out: &Path, inputs: &[String], again: bool) -> Result<Vec<(String, Fingerprint)>> {
    let mut prints = Vec::new();
    for p in inputs {
        if let Some(f) = fingerprint(p)? {
            prints.push((p.clone(), f));
        }
    }
    if again {
        return Ok(prints);
    }
    let known = known(out)?;
    for (p, f) in &prints {
        if let Some((_, run, then)) = known.iter().find(|(k, _, _)| k == f) {
            anyhow::bail!(
                "input {p} begins as {then} did, which replay {run} already added to {}: its lines would be \
                 counted twice. Replay only the logs not read yet (rotated ones keep their first lines), use \
                 another --out, or give --again to add it anyway",
                out.display()
            );
        }
    }
    Ok(prints)
}

/// Records that run `run` added these inputs to `out` (written whole, then renamed).
pub fn record(out: &Path, run: &str, prints: Vec<(String, Fingerprint)>) -> Result<()> {
    if prints.is_empty() {
        return Ok(());
    }
    let d = dir(out);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let m = Manifest {
        run: run.to_owned(),
        inputs: prints
            .into_iter()
            .map(|(input, fingerprint)| Entry { input, fingerprint })
            .collect(),
    };
    let path = d.join(format!("{run}.json"));
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&m).context("encoding the replay manifest")?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(p: &Path, text: &str) {
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn one_content_has_one_fingerprint_plain_or_gzip_and_another_differs() {
        let d = tempfile::tempdir().expect("tmp");
        let log = "Nov  8 10:00:00 mta postfix/smtp[1]: ABC: to=<a@b.c>, status=sent\n".repeat(2000);
        let plain = d.path().join("mail.log");
        write(&plain, &log);
        let gz = d.path().join("mail.log.1.gz");
        let mut enc =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).expect("gz"), flate2::Compression::fast());
        enc.write_all(log.as_bytes()).expect("gz");
        enc.finish().expect("gz");
        let grown = d.path().join("grown.log");
        write(
            &grown,
            &format!("{log}Nov  8 11:00:00 mta postfix/smtp[1]: DEF: more\n"),
        );
        let other = d.path().join("other.log");
        write(&other, &log.replacen("ABC", "ABD", 1));
        let f = |p: &Path| fingerprint(p.to_str().expect("utf-8")).expect("fingerprint");
        let first = f(&plain).expect("some");
        assert!(
            first.bytes >= PREFIX as u64 && first.bytes < PREFIX as u64 + 100,
            "{first:?}"
        );
        assert_eq!(f(&gz), Some(first.clone()));
        assert_eq!(f(&grown), Some(first.clone()), "the first lines are what was counted");
        assert_ne!(f(&other), Some(first));
        let empty = d.path().join("empty.log");
        write(&empty, "");
        assert_eq!(f(&empty), None);
        assert_eq!(fingerprint("-").expect("stdin"), None);
    }

    #[test]
    fn a_recorded_input_is_refused_unless_again() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("archive");
        let log = d.path().join("a.log");
        write(&log, "one line\n");
        let other = d.path().join("b.log");
        write(&other, "another line\n");
        let inputs = |p: &Path| vec![p.to_str().expect("utf-8").to_owned()];
        let prints = check(&out, &inputs(&log), false).expect("nothing recorded yet");
        record(&out, "run-1", prints).expect("record");
        let e = format!("{:#}", check(&out, &inputs(&log), false).unwrap_err());
        assert!(
            e.contains("run-1") && e.contains("a.log") && e.contains("--again"),
            "{e}"
        );
        assert_eq!(check(&out, &inputs(&log), true).expect("again").len(), 1);
        assert_eq!(check(&out, &inputs(&other), false).expect("another log").len(), 1);
    }
}
