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
//! Each input is also recorded with how far it was read (bytes, lines, and its last
//! lines' hash, taken as it was read): a live log replayed again once it has grown,
//! or its rotated copy, compressed or not, continues after that line instead of being
//! refused, and one unchanged since is passed over. Only when every earlier replay of
//! a file beginning so recorded that (records from before 2026-12-07 do not):
//! continuing after a shorter read would count lines twice. One that holds other
//! lines there is refused, naming the line for `replay --from-line`.
//!
//! Owns only those manifest files; it never reads or writes the archive's data.

use crate::engine::{InputCounts, remove_with_empty_dirs};
use crate::input::{self, ByteCounter, InputEnd, Position};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use siphasher::sip128::SipHasher13;
use std::collections::HashMap;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// How much of an input names it: a few hundred log lines.
const PREFIX: u64 = 64 * 1024;

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
    /// How far it was read: plain files only (absent before 2026-12-07).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read: Option<ReadTo>,
}

/// How far a replay read an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadTo {
    /// Bytes read, and the lines in them.
    bytes: u64,
    lines: u64,
    /// The whole lines just before `bytes` (at most [`input::TAIL`] bytes of them): a
    /// file continues what was read only if it holds the same there. None when they
    /// could not be kept (a last line longer than that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tail: Option<Fingerprint>,
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
    read: Option<ReadTo>,
    run: String,
    /// Its name then.
    input: String,
    format: Option<String>,
}

/// An input's first lines: its hash at each line end up to [`PREFIX`].
#[derive(Debug)]
struct Prefix {
    ends: Vec<(u64, String)>,
    /// Of two lines or more: two inputs of one run that begin alike are refused only
    /// then, as a PowerMTA file of a quiet hour (its header alone) is the same as the
    /// next one, and neither holds anything to count twice.
    distinct: bool,
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
/// for one without a whole line.
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
            ends.push((bytes, input::content_hash(&h)));
        }
    }
    let distinct = ends.len() >= 2;
    Ok((!ends.is_empty()).then_some(Prefix { ends, distinct }))
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
            read: i.read,
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
    /// Inputs that continue what earlier replays read: where to read them from.
    pub resume: HashMap<String, Position>,
    /// Inputs earlier replays read to their end as they are now: not to be read.
    pub unchanged: Vec<String>,
    /// What the user is told of those two.
    pub notes: Vec<String>,
}

impl Pending {
    /// The run read `read(input)` of each input (and where reading it ended): writes
    /// the record of those in which it found events and of those it continued, not
    /// the others (read with a wrong `--format`, say: they must be welcome again),
    /// each with how far it was read, beside where it belongs. Before the run's files
    /// are published: a disk too full for the record fails the run with nothing of
    /// it in the archive, rather than leaving a record that cannot say where a grown
    /// log goes on (the file left on an error is the run's to take back).
    pub fn prepare(mut self, read: impl Fn(&str) -> (InputCounts, Option<InputEnd>)) -> Result<Prepared> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(Prepared::default());
        };
        let resume = std::mem::take(&mut self.resume);
        self.manifest.inputs.retain_mut(|e| {
            let (counts, end) = read(&e.input);
            e.read = end.map(|end| ReadTo {
                bytes: end.at.bytes,
                lines: end.at.lines,
                tail: end.tail.map(|(hash, bytes)| Fingerprint { hash, bytes }),
            });
            counts.events > 0 || resume.contains_key(&e.input)
        });
        let out = std::mem::take(&mut self.out);
        if self.manifest.inputs.is_empty() {
            return Ok(Prepared {
                rename: None,
                remove: Some(tmp),
                out,
            });
        }
        // The record as it now is goes to a file of its own; the one written before
        // the run (without how far each input was read) goes once it is in place.
        let last = self.path.with_extension("json.subset.tmp");
        write_synced(&last, &self.manifest)?;
        Ok(Prepared {
            rename: Some((last, std::mem::take(&mut self.path))),
            remove: Some(tmp),
            out,
        })
    }

    /// [`Pending::prepare`], then [`Prepared::commit`]: a run with nothing to publish.
    #[cfg(test)]
    pub fn commit(self, read: impl Fn(&str) -> (InputCounts, Option<InputEnd>)) -> Result<()> {
        self.prepare(read)?.commit()
    }
}

/// A run's record written, to be named into place once its files are published.
#[derive(Debug, Default)]
pub struct Prepared {
    rename: Option<(PathBuf, PathBuf)>,
    remove: Option<PathBuf>,
    out: PathBuf,
}

impl Prepared {
    /// Names the record into place. On an error it is left beside where it belongs,
    /// under the `.tmp` name the error gives.
    pub fn commit(self) -> Result<()> {
        if let Some((from, to)) = &self.rename {
            std::fs::rename(from, to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
        }
        if let Some(tmp) = &self.remove {
            remove_with_empty_dirs(tmp, &self.out);
        }
        Ok(())
    }
}

/// What an input that begins as recorded ones did is to them.
enum Continues<'a> {
    /// It holds more after what `.0` read: read it from `.1`.
    After(&'a Taken, Position),
    /// `.0` read it to its end as it is now; `.1` bytes of a last line without its
    /// end follow.
    Unchanged(&'a Taken, u64),
    /// `.0` read it to line `.1`, and it holds other lines there (rewritten, or cut
    /// by `copytruncate` and written past that length), or (`.2`) ends before.
    Differs(&'a Taken, u64, bool),
    /// `.0` did not record what its last lines were: to line `.1`, if it said how
    /// far (a last line over `TAIL`; none: a record from before 2026-12-07).
    Unrecorded(&'a Taken, Option<u64>),
}

/// What `path` is to the furthest read of `taken` (every earlier replay of an input
/// that began as it does); `None` if none did. A compressed `path` that cannot be
/// read there is an error, as the run would be.
fn continuation<'a>(path: &str, taken: &[&'a Taken]) -> Result<Option<Continues<'a>>> {
    let Some(&first) = taken.first() else {
        return Ok(None);
    };
    let reads: Option<Vec<(&Taken, &ReadTo)>> = taken.iter().map(|t| t.read.as_ref().map(|r| (*t, r))).collect();
    let Some((t, r)) = reads.and_then(|reads| reads.into_iter().max_by_key(|(_, r)| r.bytes)) else {
        return Ok(Some(Continues::Unrecorded(first, None)));
    };
    let Some(tail) = &r.tail else {
        return Ok(Some(Continues::Unrecorded(t, Some(r.lines))));
    };
    let (differs, shorter) = (
        Continues::Differs(t, r.lines, false),
        Continues::Differs(t, r.lines, true),
    );
    let start = Position {
        bytes: r.bytes.saturating_sub(tail.bytes),
        lines: 0,
    };
    let mut input = match input::open_from(path, &ByteCounter::default(), start) {
        Ok(input) => input,
        Err(e) if e.downcast_ref::<std::io::Error>().is_some() => return Err(e),
        // Its content ends before, or a line crosses where the lines read ended.
        Err(_) => return Ok(Some(shorter)),
    };
    let mut h = SipHasher13::new_with_keys(0, 0);
    let mut bytes = 0;
    while bytes < tail.bytes {
        let Some(line) = input.next_line()? else {
            return Ok(Some(shorter));
        };
        h.write(line);
        bytes += line.len() as u64;
    }
    if bytes != tail.bytes || input::content_hash(&h) != tail.hash {
        return Ok(Some(differs));
    }
    Ok(Some(match input.next_line()? {
        Some(_) => Continues::After(
            t,
            Position {
                bytes: r.bytes,
                lines: r.lines,
            },
        ),
        None => Continues::Unchanged(t, input.end().held),
    }))
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
    // A file begun on a full disk is no record: nothing else would remove it.
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })
        .with_context(|| format!("writing {}", path.display()))
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
    let (mut resume, mut unchanged, mut notes) = (HashMap::new(), Vec::new(), Vec::new());
    if !again {
        let known = known(out)?;
        let mut refused = Vec::new();
        let mut other_format = false;
        // Whether --again is the way on: not where a refusal names the line to go on from.
        let mut again_helps = false;
        // The earlier read each input goes on from: two inputs may not go on from one.
        let mut continued: Vec<(&str, &str, &str)> = Vec::new();
        for (i, (p, prefix)) in prefixes.iter().enumerate() {
            // Two inputs of this run that begin alike (a copy beside the log it was
            // copied from): read both, the lines they share would count twice.
            if prefix.distinct
                && let Some((q, _)) = prefixes[..i].iter().find(|(_, other)| {
                    other.distinct
                        && (other.fingerprint().is_some_and(|f| prefix.begins_as(&f))
                            || prefix.fingerprint().is_some_and(|f| other.begins_as(&f)))
                })
            {
                refused.push(format!("{p} begins as {q} does"));
                again_helps = true;
                continue;
            }
            let taken: Vec<&Taken> = known.iter().filter(|t| prefix.begins_as(&t.fingerprint)).collect();
            let (t, lines) = match continuation(p, &taken)? {
                None => continue,
                Some(Continues::After(t, from)) => {
                    notes.push(format!(
                        "{p}: continuing after line {}, where replay {} stopped reading {}",
                        from.lines, t.run, t.input
                    ));
                    resume.insert((*p).clone(), from);
                    (t, from.lines)
                }
                Some(Continues::Unchanged(t, held)) => {
                    let lines = t.read.as_ref().map_or(0, |r| r.lines);
                    let rest = match held {
                        0 => "where it still ends".to_owned(),
                        n => format!("after which it has only a last line without its end ({n} bytes) yet"),
                    };
                    notes.push(format!(
                        "{p}: nothing new: replay {} read {} to line {lines}, {rest}",
                        t.run, t.input
                    ));
                    unchanged.push((*p).clone());
                    (t, lines)
                }
                Some(Continues::Differs(t, lines, shorter)) => {
                    let how = match shorter {
                        true => "ends before it (a copy taken before that read?)",
                        false => "holds other lines there (rewritten, or cut and written again)",
                    };
                    refused.push(format!(
                        "{p} begins as {} did, which replay {} read to line {lines}, but {how} (if its lines \
                         after that one are new, `deferlog replay --from-line {lines} ... {p}` adds them and \
                         records it)",
                        t.input, t.run
                    ));
                    continue;
                }
                Some(Continues::Unrecorded(t, Some(lines))) => {
                    refused.push(format!(
                        "{p} begins as {} did, which replay {} read to line {lines} but could not tell by its \
                         last lines (one over 64 KiB) (`deferlog replay --from-line {lines} ... {p}` adds what \
                         follows that line)",
                        t.input, t.run
                    ));
                    continue;
                }
                Some(Continues::Unrecorded(t, None)) => {
                    again_helps = true;
                    let mut why = format!("{p} begins as {} did, which replay {} added", t.input, t.run);
                    // A log of several MTAs may have been read for one of them before.
                    if let Some(then) = t.format.as_deref().filter(|f| *f != format) {
                        why.push_str(&format!(" reading it as format `{then}`"));
                        other_format = true;
                    }
                    refused.push(why);
                    continue;
                }
            };
            if let Some((_, _, q)) = continued
                .iter()
                .find(|(run, input, _)| *run == t.run && *input == t.input)
            {
                refused.push(format!(
                    "{p} and {q} both go on after line {lines} of what replay {} read",
                    t.run
                ));
                again_helps = true;
            }
            continued.push((&t.run, &t.input, p));
        }
        if !refused.is_empty() {
            let way_on = match again_helps {
                true => {
                    " Replay only the logs not read yet (rotated ones keep their first lines), use another \
                     --out, or give --again to add them anyway"
                }
                false => "",
            };
            anyhow::bail!(
                "{}; read again, their lines would be counted twice in {}.{way_on}{}",
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
                    read: None,
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
            resume,
            unchanged,
            notes,
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
        resume,
        unchanged,
        notes,
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

    /// A run that read `input` as the engine does, from `from` on, and found events.
    fn read_from(input: &str, from: Option<&Position>) -> (InputCounts, Option<InputEnd>) {
        let mut i = input::open_from(input, &ByteCounter::default(), from.copied().unwrap_or_default()).expect("open");
        let mut lines = 0;
        while i.next_line().expect("read").is_some() {
            lines += 1;
        }
        let counts = InputCounts {
            lines,
            events: 1,
            foreign: 0,
        };
        (counts, Some(i.end()))
    }

    fn read_all(input: &str) -> (InputCounts, Option<InputEnd>) {
        read_from(input, None)
    }

    /// A run that found events in an input, recording no more of it (as a record
    /// from before 2026-12-07): what begins as it is refused.
    fn events_only(_: &str) -> (InputCounts, Option<InputEnd>) {
        let counts = InputCounts {
            events: 1,
            ..InputCounts::default()
        };
        (counts, None)
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
        let p = |p: &Path| prefix(&name(p)).expect("read").expect("a whole line");
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
        // Too short to tell from another input of its run, or one line however long
        // (quiet hours' PowerMTA files: their header); stdin and pipes not known at all.
        let tiny = d.path().join("acct-header.csv");
        write(&tiny, "type,timeLogged,orig,rcpt\n");
        assert!(!p(&tiny).distinct);
        let header = d.path().join("acct-long-header.csv");
        write(&header, &format!("type,timeLogged{}\n", ",header_x".repeat(200)));
        assert!(!p(&header).distinct && p(&plain).distinct);
        assert!(prefix("-").expect("stdin").is_none());
        assert!(prefix("/dev/null").expect("device").is_none());
    }

    #[test]
    fn a_record_that_cannot_be_written_fails_the_run_instead_of_recording_it_without_how_far() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("archive");
        let a = d.path().join("a.log");
        write(&a, &LINE.repeat(40));
        let pending = check(&out, "run-1", &[name(&a)], "auto", false).expect("check");
        // Where the record goes first is taken (as a full disk would refuse it).
        let blocked = record_path(&out, "run-1").with_extension("json.subset.tmp");
        std::fs::create_dir_all(&blocked).expect("dir");
        let e = format!("{:#}", pending.prepare(events_only).unwrap_err());
        assert!(e.contains("run-1.json.subset.tmp"), "{e}");
        // Nothing was named into place: the run, taken back, is no record.
        assert!(!record_path(&out, "run-1").exists());
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
        pending.commit(|_| (InputCounts::default(), None)).expect("commit");
        assert!(known(&out).expect("known").is_empty());
        // A failed run (dropped, never committed) records nothing either.
        drop(check(&out, "run-f", &[name(&a)], "auto", false).expect("check"));
        assert!(known(&out).expect("known").is_empty());
        check(&out, "run-1", &[name(&a)], "auto", false)
            .expect("check")
            .commit(events_only)
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
            .commit(events_only)
            .expect("commit");
        check(&out, "run-4", &[name(&b)], "auto", false)
            .expect("another log")
            .commit(events_only)
            .expect("commit");
        // Of a run's inputs, only those that gave events are recorded.
        let (c, e) = (d.path().join("c.log"), d.path().join("e.log"));
        write(&c, &LINE.replace("ABC", "CCC").repeat(40));
        write(&e, &LINE.replace("ABC", "EEE").repeat(40));
        let (cn, en) = (name(&c), name(&e));
        check(&out, "run-6", &[cn.clone(), en.clone()], "auto", false)
            .expect("new logs")
            .commit(|input| {
                if input == cn {
                    events_only(input)
                } else {
                    (InputCounts::default(), None)
                }
            })
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

    #[test]
    fn a_log_that_grew_continues_where_it_was_read_to_and_one_unchanged_is_passed_over() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("archive");
        let log = d.path().join("mail.log");
        let n = name(&log);
        let commit = |p: Pending| {
            let resume = p.resume.clone();
            p.commit(|input| read_from(input, resume.get(input))).expect("commit");
        };
        // Longer than TAIL, so that the tail is a window of it; the last line is
        // still being written.
        let partial = "Nov  8 10:00:00 mta postfix/smtp[1]: DEF: to=<a@b.c>, sta";
        write(&log, &format!("{}{partial}", LINE.repeat(1200)));
        let first = check(&out, "run-1", std::slice::from_ref(&n), "auto", false).expect("new");
        assert!(first.resume.is_empty() && first.unchanged.is_empty());
        assert_eq!(read_all(&n).1.expect("end").held, partial.len() as u64);
        commit(first);
        let grown = format!("{}{}", LINE.repeat(1200), LINE.replace("ABC", "DEF").repeat(10));
        write(&log, &grown);
        let second = check(&out, "run-2", std::slice::from_ref(&n), "auto", false).expect("grown");
        let at = Position {
            bytes: (1200 * LINE.len()) as u64,
            lines: 1200,
        };
        assert_eq!(second.resume.get(&n), Some(&at), "after the last whole line");
        assert!(
            second.notes[0].contains("continuing after line 1200, where replay run-1"),
            "{:?}",
            second.notes
        );
        // The same log twice in a run (a copy beside it): both would go on from there.
        let copy = d.path().join("mail.log.copy");
        write(&copy, &grown);
        let e = format!(
            "{:#}",
            check(&out, "run-x", &[n.clone(), name(&copy)], "auto", false).unwrap_err()
        );
        assert!(
            e.contains("mail.log.copy begins as") && e.contains("mail.log does"),
            "{e}"
        );
        commit(second);
        // Read to its end: passed over, plain or gzipped (rotated).
        let third = check(&out, "run-3", std::slice::from_ref(&n), "auto", false).expect("unchanged");
        assert_eq!(third.unchanged, [n.as_str()]);
        assert!(third.notes[0].contains("nothing new: replay run-2 read") && third.notes[0].contains("to line 1210"));
        drop(third);
        let gz = d.path().join("mail.log.1.gz");
        let mut enc =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).expect("gz"), flate2::Compression::fast());
        enc.write_all(format!("{grown}{}", LINE.replace("ABC", "GHI").repeat(5)).as_bytes())
            .expect("gz");
        enc.finish().expect("gz");
        // A compressed copy that goes on: read past what was read, and recorded
        // with how far, so that it is nothing new the next time.
        let rotated = check(&out, "run-4", &[name(&gz)], "auto", false).expect("rotated");
        assert_eq!(rotated.resume.get(&name(&gz)).map(|p| p.lines), Some(1210));
        commit(rotated);
        let again = check(&out, "run-5", &[name(&gz)], "auto", false).expect("rotated again");
        assert_eq!(again.unchanged, [name(&gz)]);
        drop(again);
        // Other lines where it was read to (cut and written again): refused, with
        // the way to add what follows.
        write(
            &log,
            &format!("{}{}", LINE.repeat(1205), LINE.replace("ABC", "XYZ").repeat(10)),
        );
        let e = format!(
            "{:#}",
            check(&out, "run-6", std::slice::from_ref(&n), "auto", false).unwrap_err()
        );
        assert!(
            e.contains("read to line 1215, but holds other lines there") && e.contains("--from-line 1215"),
            "{e}"
        );
        // A log one record says not how far it was read of (from before 2026-12-07):
        // refused, as continuing after another's shorter read could count twice.
        let other = d.path().join("other.log");
        let other_log = LINE.replace("ABC", "OTH").repeat(100);
        write(&other, &other_log);
        check(&out, "run-7", &[name(&other)], "auto", false)
            .expect("new")
            .commit(events_only)
            .expect("commit");
        write(&other, &format!("{other_log}{LINE}"));
        let e = format!(
            "{:#}",
            check(&out, "run-8", &[name(&other)], "auto", false).unwrap_err()
        );
        assert!(e.contains("other.log begins as") && e.contains("--again"), "{e}");
    }

    #[test]
    fn a_log_whose_last_line_is_too_long_to_know_it_by_is_refused_naming_the_line() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("archive");
        let log = d.path().join("mail.log");
        let n = name(&log);
        let long = format!("{}\n", "x".repeat(input::TAIL + 10));
        write(&log, &format!("{}{long}", LINE.repeat(20)));
        assert_eq!(read_all(&n).1.expect("end").tail, None);
        check(&out, "run-1", std::slice::from_ref(&n), "auto", false)
            .expect("new")
            .commit(read_all)
            .expect("commit");
        write(&log, &format!("{}{long}{LINE}", LINE.repeat(20)));
        let e = format!(
            "{:#}",
            check(&out, "run-2", std::slice::from_ref(&n), "auto", false).unwrap_err()
        );
        assert!(
            e.contains("read to line 21 but could not tell") && e.contains("--from-line 21") && !e.contains("--again"),
            "{e}"
        );
    }

    #[test]
    fn a_log_too_short_to_tell_from_another_is_recorded_once_it_gave_events() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("archive");
        let log = d.path().join("mail.log");
        let n = name(&log);
        write(&log, LINE);
        let first = check(&out, "run-1", std::slice::from_ref(&n), "auto", false).expect("new");
        first.commit(read_all).expect("commit");
        write(&log, &LINE.repeat(3));
        let second = check(&out, "run-2", std::slice::from_ref(&n), "auto", false).expect("grown");
        assert_eq!(second.resume.get(&n).map(|p| p.lines), Some(1));
    }
}
