//! Narrowing an input table: time range, sending IP, MX group, class.

use crate::Table;
use crate::schema::col as h;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::scalar::ScalarValue;
use deferlog_event::{Class, HOUR_US, col as c, hour_of};

/// Conditions on events, ANDed; all optional. Times are µs since the epoch, UTC;
/// `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub source_ip: Option<SourceIp>,
    pub mx_group: Option<String>,
    /// Of rows that have a class (events, `deferrals.sql`'s rows); hourly rows have
    /// none, so none of them is of this one.
    pub class: Option<Class>,
    /// For a query narrowed by its rows ([`crate::Engine::run_narrowed`]): how far past
    /// the end of `to`'s hour it reads what follows a row (a deferral's next try). None:
    /// to the end of the input.
    pub lookahead_us: Option<i64>,
    /// For a query narrowed by its rows: how far before the start of `from`'s hour it
    /// reads what a row looks back to (`destinations.sql`: the same hour a day before).
    /// None: nothing before that hour.
    pub lookback_us: Option<i64>,
}

/// The sending IP rows must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceIp {
    /// This address, in its canonical form (as stored).
    Addr(String),
    /// None known: the MTA did not log one and the egress map names none.
    Unknown,
}

fn ts(us: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into())))
}

fn text(column: &str, v: &str) -> Expr {
    // Dictionary columns compare to a plain string once cast; the cast is pushed into the scan.
    col(column).cast_to_utf8().eq(lit(v.to_owned()))
}

trait CastUtf8 {
    fn cast_to_utf8(self) -> Expr;
}

impl CastUtf8 for Expr {
    fn cast_to_utf8(self) -> Expr {
        Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(self), DataType::Utf8))
    }
}

/// The end of the hour `to_us` (exclusive) falls in: where rows of hours that overlap
/// a range ending there end.
fn end_hour(to_us: i64) -> i64 {
    hour_of(to_us.saturating_add(HOUR_US - 1))
}

impl EventFilter {
    /// The hours from `lookback_us` before `from`'s to `lookahead_us` past `to`'s, and
    /// nothing else: what may narrow the input of a query whose rows are narrowed
    /// instead ([`crate::Engine::run_narrowed`]), as far as its rows look forward
    /// (a deferral's next try) or back (the hour a day before).
    pub(crate) fn narrowed_input(&self) -> EventFilter {
        EventFilter {
            from_us: self
                .from_us
                .map(|f| hour_of(f).saturating_sub(self.lookback_us.unwrap_or(0))),
            to_us: self
                .to_us
                .zip(self.lookahead_us)
                .map(|(to, ahead)| end_hour(to).saturating_add(ahead)),
            ..EventFilter::default()
        }
    }

    /// The conditions on `table`. Events are cut at `from`/`to` exactly; tables of
    /// hourly rows keep every hour that overlaps `[from, to)`.
    pub fn exprs_for(&self, table: Table) -> Vec<Expr> {
        if table == Table::Rejects {
            // Dead letters have none of the columns a filter selects on.
            return if *self == EventFilter::default() {
                Vec::new()
            } else {
                vec![lit(false)]
            };
        }
        let mut out = self.time_exprs(table);
        out.extend(self.sender_exprs());
        if let Some(class) = self.class {
            out.push(match table {
                Table::Events => text(c::CLASS, class.as_str()),
                // Hourly rows have no class: none is of this one.
                Table::Partials | Table::Hourly | Table::Rejects => lit(false),
            });
        }
        out
    }

    /// The conditions on the rows of a query narrowed by its rows
    /// ([`crate::Engine::run_narrowed`]): by hour as hourly rows are, and by sending IP,
    /// MX group and class (rows made of hourly rows have none: none is of this one).
    pub(crate) fn row_exprs(&self, input: Table) -> Vec<Expr> {
        let mut out = self.time_exprs(Table::Hourly);
        out.extend(self.sender_exprs());
        out.extend(self.class.map(|class| match input {
            Table::Events => text(c::CLASS, class.as_str()),
            Table::Partials | Table::Hourly | Table::Rejects => lit(false),
        }));
        out
    }

    fn time_exprs(&self, table: Table) -> Vec<Expr> {
        let (time, from, to) = match table {
            Table::Events => (c::EVENT_TIME, self.from_us, self.to_us),
            Table::Partials | Table::Hourly | Table::Rejects => {
                (h::HOUR, self.from_us.map(hour_of), self.to_us.map(end_hour))
            }
        };
        let from = from.map(|f| col(time).gt_eq(ts(f)));
        let to = to.map(|t| col(time).lt(ts(t)));
        from.into_iter().chain(to).collect()
    }

    /// By sending IP and MX group, columns every table has.
    fn sender_exprs(&self) -> impl Iterator<Item = Expr> + '_ {
        let ip = self.source_ip.as_ref().map(|ip| match ip {
            SourceIp::Addr(ip) => text(c::SOURCE_IP, ip),
            SourceIp::Unknown => col(c::SOURCE_IP).is_null(),
        });
        let group = self.mx_group.as_ref().map(|g| text(c::MX_GROUP, g));
        ip.into_iter().chain(group)
    }
}
