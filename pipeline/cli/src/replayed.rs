//! Which inputs an archive has already taken from `replay`, so that the same log
//! replayed again (under any name, plain or compressed) is refused instead of counted twice.
//!
//! An input is known by its first whole lines (at least [`PREFIX`] bytes once
//! decompressed, or all of a shorter file): a rotated `mail.log` → `mail.log.1.gz`
//! keeps them, and so does a log that has grown since it was replayed, whose first
//! lines would be counted twice just the same. A new input matches a recorded one when
//! it begins with the same lines: its hash at the recorded length equals the recorded
//! hash. Each successful replay records the inputs in which it found events in
//! `OUT/_state/replayed/RUN.json`: written before the run (so a directory that cannot
//! take it fails before anything is added) and named into place after it; a failed
//! run records nothing (its files are removed too). Only regular files are known:
//! stdin, pipes and devices cannot be read twice to check.
//!
//! Owns only those manifest files; it never reads or writes the archive's data.

use crate::engine::remove_with_empty_dirs;
use crate::input::{self, ByteCounter};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// How much of an input names it: a few hundred log lines.
const PREFIX: u64 = 64 * 1024;

/// Shorter inputs, and inputs of one line, are not known at all: a PowerMTA file of a
/// quiet hour (its header alone, however long) is the same as the next one, and
/// neither holds anything to count twice.
const MIN_BYTES: u64 = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fingerprint {
    /// SipHash-1-3 (128 bits, zero key) of the first whole lines, hex.
    hash: String,
    /// How many bytes of content it covers.
    bytes: u64,
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
    /// The `--format` (or config `format`) the run read its inputs as; absent in
    /// records written before 2026-12-07.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    inputs: Vec<Entry>,
}

/// One input an earlier replay took.
struct Taken {
    fingerprint: Fingerprint,
    run: String,
    /// Its name then.
    input: String,
    format: Option<String>,
}

/// An input's first lines: its hash at each line end up to [`PREFIX`].
#[derive(Debug)]
struct Prefix {
    ends: Vec<(u64, String)>,
}

impl Prefix {
    /// The fingerprint recorded for it: the hash at its last line end read.
    fn fingerprint(&self) -> Option<Fingerprint> {
        let (bytes, hash) = self.ends.last()?;
        Some(Fingerprint {
            hash: hash.clone(),
            bytes: *bytes,
        })
    }

    /// Whether it begins with the lines `f` was taken of.
    fn begins_as(&self, f: &Fingerprint) -> bool {
        self.ends
            .binary_search_by_key(&f.bytes, |(b, _)| *b)
            .is_ok_and(|i| self.ends[i].1 == f.hash)
    }
}

/// The first lines of a regular file; `None` for anything else (stdin, a pipe) and
/// for a file shorter than [`MIN_BYTES`].
fn prefix(path: &str) -> Result<Option<Prefix>> {
    if path == "-" || !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let mut input = input::open(path, &ByteCounter::default())?;
    let mut h = SipHasher13::new_with_keys(0, 0);
    let (mut bytes, mut ends) = (0u64, Vec::new());
    while bytes < PREFIX
        // The error names the input and the line.
        && let Some(line) = input.next_line()?
    {
        h.write(line);
        bytes += line.len() as u64;
        // A last line without its end may still be being written: the file is known
        // by the lines before it, which a later, longer copy begins with too.
        if line.ends_with(b"\n") {
            ends.push((bytes, format!("{:032x}", h.finish128().as_u128())));
        }
    }
    let known = ends.len() >= 2 && ends.last().is_some_and(|(b, _)| *b >= MIN_BYTES);
    Ok(known.then_some(Prefix { ends }))
}

fn dir(out: &Path) -> PathBuf {
    out.join("_state").join("replayed")
}

fn record_path(out: &Path, run: &str) -> PathBuf {
    dir(out).join(format!("{run}.json"))
}

/// `run`'s record wherever it is: in place, or still under a temporary name.
pub(crate) fn record_files(out: &Path, run: &str) -> Vec<PathBuf> {
    let path = record_path(out, run);
    [
        path.with_extension("json.tmp"),
        path.with_extension("json.subset.tmp"),
        path,
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect()
}

/// What `out` has recorded.
fn known(out: &Path) -> Result<Vec<Taken>> {
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
        out.extend(m.inputs.into_iter().map(|i| Taken {
            fingerprint: i.fingerprint,
            run: m.run.clone(),
            input: i.input,
            format: m.format.clone(),
        }));
    }
    Ok(out)
}

/// A run's inputs, to be recorded once it has succeeded: the manifest is written
/// under a temporary name now and dropped unless [`Pending::commit`] names it.
#[derive(Debug)]
pub struct Pending {
    tmp: Option<PathBuf>,
    path: PathBuf,
    manifest: Manifest,
    /// The archive: directories made for the record up to it go with an unused one.
    out: PathBuf,
}

impl Pending {
    /// The run succeeded: the inputs in which it found events are recorded, not the
    /// others (read with a wrong `--format`, say: they must be welcome again). On an
    /// error the manifest is left beside where it belongs, under the `.tmp` name the
    /// error gives.
    pub fn commit(mut self, found_events_in: impl Fn(&str) -> bool) -> Result<()> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        let all = self.manifest.inputs.len();
        self.manifest.inputs.retain(|e| found_events_in(&e.input));
        if self.manifest.inputs.is_empty() {
            remove_with_empty_dirs(&tmp, &self.out);
            return Ok(());
        }
        let rename = |from: &Path| {
            std::fs::rename(from, &self.path)
                .with_context(|| format!("renaming {} to {}", from.display(), self.path.display()))
        };
        // The fewer inputs go to a file of their own, and the whole record goes only
        // once they are in place. A subset that cannot be written leaves the whole
        // record: refusing an input later (there is --again) is better than counting
        // one twice.
        if self.manifest.inputs.len() < all {
            let subset = self.path.with_extension("json.subset.tmp");
            if write_synced(&subset, &self.manifest).is_ok() {
                rename(&subset)?;
                let _ = std::fs::remove_file(&tmp);
                return Ok(());
            }
            let _ = std::fs::remove_file(&subset);
        }
        rename(&tmp)
    }
}

/// Writes `m` to `path` and syncs it: a crash must not leave an empty record, named
/// into place later, that every later replay would stop at.
fn write_synced(path: &Path, m: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(m).context("encoding the replay manifest")?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// A failed run records nothing: its manifest goes, with the directories made for it.
impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            remove_with_empty_dirs(&tmp, &self.out);
        }
    }
}

/// Refuses inputs that `out` already took, or that begin as another input of this
/// run does (unless `again`); returns the run's record (inputs read as `format`), not
/// yet in place.
pub fn check(out: &Path, run: &str, inputs: &[String], format: &str, again: bool) -> Result<Pending> {
    let mut prefixes = Vec::new();
    for p in inputs {
        if let Some(prefix) = prefix(p)? {
            prefixes.push((p, prefix));
        }
    }
    if !again {
        let known = known(out)?;
        let mut refused = Vec::new();
        let mut other_format = false;
        for (i, (p, prefix)) in prefixes.iter().enumerate() {
            if let Some(t) = known.iter().find(|t| prefix.begins_as(&t.fingerprint)) {
                let mut why = format!("{p} begins as {} did, which replay {} added", t.input, t.run);
                // A log of several MTAs may have been read for one of them before.
                if let Some(then) = t.format.as_deref().filter(|f| *f != format) {
                    why.push_str(&format!(" reading it as format `{then}`"));
                    other_format = true;
                }
                refused.push(why);
            } else if let Some((q, _)) = prefixes[..i].iter().find(|(_, other)| {
                other.fingerprint().is_some_and(|f| prefix.begins_as(&f))
                    || prefix.fingerprint().is_some_and(|f| other.begins_as(&f))
            }) {
                refused.push(format!("{p} begins as {q} does"));
            }
        }
        if !refused.is_empty() {
            anyhow::bail!(
                "{}: their lines would be counted twice in {}. Replay only the logs not read yet (rotated ones \
                 keep their first lines), use another --out, or give --again to add them anyway{}",
                refused.join("; "),
                out.display(),
                if other_format {
                    " (a log read before as another format: --again adds what this format reads, and counts \
                     twice only the lines both formats read)"
                } else {
                    ""
                }
            );
        }
    }
    let d = dir(out);
    let path = record_path(out, run);
    let m = Manifest {
        run: run.to_owned(),
        format: Some(format.to_owned()),
        inputs: prefixes
            .iter()
            .filter_map(|(p, prefix)| {
                prefix.fingerprint().map(|fingerprint| Entry {
                    input: (*p).clone(),
                    fingerprint,
                })
            })
            .collect(),
    };
    if m.inputs.is_empty() {
        return Ok(Pending {
            tmp: None,
            path,
            manifest: m,
            out: out.to_path_buf(),
        });
    }
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let tmp = path.with_extension("json.tmp");
    write_synced(&tmp, &m)?;
    Ok(Pending {
        tmp: Some(tmp),
        path,
        manifest: m,
        out: out.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(p: &Path, text: &str) {
        std::fs::write(p, text).expect("write");
    }

    fn name(p: &Path) -> String {
        p.to_str().expect("utf-8").to_owned()
    }

    const LINE: &str = "Nov  8 10:00:00 mta postfix/smtp[1]: ABC: to=<a@b.c>, status=sent\n";

    #[test]
    fn one_content_is_known_plain_or_gzip_grown_or_not_and_another_is_not() {
        let d = tempfile::tempdir().expect("tmp");
        let log = LINE.repeat(2000);
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
        let p = |p: &Path| prefix(&name(p)).expect("read").expect("long enough");
        let first = p(&plain).fingerprint().expect("some");
        assert!(
            first.bytes >= PREFIX && first.bytes < PREFIX + LINE.len() as u64,
            "{first:?}"
        );
        assert_eq!(p(&gz).fingerprint(), Some(first.clone()));
        assert!(p(&grown).begins_as(&first), "the first lines are what was counted");
        assert!(!p(&other).begins_as(&first));
        // A log first replayed short, then grown: known by the short one's length.
        let short = d.path().join("short.log");
        write(&short, &LINE.repeat(20));
        let short = p(&short).fingerprint().expect("some");
        assert!(short.bytes < PREFIX);
        assert!(p(&plain).begins_as(&short));
        // A last line still being written: known by the lines before it.
        let live = d.path().join("live.log");
        write(
            &live,
            &format!("{}Nov  8 10:00:00 mta postfix/smtp[1]: ABC: to=<a@b", LINE.repeat(20)),
        );
        assert!(p(&plain).begins_as(&p(&live).fingerprint().expect("some")));
        // Too short to know, one line however long, stdin and pipes: not known at all.
        let tiny = d.path().join("acct-header.csv");
        write(&tiny, "type,timeLogged,orig,rcpt\n");
        assert!(prefix(&name(&tiny)).expect("read").is_none());
        let header = d.path().join("acct-long-header.csv");
        write(&header, &format!("type,timeLogged{}\n", ",header_x".repeat(200)));
        assert!(prefix(&name(&header)).expect("read").is_none());
        assert!(prefix("-").expect("stdin").is_none());
        assert!(prefix("/dev/null").expect("device").is_none());
    }

    #[test]
    fn a_recorded_input_is_refused_unless_again_and_a_run_without_events_records_nothing() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("archive");
        let (a, b, copy) = (
            d.path().join("a.log"),
            d.path().join("b.log"),
            d.path().join("copy.log"),
        );
        write(&a, &LINE.repeat(40));
        write(&b, &LINE.replace("ABC", "XYZ").repeat(40));
        write(&copy, &LINE.repeat(40));
        // Nothing recorded while the run goes, nor after one that found no events.
        let pending = check(&out, "run-0", &[name(&a)], "auto", false).expect("nothing recorded yet");
        assert!(known(&out).expect("known").is_empty());
        pending.commit(|_| false).expect("commit");
        assert!(known(&out).expect("known").is_empty());
        // A failed run (dropped, never committed) records nothing either.
        drop(check(&out, "run-f", &[name(&a)], "auto", false).expect("check"));
        assert!(known(&out).expect("known").is_empty());
        check(&out, "run-1", &[name(&a)], "auto", false)
            .expect("check")
            .commit(|_| true)
            .expect("commit");
        let e = format!(
            "{:#}",
            check(&out, "run-2", &[name(&b), name(&copy)], "auto", false).unwrap_err()
        );
        assert!(
            e.contains("copy.log begins as") && e.contains("a.log") && e.contains("run-1") && e.contains("--again"),
            "{e}"
        );
        assert!(!e.contains("b.log"), "{e}");
        check(&out, "run-3", &[name(&copy)], "auto", true)
            .expect("again")
            .commit(|_| true)
            .expect("commit");
        check(&out, "run-4", &[name(&b)], "auto", false)
            .expect("another log")
            .commit(|_| true)
            .expect("commit");
        // Of a run's inputs, only those that gave events are recorded.
        let (c, e) = (d.path().join("c.log"), d.path().join("e.log"));
        write(&c, &LINE.replace("ABC", "CCC").repeat(40));
        write(&e, &LINE.replace("ABC", "EEE").repeat(40));
        let (cn, en) = (name(&c), name(&e));
        check(&out, "run-6", &[cn.clone(), en.clone()], "auto", false)
            .expect("new logs")
            .commit(|input| input == cn)
            .expect("commit");
        let same = format!(
            "{:#}",
            check(&out, "run-7", std::slice::from_ref(&cn), "auto", false).unwrap_err()
        );
        assert!(!same.contains("reading it as format"), "{same}");
        // Read before as another format: the refusal says which, and what --again does.
        let other = format!(
            "{:#}",
            check(&out, "run-7", std::slice::from_ref(&cn), "exim", false).unwrap_err()
        );
        assert!(
            other.contains("c.log did, which replay run-6 added reading it as format `auto`")
                && other.contains("--again adds what this format reads"),
            "{other}"
        );
        drop(check(&out, "run-8", &[en], "auto", false).expect("not recorded"));
        // Two inputs of one run that begin alike.
        let e = format!(
            "{:#}",
            check(
                &d.path().join("fresh"),
                "run-5",
                &[name(&a), name(&copy)],
                "auto",
                false
            )
            .unwrap_err()
        );
        assert!(e.contains("copy.log begins as") && e.contains("a.log does"), "{e}");
    }
}
