use deferlog_classify::Classifier;
#[test]
fn dump() {
    let c = Classifier::builtin();
    let src = std::fs::read_to_string("/work/shared/corpus/responses.tsv").expect("x");
    for l in src.lines().skip(1) {
        let cols: Vec<&str> = l.split('\t').collect();
        let code = cols[0].parse().ok();
        let enh = Some(cols[1]).filter(|e| !e.is_empty());
        let e = c.explain(code, enh, cols[2]);
        eprintln!("{:18} {:28} | {}", cols[4], e.rule, &e.normalized.chars().take(110).collect::<String>());
    }
}
