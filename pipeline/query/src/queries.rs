//! The query files, embedded.

/// A named SQL file from `queries/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub name: &'static str,
    pub sql: &'static str,
}

impl Query {
    pub const HOURLY: Query = Query {
        name: "hourly",
        sql: include_str!("../../../queries/hourly.sql"),
    };
}

/// Every file in `queries/`; a test checks this list against the directory.
pub const ALL_QUERIES: &[Query] = &[Query::HOURLY];
