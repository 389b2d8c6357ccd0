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

pub use common::capture;
pub use fixture::{FixtureData, FixtureError, FixtureSeries, FixtureSource, FixtureTable};
pub use http::{HttpProbeOptions, HttpProbeSource};
pub use postgres::{PostgresOptions, PostgresSource};
pub use prometheus::{PrometheusOptions, PrometheusSource};
pub use pushed::PushedSource;
pub use redis::{RedisOptions, RedisSource};

use crate::clock::{parse_duration, Timestamp};
use crate::data::QuerySpec;
use crate::data::{MissingData, QueryOutcome};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What a source needs to know about the cycle it is fetching for.
#[derive(Debug, Clone, Copy)]
pub struct FetchContext {
    /// The evaluation instant; windows end at it, aligned down to the minute (see [`Window`]).
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

/// The one registry of sources: every source folder's `KINDS`. A kind a rule can ask for
/// (`rule::QUERY_KINDS`) that no source here declares fails this module's tests, and so does a
/// declared kind rules do not know; fixtures answer every kind listed here (`crate::ruletest`).
pub const SOURCES: &[&[(&str, Shape)]] = &[
    cloudwatch::KINDS,
    logs::KINDS,
    prometheus::KINDS,
    postgres::KINDS,
    http::KINDS,
    redis::KINDS,
    pushed::KINDS,
];

/// Every query kind some source answers, in registry order.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().flat_map(|k| k.iter().map(|(kind, _)| *kind))
}

/// The result shape of a kind, as its source declares it (a series for a kind no source has).
pub fn shape_of(kind: &str) -> Shape {
    SOURCES
        .iter()
        .flat_map(|k| k.iter())
        .find(|(k, _)| *k == kind)
        .map_or(Shape::Series, |(_, shape)| *shape)
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

/// The time window of a metric query. Windows slide: they end at the evaluation instant (less
/// `offset`) aligned down to the minute, not at a period boundary, and their datapoint buckets
/// are counted back from that end, `[end - k·period, end - (k-1)·period)`, so a `1d` period
/// evaluated at 10:07 is yesterday 10:07 to today 10:07, as a CloudWatch alarm evaluated every
/// minute sees it. A bucket still filling is never evaluated. See [`window_end`] for the
/// alignment and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
    pub period_secs: i64,
}

/// The step a window's end is aligned down to, in seconds: the minute; the period itself for
/// high-resolution periods that divide a minute (1, 5, 10, 20, 30 s), since CloudWatch rounds
/// their `StartTime` to such divisions; and 5 minutes (1 hour) for a window reaching back more
/// than 15 (63) days, because CloudWatch rounds a `StartTime` that old down to the 5-minute
/// (hour) clock interval. With the end aligned this way and the range a whole number of
/// periods, the `StartTime` sent is one CloudWatch honours exactly, so its buckets (which start
/// at `StartTime`) are the ones counted back from the end.
pub fn alignment(period_secs: i64, range_secs: i64) -> i64 {
    const DAY: i64 = 86_400;
    if range_secs > 63 * DAY {
        3600
    } else if range_secs > 15 * DAY {
        300
    } else if period_secs > 0 && period_secs < 60 && 60 % period_secs == 0 {
        period_secs
    } else {
        60
    }
}

/// The end of a window of `period_secs` buckets over `range_secs` evaluated at `at` (Unix
/// seconds): `at` aligned down to [`alignment`].
pub fn window_end(at: i64, period_secs: i64, range_secs: i64) -> i64 {
    let step = alignment(period_secs, range_secs);
    at - at.rem_euclid(step)
}

impl Window {
    /// Reads `period` (default 5m), `range` (default: the period; rounded up to whole periods)
    /// and `offset` (default 0) from a spec.
    pub fn of(spec: &QuerySpec, at: Timestamp) -> Result<Window, String> {
        let dur = |name: &str, default: &str| -> Result<i64, String> {
            let s = spec.str(name).unwrap_or(default);
            parse_duration(s)
                .map(|d| d.num_seconds())
                .map_err(|e| format!("{name}: {e}"))
        };
        let period = dur("period", "5m")?.max(1);
        let range = dur("range", spec.str("period").unwrap_or("5m"))?.max(period);
        // Whole periods, so the buckets counted from the start are those counted back from the end.
        let whole = range / period + i64::from(range % period != 0);
        let range = whole.saturating_mul(period);
        let offset = dur("offset", "0")?;
        let t = at.timestamp().saturating_sub(offset);
        let end = window_end(t, period, range);
        let ts = |s: i64| chrono::DateTime::from_timestamp(s, 0).ok_or("window out of range");
        Ok(Window {
            start: ts(end.saturating_sub(range))?,
            end: ts(end)?,
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

    #[test]
    fn every_kind_rules_can_ask_for_has_exactly_one_source_and_every_source_kind_is_known_to_rules()
    {
        let declared: Vec<&str> = kinds().collect();
        for kind in crate::rule::QUERY_KINDS.iter().chain(&["pushed"]) {
            let n = declared.iter().filter(|k| *k == kind).count();
            assert_eq!(n, 1, "query kind {kind:?}: declared by {n} sources' KINDS");
        }
        for kind in &declared {
            assert!(
                *kind == "pushed" || crate::rule::QUERY_KINDS.contains(kind),
                "source kind {kind:?} is not in rule::QUERY_KINDS: rules cannot ask for it"
            );
        }
    }

    #[test]
    fn shapes_come_from_the_sources_declarations() {
        assert_eq!(shape_of("prometheus"), Shape::SeriesSet);
        for kind in ["logs_insights", "filter_logs", "sql", "http_probe"] {
            assert_eq!(shape_of(kind), Shape::Table, "{kind}");
        }
        for kind in ["cloudwatch", "redis", "pushed", "no_such_kind"] {
            assert_eq!(shape_of(kind), Shape::Series, "{kind}");
        }
    }
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
    fn windows_slide_with_the_minute() {
        let at = |h, m, s| chrono::Utc.with_ymd_and_hms(2026, 11, 1, h, m, s).unwrap();
        let spec = QuerySpec::new("cloudwatch", json!({"period": "5m", "range": "15m"}));
        let w = Window::of(&spec, at(10, 7, 42)).unwrap();
        assert_eq!((w.start, w.end), (at(9, 52, 0), at(10, 7, 0)));
        assert_eq!(w.period_secs, 300);
        // A day's period evaluated at 10:07 is yesterday 10:07 to today 10:07.
        let day = QuerySpec::new("cloudwatch", json!({"period": "1d"}));
        let w = Window::of(&day, at(10, 7, 5)).unwrap();
        assert_eq!(w.end, at(10, 7, 0));
        assert_eq!(w.end - w.start, chrono::Duration::days(1));
        // A range that is not whole periods is rounded up to them.
        let odd = QuerySpec::new("cloudwatch", json!({"period": "5m", "range": "12m"}));
        let w = Window::of(&odd, at(10, 7, 42)).unwrap();
        assert_eq!(w.start, at(9, 52, 0));
        // High-resolution periods align to their own division of the minute.
        let hi = QuerySpec::new("cloudwatch", json!({"period": "10s", "range": "30s"}));
        let w = Window::of(&hi, at(10, 7, 42)).unwrap();
        assert_eq!((w.start, w.end), (at(10, 7, 10), at(10, 7, 40)));
        // `offset` moves the end back before it is aligned.
        let off = QuerySpec::new("cloudwatch", json!({"period": "1m", "offset": "90s"}));
        let w = Window::of(&off, at(10, 7, 42)).unwrap();
        assert_eq!(w.end, at(10, 6, 0));
        // Far back, CloudWatch rounds StartTime to 5 minutes / an hour: the end is aligned so.
        assert_eq!(alignment(300, 20 * 86_400), 300);
        assert_eq!(alignment(3600, 90 * 86_400), 3600);
        assert_eq!(
            window_end(3 * 3600 + 59 * 60 + 59, 3600, 90 * 86_400),
            3 * 3600
        );
    }
}
