//! One message's planned life: who sent it, its recipients, and the
//! time-ordered steps (one log line each) still to be written.

use std::collections::VecDeque;

use crate::providers::{ConnFail, Kind, Mx};
use crate::qid::Qid;
use crate::replies::Reply;

#[derive(Debug)]
pub(crate) struct Rcpt {
    pub local: u32,
    pub domain: usize,
    /// The address before alias expansion (`orig_to=`), when there was one.
    pub orig_to: Option<u32>,
    /// Delivered or bounced by the end of the plan.
    pub done: bool,
    /// (MX host, MX group) of the latest attempt written, as the log names them: an
    /// expiry is attributed there. Exim's holds name no host (empty; group = the
    /// recipient domain's, see `providers::group_of_domain`).
    pub last_written: Option<(&'static str, &'static str)>,
    /// Attempts written so far (KumoMTA logs the count).
    pub written_attempts: u32,
    /// The MX IP of the latest attempt written (PowerMTA names it in the expiry).
    pub last_ip: Option<&'static str>,
}

#[derive(Debug)]
pub(crate) struct Msg {
    pub instance: usize,
    pub qid: Qid,
    /// Arrival time, µs.
    pub t0: i64,
    pub sender: usize,
    pub size: u64,
    /// `<...@sender.domain>` with the brackets.
    pub msgid: Vec<u8>,
    pub rcpts: Vec<Rcpt>,
    pub steps: VecDeque<Step>,
}

impl Msg {
    /// What reply templates may name, for one recipient at time `t`.
    pub(crate) fn vars<'a>(&'a self, local: u32, domain: &'a str, t: i64) -> crate::replies::Vars<'a> {
        crate::replies::Vars {
            src: crate::fleet::INSTANCES[self.instance].wire_ip,
            rcpt_local: local,
            domain,
            msgid: &self.msgid,
            unix: t.div_euclid(crate::stamp::US_PER_SEC),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Step {
    pub t: i64,
    pub pid: u32,
    pub kind: StepKind,
}

#[derive(Debug)]
pub(crate) enum StepKind {
    Pickup,
    SmtpdConnect,
    SmtpdClient,
    SmtpdDisconnect,
    Cleanup,
    QmgrActive {
        nrcpt: usize,
    },
    /// `Verified TLS connection established to ...` (no queue id).
    Tls {
        mx: &'static Mx,
        ip: &'static str,
        kind: Kind,
    },
    /// `connect to H[IP]:25: Connection refused` for an MX tried before the
    /// last one (no queue id).
    ConnectInfo {
        mx: &'static Mx,
        ip: &'static str,
        fail: ConnFail,
    },
    /// `QID: host H[IP] said: ...` / `refused to talk to me: ...` for an MX
    /// given up on before the one named in the status line.
    HostInfo {
        /// The recipient the reply quotes, if it quotes one.
        rcpt: usize,
        mx: &'static Mx,
        ip: &'static str,
        reply: &'static Reply,
    },
    Attempt(Attempt),
    Expired,
    /// `sender non-delivery notification: QID2`
    Ndr {
        qid2: Qid,
    },
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agent {
    Smtp,
    /// Postfix's `error` agent: holds for a destination marked dead.
    Error,
}

#[derive(Debug)]
pub(crate) struct Attempt {
    pub rcpt: usize,
    pub agent: Agent,
    /// The MX the truth attributes the attempt to (relay host, or the host
    /// named in the `connect to` text for `relay=none`).
    pub mx: &'static Mx,
    pub ip: &'static str,
    pub result: AttemptResult,
    /// `delays=a/b/c/d` parts b, c, d (µs); a is derived from the arrival.
    pub b_us: u64,
    pub c_us: u64,
    pub d_us: u64,
    /// `conn_use=N` for a cached connection.
    pub conn_use: u8,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum AttemptResult {
    Sent,
    Deferred(&'static Reply),
    Bounced(&'static Reply),
    /// `relay=none ... (connect to H[IP]:25: ...)`
    ConnFail(ConnFail),
    /// `relay=none ... (delivery temporarily suspended: connect to ...)`
    Suspended(ConnFail),
    /// `(lost connection with H[IP] while ...)`
    Lost,
}
