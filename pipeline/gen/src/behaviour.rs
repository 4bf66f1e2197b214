//! When receivers push back. Episodes (a Yahoo throttle, a Microsoft
//! reputation dip on one IP, Gmail rate limiting one source, a company MX down
//! for an hour) are pure functions of (seed, who, hour), so a message's whole
//! life can be planned the moment it arrives without simulating every other
//! message, and hourly rows vary in a way that repeats per seed.

use crate::fleet::GMAIL_LIMITED_INSTANCE;
use crate::providers::{ConnFail, Domain, Kind};
use crate::replies::{self, Reply};
use crate::rng::{Rng, hash, hash_unit};
use crate::stamp::US_PER_HOUR;

/// How one SMTP session (one delivery agent run for one domain) goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Session {
    /// The destination does not answer; every MX fails like this.
    Down(ConnFail),
    /// 4xx in the greeting: `refused to talk to me`.
    Refused(&'static Reply),
    /// Connection dropped mid-dialogue.
    Lost,
    /// Connected; `Some` when the receiver then defers every recipient of the
    /// session (rate limits at MAIL FROM or end of DATA).
    Connected(Option<&'static Reply>),
}

#[derive(Debug)]
pub(crate) struct Behaviour {
    seed: u64,
}

/// Keys that separate the episode series of different actors.
const GMAIL_KEY: u64 = 0x6D61_696C;
const MS_KEY: u64 = 0x4D53;
const YAHOO_KEY: u64 = 0x5941_484F;
const OUTAGE_KEY: u64 = 0x444F_574E;

impl Behaviour {
    pub(crate) fn new(seed: u64) -> Behaviour {
        Behaviour { seed }
    }

    /// Whether an episode covers the hour of `t_us`: each hour starts one with
    /// probability `p_start`, lasting 1..=`max_hours` hours.
    fn episode(&self, key: u64, t_us: i64, p_start: f64, max_hours: u64) -> bool {
        let hour = t_us.div_euclid(US_PER_HOUR);
        (0..max_hours as i64).any(|back| {
            let start = hour - back;
            let w = [self.seed, key, start as u64];
            hash_unit(&w) < p_start && hash(&[self.seed, key, start as u64, 1]) % max_hours >= back as u64
        })
    }

    pub(crate) fn session(
        &self,
        domain: &Domain,
        domain_idx: usize,
        instance: usize,
        t_us: i64,
        rng: &mut Rng,
    ) -> Session {
        use Session::*;
        use replies::*;
        let roll = rng.unit();
        if roll < 0.002 && domain.kind != Kind::Dead {
            return Lost;
        }
        match domain.kind {
            Kind::Google => {
                if instance == GMAIL_LIMITED_INSTANCE && self.episode(GMAIL_KEY, t_us, 0.15, 3) && roll < 0.45 {
                    return Connected(Some(&GMAIL_RATE_4728));
                }
                if roll > 0.992 {
                    return Connected(Some(&GMAIL_UNSOLICITED_470));
                }
            }
            Kind::Microsoft => {
                if self.episode(MS_KEY ^ instance as u64, t_us, 0.06, 4) {
                    if roll < 0.40 {
                        return Connected(Some(&MS_IP_REPUTATION));
                    }
                    if roll < 0.48 {
                        return Connected(Some(&MS_CONCURRENT));
                    }
                }
                if roll > 0.99 {
                    return Connected(Some(&MS_BUSY));
                }
            }
            Kind::Yahoo => {
                if self.episode(YAHOO_KEY ^ instance as u64, t_us, 0.08, 4) && roll < 0.5 {
                    return Refused(&YAHOO_TSS04);
                }
                if roll > 0.99 {
                    return Refused(&YAHOO_TSS04);
                }
                if roll > 0.985 {
                    return Connected(Some(&YAHOO_INTERNAL));
                }
            }
            Kind::Apple if roll > 0.985 => {
                return Connected(Some(if roll > 0.993 {
                    &APPLE_VOLUME
                } else {
                    &APPLE_UNAVAILABLE
                }));
            }
            Kind::Comcast if roll > 0.985 => return Refused(&TOO_MANY_CONNECTIONS),
            Kind::Gmx if roll > 0.99 => return Refused(&GMX_POLICY),
            Kind::Orange if roll > 0.98 => return Refused(&ORANGE_CONNECTIONS),
            Kind::Telekom if roll > 0.99 => return Refused(&TELEKOM_BUSY),
            Kind::MailRu if roll > 0.98 => return Connected(Some(&MAILRU_LATER)),
            Kind::Yandex if roll > 0.99 => return Connected(Some(&YANDEX_LATER)),
            Kind::Tencent if roll > 0.97 => return Connected(Some(&QQ_LATER)),
            Kind::Netease if roll > 0.95 => return Connected(Some(&NETEASE_SPAM_DEFER)),
            Kind::Proofpoint if roll > 0.985 => return Refused(&PROOFPOINT_BUSY),
            Kind::Mimecast if roll > 0.985 => return Connected(Some(&MIMECAST_UNAVAILABLE)),
            Kind::Company => {
                if self.episode(OUTAGE_KEY ^ domain_idx as u64, t_us, 0.04, 1) {
                    return Down(domain.fails);
                }
                if roll > 0.995 {
                    return Refused(&TOO_MANY_FROM);
                }
                if roll > 0.99 {
                    return Connected(Some(&QUEUE_WRITE));
                }
                if roll > 0.985 {
                    return Connected(Some(&NO_REVERSE));
                }
            }
            Kind::Dead => return Down(domain.fails),
            _ => {}
        }
        Connected(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_come_and_go() {
        let b = Behaviour::new(7);
        let hours: Vec<bool> = (0..500)
            .map(|h| b.episode(YAHOO_KEY, h * US_PER_HOUR, 0.10, 4))
            .collect();
        let on = hours.iter().filter(|&&x| x).count();
        assert!(on > 20 && on < 250, "{on}");
    }
}
