//! Junk lines: what real log shipping produces now and then. A delivery line
//! cut short, invalid UTF-8, an empty line, printable garbage. None is a
//! complete status line (cuts stop before `status=`, garbage has no `=`), so
//! none may be counted.

use crate::fleet::{HOSTS, INSTANCES};
use crate::out::push_u64;
use crate::postfix::{Writer, host_ip};
use crate::providers::DOMAINS;
use crate::qid::QidGen;
use crate::rng::Rng;

#[derive(Debug)]
pub(crate) struct Junk {
    rng: Rng,
    /// Ids for cut lines come from their own series; they only have to look
    /// like the host's ids.
    qids: Vec<QidGen>,
    per_million: u64,
}

impl Junk {
    pub(crate) fn new(seed: u64, per_million: u32) -> Junk {
        Junk {
            rng: Rng::new(seed, 4),
            qids: HOSTS
                .iter()
                .enumerate()
                .map(|(i, h)| QidGen::new(h.qid, seed ^ 0x4A55_4E4B, i))
                .collect(),
            per_million: u64::from(per_million),
        }
    }

    /// Whether a junk line goes before the next real line.
    pub(crate) fn due(&mut self) -> bool {
        self.per_million > 0 && self.rng.below(1_000_000) < self.per_million
    }

    pub(crate) fn write(&mut self, out: &mut Vec<u8>, t: i64, w: &mut Writer) {
        let inst = self.rng.index(INSTANCES.len());
        match self.rng.below(4) {
            0 => self.cut_delivery(out, t, inst, w),
            1 => {
                let pid = self.rng.range(1000, 60_000) as u32;
                w.prefix(out, t, inst, "smtpd", pid);
                out.extend_from_slice(b"warning: hostname mail\xff\xfe");
                push_u64(out, self.rng.range(1, 99));
                out.extend_from_slice(b".example does not resolve to address 10.0.0.7: Name or service not known\n");
            }
            2 => out.push(b'\n'),
            _ => {
                let len = self.rng.range(20, 120);
                for _ in 0..len {
                    // Printable ASCII without '=': never a key=value field.
                    let mut b = b' ' + self.rng.below(95) as u8;
                    if b == b'=' {
                        b = b'~';
                    }
                    out.push(b);
                }
                out.push(b'\n');
            }
        }
    }

    fn cut_delivery(&mut self, out: &mut Vec<u8>, t: i64, inst: usize, w: &mut Writer) {
        let pid = self.rng.range(1000, 60_000) as u32;
        w.prefix(out, t, inst, "smtp", pid);
        let start = out.len();
        let qid = self.qids[INSTANCES[inst].host].next(t);
        out.extend_from_slice(qid.as_bytes());
        out.extend_from_slice(b": to=<u");
        push_u64(out, self.rng.range(1, 999_999));
        out.push(b'@');
        let dom = &DOMAINS[self.rng.index(DOMAINS.len())];
        out.extend_from_slice(dom.name.as_bytes());
        out.extend_from_slice(b">, relay=");
        let mx = &dom.mxs[0];
        host_ip(out, mx.host, mx.v4[0]);
        out.extend_from_slice(b":25, delay=0.4, delays=0.01/0/0.2/0.19, dsn=2.0.0, ");
        // Cut somewhere after `to=<` and before `status=`.
        let min = start + qid.as_bytes().len() + 6;
        let cut = min + self.rng.index(out.len() - min - 1);
        out.truncate(cut);
        out.push(b'\n');
    }
}
