//! The normalizer: one per input stream (file, partition). Frames each line, hands it to
//! the parser of its MTA, and accounts for every line: an event, a skip, or a reject.

use crate::HashMap;
use crate::correlate::Correlator;
use crate::egress::{Egress, EgressMap};
use crate::handoff::Handoffs;
use crate::stamp::{StampParser, Zone};
use crate::stats::{NoSourceIp, RejectReason, SkipKind, Stats};
use crate::syslog::{self, FrameError, SyslogLine};
use deferlog_classify::{Classifier, Memo, MxGroups};
use deferlog_event::{Class, EventRow, EventSink, Mta, Origin, RejectRow, RejectSink};
use siphasher::sip::SipHasher13;
use std::fmt;
use std::mem;
use std::sync::Arc;

/// Which MTAs' lines a normalizer reads. Each line's shape says which MTA wrote it (a
/// syslog program name, or Exim's own stamp), so `Auto` needs no hint; a named format
/// only narrows what is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Auto,
    Postfix,
    Exim,
    KumoMta,
    PowerMta,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Format::Auto),
            "postfix" => Ok(Format::Postfix),
            "exim" => Ok(Format::Exim),
            "kumomta" => Ok(Format::KumoMta),
            "powermta" => Ok(Format::PowerMta),
            _ => Err(format!(
                "{s:?} is not a known format (auto, postfix, exim, kumomta, powermta)"
            )),
        }
    }
}

/// Everything a normalizer needs, resolved from configuration.
#[derive(Debug, Clone)]
pub struct NormalizerConfig {
    pub tenant: String,
    pub format: Format,
    /// The host of lines that name none (Exim's own log, KumoMTA, PowerMTA) when no
    /// envelope says.
    pub default_host: String,
    /// Field names of shippers' JSON envelopes.
    pub envelope: crate::EnvelopeFields,
    /// PowerMTA's accounting columns (its header line's names), for records read
    /// before or without their file's header: Kafka partitions the header never reached.
    pub pmta_fields: Option<String>,
    /// Zone of stamps that carry none (BSD syslog).
    pub zone: Zone,
    /// Stamps without a year take it from here (UTC microseconds): the ingest time.
    pub reference_time_us: i64,
    /// The reference is the time of reading (replay's default), not a date the user
    /// gave: a BSD stamp more than a day past it is last year's.
    pub reference_is_now: bool,
    /// Events stamped further than this past the reference are rejected as
    /// `bad_timestamp`, and with it those ten years before it (a host whose clock was
    /// never set stamps 1970). The stream sets it (its reference is each record's
    /// arrival, and a line is not a day newer than its arrival);
    /// `None` for replay, whose reference may be any date.
    pub max_ahead_us: Option<i64>,
    pub egress: Vec<Egress>,
    /// Key of the recipient hash; the same key gives the same hashes across runs.
    pub hash_key: [u8; 16],
    /// Most queue ids held in correlation state at once.
    pub max_queue_ids: usize,
    /// Longest reply text kept in the `response` column, in bytes.
    pub response_max_bytes: usize,
    pub classifier: Classifier,
    pub mx_groups: MxGroups,
    /// Receiving addresses that are the sending side's own (a content filter), whose
    /// deliveries are not attempts.
    pub handoffs: Handoffs,
}

impl NormalizerConfig {
    pub fn new(reference_time_us: i64) -> Self {
        NormalizerConfig {
            tenant: "default".into(),
            format: Format::Auto,
            default_host: "unknown".into(),
            envelope: crate::EnvelopeFields::default(),
            pmta_fields: None,
            zone: Zone::default(),
            reference_time_us,
            reference_is_now: false,
            max_ahead_us: None,
            egress: Vec::new(),
            hash_key: [0; 16],
            max_queue_ids: 200_000,
            response_max_bytes: 512,
            classifier: Classifier::builtin(),
            mx_groups: MxGroups::builtin(),
            handoffs: Handoffs::loopback(),
        }
    }
}

/// Caches bounded by clearing: replies and MX hosts repeat heavily, but an adversary
/// must not be able to grow them without limit.
const CACHE_LIMIT: usize = 16_384;

/// A normalizer's state at rest (see [`Normalizer::snapshot`]).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NormalizerState {
    pub correlation: crate::correlate::CorrelatorState,
    pub stats: Stats,
    /// The last PowerMTA header line seen (its column names).
    #[serde(default)]
    pub pmta_header: Option<String>,
    /// The last time a stamp gave (µs): a replay or holder that begins in the hour a
    /// DST fall-back repeats places its readings after the lines before it.
    #[serde(default)]
    pub last_stamp_us: Option<i64>,
}

impl NormalizerState {
    /// The state without its counts, for a later run that reports its own (`replay`
    /// carrying correlation from one run to the next).
    pub fn without_counts(mut self) -> NormalizerState {
        self.stats = Stats::default();
        self.correlation.forget_evictions();
        self
    }
}

pub struct Normalizer {
    pub(crate) tenant: String,
    format: Format,
    pub(crate) host: String,
    /// `default_host` as configured: what `host` goes back to (see
    /// [`Normalizer::set_record_host`]).
    default_host: String,
    pub(crate) pmta_columns: crate::pmta::Columns,
    pub(crate) pmta_header: Option<String>,
    /// `pmta_fields` was given: the columns are known without a header.
    pub(crate) pmta_configured: bool,
    /// The Exim line being read is the first piece of several (see `exim::syslog_piece`).
    pub(crate) cut_piece: bool,
    pub(crate) envelope_fields: crate::EnvelopeFields,
    pub(crate) stamps: StampParser,
    pub(crate) egress: EgressMap,
    pub(crate) hasher: SipHasher13,
    pub(crate) state: Correlator,
    pub(crate) stats: Stats,
    pub(crate) response_max_bytes: usize,
    classifier: Memo,
    mx_groups: MxGroups,
    handoffs: Handoffs,
    group_cache: HashMap<Box<str>, Option<Arc<str>>>,
    pub(crate) scratch: Scratch,
}

/// Reusable buffers, so the hot path does not allocate per line.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub domain: String,
    pub mx_host: String,
    pub sender: String,
    pub reply: String,
    pub spans: Vec<crate::pmta::Span>,
    /// A correlation key built per record (PowerMTA's queue id and recipient).
    pub key: String,
}

impl fmt::Debug for Normalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Normalizer")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Normalizer {
    pub fn new(cfg: NormalizerConfig) -> Self {
        let mut stamps = StampParser::new(cfg.zone, cfg.reference_time_us);
        if cfg.reference_is_now {
            stamps.set_days_ahead(crate::stamp::READ_NOW_DAYS_AHEAD);
        }
        stamps.set_max_ahead(cfg.max_ahead_us);
        Normalizer {
            tenant: cfg.tenant,
            format: cfg.format,
            host: cfg.default_host.clone(),
            default_host: cfg.default_host,
            pmta_columns: cfg
                .pmta_fields
                .as_deref()
                .map(crate::pmta::Columns::from_header)
                .unwrap_or_default(),
            pmta_header: None,
            pmta_configured: cfg.pmta_fields.is_some(),
            cut_piece: false,
            envelope_fields: cfg.envelope,
            stamps,
            egress: EgressMap::new(&cfg.egress),
            hasher: SipHasher13::new_with_key(&cfg.hash_key),
            state: Correlator::new(cfg.max_queue_ids.max(2)),
            stats: Stats::default(),
            response_max_bytes: cfg.response_max_bytes,
            classifier: Memo::new(cfg.classifier),
            mx_groups: cfg.mx_groups,
            handoffs: cfg.handoffs,
            group_cache: HashMap::default(),
            scratch: Scratch::default(),
        }
    }

    /// What a checkpoint keeps so a restarted normalizer continues exactly: the
    /// correlation state and the counts. Caches are rebuilt on use.
    pub fn snapshot(&self) -> NormalizerState {
        NormalizerState {
            correlation: self.state.snapshot(),
            stats: self.stats.clone(),
            pmta_header: self.pmta_header.clone(),
            last_stamp_us: self.stamps.last_us(),
        }
    }

    pub fn restore(&mut self, s: NormalizerState) {
        self.state.restore(s.correlation);
        self.stats = s.stats.restored();
        if let Some(h) = &s.pmta_header {
            self.pmta_columns = crate::pmta::Columns::from_header(h);
        }
        self.pmta_header = s.pmta_header;
        if let Some(us) = s.last_stamp_us {
            self.stamps.resume_after(us);
        }
    }

    /// The tenant of the records that follow (the stream takes it per record).
    pub fn set_tenant(&mut self, tenant: &str) {
        if self.tenant != tenant {
            tenant.clone_into(&mut self.tenant);
        }
    }

    /// The host of the lines that follow when they name none (`None`: `default_host`):
    /// the stream takes it per record, from the record key where a topic says so.
    pub fn set_record_host(&mut self, host: Option<&str>) {
        let host = host.unwrap_or(&self.default_host);
        if self.host != host {
            host.clone_into(&mut self.host);
        }
    }

    /// The ingest time BSD stamps take their year from, for the lines that follow.
    pub fn set_reference_time(&mut self, reference_us: i64) {
        self.stamps.set_reference(reference_us);
    }

    /// The running counts without the state gauges of [`Normalizer::stats`]; free,
    /// for checks per record.
    pub fn stats_ref(&self) -> &Stats {
        &self.stats
    }

    /// Takes back the `kind` skip of the line just processed, which its caller keeps
    /// as a reject instead (the stream dead-letters a record that is no log line):
    /// a line is counted once.
    pub fn unskip(&mut self, kind: SkipKind) {
        self.stats.unskip(kind);
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.evictions = self.state.evictions();
        s.state_size = self.state.len() as u64;
        s
    }

    /// Normalizes one raw line (a trailing `\n` or `\r\n` is ignored).
    pub fn process_line(
        &mut self,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        self.stats.lines += 1;
        self.stats.bytes += raw.len() as u64;
        // A byte-order mark (a file saved by a Windows tool, a shipper that keeps it)
        // is no part of the line's first field.
        let raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            self.stats.skip(SkipKind::Empty);
            return;
        }
        // Invalid UTF-8 only ever sits in free text (replies, subjects); read it lossily
        // so the line still counts, and the original bytes are kept if it is rejected.
        // The line end is trimmed after the front-to-back validation: a line is often
        // not in cache yet, and reading its last byte first costs a second miss.
        let line = match simdutf8::basic::from_utf8(raw) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            // Checked first because the validating path is several times faster than
            // the lossy one on the (all but universal) valid lines.
            Err(_) => String::from_utf8_lossy(raw),
        };
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        self.tallied(events, |n, events| n.text(line, raw, origin, events, rejects));
    }

    /// A line its reader cut at its length limit (`raw`: what was kept of it): one
    /// line, rejected as `too_long` with those bytes, never parsed.
    pub fn process_cut_line(&mut self, raw: &[u8], origin: Origin<'_>, rejects: &mut dyn RejectSink) {
        self.stats.lines += 1;
        self.stats.bytes += raw.len() as u64;
        self.reject(None, RejectReason::TooLong, raw, origin, rejects);
    }

    /// One record's text: its shape says which MTA (or shipper envelope) wrote it.
    pub(crate) fn text(
        &mut self,
        line: &str,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        if matches!(self.format, Format::Auto | Format::PowerMta) && crate::pmta::looks_like_pmta(line.as_bytes()) {
            let host = mem::take(&mut self.host);
            self.pmta(line, &host, raw, origin, events, rejects);
            self.host = host;
            return;
        }
        if line.starts_with('{') {
            // A KumoMTA record names its type first; anything else is a shipper's
            // envelope around a line.
            if matches!(self.format, Format::Auto | Format::KumoMta) && crate::envelope::is_kumo(line) {
                let host = mem::take(&mut self.host);
                self.kumo(line, &host, raw, origin, events, rejects);
                self.host = host;
            } else {
                self.envelope(line, raw, origin, events, rejects);
            }
            return;
        }
        if matches!(self.format, Format::Auto | Format::Exim)
            && let Some((time_us, n)) = self.stamps.parse_local(line.as_bytes())
        {
            let host = mem::take(&mut self.host);
            self.exim(
                time_us,
                &host,
                line[n..].trim_start_matches(' '),
                raw,
                origin,
                events,
                rejects,
            );
            self.host = host;
            return;
        }
        match syslog::split(&mut self.stamps, line) {
            Ok(frame) => self.dispatch(&frame, raw, origin, events, rejects),
            Err(e) => {
                if looks_like_delivery(line) {
                    let reason = match e {
                        FrameError::Stamp => RejectReason::BadTimestamp,
                        FrameError::Shape => RejectReason::Truncated,
                    };
                    self.reject(Mta::Postfix, reason, raw, origin, rejects);
                } else {
                    self.stats.skip(SkipKind::Unrecognized);
                }
            }
        }
    }

    /// Normalizes a record whose frame is already known (shippers that send the
    /// message apart from stamp, host and program; the message-only corpora).
    pub fn process_message(
        &mut self,
        frame: &SyslogFields<'_>,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        self.stats.lines += 1;
        self.stats.bytes += raw.len() as u64;
        let frame = SyslogLine {
            time_us: frame.time_us,
            host: frame.host,
            program: frame.program,
            message: frame.message,
        };
        self.tallied(events, |n, events| n.dispatch(&frame, raw, origin, events, rejects));
    }

    /// Runs `parse` with the caller's sink wrapped to count the attempts without a
    /// sending IP: the one place every event of every format passes. The counts travel
    /// with the wrapper while `parse` has `self` whole, and are put back after.
    fn tallied(&mut self, events: &mut dyn EventSink, parse: impl FnOnce(&mut Self, &mut dyn EventSink)) {
        let mut tally = Tally {
            events,
            no_source_ip: mem::take(&mut self.stats.no_source_ip),
        };
        parse(self, &mut tally);
        self.stats.no_source_ip = tally.no_source_ip;
    }

    pub(crate) fn dispatch(
        &mut self,
        frame: &SyslogLine<'_>,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        if matches!(frame.program, "exim" | "exim4") && matches!(self.format, Format::Auto | Format::Exim) {
            // Exim cuts a line over 870 bytes into numbered pieces (`[1/2] ...`): the
            // first holds the id, flag, address, `R=` `T=` `H=` `I=` and the reply's
            // start, and is read as a line cut within its reply; the rest are skipped.
            let message = match crate::exim::syslog_piece(frame.message) {
                Some((1, pieces, first)) => {
                    self.cut_piece = pieces > 1;
                    first
                }
                Some(_) => return self.stats.skip(SkipKind::Continuation),
                None => frame.message,
            };
            // With `syslog_timestamp` (the default) Exim's own stamp, which has the
            // year, starts the message.
            let (time_us, msg) = match self.stamps.parse_local(message.as_bytes()) {
                Some((t, n)) => (t, message[n..].trim_start_matches(' ')),
                None => (frame.time_us, message),
            };
            self.exim(time_us, frame.host, msg, raw, origin, events, rejects);
            self.cut_piece = false;
            return;
        }
        let postfix = matches!(self.format, Format::Auto | Format::Postfix);
        match frame.program.rsplit_once('/') {
            Some((instance, service)) if postfix => {
                self.postfix(frame, instance, service, raw, origin, events, rejects)
            }
            // `postfix/smtp` while another format is read: a program this run does
            // not read, as cron's lines are (and a sign of the wrong `--format`).
            Some(_) => self.stats.skip(SkipKind::OtherProgram),
            // Postfix's program without its service (rsyslog cuts it at the `/`).
            None if postfix && frame.program.starts_with("postfix") => {
                let service = crate::postfix::service_of(frame.message);
                self.postfix(frame, frame.program, service, raw, origin, events, rejects)
            }
            None => self.stats.skip(SkipKind::OtherProgram),
        }
    }

    pub(crate) fn reject(
        &mut self,
        mta: impl Into<Option<Mta>>,
        reason: RejectReason,
        raw: &[u8],
        origin: Origin<'_>,
        rejects: &mut dyn RejectSink,
    ) {
        let mta = mta.into();
        self.stats.reject(mta, reason);
        let raw = crate::redact::redact_recipients(raw);
        rejects.reject(&RejectRow {
            mta,
            reason: reason.as_str(),
            raw: &raw,
            origin,
            refused: None,
        });
    }

    pub(crate) fn classify(&mut self, code: Option<u16>, enhanced: Option<&str>, reply: &str) -> Class {
        self.classifier.class(code, enhanced, reply)
    }

    /// Whether `mx_ip` is a hand-off address (see `handoff`): a delivery there is no
    /// attempt, and an expiry that names it has no receiver.
    pub(crate) fn is_handoff(&self, mx_ip: Option<&str>) -> bool {
        mx_ip.is_some_and(|ip| self.handoffs.contains(ip))
    }

    /// The group of a row that names no MX host: the provider whose own mailbox domain
    /// the recipient's is (`gmail.com` → `google`); `None` for any other domain, which
    /// is then its own group. Rare rows (holds, DNS failures, expiries before any
    /// attempt): no cache.
    pub(crate) fn mailbox_group(&self, domain: Option<&str>) -> Option<Arc<str>> {
        domain.and_then(|d| self.mx_groups.mailbox_provider(d)).map(Arc::from)
    }

    /// The provider group or registrable domain of an MX host; `None` when the host
    /// says nothing (an IP literal), so the caller falls back to the recipient domain.
    pub(crate) fn group_of_host(&mut self, mx_host: &str) -> Option<Arc<str>> {
        if let Some(g) = self.group_cache.get(mx_host) {
            return g.clone();
        }
        let g = match self.mx_groups.mx_group(Some(mx_host), None) {
            "unknown" => None,
            g => Some(Arc::from(g)),
        };
        if self.group_cache.len() >= CACHE_LIMIT {
            self.group_cache.clear();
        }
        self.group_cache.insert(mx_host.into(), g.clone());
        g
    }
}

/// A record's frame given apart from its message.
#[derive(Debug, Clone, Copy)]
pub struct SyslogFields<'a> {
    pub time_us: i64,
    pub host: &'a str,
    pub program: &'a str,
    pub message: &'a str,
}

/// A line we could not frame still counts as a reject if it carries delivery fields.
fn looks_like_delivery(line: &str) -> bool {
    line.contains(" to=") && (line.contains("status=") || line.contains("relay="))
}

/// See [`Normalizer::tallied`].
struct Tally<'a> {
    events: &'a mut dyn EventSink,
    no_source_ip: NoSourceIp,
}

impl EventSink for Tally<'_> {
    fn push(&mut self, row: &EventRow<'_>) {
        // Only attempts: an expiry takes its IP from the recipient's last attempt,
        // which may predate an `[[egress]]` entry added since (it is in correlation
        // state), and names the host and instance of the expiring line, not the
        // sending one.
        if row.source_ip.is_none() && row.outcome.is_attempt() {
            self.no_source_ip.count(row.mta_host, row.mta_instance.unwrap_or(""));
        }
        self.events.push(row);
    }
}

/// Lower-cases `s` (into `buf` only when it may not be lower-case already) and strips
/// a trailing root dot.
pub(crate) fn lower<'a>(s: &'a str, buf: &'a mut String) -> &'a str {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        buf.clear();
        push_lowercase(buf, s);
        buf.as_str()
    } else {
        s
    }
}

/// Appends `s` lower-cased: ASCII in place, other letters by Unicode's rules, as an
/// SMTPUTF8 domain (`BÜCHER.example`) is one name whatever its case.
pub(crate) fn push_lowercase(buf: &mut String, s: &str) {
    if s.is_ascii() {
        let at = buf.len();
        buf.push_str(s);
        buf[at..].make_ascii_lowercase();
    } else {
        buf.extend(s.chars().flat_map(char::to_lowercase));
    }
}
