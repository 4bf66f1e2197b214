//! Writing query results for people (aligned table) and tools (CSV, JSON lines).
//!
//! Timestamps print in UTC as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (the fraction only
//! when there is one); a null prints as an empty field (CSV, table) or `null` (JSON).

use anyhow::{Result, bail};
use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::Write;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

impl FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => bail!("unknown format {s:?}: use table, csv or json"),
        })
    }
}

const OPTIONS: FormatOptions<'static> = FormatOptions::new()
    .with_null("")
    .with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%S%.fZ"))
    .with_timestamp_format(Some("%Y-%m-%dT%H:%M:%S%.fZ"));

/// A timestamp of another zone as the same instant in UTC: the format's `Z` says so.
fn in_utc(c: &arrow::array::ArrayRef) -> Result<arrow::array::ArrayRef> {
    use arrow::datatypes::DataType;
    Ok(match c.data_type() {
        DataType::Timestamp(unit, Some(tz)) if !matches!(tz.as_ref(), "UTC" | "+00:00" | "Z") => {
            arrow::compute::cast(c, &DataType::Timestamp(*unit, Some("UTC".into())))?
        }
        _ => c.clone(),
    })
}

/// Results as text: column names, which columns are numeric, and every cell (None for null).
struct Cells {
    names: Vec<String>,
    numeric: Vec<bool>,
    rows: Vec<Vec<Option<String>>>,
}

fn cells(batches: &[RecordBatch]) -> Result<Cells> {
    let Some(first) = batches.first() else {
        return Ok(Cells {
            names: Vec::new(),
            numeric: Vec::new(),
            rows: Vec::new(),
        });
    };
    let schema = first.schema();
    let names = schema.fields().iter().map(|f| f.name().clone()).collect();
    // Numbers and booleans are JSON literals; everything else a JSON string.
    let numeric = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric() || *f.data_type() == arrow::datatypes::DataType::Boolean)
        .collect();
    let mut rows = Vec::new();
    for b in batches {
        let columns = b.columns().iter().map(in_utc).collect::<Result<Vec<_>>>()?;
        let fmts = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &OPTIONS))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            rows.push(
                columns
                    .iter()
                    .zip(&fmts)
                    .map(|(c, f)| c.is_valid(i).then(|| f.value(i).to_string()))
                    .collect(),
            );
        }
    }
    Ok(Cells { names, numeric, rows })
}

pub fn write(format: Format, batches: &[RecordBatch], w: &mut dyn Write) -> Result<()> {
    let Cells { names, numeric, rows } = cells(batches)?;
    match format {
        Format::Csv => {
            writeln!(w, "{}", names.join(","))?;
            for r in &rows {
                let line: Vec<String> = r.iter().map(|c| csv_field(c.as_deref().unwrap_or(""))).collect();
                writeln!(w, "{}", line.join(","))?;
            }
        }
        Format::Json => {
            for r in &rows {
                let mut obj = serde_json::Map::new();
                for ((name, cell), num) in names.iter().zip(r).zip(&numeric) {
                    let v = match cell {
                        None => serde_json::Value::Null,
                        Some(s) if *num => serde_json::from_str(s).unwrap_or_else(|_| s.clone().into()),
                        Some(s) => s.clone().into(),
                    };
                    obj.insert(name.clone(), v);
                }
                writeln!(w, "{}", serde_json::Value::Object(obj))?;
            }
        }
        Format::Table => {
            // Widths in characters, not bytes (a wide character, CJK or emoji, still
            // counts one); padded by hand, as `format!`'s width stops at 65 535 and a
            // dead letter's hex is longer.
            let chars = |c: &str| c.chars().count();
            let mut width: Vec<usize> = names.iter().map(|n| chars(n)).collect();
            for r in &rows {
                for (wd, c) in width.iter_mut().zip(r) {
                    *wd = (*wd).max(c.as_deref().map_or(0, chars));
                }
            }
            let line = |cells: Vec<&str>| -> String {
                let mut out = String::new();
                for (i, ((c, wd), num)) in cells.iter().zip(&width).zip(&numeric).enumerate() {
                    if i > 0 {
                        out.push_str("  ");
                    }
                    let fill = " ".repeat(wd.saturating_sub(chars(c)));
                    if *num {
                        out.push_str(&fill);
                        out.push_str(c);
                    } else {
                        out.push_str(c);
                        out.push_str(&fill);
                    }
                }
                out.truncate(out.trim_end().len());
                out
            };
            writeln!(w, "{}", line(names.iter().map(String::as_str).collect()))?;
            for r in &rows {
                writeln!(w, "{}", line(r.iter().map(|c| c.as_deref().unwrap_or("")).collect()))?;
            }
            if rows.is_empty() {
                writeln!(w, "(no rows)")?;
            }
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(
                "hour",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("source_ip", DataType::Utf8, true),
            Field::new("attempts", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![3_600_000_000, 7_200_000_000]).with_timezone("UTC")),
                Arc::new(StringArray::from(vec![Some("198.51.100.11"), None])),
                Arc::new(Int64Array::from(vec![5, 12])),
            ],
        )
        .expect("batch")
    }

    fn render(f: Format) -> String {
        let mut out = Vec::new();
        write(f, &[batch()], &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn csv_has_iso_hours_and_empty_nulls() {
        assert_eq!(
            render(Format::Csv),
            "hour,source_ip,attempts\n1970-01-01T01:00:00Z,198.51.100.11,5\n1970-01-01T02:00:00Z,,12\n"
        );
    }

    #[test]
    fn json_lines_keep_numbers_nulls_and_column_order() {
        let out = render(Format::Json);
        assert!(
            out.starts_with("{\"hour\":\"1970-01-01T01:00:00Z\",\"source_ip\""),
            "{out}"
        );
        let second: serde_json::Value = serde_json::from_str(out.lines().nth(1).expect("2 lines")).expect("json");
        assert_eq!(second["attempts"], 12);
        assert!(second["source_ip"].is_null());
    }

    #[test]
    fn table_aligns_columns() {
        let out = render(Format::Table);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].find("198.51"), lines[0].find("source_ip"));
    }

    #[test]
    fn a_cell_wider_than_format_widths_and_non_ascii_cells_align_by_characters() {
        let long = "ab".repeat(40_000);
        let schema = Arc::new(Schema::new(vec![
            Field::new("raw", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![long.as_str(), "ünï", "x"])),
                Arc::new(Int64Array::from(vec![1, 22, 333])),
            ],
        )
        .expect("batch");
        let mut out = Vec::new();
        write(Format::Table, &[b], &mut out).expect("no panic");
        let out = String::from_utf8(out).expect("utf8");
        let widths: Vec<usize> = out.lines().map(|l| l.chars().count()).collect();
        assert_eq!(widths, vec![80_005; 4], "every line as wide, counted in characters");
    }

    #[test]
    fn timestamps_keep_their_fraction_and_another_zone_prints_as_the_same_instant_in_utc() {
        let stamp = TimestampMicrosecondArray::from(vec![3_600_620_858]).with_timezone("+05:00");
        let schema = Arc::new(Schema::new(vec![Field::new("t", stamp.data_type().clone(), false)]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(stamp)]).expect("batch");
        let mut out = Vec::new();
        write(Format::Csv, &[b], &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "t\n1970-01-01T01:00:00.620858Z\n"
        );
    }

    #[test]
    fn csv_quotes_when_needed() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
