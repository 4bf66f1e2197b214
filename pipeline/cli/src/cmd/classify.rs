//! `deferlog classify`: which rule fires on a reply, and every rule tried before it;
//! one reply from the arguments or one per line of stdin.

use crate::cli::ClassifyArgs;
use crate::config::Config;
use anyhow::Result;
use deferlog_classify::{Classifier, split_reply};
use std::io::{BufRead, Write};

pub fn run(a: ClassifyArgs) -> Result<()> {
    let cfg = Config::load(a.config.config.as_deref())?;
    let origin = cfg.origin(a.config.config.as_deref());
    let classifier = cfg.resolve(&origin, super::now_us())?.classifier;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match a.reply {
        Some(reply) => one(&classifier, &reply, a.explain, &mut out)?,
        None => {
            // One output line per input line, so the answers line up with the replies
            // (`paste`): a blank line answers blank, and bytes that are not UTF-8 are
            // read as U+FFFD rather than ending the run.
            let mut input = std::io::stdin().lock();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if input.read_until(b'\n', &mut buf)? == 0 {
                    break;
                }
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.trim().is_empty() {
                    if !a.explain {
                        writeln!(out)?;
                    }
                } else {
                    one(&classifier, line, a.explain, &mut out)?;
                }
            }
        }
    }
    Ok(())
}

/// What `classify` answers for a success reply: the class of a delivery (DESIGN.md),
/// which no rule decides.
const SUCCESS: &str = "none\tsuccess-reply";

fn one(c: &Classifier, reply: &str, explain: bool, out: &mut dyn Write) -> Result<()> {
    let (code, enhanced) = split_reply(reply);
    let success = code.map_or_else(
        || enhanced.is_some_and(|e| e.starts_with("2.")),
        |c| (200..300).contains(&c),
    );
    if success {
        if explain {
            writeln!(out, "reply:      {reply}")?;
            writeln!(out, "a success reply: a delivery, class none; the rules judge failures")?;
        }
        writeln!(out, "{SUCCESS}")?;
    } else if explain {
        let e = c.explain(code, enhanced, reply);
        writeln!(out, "reply:      {reply}")?;
        writeln!(out, "code:       {}", code.map_or("-".to_owned(), |c| c.to_string()))?;
        writeln!(out, "enhanced:   {}", enhanced.unwrap_or("-"))?;
        writeln!(out, "normalized: {}", e.normalized)?;
        for (rule, hit) in &e.tried {
            writeln!(out, "  {} {rule}", if *hit { "MATCH" } else { "-    " })?;
        }
        writeln!(out, "{}\t{}", e.class, e.rule)?;
    } else {
        let v = c.classify(code, enhanced, reply);
        writeln!(out, "{}\t{}", v.class, v.rule)?;
    }
    Ok(())
}
