//! The generator loop: pops the earliest event, plans arriving messages,
//! writes one line per call, keeps the truth in step with what was written,
//! and enforces the line budget.

use std::io::{self, Write};

use crate::config::{GenConfig, LogFormat};
use crate::fleet::INSTANCES;
use crate::junk::Junk;
use crate::message::{AttemptResult, StepKind};
use crate::noise::{self, NOISE_PER_MESSAGE};
use crate::plan::Planner;
use crate::postfix::Writer;
use crate::providers::{DOMAINS, group_of_domain};
use crate::rng::Rng;
use crate::schedule::{Event, Schedule};
use crate::stamp::{US_PER_HOUR, US_PER_SEC, hour_of};
use crate::truth::{Outcome, Truth};

/// Relative arrival rate per UTC hour of day (normalised to mean 1 below):
/// quiet nights, a late-morning peak.
const DAILY_CURVE: [f64; 24] = [
    0.6, 0.55, 0.5, 0.5, 0.55, 0.65, 0.8, 0.95, 1.1, 1.2, 1.3, 1.35, 1.35, 1.3, 1.3, 1.3, 1.25, 1.2, 1.15, 1.1, 1.0,
    0.9, 0.8, 0.7,
];

/// A seeded, streaming Postfix log generator; see [`GenConfig`] for what
/// `lines` means.
#[derive(Debug)]
pub struct Generator {
    cfg: GenConfig,
    schedule: Schedule,
    planner: Planner,
    writer: Writer,
    junk: Junk,
    truth: Truth,
    arrival_rng: Rng,
    noise_rng: Rng,
    /// Still starting messages (and background lines).
    open: bool,
    /// Lines still owed by messages in flight.
    planned: u64,
    emitted: u64,
    /// Junk lines among `emitted`; they come on top of the budget, so the
    /// junk rate never changes the traffic underneath.
    junk_emitted: u64,
    /// Messages' steps written so far, and the lines they made: a KumoMTA or
    /// PowerMTA step may make none (a queue manager's line), so `planned` steps are
    /// fewer lines by this ratio.
    steps_done: u64,
    step_lines: u64,
    last_t: i64,
    curve_mean: f64,
    header_written: bool,
}

impl Generator {
    pub fn new(cfg: GenConfig) -> Generator {
        let start = cfg.start_unix.saturating_mul(US_PER_SEC);
        let mut pid_rng = Rng::new(cfg.seed, 1);
        let mut g = Generator {
            schedule: Schedule::default(),
            planner: Planner::new(cfg.seed, cfg.queue_lifetime_secs, &mut pid_rng),
            writer: Writer::new(cfg.seed),
            junk: Junk::new(cfg.seed, cfg.junk_per_million),
            truth: Truth::default(),
            arrival_rng: Rng::new(cfg.seed, 5),
            noise_rng: Rng::new(cfg.seed, 6),
            open: cfg.lines > 0 && cfg.messages_per_hour > 0,
            planned: 0,
            emitted: 0,
            junk_emitted: 0,
            steps_done: 0,
            step_lines: 0,
            last_t: start,
            curve_mean: DAILY_CURVE.iter().sum::<f64>() / 24.0,
            header_written: false,
            cfg,
        };
        if g.open {
            g.schedule.push(start, Event::Arrival);
            let first_noise = start + g.noise_gap();
            g.schedule.push(first_noise, Event::Noise);
        }
        g
    }

    fn arrival_gap(&mut self, t: i64) -> i64 {
        let hour_of_day = t.div_euclid(US_PER_HOUR).rem_euclid(24) as usize;
        let rate = f64::from(self.cfg.messages_per_hour) * DAILY_CURVE[hour_of_day] / self.curve_mean;
        // At least 1 µs, so arrivals always move forward.
        (self.arrival_rng.exp(US_PER_HOUR as f64 / rate) as i64).max(1)
    }

    fn noise_gap(&mut self) -> i64 {
        let rate = f64::from(self.cfg.messages_per_hour) * NOISE_PER_MESSAGE;
        (self.noise_rng.exp(US_PER_HOUR as f64 / rate) as i64).max(1)
    }

    /// Appends the next line (with its trailing `\n`) to `out`; returns false
    /// when the run is over. Lines come in non-decreasing timestamp order.
    pub fn next_line(&mut self, out: &mut Vec<u8>) -> bool {
        // An accounting file starts with the line naming its columns.
        if self.cfg.format == LogFormat::PowerMta && !self.header_written {
            self.header_written = true;
            out.extend_from_slice(crate::pmta::HEADER);
            return true;
        }
        loop {
            let Some(entry) = self.schedule.pop() else {
                return false;
            };
            let (t, _, ev) = entry;
            match ev {
                Event::Arrival => {
                    if !self.open {
                        continue;
                    }
                    if self.emitted - self.junk_emitted + self.planned_lines() >= self.cfg.lines {
                        self.open = false;
                        continue;
                    }
                    let msg = self.planner.plan(t);
                    self.planned += msg.steps.len() as u64;
                    self.schedule.insert(msg);
                    let next = t + self.arrival_gap(t);
                    self.schedule.push(next, Event::Arrival);
                }
                Event::Noise => {
                    if !self.open {
                        continue;
                    }
                    if self.junk_first(out, entry) {
                        return true;
                    }
                    noise::write(out, t, &mut self.writer, &mut self.planner.pids, &mut self.noise_rng);
                    let next = t + self.noise_gap();
                    self.schedule.push(next, Event::Noise);
                    self.emitted += 1;
                    self.last_t = t;
                    return true;
                }
                Event::Msg(slot) => {
                    if self.junk_first(out, entry) {
                        return true;
                    }
                    // `out` may hold lines before this one (`write_log`).
                    let before = out.len();
                    self.message_line(out, slot);
                    self.steps_done += 1;
                    if out.len() == before {
                        continue;
                    }
                    self.step_lines += 1;
                    self.emitted += 1;
                    self.last_t = t;
                    return true;
                }
            }
        }
    }

    /// The lines the steps still planned will make, at the rate steps so far made
    /// them (all of them, before any).
    fn planned_lines(&self) -> u64 {
        if self.steps_done == 0 {
            return self.planned;
        }
        (self.planned as f64 * self.step_lines as f64 / self.steps_done as f64).round() as u64
    }

    /// Maybe writes a junk line in front of `entry`, which is put back to
    /// come out next.
    fn junk_first(&mut self, out: &mut Vec<u8>, entry: (i64, u64, Event)) -> bool {
        if !self.junk.due() {
            return false;
        }
        self.junk.write(out, entry.0, &mut self.writer);
        self.schedule.push_back(entry);
        self.emitted += 1;
        self.junk_emitted += 1;
        self.last_t = entry.0;
        true
    }

    fn message_line(&mut self, out: &mut Vec<u8>, slot: u32) {
        let Some(msg) = self.schedule.msg_mut(slot) else {
            return;
        };
        let Some(step) = msg.steps.pop_front() else {
            return;
        };
        self.planned = self.planned.saturating_sub(1);
        let source = INSTANCES[msg.instance].source_ip();
        let hour = hour_of(step.t);
        if let StepKind::Attempt(a) = &step.kind {
            let outcome = match a.result {
                AttemptResult::Sent => Outcome::Delivered,
                AttemptResult::Bounced(_) => Outcome::Bounced,
                AttemptResult::Deferred(_)
                | AttemptResult::ConnFail(_)
                | AttemptResult::Suspended(_)
                | AttemptResult::Lost => Outcome::Deferred,
            };
            // Exim and KumoMTA holds for a dead destination name no host: the recipient
            // domain's group (its provider's, for a provider's own mailboxes) is theirs.
            let (host, group) = match (self.cfg.format, a.result) {
                (LogFormat::Exim | LogFormat::KumoMta | LogFormat::PowerMta, AttemptResult::Suspended(_)) => {
                    ("", group_of_domain(&DOMAINS[msg.rcpts[a.rcpt].domain]))
                }
                _ => (a.mx.host, a.mx.group),
            };
            self.truth.record(hour, source, host, group, outcome);
            // A deferral naming no receiver (a hold, a DNS failure): an expiry after it
            // goes where the recipient was last refused, if anywhere.
            let last = &mut msg.rcpts[a.rcpt].last_written;
            if !host.is_empty() || !last.is_some_and(|(h, _)| !h.is_empty()) {
                *last = Some((host, group));
            }
            msg.rcpts[a.rcpt].written_attempts += 1;
            msg.rcpts[a.rcpt].last_ip = Some(a.ip);
        }
        match self.cfg.format {
            LogFormat::Postfix => self.writer.step(out, msg, &step),
            LogFormat::Exim => crate::exim::step(&mut self.writer, out, msg, &step),
            LogFormat::KumoMta => crate::kumo::step(&mut self.writer, out, msg, &step),
            LogFormat::PowerMta => crate::pmta::step(&mut self.writer, out, msg, &step),
        }
        if let StepKind::Expired = &step.kind {
            // The plan ends at expiry, so `done` here means done before it.
            for r in msg.rcpts.iter().filter(|r| !r.done) {
                if let Some((host, group)) = r.last_written {
                    self.truth.record(hour, source, host, group, Outcome::Expired);
                }
            }
        }
        match msg.steps.front().map(|s| s.t) {
            Some(next) => self.schedule.push(next, Event::Msg(slot)),
            None => self.schedule.release(slot),
        }
    }

    /// Event time of the line last returned, in microseconds since the unix
    /// epoch (UTC). BSD-stamped lines print it truncated to the second.
    pub fn last_time_us(&self) -> i64 {
        self.last_t
    }

    /// Expected report rows for every line emitted so far.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    pub fn into_truth(self) -> Truth {
        self.truth
    }

    /// All lines returned so far, junk and background lines included.
    pub fn lines_emitted(&self) -> u64 {
        self.emitted
    }

    /// Messages planned but not yet removed: what memory is proportional to.
    pub fn messages_in_flight(&self) -> usize {
        self.schedule.in_flight()
    }

    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }
}

/// Runs a whole generation into `w` (buffered internally) and returns the truth.
pub fn write_log<W: Write>(cfg: GenConfig, mut w: W) -> io::Result<Truth> {
    const CHUNK: usize = 1 << 16;
    let mut g = Generator::new(cfg);
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    while g.next_line(&mut buf) {
        if buf.len() >= CHUNK {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()?;
    Ok(g.into_truth())
}
