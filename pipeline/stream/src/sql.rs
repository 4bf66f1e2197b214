//! The window SQL: `hourly.sql` over each batch, `hourly_merge.sql` over partials.

use crate::StreamError;
use crate::window::{Merge, conform_partial};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use deferlog_metrics::Counts;
use deferlog_query::schema::partial_schema;
use deferlog_query::{LocalEngine, Query};

/// One DataFusion session, reused for every batch (see [`LocalEngine`]: the query
/// files are planned once).
#[derive(Debug)]
pub struct Sql {
    engine: LocalEngine,
}

impl Sql {
    pub fn new() -> Result<Self, StreamError> {
        Ok(Sql {
            engine: LocalEngine::new()?,
        })
    }

    fn run(&mut self, q: Query, input: Vec<RecordBatch>) -> Result<RecordBatch, StreamError> {
        let out = self.engine.run(q, input)?;
        let out = out.iter().map(conform_partial).collect::<Result<Vec<_>, _>>()?;
        Ok(concat_batches(&partial_schema(), &out)?)
    }

    /// `counters.sql` over batches of events, added to a scope's counts.
    pub fn count(&mut self, events: Vec<RecordBatch>, counts: &mut Counts, limit: usize) -> Result<(), StreamError> {
        for b in &self.engine.run(Query::COUNTERS, events)? {
            crate::counting::add_counter_rows(b, counts, limit)?;
        }
        Ok(())
    }

    /// `hourly.sql` over batches of events.
    pub fn hourly(&mut self, events: Vec<RecordBatch>) -> Result<RecordBatch, StreamError> {
        self.run(Query::HOURLY, events)
    }
}

impl Merge for Sql {
    fn merge(&mut self, partials: Vec<RecordBatch>) -> Result<RecordBatch, StreamError> {
        self.run(Query::HOURLY_MERGE, partials)
    }
}
