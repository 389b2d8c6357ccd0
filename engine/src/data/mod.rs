//! What sources produce and rules read: labelled time `Series`, log-query `Table`s, and the
//! CloudWatch missing-data treatments that decide what an absent datapoint means.
//!
//! A source *failure* is not data: it is `QueryOutcome::Err`, and the engine never lets a rule
//! mistake it for an empty series.

mod missing;
mod series;
mod spec;
mod table;

pub use missing::{evaluation_range, m_of_n, MissingData, Verdict};
pub use series::{Comparison, Point, Series};
pub use spec::QuerySpec;
pub use table::Table;

/// The successful result of one query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    /// Exactly one series (a CloudWatch metric with fixed dimensions).
    Series(Series),
    /// Zero or more series (a Prometheus vector, a fixture with several label sets).
    SeriesSet(Vec<Series>),
    /// Rows of a log or SQL query.
    Table(Table),
}

/// Why a query produced no data. Never confused with "no datapoints".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFailure {
    pub source: String,
    pub message: String,
}

impl std::fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

pub type QueryOutcome = Result<QueryData, SourceFailure>;
