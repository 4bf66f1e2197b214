//! Opening replay inputs: files (plain, gzip or zstd, detected by magic bytes) or `-`
//! for stdin, each read through a counter of raw bytes for the progress bar.

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes read from the underlying files (compressed bytes for `.gz`).
#[derive(Debug, Clone, Default)]
pub struct ByteCounter(Arc<AtomicU64>);

impl ByteCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

struct Counting<R> {
    inner: R,
    counter: ByteCounter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One input, read line by line out of a large buffer: lines are handed out as
/// slices of it, found with the SIMD `memchr` (std's `read_until` uses a slower one
/// and copies every line).
pub struct Input {
    /// Name used in `origin` (`NAME:LINE`).
    pub name: String,
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The last line handed out was cut at `MAX_LINE`.
    cut: bool,
    /// The rest of a cut line is being read past.
    skipping: bool,
    /// Lines handed out so far, counting those skipped (for errors).
    lines: u64,
    /// Lines skipped at the start ([`open_from`]).
    pub lines_before: u64,
    /// Content bytes up to the end of the last line handed out, and where reading
    /// began (past the skipped ones).
    pos: u64,
    began: u64,
    compression: Option<Compression>,
    /// A plain regular file may still be being written: a last line without its end
    /// is left for the next read of it rather than read in half.
    hold_unterminated: bool,
    /// The bytes of such a line left.
    held: u64,
    /// A line was cut at `MAX_LINE`: the last lines kept may hold its skipped rest,
    /// so where this input ends cannot be told by them.
    lost_track: bool,
}

/// How much of what was read before the current line the buffer keeps: the last
/// lines, whose hash says where a later read of a grown file may go on.
pub const TAIL: usize = 64 * 1024;

/// Where an input's reading ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputEnd {
    /// After its last whole line.
    pub at: Position,
    /// The hash ([`content_hash`]) and length of its last whole lines (at most
    /// [`TAIL`] bytes, beginning at a line start), if known.
    pub tail: Option<(String, u64)>,
    /// Bytes of a last line without its end, left unread.
    pub held: u64,
}

/// The hash that names content: SipHash-1-3, 128 bits, zero key, as hex.
pub fn content_hash(h: &siphasher::sip128::SipHasher13) -> String {
    use siphasher::sip128::Hasher128;
    format!("{:032x}", h.finish128().as_u128())
}

const BUF: usize = 1 << 20;

/// No MTA writes a line this long; a longer one (a wrong file, a stream of zeros)
/// would otherwise grow the buffer without end. It is cut here and the rest of it
/// read past: the reader rejects it, the input goes on.
pub const MAX_LINE: usize = 16 << 20;

impl Input {
    fn new(name: String, reader: Box<dyn Read + Send>) -> Self {
        Input {
            name,
            reader,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            eof: false,
            cut: false,
            skipping: false,
            lines: 0,
            lines_before: 0,
            pos: 0,
            began: 0,
            compression: None,
            hold_unterminated: false,
            held: 0,
            lost_track: false,
        }
    }

    /// Counts the skipped start: reading goes on after `from`.
    fn begin_at(&mut self, from: Position) {
        (self.lines, self.lines_before) = (from.lines, from.lines);
        (self.pos, self.began) = (from.bytes, from.bytes);
    }

    /// Where reading ended, once [`next_line`](Self::next_line) has given `None`.
    pub fn end(&self) -> InputEnd {
        InputEnd {
            at: Position {
                bytes: self.pos,
                lines: self.lines,
            },
            tail: self.tail(),
            held: self.held,
        }
    }

    fn tail(&self) -> Option<(String, u64)> {
        let read = usize::try_from(self.pos - self.began).ok()?;
        let kept = &self.buf[..self.start];
        let want = read.min(TAIL);
        if self.lost_track || want == 0 || kept.len() < want {
            return None;
        }
        let window = &kept[kept.len() - want..];
        // From a line start: where this read began, or after a line end in the window.
        let tail = if want == read {
            window
        } else {
            &window[memchr::memchr(b'\n', &window[..window.len() - 1])? + 1..]
        };
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(0, 0);
        std::hash::Hasher::write(&mut h, tail);
        Some((content_hash(&h), tail.len() as u64))
    }

    /// Whether the last line [`next_line`](Self::next_line) gave is only the first
    /// `MAX_LINE` bytes of a longer one (the rest is skipped, and its `\n`).
    pub fn cut(&self) -> bool {
        self.cut
    }

    /// A failed read, named with the input and how far it got; a compressed input's
    /// failure is damaged or cut-short data, and the way to add what precedes it.
    fn read_error(&self, e: &io::Error) -> io::Error {
        let at = format!("{} after line {}", self.name, self.lines);
        let msg = match self.compression {
            // Only the lines this run would have read: those before were added before.
            Some(c) => format!(
                "reading {at}: its {} data is damaged, cut short or followed by other data ({e}); \
                 nothing of this replay was added. To add the lines before the damage: \
                 `{} {} | sed -n '{},{}p' | deferlog replay ... -`",
                c.name(),
                c.tool(),
                self.name,
                self.lines_before + 1,
                self.lines
            ),
            None => format!("reading {at}: {e}"),
        };
        io::Error::new(e.kind(), msg)
    }

    /// Reads past the lines before `to` (a compressed input's content cannot be
    /// sought): an error if they end elsewhere, or the input before.
    fn skip(&mut self, to: Position) -> Result<()> {
        let mut bytes = 0u64;
        while bytes < to.bytes {
            match self.next_line()? {
                Some(line) => bytes += line.len() as u64,
                None => break,
            }
        }
        if bytes != to.bytes {
            anyhow::bail!(
                "{}: its content has no line end at byte {} to read on from (it ends or a line crosses it)",
                self.name,
                to.bytes
            );
        }
        self.begin_at(to);
        Ok(())
    }

    /// The next line with its `\n` (the last line of the input may lack one).
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.cut = false;
        loop {
            if self.skipping {
                let skipped = match memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                    Some(nl) => {
                        self.skipping = false;
                        nl + 1
                    }
                    None => self.end - self.start,
                };
                self.start += skipped;
                self.pos += skipped as u64;
            }
            if !self.skipping
                && let Some(nl) = memchr::memchr(b'\n', &self.buf[self.start..self.end])
            {
                let line = self.start..self.start + nl + 1;
                self.start = line.end;
                self.lines += 1;
                self.pos += line.len() as u64;
                return Ok(Some(&self.buf[line]));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                if self.hold_unterminated {
                    self.held = (self.end - self.start) as u64;
                    return Ok(None);
                }
                let line = self.start..self.end;
                self.start = self.end;
                self.lines += 1;
                self.pos += line.len() as u64;
                return Ok(Some(&self.buf[line]));
            }
            // Keep the partial line and up to `TAIL` bytes read before it (unless the
            // line is long), make room, read more; a line longer than the buffer
            // grows it, up to `MAX_LINE`.
            let partial = self.end - self.start;
            let keep = if partial + TAIL <= self.buf.len() / 2 {
                self.start.min(TAIL)
            } else {
                0
            };
            self.buf.copy_within(self.start - keep..self.end, 0);
            (self.start, self.end) = (keep, keep + partial);
            if self.end == self.buf.len() {
                if self.buf.len() >= MAX_LINE {
                    self.cut = true;
                    self.skipping = true;
                    self.lost_track = true;
                    self.start = self.end;
                    self.lines += 1;
                    self.pos += self.end as u64;
                    return Ok(Some(&self.buf[..self.end]));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = match self.reader.read(&mut self.buf[self.end..]) {
                Ok(n) => n,
                Err(e) => return Err(self.read_error(&e)),
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }
}

/// Where to begin reading an input: past its first `bytes` (decompressed), which
/// hold `lines` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub bytes: u64,
    pub lines: u64,
}

/// Opens `path` (or stdin for `-`), transparently decompressing.
pub fn open(path: &str, counter: &ByteCounter) -> Result<Input> {
    open_from(path, counter, Position::default())
}

/// Opens `path` to read from `from` on: a plain file seeks there, a compressed one
/// reads past it. `from` must be a line end of its content.
pub fn open_from(path: &str, counter: &ByteCounter, from: Position) -> Result<Input> {
    let context = || format!("reading input {path}");
    let (raw, regular, sought): (Box<dyn Read + Send>, bool, bool) = if path == "-" {
        (Box::new(io::stdin()), false, false)
    } else {
        let mut f = File::open(path).with_context(|| format!("opening input {path}"))?;
        let regular = f.metadata().is_ok_and(|m| m.is_file());
        let seek = from.bytes > 0 && plain(&mut f).with_context(context)?;
        if seek {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(from.bytes)).with_context(context)?;
            counter.0.fetch_add(from.bytes, Ordering::Relaxed);
        }
        (Box::new(f), regular, seek)
    };
    // Small next to `BUF`: `Input`'s reads are larger than it, so they bypass it and
    // land in `Input`'s buffer without a second copy; it only serves the gzip sniff
    // and the decoder.
    let mut buffered = BufReader::with_capacity(
        64 * 1024,
        Counting {
            inner: raw,
            counter: counter.clone(),
        },
    );
    // A file sought into was found plain at its start.
    let compression = match sought {
        true => None,
        false => Compression::of(buffered.fill_buf().with_context(context)?),
    };
    let reader: Box<dyn Read + Send> = match compression {
        None => Box::new(buffered),
        Some(Compression::Gzip) => Box::new(MultiGzDecoder::new(buffered)),
        // KumoMTA's log segments; every frame in turn, as `zstdcat` reads them.
        Some(Compression::Zstd) => Box::new(zstd::stream::read::Decoder::with_buffer(buffered).with_context(context)?),
        Some(c @ (Compression::Bzip2 | Compression::Xz)) => anyhow::bail!(
            "input {path} is {} data, which replay does not read: give it as `{} {path} | deferlog replay ... -`",
            c.name(),
            c.tool()
        ),
    };
    let mut input = Input::new(name_of(path).to_owned(), reader);
    input.compression = compression;
    input.hold_unterminated = regular && compression.is_none();
    if sought {
        input.begin_at(from);
    } else if from.bytes > 0 {
        input.skip(from)?;
    }
    Ok(input)
}

/// Where line `lines` of `path` ends, to read on from there (`replay --from-line`).
pub fn position_of_line(path: &str, lines: u64) -> Result<Position> {
    let mut input = open(path, &ByteCounter::default())?;
    for n in 0..lines {
        if input.next_line()?.is_none() {
            anyhow::bail!("{}: it has {n} whole lines, not {lines}", input.name);
        }
    }
    Ok(Position {
        bytes: input.pos,
        lines,
    })
}

/// Whether a file's content is as stored (no compression its first bytes name); the
/// file is read from its start again after.
fn plain(f: &mut File) -> io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    f.seek(SeekFrom::Start(0))?;
    Ok(Compression::of(&head[..n]).is_none())
}

/// What an input's first bytes say it is compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    fn of(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
            Some(Compression::Bzip2)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }

    /// The command that writes it out as plain text.
    fn tool(self) -> &'static str {
        match self {
            Compression::Gzip => "zcat",
            Compression::Zstd => "zstdcat",
            Compression::Bzip2 => "bzcat",
            Compression::Xz => "xzcat",
        }
    }
}

/// An input's name in origins and summaries: its path as given, `stdin` for `-`.
pub fn name_of(path: &str) -> &str {
    if path == "-" { "stdin" } else { path }
}

/// The inputs in the order to read them: files by modification time, oldest first
/// (rotated logs: `mail.log.2.gz`, `mail.log.1`, `mail.log`), then stdin. Retries and
/// expiries correlate with earlier attempts only when those were read first.
///
/// An input named twice is refused: stdin can be read only once (a second reader would
/// take bytes out of the middle of the stream), and a file read twice would be counted
/// twice, under any two names.
pub fn oldest_first(paths: &[String]) -> Result<Vec<String>> {
    refuse_repeats(paths)?;
    let mut keyed: Vec<(bool, Option<std::time::SystemTime>, &String)> = paths
        .iter()
        .map(|p| (p == "-", Path::new(p).metadata().and_then(|m| m.modified()).ok(), p))
        .collect();
    keyed.sort_by_key(|(stdin, mtime, _)| (*stdin, *mtime));
    Ok(keyed.into_iter().map(|(_, _, p)| p.clone()).collect())
}

fn refuse_repeats(paths: &[String]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut stdin = false;
    let mut files = std::collections::HashMap::new();
    for p in paths {
        if p == "-" {
            if std::mem::replace(&mut stdin, true) {
                anyhow::bail!("input - (stdin) is named twice: it can be read only once");
            }
        } else if let Ok(m) = std::fs::metadata(p)
            && m.is_file()
            && let Some(first) = files.insert((m.dev(), m.ino()), p)
        {
            anyhow::bail!("inputs {first} and {p} are the same file: its lines would be counted twice");
        }
    }
    Ok(())
}

/// Total size on disk of the inputs that are files (stdin counts as 0).
pub fn total_bytes(paths: &[String]) -> u64 {
    paths
        .iter()
        .filter(|p| *p != "-")
        .filter_map(|p| Path::new(p).metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn long_lines_are_read_whole_and_over_long_ones_cut() {
        let long = vec![b'x'; 3 * BUF];
        let mut data = long.clone();
        data.extend_from_slice(b"\nshort\n");
        let mut input = Input::new("long".into(), Box::new(io::Cursor::new(data)));
        assert_eq!(input.next_line().expect("read").map(<[u8]>::len), Some(long.len() + 1));
        assert!(!input.cut());
        assert_eq!(input.next_line().expect("read"), Some(&b"short\n"[..]));
        // A file of zeros, say: a line longer than any MTA writes, then more lines.
        let mut data = vec![0u8; MAX_LINE + 3 * BUF + 5];
        data.extend_from_slice(b"\nnext\nlast");
        let len = data.len() as u64;
        let mut input = Input::new("zeros".into(), Box::new(io::Cursor::new(data)));
        let first = input.next_line().expect("read").map(<[u8]>::len);
        assert_eq!(first, Some(MAX_LINE));
        assert!(input.cut());
        assert_eq!(input.next_line().expect("read"), Some(&b"next\n"[..]));
        assert!(!input.cut());
        assert_eq!(input.next_line().expect("read"), Some(&b"last"[..]));
        assert_eq!(input.next_line().expect("read"), None);
        // Where it ended counts the cut line's skipped rest; its last lines cannot tell.
        assert_eq!((input.end().at.bytes, input.end().at.lines), (len, 3));
        assert_eq!(input.end().tail, None);
        // Cut right at its end: the newline that ends it is skipped with it.
        let mut data = vec![b'y'; MAX_LINE];
        data.extend_from_slice(b"\nafter\n");
        let mut input = Input::new("exact".into(), Box::new(io::Cursor::new(data)));
        assert_eq!(input.next_line().expect("read").map(<[u8]>::len), Some(MAX_LINE));
        assert!(input.cut());
        assert_eq!(input.next_line().expect("read"), Some(&b"after\n"[..]));
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let plain = dir.path().join("a.log");
        std::fs::write(&plain, b"one\ntwo\n").expect("write");
        let gz = dir.path().join("b.log.1");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).expect("create"), flate2::Compression::fast());
        enc.write_all(b"three\nfour\n").expect("gz");
        enc.finish().expect("finish");
        let counter = ByteCounter::default();
        for (p, want) in [(&plain, "one\ntwo\n"), (&gz, "three\nfour\n")] {
            let mut s = String::new();
            open(&p.display().to_string(), &counter)
                .expect("open")
                .reader
                .read_to_string(&mut s)
                .expect("read");
            assert_eq!(s, want);
        }
        assert_eq!(
            counter.get(),
            total_bytes(&[plain.display().to_string(), gz.display().to_string()])
        );
    }

    fn lines_of(input: &mut Input) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        while let Some(l) = input.next_line()? {
            lines.push(String::from_utf8_lossy(l).into_owned());
        }
        Ok(lines)
    }

    #[test]
    fn zstd_is_read_frame_after_frame_and_other_compressions_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        // Two frames, as concatenated segments are.
        let mut data = zstd::stream::encode_all(&b"one\ntwo\n"[..], 1).expect("zstd");
        data.extend(zstd::stream::encode_all(&b"three\n"[..], 1).expect("zstd"));
        let zst = dir.path().join("20261108-seg");
        std::fs::write(&zst, data).expect("write");
        let mut input = open(&zst.display().to_string(), &ByteCounter::default()).expect("open");
        assert_eq!(lines_of(&mut input).expect("read"), ["one\n", "two\n", "three\n"]);
        for (head, name, tool) in [
            (&b"BZh91AY&SY"[..], "bzip2", "bzcat"),
            (b"\xfd7zXZ\0\0\x04", "xz", "xzcat"),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, head).expect("write");
            let err = open(&p.display().to_string(), &ByteCounter::default()).expect_err(name);
            let msg = err.to_string();
            assert!(msg.contains(&format!("is {name} data")) && msg.contains(tool), "{msg}");
        }
    }

    #[test]
    fn a_files_end_is_after_its_last_whole_line_named_by_the_lines_before_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let lines: String = (0..50_000)
            .map(|i| format!("line {i} of a log that is being written\n"))
            .collect();
        let log = dir.path().join("mail.log");
        std::fs::write(&log, format!("{lines}line 50000 of a lo")).expect("write");
        let name = log.display().to_string();
        // Over a buffer's worth: the last lines are kept across refills.
        assert!(lines.len() > BUF);
        let mut input = open(&name, &ByteCounter::default()).expect("open");
        assert_eq!(
            lines_of(&mut input).expect("read").len(),
            50_000,
            "the half line is left"
        );
        let end = input.end();
        assert_eq!((end.at.bytes, end.at.lines), (lines.len() as u64, 50_000));
        assert_eq!(end.held, "line 50000 of a lo".len() as u64);
        // The last whole lines within TAIL bytes, from a line start.
        let window = &lines[lines.len() - TAIL..];
        let tail = &window[window.find('\n').expect("a line end") + 1..];
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(0, 0);
        std::hash::Hasher::write(&mut h, tail.as_bytes());
        assert_eq!(end.tail, Some((content_hash(&h), tail.len() as u64)));
        // Read on from there, once the line is whole: the same, as a continuation.
        std::fs::write(&log, format!("{lines}line 50000 of a log being written\n")).expect("write");
        let mut more = open_from(&name, &ByteCounter::default(), end.at).expect("open");
        assert_eq!(more.lines_before, 50_000);
        assert_eq!(
            lines_of(&mut more).expect("read"),
            ["line 50000 of a log being written\n"]
        );
        assert_eq!(more.end().at.lines, 50_001);
        // Read a little at a time (a pipe, a slow disk), the last lines are still the
        // ones the buffer kept across its many refills.
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1000);
                self.0.read(&mut buf[..n])
            }
        }
        let trickle = Trickle(io::Cursor::new(lines.clone().into_bytes()));
        let mut slow = Input::new("slow".into(), Box::new(trickle));
        assert_eq!(lines_of(&mut slow).expect("read").len(), 50_000);
        assert_eq!(slow.end().tail, end.tail);
        // Read from a pipe, the last line is read as it is: nothing more will come.
        let mut piped = Input::new("stdin".into(), Box::new(io::Cursor::new(b"a\nb".to_vec())));
        assert_eq!(lines_of(&mut piped).expect("read"), ["a\n", "b"]);
    }

    #[test]
    fn a_cut_gzip_names_the_line_it_reached_and_how_to_add_what_precedes_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let text: String = (0..20_000)
            .map(|i| format!("line {i} of a log that is long enough\n"))
            .collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).expect("gz");
        let gz = enc.finish().expect("finish");
        let cut = dir.path().join("mail.log.2.gz");
        std::fs::write(&cut, &gz[..gz.len() / 2]).expect("write");
        let name = cut.display().to_string();
        let mut input = open(&name, &ByteCounter::default()).expect("open");
        let err = lines_of(&mut input).expect_err("cut short").to_string();
        let read = input.lines;
        assert!(read > 0 && read < 20_000, "{read}");
        assert!(
            err.starts_with(&format!("reading {name} after line {read}: its gzip data is damaged")),
            "{err}"
        );
        let add = format!("`zcat {name} | sed -n '1,{read}p' | deferlog replay ... -`");
        assert!(err.contains(&add), "{err}");
    }

    #[test]
    fn rotated_files_are_read_oldest_first_and_stdin_last() {
        let dir = tempfile::tempdir().expect("tmp");
        let t0 = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let mut paths = Vec::new();
        for (name, age) in [("mail.log", 0), ("mail.log.1", 1), ("mail.log.2.gz", 2)] {
            let p = dir.path().join(name);
            let f = File::create(&p).expect("create");
            f.set_modified(t0 - std::time::Duration::from_secs(86_400 * age))
                .expect("mtime");
            paths.push(p.display().to_string());
        }
        paths.insert(1, "-".to_owned());
        let order: Vec<String> = oldest_first(&paths)
            .expect("distinct inputs")
            .iter()
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
            })
            .collect();
        assert_eq!(order, ["mail.log.2.gz", "mail.log.1", "mail.log", "-"]);
    }

    #[test]
    fn an_input_named_twice_is_refused_whatever_the_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("mail.log");
        File::create(&log).expect("create");
        let other = dir.path().join("mail.log.1");
        File::create(&other).expect("create");
        let log = log.display().to_string();
        let again = format!("{}/./mail.log", dir.path().display());
        let err = |paths: &[&str]| {
            let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
            oldest_first(&paths).expect_err("refused").to_string()
        };
        assert!(err(&["-", &log, "-"]).contains("stdin) is named twice"));
        let same = err(&[&log, &again]);
        assert!(same.contains(&log) && same.contains(&again), "{same}");
        // Distinct files, stdin once, and a path that is not there (open reports it).
        let ok = [
            log.clone(),
            other.display().to_string(),
            "-".into(),
            "missing.log".into(),
        ];
        assert_eq!(oldest_first(&ok).expect("distinct").len(), 4);
    }

    #[test]
    fn lines_longer_than_the_buffer_and_a_last_line_without_newline() {
        let long = "x".repeat(BUF * 2 + 17);
        let text = format!("a\n{long}\nlast");
        let mut input = Input::new("t".into(), Box::new(io::Cursor::new(text.into_bytes())));
        let mut lines = Vec::new();
        while let Some(l) = input.next_line().expect("read") {
            lines.push(l.len());
        }
        assert_eq!(lines, [2, long.len() + 1, 4]);
    }

    #[test]
    fn a_missing_file_names_itself() {
        let err = format!(
            "{:#}",
            open("/nonexistent/mail.log", &ByteCounter::default()).expect_err("fails")
        );
        assert!(err.contains("/nonexistent/mail.log"));
    }
}
