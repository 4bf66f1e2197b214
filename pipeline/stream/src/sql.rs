//! The window SQL: `hourly.sql` over each batch, `hourly_merge.sql` over partials.

use crate::StreamError;
use crate::window::{Merge, conform_partial};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use deferlog_metrics::Counts;
use deferlog_query::schema::partial_schema;
use deferlog_query::{Engine, EventFilter, EventSource, Query};

/// One DataFusion session, reused for every batch, on a private current-thread runtime
/// (the stream's caller is a plain thread).
pub struct Sql {
    rt: tokio::runtime::Runtime,
    engine: Engine,
}

impl std::fmt::Debug for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sql").finish_non_exhaustive()
    }
}

impl Sql {
    pub fn new() -> Result<Self, StreamError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StreamError::Runtime)?;
        Ok(Sql {
            rt,
            engine: Engine::new(),
        })
    }

    fn run(&mut self, q: Query, input: Vec<RecordBatch>) -> Result<RecordBatch, StreamError> {
        let out = self.rt.block_on(async {
            self.engine
                .register(q.input, EventSource::Batches(input), &EventFilter::default())
                .await?;
            self.engine.run(q).await
        })?;
        let out = out.iter().map(conform_partial).collect::<Result<Vec<_>, _>>()?;
        Ok(concat_batches(&partial_schema(), &out)?)
    }

    /// `counters.sql` over batches of events, added to a scope's counts.
    pub fn count(&mut self, events: Vec<RecordBatch>, counts: &mut Counts, limit: usize) -> Result<(), StreamError> {
        let out = self.rt.block_on(async {
            self.engine
                .register(
                    Query::COUNTERS.input,
                    EventSource::Batches(events),
                    &EventFilter::default(),
                )
                .await?;
            self.engine.run(Query::COUNTERS).await
        })?;
        for b in &out {
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
