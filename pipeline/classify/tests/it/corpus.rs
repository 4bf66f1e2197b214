//! The builtin rules against the labelled replies of `shared/corpus/responses.tsv`.
//!
//! The corpus lives outside the repository (`../../../shared/corpus` from this crate);
//! `DEFERLOG_CORPUS` names another directory. A missing corpus fails the test: a
//! check that silently passes without its data proves nothing.

use deferlog_classify::{Class, Classifier};
use std::path::PathBuf;

/// Share of rows whose class must equal the label.
const MIN_ACCURACY: f64 = 0.95;

fn corpus_file(name: &str) -> PathBuf {
    match std::env::var_os("DEFERLOG_CORPUS") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus")
            .join(name),
    }
}

struct Row {
    line: usize,
    code: Option<u16>,
    enhanced: Option<String>,
    text: String,
    provider: String,
    class: Class,
}

fn rows(src: &str) -> Vec<Row> {
    let mut lines = src.lines().enumerate();
    let (_, header) = lines.next().expect("a header line");
    assert!(
        header.starts_with("code\tenhanced_status\ttext\tprovider\tclass"),
        "header: {header}"
    );
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!(cols.len() >= 5, "line {}: {} columns", i + 1, cols.len());
            let code = match cols[0].trim() {
                "" => None,
                c => Some(c.parse().unwrap_or_else(|e| panic!("line {}: code {c:?}: {e}", i + 1))),
            };
            let enhanced = Some(cols[1].trim()).filter(|e| !e.is_empty()).map(str::to_owned);
            let class = cols[4].trim().parse().unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            Row {
                line: i + 1,
                code,
                enhanced,
                text: cols[2].to_owned(),
                provider: cols[3].to_owned(),
                class,
            }
        })
        .collect()
}

#[test]
fn labelled_replies_are_classified_as_labelled() {
    let path = corpus_file("responses.tsv");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows = rows(&src);
    assert!(!rows.is_empty(), "{}: no rows", path.display());

    let classifier = Classifier::builtin();
    let mut hits = 0usize;
    for row in &rows {
        let v = classifier.classify(row.code, row.enhanced.as_deref(), &row.text);
        if v.class == row.class {
            hits += 1;
        } else {
            eprintln!(
                "MISS line {}: labelled {} got {} by rule {} [{}] {:?}",
                row.line, row.class, v.class, v.rule, row.provider, row.text
            );
        }
    }
    let accuracy = hits as f64 / rows.len() as f64;
    eprintln!("accuracy {hits}/{} = {:.1} %", rows.len(), accuracy * 100.0);
    assert!(accuracy >= MIN_ACCURACY, "accuracy {accuracy:.3} below {MIN_ACCURACY}");
}
