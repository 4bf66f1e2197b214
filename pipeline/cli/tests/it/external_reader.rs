//! The archive is read by another engine: DuckDB (Python package), with Hive
//! partitioning, gives the same hourly counts as the truth. The stream's crash tests
//! use the same check on the events `run` wrote ([`assert_duckdb_agrees`]).

use crate::support::{generate, replay};
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = r#"
import sys, datetime, duckdb
root, truth_path = sys.argv[1], sys.argv[2]
con = duckdb.connect()
rows = con.execute(f"""
    SELECT epoch_us(event_time) // 3600000000 AS h, source_ip, mx_host, mx_group,
           count(*) FILTER (WHERE outcome <> 'expired'),
           count(*) FILTER (WHERE outcome = 'delivered'),
           count(*) FILTER (WHERE outcome = 'deferred'),
           count(*) FILTER (WHERE outcome = 'bounced'),
           count(*) FILTER (WHERE outcome = 'expired'),
           count(*) FILTER (WHERE strftime(make_timestamp(epoch_us(event_time)), '%Y-%m-%d') <> CAST("date" AS VARCHAR)
                              OR CAST(strftime(make_timestamp(epoch_us(event_time)), '%H') AS INTEGER) <> CAST("hour" AS INTEGER))
    FROM read_parquet('{root}/events/*/*/*.parquet', hive_partitioning = true)
    GROUP BY ALL ORDER BY ALL
""").fetchall()
got = set()
for h, ip, mx, g, a, d, f, b, e, misplaced in rows:
    assert misplaced == 0, f"{misplaced} rows outside their date=/hour= partition"
    hour = datetime.datetime.fromtimestamp(h * 3600, datetime.timezone.utc).strftime("%Y-%m-%dT%H:00:00Z")
    got.add(",".join([hour, ip or "", mx or "", g, str(a), str(d), str(f), str(b), str(e)]))
want = set(open(truth_path).read().splitlines()[1:])
missing, extra = sorted(want - got), sorted(got - want)
assert not missing and not extra, f"missing {missing[:5]} extra {extra[:5]}"
files = con.execute(f"SELECT count(*) FROM glob('{root}/events/*/*/*.parquet')").fetchone()[0]
versioned = con.execute(f"""
    SELECT count(DISTINCT file_name) FROM parquet_kv_metadata('{root}/events/*/*/*.parquet')
    WHERE decode(key) = 'deferlog.schema_version' AND decode(value) = '1'
""").fetchone()[0]
assert files > 0 and versioned == files, f"{versioned} of {files} events files name their schema version"
print(f"duckdb agrees on {len(got)} rows")
"#;

/// DuckDB's hourly counts over `archive/events` are the truth's rows exactly: no event
/// missing, none twice, each in its own `date=`/`hour=` partition; every file names
/// its schema version in its key-value metadata.
pub fn assert_duckdb_agrees(archive: &Path, truth: &Path) {
    let o = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(archive)
        .arg(truth)
        .output()
        .expect("python3 (CI installs it with the duckdb package: .ci/run)");
    assert!(
        o.status.success(),
        "DuckDB check of {} failed (needs `pip install duckdb`):\n{}{}",
        archive.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("duckdb agrees on"));
}

#[test]
fn duckdb_reads_the_hive_partitioned_archive_and_agrees_with_the_truth() {
    let dir = tempfile::tempdir().expect("tmp");
    let g = generate(dir.path(), 30_000, 9);
    let out = dir.path().join("archive");
    replay(&g.config, &out, &[&g.log]);
    assert_duckdb_agrees(&out, &g.truth);
}
