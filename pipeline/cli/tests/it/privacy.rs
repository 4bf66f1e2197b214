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
