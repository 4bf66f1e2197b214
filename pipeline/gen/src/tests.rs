//! Whole-run tests: determinism, ordering, line budget, and the truth checked
//! against an independent reading of the text.

#[test]
fn peek() {
    let cfg = crate::GenConfig { lines: 3000, ..Default::default() };
    let mut v = Vec::new();
    let truth = crate::write_log(cfg, &mut v).expect("write");
    std::fs::write("/tmp/gen_peek.log", &v).expect("w");
    let mut c = Vec::new();
    truth.write_csv(&mut c).expect("csv");
    std::fs::write("/tmp/gen_peek.csv", &c).expect("w");
}
