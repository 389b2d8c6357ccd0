//! PromQL over Prometheus's HTTP API (`kind = "prometheus"`).
//!
//! `prometheus(#{ query })` is an instant query (`/api/v1/query`) at the evaluation instant;
//! with `range` it is a range query (`/api/v1/query_range`) over `[end - range, end]`, `end` being
//! the evaluation instant aligned down to `step` (default `60s`). Every result becomes an array of
//! labelled `Series`: the metric's labels without `__name__`, named by `__name__` (or the query
//! when the expression has no metric name). A scalar result is one series without labels.
//!
//! Anything Prometheus refuses — bad PromQL, a query timeout, a 5xx, an unreachable server — is
//! an `Err(SourceFailure)` carrying Prometheus's own `error` text when it sent one.

mod config;
pub use config::PrometheusConfig;

use super::common::{
    bounded, check_header_names, error_chain, failure, headers_from_env, spec_duration,
    spec_timeout,
};
use super::{missing_of, FetchContext, Source};
use crate::clock::Timestamp;
use crate::data::QuerySpec;
use crate::data::{Point, QueryData, QueryOutcome, Series};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The query kinds this source answers and their result shapes: PromQL instant vectors.
pub const KINDS: &[(&str, super::Shape)] = &[("prometheus", super::Shape::SeriesSet)];

const SOURCE: &str = "prometheus";

/// How to reach a Prometheus server (or anything speaking its query API: Thanos, Mimir, …).
#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    /// Base URL, e.g. `http://127.0.0.1:9090` (a path prefix is kept: `https://h/prometheus`).
    pub url: String,
    /// Per-query budget; also sent to Prometheus as its `timeout` parameter.
    pub timeout: Duration,
    /// Header name → environment variable holding its value (`Authorization` = `PROM_AUTH`).
    pub headers_env: BTreeMap<String, String>,
    /// Queries in flight at once.
    pub concurrency: usize,
}

impl PrometheusOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PrometheusOptions {
            url: url.into(),
            timeout: Duration::from_secs(10),
            headers_env: BTreeMap::new(),
            concurrency: 4,
        }
    }
}

pub struct PrometheusSource {
    base: reqwest::Url,
    client: reqwest::Client,
    timeout: Duration,
    headers_env: BTreeMap<String, String>,
    concurrency: usize,
    requests: AtomicU64,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("url", &self.base.as_str())
            .finish()
    }
}

impl PrometheusSource {
    /// Checks the URL now, so a broken config is reported when the engine is built. Header
    /// values are read from the environment per request: a variable that is not set fails the
    /// queries (a source-error alert) instead of keeping the engine from starting.
    pub fn new(opts: PrometheusOptions) -> Result<Self, String> {
        let mut url = opts.url.trim().to_string();
        if !url.ends_with('/') {
            url.push('/');
        }
        let base =
            reqwest::Url::parse(&url).map_err(|e| format!("prometheus url {:?}: {e}", opts.url))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!(
                "prometheus url {:?} must be http:// or https://",
                opts.url
            ));
        }
        check_header_names(&opts.headers_env)?;
        let client = reqwest::Client::builder()
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("prometheus client: {e}"))?;
        Ok(PrometheusSource {
            base,
            client,
            timeout: opts.timeout,
            headers_env: opts.headers_env,
            concurrency: opts.concurrency.max(1),
            requests: AtomicU64::new(0),
        })
    }

    async fn answer(&self, spec: &QuerySpec, ctx: &FetchContext) -> QueryOutcome {
        let fail = |m: String| failure(SOURCE, m);
        let query = spec
            .str("query")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| fail("prometheus(#{ query }) needs a PromQL `query`".into()))?;
        let missing = missing_of(spec).map_err(fail)?;
        let timeout = spec_timeout(spec, self.timeout, ctx).map_err(fail)?;
        let mut params: Vec<(&str, String)> = vec![
            ("query", query.to_string()),
            ("timeout", format!("{}ms", timeout.as_millis().max(1))),
        ];
        let range = spec_duration(spec, "range").map_err(fail)?;
        let (path, step_secs, end) = match range {
            None => {
                params.push(("time", epoch(ctx.at)));
                ("api/v1/query", 0, None)
            }
            Some(range) => {
                let range = range.as_secs_f64();
                let step = spec_duration(spec, "step")
                    .map_err(fail)?
                    .unwrap_or(Duration::from_secs(60))
                    .as_secs_f64();
                if step <= 0.0 || range <= 0.0 {
                    return Err(fail("range and step must be positive".into()));
                }
                if range / step > 11_000.0 {
                    return Err(fail(format!(
                        "range / step is {} points; Prometheus allows 11000 (raise `step`)",
                        (range / step) as i64
                    )));
                }
                let step_i = step.ceil() as i64;
                let at = ctx.at.timestamp();
                // Windows slide with the evaluation cadence: they end at the minute (as every
                // source's do), not at a multiple of the step.
                let end = super::window_end(at, step_i.max(1), range.ceil() as i64);
                let start = end as f64 - range;
                params.push(("start", format!("{start}")));
                params.push(("end", format!("{end}")));
                params.push(("step", format!("{step}")));
                let end_ts = chrono::DateTime::from_timestamp(end, 0).unwrap_or(ctx.at);
                ("api/v1/query_range", step_i, Some(end_ts))
            }
        };
        let url = self.base.join(path).map_err(|e| fail(e.to_string()))?;
        // For messages: without any password the URL may carry.
        let shown = {
            let mut u = url.clone();
            let _ = u.set_password(None);
            u
        };
        let headers = headers_from_env(&self.headers_env).map_err(fail)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        // Prometheus enforces `timeout` itself; give the HTTP exchange a little more so that its
        // own "query timed out" message is what comes back.
        let resp = self
            .client
            .post(url.clone())
            .headers(headers)
            .form(&params)
            .timeout(timeout + Duration::from_millis(500).min(timeout))
            .send()
            .await
            .map_err(|e| {
                fail(if e.is_timeout() {
                    format!("{shown} did not answer within {timeout:?}")
                } else {
                    format!("{shown}: {}", error_chain(&e.without_url()))
                })
            })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| {
            fail(format!(
                "{shown}: reading the answer: {}",
                error_chain(&e.without_url())
            ))
        })?;
        let parsed: Option<ApiResponse> = serde_json::from_str(&body).ok();
        let data = match parsed {
            Some(ApiResponse {
                status: s,
                data: Some(data),
                ..
            }) if s == "success" && status.is_success() => data,
            Some(ApiResponse {
                error: Some(error),
                error_type,
                ..
            }) => {
                return Err(fail(format!(
                    "{} (HTTP {}{})",
                    error,
                    status.as_u16(),
                    error_type
                        .map(|t| format!(", errorType {t}"))
                        .unwrap_or_default()
                )))
            }
            _ => {
                return Err(fail(format!(
                    "HTTP {} from {shown}: {}",
                    status,
                    snippet(&body)
                )))
            }
        };
        let series = to_series(&data, query, step_secs, end, missing).map_err(fail)?;
        Ok(QueryData::SeriesSet(series))
    }
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<ApiData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Debug, Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

fn epoch(t: Timestamp) -> String {
    let ms = t.timestamp_millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn snippet(body: &str) -> String {
    let t = body.trim();
    if t.is_empty() {
        return "(empty body)".into();
    }
    let mut s: String = t.chars().take(300).collect();
    if t.chars().count() > 300 {
        s.push('…');
    }
    s
}

fn point(ts: f64, v: &str) -> Result<Point, String> {
    let value = match v {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v
            .parse()
            .map_err(|_| format!("Prometheus sent a sample value {v:?} that is not a number"))?,
    };
    let ms = (ts * 1000.0).round() as i64;
    let ts = chrono::DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| format!("sample time {ts} is out of range"))?;
    Ok(Point { ts, value })
}

fn to_series(
    data: &ApiData,
    query: &str,
    step_secs: i64,
    end: Option<Timestamp>,
    missing: crate::data::MissingData,
) -> Result<Vec<Series>, String> {
    let make = |mut labels: BTreeMap<String, String>, points: Vec<Point>| {
        let name = labels
            .remove("__name__")
            .unwrap_or_else(|| query.to_string());
        Series {
            name,
            labels,
            period_secs: step_secs,
            points,
            // Range points sit at the start of their step, so the window ends one step past
            // the last evaluation instant.
            end: end.map(|e| e + chrono::Duration::seconds(step_secs)),
            missing,
        }
    };
    match data.result_type.as_str() {
        "vector" | "matrix" => {
            let samples: Vec<Sample> = serde_json::from_value(data.result.clone())
                .map_err(|e| format!("unexpected {} result: {e}", data.result_type))?;
            samples
                .into_iter()
                .map(|s| {
                    let mut points = match s.value {
                        Some((t, v)) => vec![point(t, &v)?],
                        None => s
                            .values
                            .iter()
                            .map(|(t, v)| point(*t, v))
                            .collect::<Result<Vec<_>, _>>()?,
                    };
                    points.sort_by_key(|p| p.ts);
                    Ok(make(s.metric, points))
                })
                .collect()
        }
        "scalar" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result.clone())
                .map_err(|e| format!("unexpected scalar result: {e}"))?;
            Ok(vec![make(BTreeMap::new(), vec![point(t, &v)?])])
        }
        other => Err(format!(
            "a PromQL {other} result cannot be a series; query a vector, matrix or scalar"
        )),
    }
}

#[async_trait]
impl Source for PrometheusSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let futs: Vec<_> = specs.iter().map(|s| self.answer(s, ctx)).collect();
        bounded(futs, self.concurrency).await
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn history(&self) -> super::HistorySupport {
        super::HistorySupport::PromQlRange
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vectors_become_labelled_series_named_by_metric() {
        let data: ApiData = serde_json::from_value(json!({
            "resultType": "vector",
            "result": [
                {"metric": {"__name__": "intelliflow_queue_depth", "queue": "events"},
                 "value": [1700000000.5, "12"]},
                {"metric": {"queue": "email"}, "value": [1700000000.5, "NaN"]}
            ]
        }))
        .unwrap();
        let s = to_series(&data, "q", 0, None, Default::default()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "intelliflow_queue_depth");
        assert_eq!(s[0].labels.get("queue").unwrap(), "events");
        assert!(!s[0].labels.contains_key("__name__"));
        assert_eq!(s[0].points[0].value, 12.0);
        assert_eq!(s[0].points[0].ts.timestamp_millis(), 1_700_000_000_500);
        assert_eq!(s[1].name, "q");
        assert!(s[1].points[0].value.is_nan());
    }

    #[test]
    fn scalars_are_one_unlabelled_series_and_strings_are_refused() {
        let data: ApiData =
            serde_json::from_value(json!({"resultType": "scalar", "result": [1.0, "+Inf"]}))
                .unwrap();
        let s = to_series(&data, "vector(1)", 0, None, Default::default()).unwrap();
        assert_eq!(s[0].points[0].value, f64::INFINITY);
        let data: ApiData =
            serde_json::from_value(json!({"resultType": "string", "result": [1.0, "x"]})).unwrap();
        assert!(to_series(&data, "q", 0, None, Default::default()).is_err());
    }

    #[test]
    fn bad_urls_are_refused_when_built() {
        assert!(PrometheusSource::new(PrometheusOptions::new("ftp://x")).is_err());
        assert!(PrometheusSource::new(PrometheusOptions::new("not a url")).is_err());
        assert!(PrometheusSource::new(PrometheusOptions::new("http://127.0.0.1:9090")).is_ok());
    }
}
