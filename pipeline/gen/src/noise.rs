//! Background lines that belong to no delivery: Postfix bookkeeping (anvil,
//! scache, warnings, monitoring probes) and the rest of the box (cron,
//! dovecot, kernel, systemd). None of them is an attempt; they are there so a
//! parser has to tell.

use crate::fleet::INSTANCES;
use crate::out::push_u64;
use crate::pids::{Pids, Service};
use crate::postfix::Writer;
use crate::rng::Rng;

/// Share of noise among all lines, roughly.
pub(crate) const NOISE_PER_MESSAGE: f64 = 0.3;

pub(crate) fn write(out: &mut Vec<u8>, t: i64, w: &mut Writer, pids: &mut Pids, rng: &mut Rng) {
    let inst = rng.index(INSTANCES.len());
    let host = INSTANCES[inst].host;
    match rng.below(14) {
        0 => {
            w.prefix(out, t, inst, "anvil", pids.anvil(inst));
            out.extend_from_slice(b"statistics: max connection rate ");
            push_u64(out, rng.range(1, 40));
            out.extend_from_slice(b"/60s for (smtp:10.0.0.5) at ");
            // anvil quotes its own BSD-style time, whatever the syslog stamp.
            w.bsd_time(out, t);
        }
        1 => {
            w.prefix(out, t, inst, "anvil", pids.anvil(inst));
            out.extend_from_slice(b"statistics: max connection count ");
            push_u64(out, rng.range(1, 9));
            out.extend_from_slice(b" for (smtp:10.0.1.20) at ");
            // anvil quotes its own BSD-style time, whatever the syslog stamp.
            w.bsd_time(out, t);
        }
        2 => {
            w.prefix(out, t, inst, "scache", pids.scache(inst));
            out.extend_from_slice(b"statistics: domain lookup hits=");
            let hits = rng.range(0, 400);
            let miss = rng.range(1, 60);
            push_u64(out, hits);
            out.extend_from_slice(b" miss=");
            push_u64(out, miss);
            out.extend_from_slice(b" success=");
            push_u64(out, hits * 100 / (hits + miss));
            out.push(b'%');
        }
        3 => {
            w.prefix(out, t, inst, "scache", pids.scache(inst));
            out.extend_from_slice(b"statistics: max simultaneous domains=");
            push_u64(out, rng.range(1, 12));
            out.extend_from_slice(b" addresses=");
            push_u64(out, rng.range(1, 20));
            out.extend_from_slice(b" connection=");
            push_u64(out, rng.range(1, 30));
        }
        4 => {
            let pid = pids.take(inst, Service::Smtp, rng);
            w.prefix(out, t, inst, "smtp", pid);
            out.extend_from_slice(b"warning: TLS library problem: error:0A000126:SSL routines::unexpected eof while reading:../ssl/record/rec_layer_s3.c:317:");
        }
        5 => {
            let pid = pids.take(inst, Service::Smtpd, rng);
            w.prefix(out, t, inst, "smtpd", pid);
            out.extend_from_slice(
                b"warning: hostname app3.internal does not resolve to address 10.0.0.7: Name or service not known",
            );
        }
        6 => {
            let pid = pids.take(inst, Service::Smtpd, rng);
            w.prefix(out, t, inst, "smtpd", pid);
            out.extend_from_slice(b"connect from monitor.internal[10.0.0.2]");
        }
        7 => {
            let pid = pids.take(inst, Service::Smtpd, rng);
            w.prefix(out, t, inst, "smtpd", pid);
            out.extend_from_slice(b"disconnect from monitor.internal[10.0.0.2] ehlo=1 quit=1 commands=2");
        }
        8 => {
            let pid = pids.transient(host, rng);
            w.stamp_host(out, t, host);
            out.extend_from_slice(b"CRON[");
            push_u64(out, u64::from(pid));
            out.extend_from_slice(b"]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)");
        }
        9 => {
            let pid = pids.transient(host, rng);
            w.stamp_host(out, t, host);
            out.extend_from_slice(b"CRON[");
            push_u64(out, u64::from(pid));
            out.extend_from_slice(b"]: pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)");
        }
        10 => {
            w.stamp_host(out, t, host);
            out.extend_from_slice(
                b"dovecot: imap-login: Login: user=<ops>, method=PLAIN, rip=10.0.0.9, lip=10.0.0.3, mpid=",
            );
            push_u64(out, rng.range(1000, 60_000));
            out.extend_from_slice(b", TLS, session=<");
            for _ in 0..16 {
                out.push(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.index(64)]);
            }
            out.push(b'>');
        }
        11 => {
            w.stamp_host(out, t, host);
            out.extend_from_slice(b"kernel: [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=192.0.2.");
            push_u64(out, rng.range(1, 254));
            out.extend_from_slice(b" DST=");
            let wire = INSTANCES[inst].wire_ip;
            out.extend_from_slice(if wire.contains(':') { "198.51.100.21" } else { wire }.as_bytes());
            out.extend_from_slice(b" LEN=44 TOS=0x00 PREC=0x00 TTL=241 PROTO=TCP SPT=");
            push_u64(out, rng.range(1024, 65_535));
            out.extend_from_slice(b" DPT=25 WINDOW=1024 RES=0x00 SYN URGP=0");
        }
        12 => {
            w.stamp_host(out, t, host);
            out.extend_from_slice(b"systemd[1]: Starting sysstat-collect.service - system activity accounting tool...");
        }
        _ => {
            let pid = pids.take(inst, Service::Smtp, rng);
            w.prefix(out, t, inst, "smtp", pid);
            out.extend_from_slice(b"warning: problem talking to service private/scache: Connection timed out");
        }
    }
    out.push(b'\n');
}
