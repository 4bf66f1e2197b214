//! The shapes of the tables the query files read besides `events`.
//!
//! Declared here because the archive stores them and the stream builds them; a test
//! checks that `hourly.sql` and `hourly_merge.sql` really produce [`partial_schema`],
//! so this file cannot drift from the SQL.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, LazyLock};

pub mod col {
    pub const HOUR: &str = "hour";
    pub const SOURCE_IP: &str = "source_ip";
    pub const MX_HOST: &str = "mx_host";
    pub const MX_GROUP: &str = "mx_group";
    pub const SCOPE: &str = "scope";
    pub const REVISION: &str = "revision";
    pub const FINAL: &str = "final";
    /// The count columns, in order.
    pub const COUNTS: [&str; 5] = ["attempts", "delivered", "deferred", "bounced", "expired"];
}

fn partial_fields() -> Vec<Field> {
    let mut f = vec![
        Field::new(
            col::HOUR,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(col::SOURCE_IP, DataType::Utf8, true),
        Field::new(col::MX_HOST, DataType::Utf8, true),
        Field::new(col::MX_GROUP, DataType::Utf8, true),
    ];
    f.extend(col::COUNTS.iter().map(|c| Field::new(*c, DataType::Int64, true)));
    f
}

/// One row of `hourly.sql` (and `hourly_merge.sql`): the table `partials`.
pub fn partial_schema() -> SchemaRef {
    static S: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(partial_fields())));
    S.clone()
}

/// A stored hourly row: [`partial_schema`] plus who wrote it, its revision and
/// whether the hour was final. The table `hourly`, the files under `OUT/hourly/`.
pub fn hourly_schema() -> SchemaRef {
    static S: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut f = partial_fields();
        f.push(Field::new(col::SCOPE, DataType::Utf8, false));
        f.push(Field::new(col::REVISION, DataType::Int64, false));
        f.push(Field::new(col::FINAL, DataType::Boolean, false));
        Arc::new(Schema::new(f))
    });
    S.clone()
}

/// Tags partial rows (the output of `hourly.sql` or `hourly_merge.sql`) as stored
/// hourly rows of `scope` at `revision`.
pub fn to_hourly(
    partial: &datafusion::arrow::record_batch::RecordBatch,
    scope: &str,
    revision: i64,
    is_final: bool,
) -> Result<datafusion::arrow::record_batch::RecordBatch, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray};
    let n = partial.num_rows();
    let mut cols: Vec<ArrayRef> = conform(partial, &partial_schema())?.columns().to_vec();
    cols.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(scope, n))));
    cols.push(Arc::new(Int64Array::from_value(revision, n)));
    cols.push(Arc::new(BooleanArray::from(vec![is_final; n])));
    datafusion::arrow::record_batch::RecordBatch::try_new(hourly_schema(), cols)
}

/// `batch` with its columns cast to `schema`'s types, matched by position. Over Parquet
/// DataFusion reads strings as `Utf8View`; the stored and in-memory tables use `Utf8`.
pub fn conform(
    batch: &datafusion::arrow::record_batch::RecordBatch,
    schema: &SchemaRef,
) -> Result<datafusion::arrow::record_batch::RecordBatch, datafusion::arrow::error::ArrowError> {
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    datafusion::arrow::record_batch::RecordBatch::try_new(schema.clone(), cols)
}
