//! Narrowing the `events` input: time range, sending IP, MX group.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::scalar::ScalarValue;
use deferlog_event::col as c;

/// Conditions on events, ANDed; all optional. Times are µs since the epoch, UTC;
/// `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub source_ip: Option<String>,
    pub mx_group: Option<String>,
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

impl EventFilter {
    pub fn exprs(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        if let Some(f) = self.from_us {
            out.push(col(c::EVENT_TIME).gt_eq(ts(f)));
        }
        if let Some(t) = self.to_us {
            out.push(col(c::EVENT_TIME).lt(ts(t)));
        }
        if let Some(ip) = &self.source_ip {
            out.push(text(c::SOURCE_IP, ip));
        }
        if let Some(g) = &self.mx_group {
            out.push(text(c::MX_GROUP, g));
        }
        out
    }
}
