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
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if !line.trim().is_empty() {
                    one(&classifier, &line, a.explain, &mut out)?;
                }
            }
        }
    }
    Ok(())
}

fn one(c: &Classifier, reply: &str, explain: bool, out: &mut dyn Write) -> Result<()> {
    let (code, enhanced) = split_reply(reply);
    if explain {
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
