//! The dead-letter record: input that looked like a delivery event but did not parse.

use crate::Mta;
use crate::row::Origin;
use arrow::array::{ArrayRef, BinaryBuilder, StringBuilder, StringDictionaryBuilder};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

/// One rejected record, its raw bytes kept exactly as read.
#[derive(Debug, Clone, Copy)]
pub struct RejectRow<'a> {
    /// `None` for a record that is no MTA's (a bad Kafka key, a broken envelope).
    pub mta: Option<Mta>,
    /// A stable snake_case reason, also the label of the reject counter.
    pub reason: &'static str,
    pub raw: &'a [u8],
    pub origin: Origin<'a>,
    /// What `run` refused besides the value: the record's key (`bad_key`) or the
    /// tenant it names (`bad_tenant`), so that the dead letter keeps the whole record.
    pub refused: Option<&'a [u8]>,
}

/// Receives rejects as parsers produce them.
pub trait RejectSink {
    fn reject(&mut self, row: &RejectRow<'_>);
}

/// Schema of every file under `rejects/`.
pub fn reject_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            Arc::new(Schema::new(vec![
                Field::new("mta", dict.clone(), true),
                Field::new("reason", dict, false),
                Field::new("origin", DataType::Utf8, false),
                Field::new("raw", DataType::Binary, false),
                // Last, and nullable: files written before it read with it null.
                Field::new("refused", DataType::Binary, true),
            ]))
        })
        .clone()
}

/// Rows after which a builder is full.
const FULL_ROWS: usize = 4_096;
/// Raw bytes after which a builder is full: far below the 2 GiB its 32-bit offsets
/// hold, whatever size the records (a line may be 16 MiB, a Kafka record more).
const FULL_BYTES: usize = 64 << 20;

/// Accumulates rejects into one RecordBatch.
pub struct RejectBuilder {
    mta: StringDictionaryBuilder<Int32Type>,
    reason: StringDictionaryBuilder<Int32Type>,
    origin: StringBuilder,
    raw: BinaryBuilder,
    refused: BinaryBuilder,
    len: usize,
}

impl std::fmt::Debug for RejectBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectBuilder")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Default for RejectBuilder {
    fn default() -> Self {
        RejectBuilder {
            mta: StringDictionaryBuilder::new(),
            reason: StringDictionaryBuilder::new(),
            origin: StringBuilder::new(),
            raw: BinaryBuilder::new(),
            refused: BinaryBuilder::new(),
            len: 0,
        }
    }
}

impl RejectBuilder {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Time to [`finish`](Self::finish) a batch: its rows or raw bytes reached their
    /// bound. One more row past it is fine; rows are checked after each append.
    pub fn is_full(&self) -> bool {
        self.len >= FULL_ROWS || self.raw.values_slice().len() >= FULL_BYTES
    }

    pub fn append(&mut self, r: &RejectRow<'_>) {
        match r.mta {
            Some(m) => self.mta.append_value(m.as_str()),
            None => self.mta.append_null(),
        }
        self.reason.append_value(r.reason);
        // Writing into a StringBuilder cannot fail.
        let _ = r.origin.write_origin(&mut self.origin as &mut dyn Write);
        self.origin.append_value("");
        self.raw.append_value(r.raw);
        self.refused.append_option(r.refused);
        self.len += 1;
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.mta.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.origin.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.refused.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(reject_schema(), columns)
    }
}

impl RejectSink for RejectBuilder {
    fn reject(&mut self, row: &RejectRow<'_>) {
        self.append(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    #[test]
    fn raw_bytes_are_kept_exactly_even_when_not_utf8() {
        let mut b = RejectBuilder::default();
        let raw = b"Nov  1 00:00:00 h postfix/smtp[1]: AB12: to=<\xff\xfe";
        b.append(&RejectRow {
            mta: Some(Mta::Postfix),
            reason: "truncated",
            raw,
            origin: Origin::Line { file: "f", line: 3 },
            refused: None,
        });
        let batch = b.finish().expect("batch");
        assert_eq!(batch.column(3).as_binary::<i32>().value(0), raw);
        assert_eq!(batch.column(2).as_string::<i32>().value(0), "f:3");
    }
}
