//! `deferlog sql`: the user's own SQL over the archive, on the engine `report` uses.

use crate::cli::SqlArgs;
use crate::output::{self, Format};
use crate::query::run_sql;
use anyhow::{Context, Result};

pub fn run(a: SqlArgs) -> Result<()> {
    let format: Format = a.format.parse().context("--format")?;
    let sql = match (&a.file, a.query) {
        (Some(f), _) => std::fs::read_to_string(f).with_context(|| format!("--file {}", f.display()))?,
        (None, Some(q)) => q,
        (None, None) => anyhow::bail!("give the SQL, or --file"),
    };
    crate::query::archive_dir(&a.data)?;
    let batches = run_sql(&a.data, &sql, a.memory.memory_limit.as_ref())
        .with_context(|| format!("sql over {}", a.data.display()))?;
    output::write(format, &batches, &mut std::io::stdout().lock())
}
