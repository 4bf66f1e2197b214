//! No recipient local part is written to any output file.

use crate::support::{generate, replay};
use std::collections::BTreeSet;
use std::path::Path;

fn local_parts(log: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for marker in ["to=<", "orig_to=<"] {
        for part in log.split(marker).skip(1) {
            if let Some(at) = part.find('@')
                && at < part.find('>').unwrap_or(usize::MAX)
            {
                out.insert(part[..at].to_owned());
            }
        }
    }
    out
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
    }
    out
}

/// Every string and binary value of every column of a Parquet file, decompressed.
fn parquet_values(path: &Path) -> Vec<Vec<u8>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;
    let file = std::fs::File::open(path).expect("open");
    let reader = parquet_reader(file);
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        for col in batch.columns() {
            let col = match col.data_type() {
                DataType::Dictionary(_, _) => arrow::compute::cast(col, &DataType::Utf8).expect("cast"),
                _ => col.clone(),
            };
            match col.data_type() {
                DataType::Utf8 => out.extend(col.as_string::<i32>().iter().flatten().map(|s| s.as_bytes().to_vec())),
                DataType::Binary => out.extend(col.as_binary::<i32>().iter().flatten().map(<[u8]>::to_vec)),
                _ => {}
            }
        }
    }
    out
}

fn parquet_reader(
    file: std::fs::File,
) -> impl Iterator<Item = Result<arrow::array::RecordBatch, arrow::error::ArrowError>> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
}

#[test]
fn no_recipient_local_part_appears_in_any_output_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 40_000, 21);
    let log = String::from_utf8_lossy(&std::fs::read(&g.log).expect("log")).into_owned();
    let parts = local_parts(&log);
    assert!(parts.len() > 100, "the generator should make many recipients");
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&g.log]);

    let all = files(&out);
    assert!(
        all.iter().any(|p| p.to_string_lossy().contains("/rejects/")),
        "the log's junk should produce rejects"
    );
    let mut checked = 0;
    for f in all {
        // The replay's record of its inputs (names and hashes), the correlation it
        // leaves the next replay (recipients as domain and hash) and the hash key.
        if f.components().any(|c| c.as_os_str() == "_state") {
            let text = std::fs::read_to_string(&f).expect("state file");
            assert!(
                parts.iter().all(|p| !text.contains(&format!("{p}@"))),
                "{}",
                f.display()
            );
            continue;
        }
        assert!(
            f.extension().is_some_and(|e| e == "parquet"),
            "unexpected output file {}",
            f.display()
        );
        for v in parquet_values(&f) {
            let text = String::from_utf8_lossy(&v);
            for p in &parts {
                assert!(
                    !text.contains(&format!("{p}@")),
                    "{p}@ found in {}: {text}",
                    f.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 1000);
}

/// Hostile forms of recipients in each MTA's records, accepted and dead-lettered:
/// every local part is `zz` and a number, none may reach any output.
const HOSTILE: [(&str, &str); 4] = [
    (
        "postfix.log",
        r#"Dec  7 10:02:01 mta-out1 postfix/smtp[4000]: C0044: to=<zz44@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.25] said: 550 5.1.1 zz44... User unknown (in reply to RCPT TO command))
Dec  7 10:02:02 mta-out1 postfix/smtp[4000]: C0046: to=<zz46@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.25] said: 550 5.1.1 No such user here: zz46. (in reply to RCPT TO command))
Dec  7 10:02:03 mta-out1 postfix/smtp[4000]: A0003: to=<"zz03\"b"@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.25] said: 550 5.1.1 <"zz03\"b"@example.com>: Recipient address rejected (in reply to RCPT TO command))
Dec  7 10:02:04 mta-out1 postfix/smtp[4000]: A0004: to=<zz04+news@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.25] said: 550 5.1.1 user zz04 unknown (in reply to RCPT TO command))
Dec  7 10:02:05 mta-out1 postfix/smtp[4000]: A0027: to=<zz27longname@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.25] said: 550 5.1.1 <zz27lo
Dec  7 10:02:06 mta-out1 postfix/smtp[4000]: G0001: to=<"john zz120
"#,
    ),
    (
        "exim.log",
        r#"2026-12-07 10:03:01 E00051-000001-AB ** "zz51\"b"@example.com R=dnslookup T=remote_smtp H=mx.example.com [192.0.2.25]: SMTP error from remote mail server after RCPT TO:<"zz51\"b"@example.com>: 550 5.1.1 <"zz51\"b"@example.com>: Recipient address rejected
2026-12-07 10:03:02 E00063-000001-AB == zz63+tag@example.com R=dnslookup T=remote_smtp defer (-44) H=mx.example.com [192.0.2.25]: SMTP error from remote mail server after RCPT TO:<zz63+tag@example.com>: 452 4.2.2 mailbox zz63 is full
2026-12-07 10:03:03 E00064-000001-AB ** 
2026-12-07 10:03:04 E00065-000001-AB == zz65@exam
"#,
    ),
    (
        "kumomta.jsonl",
        r#"{"type": "Bounce", "id": "k71", "sender": "bounce@news.example.net", "recipient": "\"zz71\\\"b\"@example.com", "queue": "example.com", "site": "", "size": 100, "response": {"code": 550, "enhanced_code": {"class": 5, "subject": 1, "detail": 1}, "content": "<\"zz71\\\"b\"@example.com>: unknown", "command": "RCPT TO"}, "peer_address": {"name": "mx.example.com.", "addr": "192.0.2.25"}, "timestamp": 1796637671, "created": 1796637600, "num_attempts": 0}
{"type": "Bounce", "id": "k77", "sender": "bounce@news.example.net", "recipient": "zz77+x@example.com", "queue": "example.com", "site": "", "size": 100, "response": {"code": 550, "enhanced_code": {"class": 5, "subject": 1, "detail": 1}, "content": "user zz77 unknown", "command": "RCPT TO"}, "peer_address": {"name": "mx.example.com.", "addr": "192.0.2.25"}, "timestamp": 1796637677, "created": 1796637600, "num_attempts": 0}
{"tipe": "Bounce", "id": "k80", "sender": "bounce@news.example.net", "recipient": "zz80\u00fc@example.com", "response": {"code": 550, "content": "user zz80\u00fc unknown"}, "timestamp": 1796637600}
{"tipe": "Bounce", "id": "k81", "sender": "bounce@news.example.net", "recipient": "\"zz81\\\"q\"@example.com", "timestamp": 1796637600}
{"type":"Bounce","id":"k73","sender":"bounce@x.example","recipient":"zz73
{"type":"Bounce","id":"k82","sender":"bounce@x.example","recipient":"zz82@example.com","response":{"code":550,"content":"mailbox zz82 unknown"},"timestamp":"notatime"}
"#,
    ),
    (
        "powermta.csv",
        r#"type,timeLogged,timeQueued,orig,rcpt,vmta,dlvSourceIp,dsnAction,dsnStatus,dsnDiag,dsnMta,dlvDestinationIp,dlvSize,jobId
b,2026-12-07 10:10:21+0000,1796637000,bounce@news.example.net,"""zz81\""b""@example.com",ip1,198.51.100.11,failed,5.1.1,"smtp;550 5.1.1 <""zz81\""b""@example.com>: unknown",dns;mx.example.com (192.0.2.25),192.0.2.25,1000,job-81
t,2026-12-07 10:10:24+0000,1796637000,bounce@news.example.net,zz84+tag@example.com,ip1,198.51.100.11,delayed,4.2.2,"smtp;452 4.2.2 mailbox zz84 full",dns;mx.example.com (192.0.2.25),192.0.2.25,1000,job-84
b,2026-12-07 10:11:00+0000,1796637000,bounce@news.example.net,zz83
b,2026-12-07 10:11:01+0000,1796637000,bounce@news.example.net,zz87@example.com,ip1,198.51.100.11,failed,5.1.1,"smtp;550 user zz87 unknown"
b,notatime,1796637000,bounce@news.example.net,zz88@example.com,ip1,198.51.100.11,failed,5.1.1,"smtp;550 5.1.1 user zz88 unknown",dns;mx.example.com (192.0.2.25),192.0.2.25,1000,job-88
"#,
    ),
];

#[test]
fn hostile_recipients_of_every_mta_reach_no_output_accepted_or_dead_lettered() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("utc.toml");
    std::fs::write(&config, "timezone = \"UTC\"\n").expect("config");
    let marked = |v: &[u8]| {
        v.windows(3)
            .any(|w| w[..2].eq_ignore_ascii_case(b"zz") && w[2].is_ascii_digit())
    };
    for (name, text) in HOSTILE {
        let log = dir.path().join(name);
        std::fs::write(&log, text).expect("log");
        let out = dir.path().join(format!("{name}.archive"));
        replay(&config, &out, &[&log]);
        let (mut events, mut rejects) = (0, 0);
        for f in files(&out) {
            let path = f.to_string_lossy().into_owned();
            let values = if path.ends_with(".parquet") {
                events += usize::from(path.contains("/events/"));
                rejects += usize::from(path.contains("/rejects/"));
                parquet_values(&f)
            } else {
                vec![std::fs::read(&f).expect("file")]
            };
            for v in values {
                assert!(!marked(&v), "{name}: {path}: {}", String::from_utf8_lossy(&v));
            }
        }
        assert!(
            events > 0 && rejects > 0,
            "{name}: both accepted and dead-lettered records"
        );
    }
}
