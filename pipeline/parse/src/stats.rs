//! What the normalizer did with each line: events, skips by kind, rejects by MTA and
//! reason.

use deferlog_event::Mta;

macro_rules! kinds {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }
    };
}

kinds!(
    /// A line that is not a delivery event, and so is counted and dropped.
    SkipKind {
        Empty => "empty",
        Unrecognized => "unrecognized",
        // A syslog line of a program that is no MTA deferlog reads (cron, sshd), or of
        // an MTA another `--format` reads.
        OtherProgram => "other_program",
        Submission => "submission",
        QueueManager => "queue_manager",
        SmtpInfo => "smtp_info",
        LocalDelivery => "local_delivery",
        AddressVerification => "address_verification",
        Notification => "notification",
        Warning => "warning",
        OtherService => "other_service",
        // KumoMTA Reception, OOB, Feedback: about a message, but not attempts.
        NotAttempt => "not_attempt",
        // A CSV header line (PowerMTA accounting): read for its column names.
        Header => "header",
        // A delivery to the sending side's own filter or proxy (see `handoff`).
        Handoff => "handoff",
        // A later piece of a line Exim's syslog writer cut (`[2/3] ...`): the first
        // piece is read as a line cut within its reply.
        Continuation => "continuation",
    }
);

kinds!(
    /// Why a line that looked like a delivery event could not be turned into one.
    RejectReason {
        Truncated => "truncated",
        BadTimestamp => "bad_timestamp",
        BadQueueId => "bad_queue_id",
        BadRecipient => "bad_recipient",
        BadRelay => "bad_relay",
        BadStatus => "bad_status",
        // Starts like JSON, does not parse as JSON; or parses, but lacks what a
        // delivery record needs (type, id, time, recipient).
        BadJson => "bad_json",
        BadRecord => "bad_record",
        // A tenant (from a shipper's envelope) that is not a short printable name.
        BadTenant => "bad_tenant",
        // Longer than any MTA writes a line (its reader cut it): no MTA's.
        TooLong => "too_long",
        // A PowerMTA record whose column count is neither default layout's, and no
        // header seen or layout configured (`powermta_fields`) to read it by.
        BadColumns => "bad_columns",
    }
);

/// Running counts, copied out for a summary, a checkpoint or a metrics scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub lines: u64,
    pub bytes: u64,
    pub events: u64,
    pub expiries: u64,
    /// Lines that expired a message (each yields one expiry per pending recipient).
    pub expiry_lines: u64,
    // Kinds and reasons are only ever appended: counts stored by an older build
    // (in checkpoints) read back padded.
    #[serde(deserialize_with = "padded")]
    pub skipped: [u64; SkipKind::ALL.len()],
    /// By reason, over every MTA: what builds before 2026-12-05 stored, and still
    /// stored so that such a build can read a checkpoint back.
    #[serde(deserialize_with = "padded")]
    pub rejected: [u64; RejectReason::ALL.len()],
    /// By MTA, then reason: row 0 for records that are no MTA's, then one per MTA in
    /// `Mta::ALL` order (so an MTA added later appends a row).
    #[serde(default, deserialize_with = "padded_rows")]
    pub rejects: [[u64; RejectReason::ALL.len()]; Mta::ALL.len() + 1],
    /// Queue ids dropped from correlation state because it was full.
    pub evictions: u64,
    /// Events whose reply the line was cut within (syslog's line limit): classified
    /// by what is left of it.
    #[serde(default)]
    pub cut_replies: u64,
    /// Queue ids currently held in correlation state.
    pub state_size: u64,
    /// Attempts to recipients past the per-queue-id limit (no attempt number kept).
    pub untracked_recipients: u64,
    /// Attempts that went out without a sending IP, by host and instance, since this
    /// normalizer was made: not checkpointed, so after a restart that added the
    /// missing `[[egress]]` entry a host is not named again for its earlier attempts.
    #[serde(skip)]
    pub no_source_ip: NoSourceIp,
}

/// The row of `Stats::rejects` for `mta`.
fn row(mta: Option<Mta>) -> usize {
    mta.map_or(0, |m| m.index() + 1)
}

fn padded<'de, D: serde::Deserializer<'de>, const N: usize>(d: D) -> Result<[u64; N], D::Error> {
    pad(serde::Deserialize::deserialize(d)?, 0)
}

fn padded_rows<'de, D: serde::Deserializer<'de>, const M: usize, const N: usize>(
    d: D,
) -> Result<[[u64; N]; M], D::Error> {
    let rows: Vec<Vec<u64>> = serde::Deserialize::deserialize(d)?;
    let rows = rows
        .into_iter()
        .map(|r| pad(r, 0))
        .collect::<Result<Vec<[u64; N]>, _>>()?;
    pad(rows, [0; N])
}

fn pad<T: Copy, E: serde::de::Error, const N: usize>(v: Vec<T>, zero: T) -> Result<[T; N], E> {
    if v.len() > N {
        return Err(E::invalid_length(v.len(), &"no more counts than this build knows"));
    }
    let mut a = [zero; N];
    a[..v.len()].copy_from_slice(&v);
    Ok(a)
}

/// Hosts and instances remembered by name; attempts of any others are only counted,
/// so a stream of made-up host names cannot grow the list.
const MAX_NAMED_SOURCES: usize = 32;

/// Attempts without a sending IP (the record names none and no `[[egress]]` entry
/// matches its host and instance), by host and instance: what the egress map lacks,
/// named so a user can add it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoSourceIp {
    /// In the order first seen (merged lists: in the order merged).
    pub sources: Vec<HostInstance>,
    /// Attempts of hosts and instances past the first `MAX_NAMED_SOURCES`.
    pub others: u64,
}

/// One host and instance, and its attempts without a sending IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInstance {
    pub host: String,
    /// `""` when the record names no instance.
    pub instance: String,
    pub attempts: u64,
}

/// As a user finds it in the configuration: `host mta-out3, instance postfix`.
impl std::fmt::Display for HostInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.instance.as_str() {
            "" => write!(f, "host {}, no instance", self.host),
            i => write!(f, "host {}, instance {i}", self.host),
        }
    }
}

impl NoSourceIp {
    pub fn count(&mut self, host: &str, instance: &str) {
        self.add(host, instance, 1);
    }

    fn add(&mut self, host: &str, instance: &str, attempts: u64) {
        if let Some(s) = self
            .sources
            .iter_mut()
            .find(|s| s.host == host && s.instance == instance)
        {
            s.attempts += attempts;
        } else if self.sources.len() < MAX_NAMED_SOURCES {
            self.sources.push(HostInstance {
                host: host.into(),
                instance: instance.into(),
                attempts,
            });
        } else {
            self.others += attempts;
        }
    }

    pub fn merge(&mut self, other: &NoSourceIp) {
        for s in &other.sources {
            self.add(&s.host, &s.instance, s.attempts);
        }
        self.others += other.others;
    }

    pub fn attempts(&self) -> u64 {
        self.sources.iter().map(|s| s.attempts).sum::<u64>() + self.others
    }
}

impl Stats {
    pub fn skip(&mut self, kind: SkipKind) {
        self.skipped[kind as usize] += 1;
    }

    /// Takes back one `kind` skip: its line is counted elsewhere instead.
    pub fn unskip(&mut self, kind: SkipKind) {
        self.skipped[kind as usize] = self.skipped[kind as usize].saturating_sub(1);
    }

    pub fn reject(&mut self, mta: Option<Mta>, reason: RejectReason) {
        self.rejected[reason as usize] += 1;
        self.rejects[row(mta)][reason as usize] += 1;
    }

    pub fn skipped(&self, kind: SkipKind) -> u64 {
        self.skipped[kind as usize]
    }

    /// Rejects for `reason`, over every MTA.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason as usize]
    }

    pub fn rejected_by(&self, mta: Option<Mta>, reason: RejectReason) -> u64 {
        self.rejects[row(mta)][reason as usize]
    }

    /// After reading counts stored by a build that kept rejects by reason only (every
    /// one of them labelled `postfix` then): what the MTA rows lack goes to Postfix's,
    /// so its series go on from where they were.
    pub fn restored(mut self) -> Stats {
        let postfix = row(Some(Mta::Postfix));
        for r in 0..self.rejected.len() {
            let by_mta: u64 = self.rejects.iter().map(|row| row[r]).sum();
            self.rejects[postfix][r] += self.rejected[r].saturating_sub(by_mta);
        }
        self
    }

    pub fn total_skipped(&self) -> u64 {
        self.skipped.iter().sum()
    }

    pub fn total_rejected(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Lines that are no record of any MTA read: unrecognized, another program's, or
    /// dead letters of no MTA (JSON that is no shipper's envelope of a log line). Most
    /// of a log being so says it is not in the format read; an MTA parser's own
    /// refusals (a Postfix line without its stamp) do not.
    pub fn foreign_lines(&self) -> u64 {
        self.skipped(SkipKind::Unrecognized)
            + self.skipped(SkipKind::OtherProgram)
            + self.rejects[0].iter().sum::<u64>()
    }

    /// Every line is exactly one of these; a test asserts it.
    pub fn accounted_lines(&self) -> u64 {
        (self.events - self.expiries) + self.expiry_lines + self.total_skipped() + self.total_rejected()
    }

    /// Adds another normalizer's counts (state size is a level, not a count: summed too,
    /// since separate normalizers hold separate state).
    pub fn merge(&mut self, other: &Stats) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.events += other.events;
        self.expiries += other.expiries;
        self.expiry_lines += other.expiry_lines;
        self.untracked_recipients += other.untracked_recipients;
        for (a, b) in self.skipped.iter_mut().zip(other.skipped) {
            *a += b;
        }
        for (a, b) in self.rejected.iter_mut().zip(other.rejected) {
            *a += b;
        }
        for (a, b) in self.rejects.iter_mut().flatten().zip(other.rejects.iter().flatten()) {
            *a += b;
        }
        self.evictions += other.evictions;
        self.cut_replies += other.cut_replies;
        self.state_size += other.state_size;
        self.no_source_ip.merge(&other.no_source_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_without_an_ip_are_named_up_to_a_bound_and_merge_by_name() {
        let mut a = NoSourceIp::default();
        for i in 0..MAX_NAMED_SOURCES + 3 {
            a.count(&format!("mta{i}"), "postfix");
        }
        a.count("mta0", "postfix");
        assert_eq!(a.sources.len(), MAX_NAMED_SOURCES);
        assert_eq!((a.sources[0].attempts, a.others), (2, 3));
        let mut b = NoSourceIp::default();
        b.count("elsewhere", "");
        b.count("mta0", "postfix");
        b.merge(&a);
        assert_eq!(
            b.sources.len(),
            MAX_NAMED_SOURCES,
            "the first ones seen keep their names"
        );
        assert_eq!(b.sources[0].to_string(), "host elsewhere, no instance");
        assert_eq!(
            (b.sources[1].to_string().as_str(), b.sources[1].attempts),
            ("host mta0, instance postfix", 3)
        );
        assert_eq!(b.attempts(), a.attempts() + 2);
    }

    #[test]
    fn counts_stored_by_a_build_with_fewer_kinds_read_back_padded() {
        let mut s = Stats::default();
        s.skip(SkipKind::Warning);
        s.reject(Some(Mta::Postfix), RejectReason::Truncated);
        let mut json: serde_json::Value = serde_json::to_value(&s).expect("json");
        json["skipped"].as_array_mut().expect("array").pop();
        json["rejected"].as_array_mut().expect("array").truncate(2);
        // Rows of an MTA this build knows and that build did not, and reasons too.
        let rejects = json["rejects"].as_array_mut().expect("array");
        rejects.truncate(2);
        rejects[1].as_array_mut().expect("array").truncate(2);
        let back: Stats = serde_json::from_value(json).expect("padded");
        assert_eq!(back, s);
        let mut too_long = serde_json::to_value(&s).expect("json");
        too_long["rejects"][0].as_array_mut().expect("array").push(1.into());
        assert!(serde_json::from_value::<Stats>(too_long).is_err());
        // A checkpoint from before rejects were kept by MTA.
        let mut old = serde_json::to_value(&s).expect("json");
        old.as_object_mut().expect("object").remove("rejects");
        old["rejected"] = serde_json::json!([0, 3]);
        let back = serde_json::from_value::<Stats>(old).expect("old").restored();
        assert_eq!(back.total_rejected(), 3);
        assert_eq!(back.rejected_by(Some(Mta::Postfix), RejectReason::ALL[1]), 3);
        // And one an older build wrote on after this one (it keeps `rejected` only).
        let mut s = Stats::default();
        s.reject(None, RejectReason::BadJson);
        s.rejected[RejectReason::BadJson as usize] += 2;
        let s = s.restored();
        assert_eq!(s.rejected_by(None, RejectReason::BadJson), 1);
        assert_eq!(s.rejected_by(Some(Mta::Postfix), RejectReason::BadJson), 2);
    }
}
