//! The query files, embedded.

/// A named SQL file from `queries/`, and the table it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub name: &'static str,
    pub sql: &'static str,
    pub input: crate::Table,
}

impl Query {
    /// Events → one row per (hour, source_ip, mx_host, mx_group).
    pub const HOURLY: Query = Query {
        name: "hourly",
        sql: include_str!("../../../queries/hourly.sql"),
        input: crate::Table::Events,
    };
    /// Per-batch results of [`Query::HOURLY`] → one row per key, summed.
    pub const HOURLY_MERGE: Query = Query {
        name: "hourly_merge",
        sql: include_str!("../../../queries/hourly_merge.sql"),
        input: crate::Table::Partials,
    };
    /// Stored hourly rows → the report: latest revision per scope, scopes summed.
    pub const HOURLY_REPORT: Query = Query {
        name: "hourly_report",
        sql: include_str!("../../../queries/hourly_report.sql"),
        input: crate::Table::Hourly,
    };
    /// Events → counts per label set of the Prometheus delivery counters.
    pub const COUNTERS: Query = Query {
        name: "counters",
        sql: include_str!("../../../queries/counters.sql"),
        input: crate::Table::Events,
    };
    /// Events → deferrals per (hour, source_ip, mx_group, class), and how soon each
    /// deferred recipient was tried again. Narrowed by its result's rows
    /// ([`crate::Engine::run_narrowed`]), not by its input.
    pub const DEFERRALS: Query = Query {
        name: "deferrals",
        sql: include_str!("../../../queries/deferrals.sql"),
        input: crate::Table::Events,
    };
    /// Events → per (hour, source_ip, mx_group): attempts, holds, the receivers'
    /// deferral ratio beside the same hour a day before, deferrals by cause. Narrowed
    /// by its rows, its input reaching a day back ([`crate::EventFilter::lookback_us`]).
    pub const DESTINATIONS: Query = Query {
        name: "destinations",
        sql: include_str!("../../../queries/destinations.sql"),
        input: crate::Table::Events,
    };
    /// Stored hourly rows → the last final hour per source_ip × mx_group (gauges).
    pub const HOURLY_GAUGES: Query = Query {
        name: "hourly_gauges",
        sql: include_str!("../../../queries/hourly_gauges.sql"),
        input: crate::Table::Hourly,
    };
    /// Events → the MX groups in them, busiest first (`report`'s hint for an
    /// `--mx-group` that matched nothing).
    pub const MX_GROUPS: Query = Query {
        name: "mx_groups",
        sql: include_str!("../../../queries/mx_groups.sql"),
        input: crate::Table::Events,
    };
}

/// Every file in `queries/`; a test checks this list against the directory.
pub const ALL_QUERIES: &[Query] = &[
    Query::HOURLY,
    Query::HOURLY_MERGE,
    Query::HOURLY_REPORT,
    Query::COUNTERS,
    Query::HOURLY_GAUGES,
    Query::DEFERRALS,
    Query::DESTINATIONS,
    Query::MX_GROUPS,
];
