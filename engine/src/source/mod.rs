//! Where data comes from. A `Source` answers a batch of distinct query specs of its kind for one
//! cycle; the engine merges identical specs from every due rule instance before asking, so each
//! distinct query is fetched once per cycle. A failed query is `Err(SourceFailure)`, never an
//! empty result.

pub mod cloudwatch;
mod common;
pub mod fixture;
pub mod http;
pub mod logs;
pub mod postgres;
pub mod prometheus;
mod pushed;
pub mod redis;

pub use fixture::{FixtureData, FixtureError, FixtureSeries, FixtureSource, FixtureTable};
pub use http::{HttpProbeOptions, HttpProbeSource};
pub use postgres::{PostgresOptions, PostgresSource};
pub use prometheus::{PrometheusOptions, PrometheusSource};
pub use pushed::PushedSource;
pub use redis::{RedisOptions, RedisSource};

use crate::clock::{parse_duration, Timestamp};
use crate::data::{MissingData, QueryOutcome};
use crate::rule::QuerySpec;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What a source needs to know about the cycle it is fetching for.
#[derive(Debug, Clone, Copy)]
pub struct FetchContext {
    /// The evaluation instant; windows end at it, aligned down to their period.
    pub at: Timestamp,
    /// Wall-clock instant by which the source must answer (retries included).
    pub deadline: std::time::Instant,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Answers `specs` (all distinct, all of this source's kind), one outcome per spec, in order.
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome>;

    /// API requests made so far (for cost reporting); sources without a metered API report 0.
    fn requests(&self) -> u64 {
        0
    }

    /// [`Self::requests`] by API operation (`GetMetricData`, `ListMetrics`, …), where known.
    fn requests_by_operation(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    /// How this source can answer about the past, for backtests (`crate::backtest`).
    fn history(&self) -> HistorySupport {
        HistorySupport::None
    }

    /// Fleet discovery (`crate::fleet`): the subjects `pattern` stands for in `spec`, where
    /// `pattern` is a glob the engine put into one of the spec's strings in place of a subject's
    /// name (`dimensions.FunctionName`, `log_group = "/aws/lambda/<pattern>"`). Each subject is
    /// the part of a discovered value standing where the pattern stands. `None`: this source
    /// cannot discover (list the names instead).
    async fn subjects(
        &self,
        _spec: &QuerySpec,
        _pattern: &str,
        _ctx: &FetchContext,
    ) -> Option<Result<Vec<String>, crate::data::SourceFailure>> {
        None
    }
}

/// How a source answers queries about past instants, which decides how a backtest fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySupport {
    /// Only the present (a database row count, a Redis list length, an HTTP probe).
    None,
    /// Any instant, directly and cheaply (fixtures): asked once per evaluation instant.
    AnyInstant,
    /// CloudWatch metric windows: fetched once over the whole range, sliced per instant.
    MetricRange,
    /// PromQL: `query_range` over the whole range, sliced per instant.
    PromQlRange,
}

/// The result shape a query kind produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Series,
    SeriesSet,
    Table,
}

pub fn shape_of(kind: &str) -> Shape {
    match kind {
        "prometheus" => Shape::SeriesSet,
        "logs_insights" | "filter_logs" | "sql" | "http_probe" => Shape::Table,
        _ => Shape::Series,
    }
}

/// The result shape one spec produces: its kind's, except where an option changes it —
/// `redis(#{ command: "BULLMQ" })` and `sql(#{ series: #{...} })` answer arrays of series.
/// Sources standing in for any kind (fixtures) answer in this shape.
pub fn shape_of_spec(spec: &QuerySpec) -> Shape {
    match spec.kind.as_str() {
        "redis"
            if spec
                .str("command")
                .is_some_and(|c| c.eq_ignore_ascii_case("BULLMQ")) =>
        {
            Shape::SeriesSet
        }
        "sql" if spec.params.get("series").is_some_and(|s| !s.is_null()) => Shape::SeriesSet,
        kind => shape_of(kind),
    }
}

/// The time window of a metric query, aligned so that a half-filled bucket is never evaluated:
/// the window ends at the last period boundary at or before the evaluation instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
    pub period_secs: i64,
}

impl Window {
    /// Reads `period` (default 5m), `range` (default: the period), `offset` (default 0) from a spec.
    pub fn of(spec: &QuerySpec, at: Timestamp) -> Result<Window, String> {
        let dur = |name: &str, default: &str| -> Result<i64, String> {
            let s = spec.str(name).unwrap_or(default);
            parse_duration(s)
                .map(|d| d.num_seconds())
                .map_err(|e| format!("{name}: {e}"))
        };
        let period = dur("period", "5m")?.max(1);
        let range = dur("range", spec.str("period").unwrap_or("5m"))?.max(period);
        let offset = dur("offset", "0")?;
        let t = at.timestamp() - offset;
        let end = t - t.rem_euclid(period);
        let ts = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap_or(at);
        Ok(Window {
            start: ts(end - range),
            end: ts(end),
            period_secs: period,
        })
    }
}

/// The missing-data treatment a spec asks for (`missing: "breaching"`), default `missing`.
pub fn missing_of(spec: &QuerySpec) -> Result<MissingData, String> {
    match spec.str("missing") {
        None => Ok(MissingData::default()),
        Some(s) => s.parse(),
    }
}

/// Sources by query kind.
#[derive(Clone, Default)]
pub struct Sources {
    by_kind: HashMap<String, Arc<dyn Source>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kind.keys()).finish()
    }
}

impl Sources {
    pub fn insert(&mut self, kind: impl Into<String>, source: Arc<dyn Source>) {
        self.by_kind.insert(kind.into(), source);
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Source>> {
        self.by_kind.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.by_kind.keys().map(|s| s.as_str())
    }

    /// [`Source::subjects`] of the source answering `spec`'s kind: `None` when that source
    /// cannot discover; a kind without a source is a failure saying so.
    pub async fn subjects(
        &self,
        spec: &QuerySpec,
        pattern: &str,
        ctx: &FetchContext,
    ) -> Option<Result<Vec<String>, crate::data::SourceFailure>> {
        let Some(src) = self.by_kind.get(&spec.kind) else {
            return Some(Err(crate::data::SourceFailure {
                source: spec.kind.clone(),
                message: format!("no source is configured for {:?} queries", spec.kind),
            }));
        };
        src.subjects(spec, pattern, ctx).await
    }

    /// Fetches every distinct spec once, all kinds concurrently. Specs of a kind with no source
    /// configured fail with a message saying so.
    pub async fn fetch_all(
        &self,
        specs: impl IntoIterator<Item = QuerySpec>,
        ctx: &FetchContext,
    ) -> HashMap<String, QueryOutcome> {
        let mut by_kind: BTreeMap<String, BTreeMap<String, QuerySpec>> = BTreeMap::new();
        for s in specs {
            by_kind
                .entry(s.kind.clone())
                .or_default()
                .insert(s.key.clone(), s);
        }
        let mut out = HashMap::new();
        let mut tasks = Vec::new();
        for (kind, specs) in by_kind {
            let specs: Vec<QuerySpec> = specs.into_values().collect();
            match self.by_kind.get(&kind) {
                None => {
                    for s in specs {
                        out.insert(
                            s.key.clone(),
                            Err(crate::data::SourceFailure {
                                source: kind.clone(),
                                message: format!("no source is configured for {kind:?} queries"),
                            }),
                        );
                    }
                }
                Some(src) => {
                    let src = src.clone();
                    let ctx = *ctx;
                    tasks.push(async move {
                        let outcomes = src.fetch(&specs, &ctx).await;
                        specs
                            .into_iter()
                            .map(|s| s.key)
                            .zip(outcomes)
                            .collect::<Vec<_>>()
                    });
                }
            }
        }
        for batch in futures::future::join_all(tasks).await {
            out.extend(batch);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn options_that_answer_arrays_of_series_change_the_shape() {
        let shape = |kind: &str, v| shape_of_spec(&QuerySpec::new(kind, v));
        assert_eq!(
            shape("redis", json!({"command": "LLEN", "key": "k"})),
            Shape::Series
        );
        assert_eq!(
            shape("redis", json!({"command": "bullmq", "queue": "q"})),
            Shape::SeriesSet
        );
        assert_eq!(shape("sql", json!({"query": "q"})), Shape::Table);
        assert_eq!(
            shape("sql", json!({"query": "q", "series": {"value": "n"}})),
            Shape::SeriesSet
        );
        assert_eq!(
            shape("prometheus", json!({"query": "up"})),
            Shape::SeriesSet
        );
    }

    #[test]
    fn windows_end_on_a_period_boundary() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 1, 10, 7, 42)
            .unwrap();
        let spec = QuerySpec::new("cloudwatch", json!({"period": "5m", "range": "15m"}));
        let w = Window::of(&spec, at).unwrap();
        assert_eq!(
            w.end,
            chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 5, 0).unwrap()
        );
        assert_eq!(
            w.start,
            chrono::Utc.with_ymd_and_hms(2026, 11, 1, 9, 50, 0).unwrap()
        );
        assert_eq!(w.period_secs, 300);
    }
}
