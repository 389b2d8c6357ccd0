//! The `cloudwatch` query kind: CloudWatch metrics through `GetMetricData`.
//!
//! A cycle's specs are parsed, globbed dimensions are expanded through `ListMetrics` (cached for
//! `discovery_ttl`), identical concrete queries are merged, and the planner packs them into calls
//! of ≤ 500 queries and ≤ 100,800 datapoints. Calls run concurrently (a few at a time), follow
//! `NextToken`, and retry throttling, 5xx and connection failures with exponential backoff and
//! jitter within the cycle's deadline. A query that cannot be answered is `Err(SourceFailure)`,
//! never an empty series.
//!
//! Windows come from `Window::of` and slide: `EndTime` is the evaluation instant aligned down to
//! the minute, `StartTime` is that end less the range in whole periods, and `Period` the period,
//! so the buckets CloudWatch returns (it buckets from `StartTime`, and moto does so literally)
//! are `[end - k·period, end - (k-1)·period)`, counted back from the window end. `StartTime` is
//! a whole minute (or a 5-minute / 1-hour clock interval for windows reaching back past 15 / 63
//! days), which is what CloudWatch rounds it to anyway, so the request is honoured exactly.

mod config;
pub use config::CloudWatchConfig;

mod discovery;
pub mod planner;
pub mod spec;

use self::planner::{plan, Call, CallLimits, MetricQuery};
use self::spec::MetricSpec;
use super::{FetchContext, Source};
use crate::aws::{classify, lazy_client, with_retries, AwsConfig, CallError, LazyClient, Service};
use crate::data::QuerySpec;
use crate::data::{Point, QueryData, QueryOutcome, Series, SourceFailure};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode,
};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The query kinds this source answers and their result shapes: CloudWatch metric queries.
pub const KINDS: &[(&str, super::Shape)] = &[("cloudwatch", super::Shape::Series)];

/// How the CloudWatch source behaves (the `[sources.cloudwatch]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchSettings {
    /// Attempts per API request, the first included.
    pub max_attempts: u32,
    /// How long a `ListMetrics` expansion of a globbed dimension is reused.
    pub discovery_ttl: Duration,
    /// `GetMetricData` calls in flight at once (CloudWatch allows 50/s per account).
    pub max_concurrent_calls: usize,
    pub limits: CallLimits,
}

impl Default for CloudWatchSettings {
    fn default() -> Self {
        CloudWatchSettings {
            max_attempts: 4,
            discovery_ttl: Duration::from_secs(600),
            max_concurrent_calls: 4,
            limits: CallLimits::default(),
        }
    }
}

type DimensionSets = Arc<Vec<BTreeMap<String, String>>>;

pub struct CloudWatchSource {
    client: LazyClient<aws_sdk_cloudwatch::Client>,
    settings: CloudWatchSettings,
    discovered: Mutex<HashMap<String, (Instant, DimensionSets)>>,
}

impl std::fmt::Debug for CloudWatchSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchSource")
            .field("settings", &self.settings)
            .field("requests", &self.client.requests())
            .finish()
    }
}

fn failure(message: impl Into<String>) -> SourceFailure {
    SourceFailure {
        source: "cloudwatch".into(),
        message: message.into(),
    }
}

impl CloudWatchSource {
    /// A source calling CloudWatch as the `[aws]` table says, with credentials from the default
    /// chain (resolved at the first fetch).
    pub fn new(aws: &AwsConfig, settings: CloudWatchSettings) -> Result<Self, String> {
        if settings.max_attempts == 0 || settings.max_concurrent_calls == 0 {
            return Err("max_attempts and max_concurrent_calls must be at least 1".into());
        }
        let client = lazy_client!(aws, Service::CloudWatch, aws_sdk_cloudwatch)?;
        Ok(CloudWatchSource {
            client,
            settings,
            discovered: Mutex::default(),
        })
    }

    /// Runs one planned call (all its pages) and returns each query's points or error.
    async fn run_call(
        &self,
        client: &aws_sdk_cloudwatch::Client,
        call: Call,
        queries: &[MetricQuery],
        deadline: Instant,
    ) -> Vec<(usize, Result<Vec<Point>, String>)> {
        let mdq: Vec<MetricDataQuery> = call
            .queries
            .iter()
            .map(|(id, i)| {
                let q = &queries[*i];
                let dims = q
                    .dimensions
                    .iter()
                    .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                    .collect();
                let metric = Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(&q.metric)
                    .set_dimensions(Some(dims))
                    .build();
                let stat = MetricStat::builder()
                    .metric(metric)
                    .period(q.period_secs as i32)
                    .stat(&q.stat)
                    .build();
                MetricDataQuery::builder()
                    .id(id)
                    .metric_stat(stat)
                    .return_data(true)
                    .build()
            })
            .collect();
        let by_id: HashMap<&str, usize> = call
            .queries
            .iter()
            .map(|(id, i)| (id.as_str(), *i))
            .collect();
        let mut points: HashMap<usize, Vec<Point>> = HashMap::new();
        let mut errors: HashMap<usize, String> = HashMap::new();
        let start = aws_smithy_types::DateTime::from_secs(call.start.timestamp());
        let end = aws_smithy_types::DateTime::from_secs(call.end.timestamp());
        let mut token: Option<String> = None;
        for _page in 0..1000 {
            let req = client
                .get_metric_data()
                .start_time(start)
                .end_time(end)
                .scan_by(ScanBy::TimestampAscending)
                .set_metric_data_queries(Some(mdq.clone()))
                .set_next_token(token.clone());
            let out = with_retries(
                "GetMetricData",
                self.settings.max_attempts,
                deadline,
                || {
                    let req = req.clone();
                    async move { req.send().await.map_err(|e| classify("GetMetricData", &e)) }
                },
            )
            .await;
            let out = match out {
                Ok(o) => o,
                Err(CallError { message, .. }) => {
                    return call
                        .queries
                        .iter()
                        .map(|(_, i)| (*i, Err(message.clone())))
                        .collect()
                }
            };
            for r in out.metric_data_results() {
                let Some(i) = r.id().and_then(|id| by_id.get(id)) else {
                    continue;
                };
                match r.status_code() {
                    Some(StatusCode::InternalError) | Some(StatusCode::Forbidden) => {
                        let msgs: Vec<String> = r
                            .messages()
                            .iter()
                            .filter_map(|m| m.value().map(String::from))
                            .collect();
                        errors.insert(
                            *i,
                            format!(
                                "GetMetricData: {} for this query{}",
                                r.status_code().map(|s| s.as_str()).unwrap_or("error"),
                                if msgs.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {}", msgs.join("; "))
                                }
                            ),
                        );
                    }
                    _ => {
                        let e = points.entry(*i).or_default();
                        for (ts, v) in r.timestamps().iter().zip(r.values()) {
                            if let Some(ts) = chrono::DateTime::from_timestamp(ts.secs(), 0) {
                                e.push(Point { ts, value: *v });
                            }
                        }
                    }
                }
            }
            token = out.next_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        call.queries
            .iter()
            .map(|(_, i)| {
                if let Some(e) = errors.remove(i) {
                    return (*i, Err(e));
                }
                let q = &queries[*i];
                let mut ps = points.remove(i).unwrap_or_default();
                ps.retain(|p| p.ts >= q.start && p.ts < q.end);
                ps.sort_by_key(|p| p.ts);
                ps.dedup_by_key(|p| p.ts);
                (*i, Ok(ps))
            })
            .collect()
    }
}

/// What one spec turned into: the concrete queries answering it, with their labels.
enum Expansion {
    Failed(SourceFailure),
    One(MetricSpec, usize),
    Set(MetricSpec, Vec<(BTreeMap<String, String>, usize)>),
}

#[async_trait]
impl Source for CloudWatchSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let client = match self.client.get().await {
            Ok(c) => c,
            Err(e) => return specs.iter().map(|_| Err(failure(e.clone()))).collect(),
        };
        let mut queries: Vec<MetricQuery> = Vec::new();
        let mut index: BTreeMap<MetricQuery, usize> = BTreeMap::new();
        let mut intern = |q: MetricQuery| -> usize {
            *index.entry(q.clone()).or_insert_with(|| {
                queries.push(q);
                queries.len() - 1
            })
        };
        let mut expansions = Vec::with_capacity(specs.len());
        for s in specs {
            let parsed = match spec::parse(s, ctx.at) {
                Ok(p) => p,
                Err(e) => {
                    expansions.push(Expansion::Failed(failure(e)));
                    continue;
                }
            };
            let query = |dims: BTreeMap<String, String>| MetricQuery {
                namespace: parsed.namespace.clone(),
                metric: parsed.metric.clone(),
                stat: parsed.stat.clone(),
                dimensions: dims,
                start: parsed.window.start,
                end: parsed.window.end,
                period_secs: parsed.window.period_secs,
            };
            if parsed.is_discovery() {
                match self.discover(&client, &parsed, ctx.deadline).await {
                    Err(e) => expansions.push(Expansion::Failed(failure(e))),
                    Ok(sets) => {
                        let members = sets
                            .iter()
                            .map(|d| (d.clone(), intern(query(d.clone()))))
                            .collect();
                        expansions.push(Expansion::Set(parsed, members));
                    }
                }
            } else {
                let i = intern(query(parsed.exact_dimensions()));
                expansions.push(Expansion::One(parsed, i));
            }
        }

        let planned = plan(&queries, self.settings.limits);
        let mut results: HashMap<usize, Result<Vec<Point>, String>> = planned
            .rejected
            .into_iter()
            .map(|(i, e)| (i, Err(e)))
            .collect();
        let queries_ref = &queries;
        let calls: Vec<_> = futures::stream::iter(planned.calls)
            .map(|c| self.run_call(&client, c, queries_ref, ctx.deadline))
            .buffer_unordered(self.settings.max_concurrent_calls.max(1))
            .collect()
            .await;
        results.extend(calls.into_iter().flatten());

        let series = |m: &MetricSpec,
                      labels: BTreeMap<String, String>,
                      i: usize|
         -> Result<Series, SourceFailure> {
            let points = results
                .get(&i)
                .cloned()
                .unwrap_or_else(|| Err("no result for this query".into()))
                .map_err(failure)?;
            Ok(Series {
                name: m.metric.clone(),
                labels,
                period_secs: m.window.period_secs,
                points,
                end: Some(m.window.end),
                missing: m.missing,
            })
        };
        expansions
            .into_iter()
            .map(|e| match e {
                Expansion::Failed(f) => Err(f),
                Expansion::One(m, i) => series(&m, m.exact_dimensions(), i).map(QueryData::Series),
                Expansion::Set(m, members) => members
                    .into_iter()
                    .map(|(labels, i)| series(&m, labels, i))
                    .collect::<Result<Vec<_>, _>>()
                    .map(QueryData::SeriesSet),
            })
            .collect()
    }

    fn requests(&self) -> u64 {
        self.client.requests()
    }

    fn requests_by_operation(&self) -> BTreeMap<String, u64> {
        self.client.requests_by_operation()
    }

    fn history(&self) -> super::HistorySupport {
        super::HistorySupport::MetricRange
    }

    async fn subjects(
        &self,
        spec: &QuerySpec,
        pattern: &str,
        ctx: &FetchContext,
    ) -> Option<Result<Vec<String>, SourceFailure>> {
        self.fleet_subjects(spec, pattern, ctx).await
    }
}
