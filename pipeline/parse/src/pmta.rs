//! PowerMTA accounting CSV (RFC 4180: quoted fields may hold commas, quotes, CRLF).
//!
//! Columns are whatever the file's header line (`type,timeLogged,...`) names; until
//! one is seen, the configured `powermta_fields`, else the one of PowerMTA's two
//! default orders the record's column count names (any other count: `bad_columns`).
//! `d` is a delivery,
//! `b` a bounce (an expiry when its own status is `x.4.7` or temporary (`4.x.x`), its
//! `bounceCat` is `message-expired`, or, with no status, its diagnostic says the
//! message expired),
//! `t`/`tq` a deferral; `r`, `f`, `rb`, `rs` (received, feedback, remote bounce or
//! status reported later) are not attempts. A record names its own
//! sending IP (`dlvSourceIp`, else the egress map with `vmta` as the instance) and
//! receiver (`dlvDestinationIp`, `dsnMta`); correlation state (per queue id and
//! recipient) numbers each recipient's attempts, which PowerMTA does
//! not log, and attributes an expiry to the recipient's last attempt, since an expiry
//! record names no host it tried.

use crate::correlate::{LastAttempt, record_attempt};
use crate::normalizer::{Normalizer, lower};
use crate::recipient::split_recipient;
use crate::redact::redact_reply;
use crate::stats::{RejectReason, SkipKind};
use crate::text::bounded;
use deferlog_classify::split_reply;
use deferlog_event::{Class, EventRow, EventSink, Mta, Origin, Outcome, RejectSink};
use std::borrow::Cow;
use std::mem;

/// The fields deferlog reads, and the header names that map to them.
#[derive(Debug, Clone, Copy)]
enum F {
    Type,
    TimeLogged,
    TimeQueued,
    Orig,
    Rcpt,
    DsnStatus,
    DsnDiag,
    DsnMta,
    BounceCat,
    SourceIp,
    DestinationIp,
    Size,
    Vmta,
    JobId,
    EnvId,
    MessageId,
    Queue,
}

const FIELDS: usize = 17;

fn field_of(name: &str) -> Option<F> {
    Some(match name {
        "type" => F::Type,
        "timeLogged" => F::TimeLogged,
        "timeQueued" => F::TimeQueued,
        "orig" => F::Orig,
        "rcpt" => F::Rcpt,
        "dsnStatus" => F::DsnStatus,
        "dsnDiag" => F::DsnDiag,
        "dsnMta" => F::DsnMta,
        "bounceCat" => F::BounceCat,
        "dlvSourceIp" => F::SourceIp,
        // Spelled both ways in published field lists.
        "dlvDestinationIp" | "dlvDesintationIp" => F::DestinationIp,
        "dlvSize" => F::Size,
        "vmta" => F::Vmta,
        "jobId" => F::JobId,
        "envId" => F::EnvId,
        "header_Message-Id" | "header_Message-ID" => F::MessageId,
        "queue" => F::Queue,
        _ => return None,
    })
}

/// PowerMTA's default `d`/`b` record fields, for files without a header line.
const DEFAULT_HEADER: &str = "type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,\
srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool";

/// The default of older versions (Mailrelay's column list, which SOURCES.md cites):
/// `timeImprinted` fourth, no `queue` or `vmtaPool`.
const OLDER_DEFAULT_HEADER: &str = "type,timeLogged,timeQueued,timeImprinted,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,\
dsnMta,bounceCat,srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId";

/// A header-less record's layout, told by its column count: one of the two default
/// layouts, whose counts differ. A record of any other count is another layout, which
/// read in a default order would give wrong fields with no sign.
fn default_layout(columns: usize) -> Option<&'static Columns> {
    static LAYOUTS: std::sync::LazyLock<[(usize, Columns); 2]> = std::sync::LazyLock::new(|| {
        [DEFAULT_HEADER, OLDER_DEFAULT_HEADER].map(|h| (h.split(',').count(), Columns::from_header(h)))
    });
    LAYOUTS.iter().find(|(n, _)| *n == columns).map(|(_, c)| c)
}

/// Column index of each field, from a header line, and how many columns a record
/// needs to hold every field read.
#[derive(Debug, Clone)]
pub(crate) struct Columns([Option<usize>; FIELDS], usize);

impl Default for Columns {
    fn default() -> Self {
        Columns::from_header(DEFAULT_HEADER)
    }
}

/// What is wrong with a configured field list (`powermta_fields`), if anything: it
/// must name at least the fields without which no record is read.
pub fn fields_problem(fields: &str) -> Option<String> {
    let names: Vec<&str> = fields.split(',').map(|n| n.trim().trim_matches('"')).collect();
    let missing: Vec<&str> = ["type", "timeLogged", "rcpt"]
        .into_iter()
        .filter(|f| !names.contains(f))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "names no {} column: give PowerMTA's header line for the accounting file (`type,timeLogged,...`)",
            missing.join(", ")
        )
    })
}

impl Columns {
    pub(crate) fn from_header(line: &str) -> Columns {
        let mut idx = [None; FIELDS];
        for (i, name) in line.split(',').enumerate() {
            if let Some(f) = field_of(name.trim().trim_matches('"')) {
                idx[f as usize].get_or_insert(i);
            }
        }
        let needed = idx.iter().flatten().max().map_or(0, |i| i + 1);
        Columns(idx, needed)
    }
}

/// One field of a record: a byte range of the line, and whether it needs unquoting
/// (`""` inside a quoted field, or text after its closing quote).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    start: usize,
    end: usize,
    unquote: bool,
}

impl Span {
    fn of(self, line: &str) -> Cow<'_, str> {
        let s = &line[self.start..self.end];
        if !self.unquote {
            return Cow::Borrowed(s);
        }
        // `""` is a quote; a lone quote (after the closing one) is dropped.
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(q) = rest.find('"') {
            out.push_str(&rest[..q]);
            if rest[q + 1..].starts_with('"') {
                out.push('"');
                rest = &rest[q + 2..];
            } else {
                rest = &rest[q + 1..];
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }
}

/// Splits one CSV record into field spans. `None` when a quote is never closed (a
/// cut line).
fn split_csv(line: &str, out: &mut Vec<Span>) -> Option<()> {
    out.clear();
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            // Quoted: `""` is a quote; the field ends at a lone quote.
            let start = i + 1;
            let mut j = start;
            let mut unquote = false;
            let close = loop {
                let q = j + memchr::memchr(b'"', &b[j..])?;
                if b.get(q + 1) == Some(&b'"') {
                    unquote = true;
                    j = q + 2;
                } else {
                    break q;
                }
            };
            let after = close + 1;
            match b.get(after) {
                Some(b',') | None => {
                    out.push(Span {
                        start,
                        end: close,
                        unquote,
                    });
                    if after >= b.len() {
                        return Some(());
                    }
                    i = after + 1;
                }
                // Text after a closing quote: kept, as lenient readers do.
                Some(_) => {
                    let end = memchr::memchr(b',', &b[after..]).map_or(b.len(), |k| after + k);
                    out.push(Span {
                        start,
                        end,
                        unquote: true,
                    });
                    if end == b.len() {
                        return Some(());
                    }
                    i = end + 1;
                }
            }
        } else {
            let end = memchr::memchr(b',', &b[i..]).map_or(b.len(), |k| i + k);
            out.push(Span {
                start: i,
                end,
                unquote: false,
            });
            if end == b.len() {
                return Some(());
            }
            i = end + 1;
        }
    }
}

/// Whether a line is PowerMTA accounting CSV: its header, or a record of a known type.
/// Asked of every line in `auto` mode, so it looks at the first 10 bytes only: no
/// known first field is longer than `transient`.
pub(crate) fn looks_like_pmta(line: &[u8]) -> bool {
    let head = &line[..line.len().min(10)];
    memchr::memchr(b',', head).is_some_and(|comma| {
        matches!(
            &head[..comma],
            b"type" | b"d" | b"b" | b"t" | b"tq" | b"r" | b"f" | b"rb" | b"rs" | b"delivery" | b"bounce" | b"transient"
        )
    })
}

impl Normalizer {
    pub(crate) fn pmta(
        &mut self,
        line: &str,
        host: &str,
        raw: &[u8],
        origin: Origin<'_>,
        events: &mut dyn EventSink,
        rejects: &mut dyn RejectSink,
    ) {
        if line.starts_with("type,") {
            self.pmta_columns = Columns::from_header(line);
            self.pmta_header = Some(line.to_owned());
            return self.stats.skip(SkipKind::Header);
        }
        let mut spans = mem::take(&mut self.scratch.spans);
        let split = split_csv(line, &mut spans);
        // With no header seen and none configured (a Kafka partition the file's header
        // never reached), the layout is one of the defaults, told by the column count;
        // a record of another count is refused rather than read in a guessed order.
        let known = self.pmta_header.is_some() || self.pmta_configured;
        let (columns, misfit) = match known {
            true => (&self.pmta_columns, None),
            false => match default_layout(spans.len()) {
                Some(c) => (c, None),
                None => (&self.pmta_columns, Some(RejectReason::BadColumns)),
            },
        };
        let Columns(cols, needed) = *columns;
        let fields: [Cow<'_, str>; FIELDS] = std::array::from_fn(|f| {
            cols[f]
                .and_then(|i| spans.get(i))
                .map_or(Cow::Borrowed(""), |s| s.of(line))
        });
        // PowerMTA writes every column of its header in every record: an attempt
        // without a column read here is a record cut short, whose missing fields would
        // read as empty (a `d` with no receiver).
        let short = misfit.or((spans.len() < needed).then_some(RejectReason::Truncated));
        self.scratch.spans = spans;
        if split.is_none() {
            return self.reject(Mta::PowerMta, RejectReason::Truncated, raw, origin, rejects);
        }
        let get = |f: F| -> &str { fields[f as usize].trim() };
        let kind = get(F::Type);
        let deferred = matches!(kind, "t" | "tq" | "transient");
        let outcome = match kind {
            "d" | "delivery" => Outcome::Delivered,
            "b" | "bounce" => Outcome::Bounced,
            _ if deferred => Outcome::Deferred,
            _ => return self.stats.skip(SkipKind::NotAttempt),
        };
        if let Some(reason) = short {
            return self.reject(Mta::PowerMta, reason, raw, origin, rejects);
        }
        let Some(time_us) = self.pmta_time(get(F::TimeLogged)) else {
            return self.reject(Mta::PowerMta, RejectReason::BadTimestamp, raw, origin, rejects);
        };
        let queued = self.pmta_time(get(F::TimeQueued));
        let rcpt = get(F::Rcpt);
        if rcpt.is_empty() && kind != "tq" {
            return self.reject(Mta::PowerMta, RejectReason::BadRecipient, raw, origin, rejects);
        }
        let diag = get(F::DsnDiag);
        let reply = diag.split_once(';').map_or(diag, |(_, r)| r).trim();
        let status = get(F::DsnStatus).split(' ').next().unwrap_or("");
        let (code, enhanced) = split_reply(reply);
        // A bounce PowerMTA gives up on after temporary failures (`bounce-after`) keeps
        // the last reply in its diagnostic (`421 4.7.0 [TSS04] ...`), so the record's
        // own status (4.4.7, or 4.x.x: nothing permanent was said) and category tell
        // the expiry, not the reply.
        // The diagnostic's words only when the record has no status of its own: a
        // permanent reply may say "expired" of something else ("account expired",
        // "certificate expired").
        let expired = outcome == Outcome::Bounced
            && (status.starts_with('4')
                || status.get(1..) == Some(".4.7")
                || get(F::BounceCat) == "message-expired"
                || enhanced.is_some_and(|e| e.get(1..) == Some(".4.7"))
                || (status.is_empty()
                    && [
                        "message expired",
                        "delivery time expired",
                        "too long in queue",
                        "queue lifetime",
                    ]
                    .iter()
                    .any(|w| contains_ignoring_case(diag, w))));
        let own = (!status.is_empty()).then_some(status);
        // An expiry is PowerMTA's verdict, not the last reply its diagnostic quotes.
        let enhanced = if expired { own.or(enhanced) } else { enhanced.or(own) };
        let outcome = if expired { Outcome::Expired } else { outcome };
        // An expiry whose record names a hand-off address has no receiver: the message
        // never got past the filter.
        let mut mx_ip = Some(get(F::DestinationIp)).filter(|s| !s.is_empty());
        let mut mta = get(F::DsnMta);
        if self.is_handoff(mx_ip) {
            if outcome != Outcome::Expired {
                return self.stats.skip(SkipKind::Handoff);
            }
            (mx_ip, mta) = (None, "");
        }
        let class = match outcome {
            Outcome::Delivered => Class::None,
            Outcome::Expired => Class::Expired,
            _ => self.classify(code, enhanced, reply),
        };
        let mut mx_buf = mem::take(&mut self.scratch.mx_host);
        let mut domain_buf = mem::take(&mut self.scratch.domain);
        // `dns;mx.example.com (192.0.2.1)` or `mx.example.com`.
        let mta = mta.split_once(';').map_or(mta, |(_, m)| m);
        let mx_name = mta.split([' ', '(']).next().unwrap_or("").trim();
        let mx_host = (!mx_name.is_empty()).then(|| lower(mx_name, &mut mx_buf));
        let (rcpt_hash, rcpt_domain) = split_recipient(&self.hasher, rcpt, &mut domain_buf);
        // A `tq` names no recipient; its queue (`domain/vmta`) names the domain. (No
        // allocation unless one is read: `tq` records are few.)
        let mut queue_buf = String::new();
        let domain = rcpt_domain.or_else(|| {
            Some(get(F::Queue).split('/').next().unwrap_or(""))
                .filter(|d| d.contains('.'))
                .map(|d| lower(d, &mut queue_buf))
        });
        let group = match (mx_host, mx_ip) {
            (Some(h), _) => self.group_of_host(h),
            (None, None) => self.mailbox_group(domain),
            // A hop seen by its IP alone is not the provider's (`MxGroups::mx_group`).
            (None, Some(_)) => None,
        };
        let mx_group = group.as_deref().or(domain).unwrap_or("unknown");
        let vmta = Some(get(F::Vmta)).filter(|s| !s.is_empty());
        let source_ip = Some(get(F::SourceIp))
            .filter(|s| !s.is_empty())
            .or_else(|| self.egress.lookup(host, vmta.unwrap_or("")));
        let mut sender_buf = mem::take(&mut self.scratch.sender);
        let sender_domain = get(F::Orig).rsplit_once('@').map(|(_, d)| lower(d, &mut sender_buf));
        let queue_id = [get(F::EnvId), get(F::JobId), get(F::MessageId)]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("-");
        let masked = redact_reply(reply, rcpt);
        let stored = bounded(&masked, self.response_max_bytes);
        // A `tq` record is a queue's deferral, no recipient's: nothing to number.
        let mut key = mem::take(&mut self.scratch.key);
        let (attempt, last) = if rcpt.is_empty() {
            (None, None)
        } else {
            // One state per recipient, not per queue id: the id is often a job's, shared
            // by every message of a campaign. The recipient goes in as its hash (the
            // state is checkpointed; no local part is written anywhere).
            key.clear();
            key.push_str(queue_id);
            // Without a message id the ids may be a whole campaign's: the time the
            // message was queued tells two messages to one recipient apart.
            key.push('/');
            key.push_str(get(F::TimeQueued));
            key.push('/');
            // Hex by hand, as bytes: `write!`, or pushing chars, costs more than the
            // rest of the key.
            let h = rcpt_hash.unwrap_or(0);
            let mut hex = [0u8; 16];
            for (i, d) in hex.iter_mut().enumerate() {
                *d = b"0123456789abcdef"[((h >> ((15 - i) * 4)) & 0xf) as usize];
            }
            key.push_str(std::str::from_utf8(&hex).unwrap_or_default());
            let deferred_to =
                (outcome == Outcome::Deferred).then(|| LastAttempt::new(source_ip, mx_host, mx_ip, mx_group));
            record_attempt(
                &mut self.state,
                &mut self.stats,
                host,
                &key,
                outcome,
                rcpt_hash,
                None,
                deferred_to,
            )
        };
        let message_id = Some(get(F::MessageId))
            .filter(|s| !s.is_empty())
            .map(|m| m.trim_start_matches('<').trim_end_matches('>'));
        events.push(&EventRow {
            event_time_us: time_us,
            tenant: &self.tenant,
            mta: Mta::PowerMta,
            mta_host: host,
            mta_instance: vmta,
            source_ip: last.as_ref().map_or(source_ip, |l| l.source_ip()),
            queue_id,
            message_id,
            sender_domain,
            recipient_domain: rcpt_domain,
            recipient_hash: rcpt_hash,
            mx_host: last.as_ref().map_or(mx_host, |l| l.mx_host()),
            mx_ip: last.as_ref().map_or(mx_ip, |l| l.mx_ip()),
            mx_group: last.as_ref().map_or(mx_group, |l| l.mx_group()),
            outcome,
            class,
            smtp_code: if expired { None } else { code },
            enhanced_status: enhanced,
            response: (!stored.is_empty() && !expired).then_some(stored),
            attempt,
            delay_seconds: queued.map(|q| (time_us - q) as f64 / 1e6),
            size_bytes: get(F::Size).parse().ok(),
            origin,
        });
        self.stats.events += 1;
        if expired {
            self.stats.expiries += 1;
            self.stats.expiry_lines += 1;
        }
        self.scratch.mx_host = mx_buf;
        self.scratch.domain = domain_buf;
        self.scratch.sender = sender_buf;
        self.scratch.key = key;
    }

    /// `time_t` seconds, `YYYY-MM-DD HH:MM:SS±HHMM`, the same without an offset (the
    /// configured zone), or RFC 3339.
    fn pmta_time(&mut self, s: &str) -> Option<i64> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<i64>()
                .ok()?
                .checked_mul(1_000_000)
                .and_then(|t| self.stamps.in_reach(t));
        }
        if let Some((t, n)) = self.stamps.parse_local(s.as_bytes())
            && n == s.len()
        {
            return Some(t);
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .and_then(|t| self.stamps.in_reach(t.timestamp_micros()))
    }
}

/// Whether `hay` contains `needle` (lower-case ASCII) in any case, without the
/// lower-cased copy of `hay` a bounce would otherwise cost.
fn contains_ignoring_case(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(line: &str) -> Option<Vec<String>> {
        let mut v = Vec::new();
        split_csv(line, &mut v)?;
        Some(v.into_iter().map(|s| s.of(line).into_owned()).collect())
    }

    #[test]
    fn an_expiry_is_found_in_the_diagnostic_in_any_case() {
        assert!(contains_ignoring_case("smtp;550 Message EXPIRED", "expired"));
        assert!(contains_ignoring_case("Too Long In Queue", "too long in queue"));
        assert!(!contains_ignoring_case("smtp;550 5.1.1 user unknown", "expired"));
        assert!(!contains_ignoring_case("expire", "expired"), "shorter than the word");
    }

    #[test]
    fn quoted_fields_keep_commas_and_doubled_quotes() {
        assert_eq!(
            csv(r#"b,"smtp;550 5.7.1 ""spam"", sorry",x,"""""#).expect("csv"),
            ["b", "smtp;550 5.7.1 \"spam\", sorry", "x", "\""]
        );
        assert_eq!(csv("a,,c,").expect("csv"), ["a", "", "c", ""]);
        assert_eq!(csv(r#""cut here"#), None);
        assert_eq!(csv(r#""a"b,c"#).expect("lenient"), ["ab", "c"]);
    }

    #[test]
    fn headers_map_columns_by_name() {
        let c = Columns::from_header("vmta,rcpt,type,dlvDesintationIp");
        assert_eq!((c.0[F::Type as usize], c.0[F::Rcpt as usize]), (Some(2), Some(1)));
        assert_eq!(c.0[F::DestinationIp as usize], Some(3));
        assert_eq!(c.0[F::TimeLogged as usize], None);
        assert!(looks_like_pmta(b"d,1178807903,a@b"));
        assert!(looks_like_pmta(b"transient,1"));
        assert!(!looks_like_pmta(b"transients,1"));
        assert!(!looks_like_pmta(b"d"));
        assert!(!looks_like_pmta(b"Nov  8 08:14:01 host postfix/smtp[1]: x"));
    }
}
