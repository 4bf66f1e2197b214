//! What a run did, summed over its group members, as its last log line says it.

use std::time::Duration;

#[derive(Debug, Default)]
pub struct RunSummary {
    pub records: u64,
    /// Wall clock of the whole run.
    pub elapsed: Duration,
    /// From the start to the first record (joining the group, fetching); the earliest
    /// over group members.
    pub first_record: Option<Duration>,
    /// The stretch at the end with nothing left to read (a run stopped by a signal
    /// once it had caught up): not throughput. The shortest over group members.
    pub idle_tail: Option<Duration>,
    /// Leaving the group once everything is written and committed (librdkafka's
    /// close): shutdown, not throughput. The shortest over group members.
    pub leaving: Option<Duration>,
    /// Processing-thread time from its first records to the end, summed over members.
    pub busy: Duration,
    /// Of `busy`, waiting for the polling thread.
    pub consume: Duration,
    /// Of `busy`: SQL, writing and checkpoints; the rest is parsing and batching.
    pub timings: deferlog_stream::Timings,
    /// Partitions lost during the run (out of the group too long): dropped unwritten.
    pub lost_partitions: u64,
    /// Members whose last commit got no answer in time (see `commit_and_leave`).
    pub uncommitted: u64,
}

impl RunSummary {
    pub(super) fn add(&mut self, o: &RunSummary) {
        self.records += o.records;
        self.first_record = shortest(self.first_record, o.first_record);
        self.idle_tail = shortest(self.idle_tail, o.idle_tail);
        self.leaving = shortest(self.leaving, o.leaving);
        self.busy += o.busy;
        self.consume += o.consume;
        self.timings.add(&o.timings);
        self.lost_partitions += o.lost_partitions;
        self.uncommitted += o.uncommitted;
    }
}

fn shortest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.timings;
        let s = |d: Duration| d.as_secs_f64();
        // Before the first record the consumer joins the group and waits for records,
        // a run stopped once caught up sits idle at the end, and it leaves the group
        // after its last commit: none of that is throughput.
        let head = match self.first_record {
            Some(startup) => {
                let (idle, leaving) = (self.idle_tail.unwrap_or_default(), self.leaving.unwrap_or_default());
                let working = self.elapsed.saturating_sub(startup + idle + leaving);
                let leave = match self.uncommitted {
                    0 => format!("{:.2}s leaving the group", s(leaving)),
                    _ => format!(
                        "{:.2}s waiting for the brokers to answer the last commit (no answer: the group was not left)",
                        s(leaving)
                    ),
                };
                format!(
                    "{} records in {:.2}s, the first {:.2}s after start ({:.0}/s), then {:.2}s without records until \
                     stopped and {leave}",
                    self.records,
                    s(working),
                    s(startup),
                    self.records as f64 / s(working).max(1e-9),
                    s(idle),
                )
            }
            None => return write!(f, "no records in {:.2}s", s(self.elapsed)),
        };
        // The events files are written on the writer threads, beside this time.
        let rest = self.busy.saturating_sub(self.consume + t.sql + t.checkpoint);
        write!(
            f,
            "{head}; processing threads: waiting for records {:.2}s, parse+batch {:.2}s, SQL {:.2}s, checkpoint \
             {:.2}s; writer threads: events files {:.2}s",
            s(self.consume),
            s(rest),
            s(t.sql),
            s(t.checkpoint),
            s(t.write)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_splits_the_run_into_start_records_and_idle_end() {
        let s = RunSummary {
            records: 1000,
            elapsed: Duration::from_secs(10),
            first_record: Some(Duration::from_secs(3)),
            idle_tail: Some(Duration::from_secs(4)),
            leaving: Some(Duration::from_secs(1)),
            busy: Duration::from_secs(4),
            consume: Duration::from_secs(1),
            // On the writer threads: not taken from the processing threads' time.
            timings: deferlog_stream::Timings {
                write: Duration::from_secs(2),
                ..Default::default()
            },
            lost_partitions: 0,
            uncommitted: 0,
        };
        assert_eq!(
            s.to_string(),
            "1000 records in 2.00s, the first 3.00s after start (500/s), then 4.00s without records until stopped and \
             1.00s leaving the group; \
             processing threads: waiting for records 1.00s, parse+batch 3.00s, SQL 0.00s, checkpoint 0.00s; \
             writer threads: events files 2.00s"
        );
        // A commit the brokers never answered: the wait is the stop's, and the line
        // says the group was not left rather than how long leaving took.
        let unanswered = RunSummary {
            leaving: Some(Duration::from_secs(10)),
            elapsed: Duration::from_secs(19),
            uncommitted: 1,
            ..s
        };
        assert!(
            unanswered.to_string().starts_with(
                "1000 records in 2.00s, the first 3.00s after start (500/s), then 4.00s without records until \
                 stopped and 10.00s waiting for the brokers to answer the last commit (no answer: the group was not \
                 left); "
            ),
            "{unanswered}"
        );
        // Nothing read: no rates or waits to speak of.
        let idle = RunSummary {
            elapsed: Duration::from_secs(17),
            ..RunSummary::default()
        };
        assert_eq!(idle.to_string(), "no records in 17.00s");
    }
}
