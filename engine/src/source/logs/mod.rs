//! The `logs_insights` and `filter_logs` query kinds: CloudWatch Logs.
//!
//! `logs_insights` runs a Logs Insights query over named log groups or every group under a name
//! prefix (found with `DescribeLogGroups`, cached, at most 50 groups per query, so a big prefix
//! becomes several queries whose rows are joined). A semaphore caps queries running at once
//! (Logs Insights allows 30 per account), `GetQueryResults` is polled with backoff until the
//! query completes, and a query still running at the cycle's deadline is stopped with
//! `StopQuery` and reported as failed ("stopped at deadline"), never as an empty table.
//!
//! `filter_logs` is `FilterLogEvents` for plain term matches, paced by a limiter (5 calls/s per
//! account by default). Both produce `QueryData::Table` with `@timestamp`, `@message`, … columns.

mod config;
pub use config::LogsConfig;

use super::{FetchContext, Source};
use crate::aws::{
    backoff, classify, lazy_client, with_retries, AwsConfig, CallError, LazyClient, Service,
};
use crate::clock::{parse_duration, Timestamp};
use crate::data::QuerySpec;
use crate::data::{QueryData, QueryOutcome, SourceFailure, Table};
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use aws_sdk_cloudwatchlogs::Client;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The query kinds this source answers and their result shapes: Logs Insights queries and
/// `FilterLogEvents` filters.
pub const KINDS: &[(&str, super::Shape)] = &[
    ("logs_insights", super::Shape::Table),
    ("filter_logs", super::Shape::Table),
];

/// Logs Insights accepts at most this many log groups in one query.
pub const MAX_GROUPS_PER_QUERY: usize = 50;

/// How the logs source behaves (the `[sources.logs_insights]` / `[sources.filter_logs]` tables).
#[derive(Debug, Clone, PartialEq)]
pub struct LogsSettings {
    /// Logs Insights queries running at once from this process (AWS allows 30 per account).
    pub max_concurrent_queries: usize,
    /// `FilterLogEvents` calls per second (AWS allows 5 per account).
    pub filter_calls_per_second: f64,
    /// Attempts per API request, the first included.
    pub max_attempts: u32,
    /// How long a log-group prefix expansion is reused.
    pub discovery_ttl: Duration,
    /// Wait before the first `GetQueryResults` poll (Insights queries take a moment to start).
    pub first_poll: Duration,
}

impl Default for LogsSettings {
    fn default() -> Self {
        LogsSettings {
            max_concurrent_queries: 30,
            filter_calls_per_second: 5.0,
            max_attempts: 4,
            discovery_ttl: Duration::from_secs(600),
            first_poll: Duration::from_millis(500),
        }
    }
}

type GroupCache = Mutex<HashMap<String, (Instant, Arc<Vec<String>>)>>;

pub struct LogsSource {
    client: LazyClient<aws_sdk_cloudwatchlogs::Client>,
    settings: LogsSettings,
    queries: Arc<Semaphore>,
    /// The instant the next `FilterLogEvents` call may go out.
    filter_next: tokio::sync::Mutex<Instant>,
    groups: GroupCache,
}

impl std::fmt::Debug for LogsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsSource")
            .field("settings", &self.settings)
            .field("requests", &self.client.requests())
            .finish()
    }
}

fn failure(kind: &str, message: impl Into<String>) -> SourceFailure {
    SourceFailure {
        source: kind.to_string(),
        message: message.into(),
    }
}

/// The log groups a spec names: `log_group` (one), `log_groups` (a list) or `log_group_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Groups {
    Names(Vec<String>),
    Prefix(String),
}

fn groups_of(spec: &QuerySpec) -> Result<Groups, String> {
    if let Some(p) = spec.str("log_group_prefix") {
        return Ok(Groups::Prefix(p.to_string()));
    }
    let mut names = Vec::new();
    if let Some(g) = spec.str("log_group") {
        names.push(g.to_string());
    }
    match spec.params.get("log_groups") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for v in a {
                names.push(
                    v.as_str()
                        .ok_or("log_groups must be a list of log group names")?
                        .to_string(),
                );
            }
        }
        Some(Value::String(s)) => names.push(s.clone()),
        Some(_) => return Err("log_groups must be a list of log group names".into()),
    }
    if names.is_empty() {
        return Err(
            "name the log groups with `log_group`, `log_groups` or `log_group_prefix`".into(),
        );
    }
    names.sort();
    names.dedup();
    Ok(Groups::Names(names))
}

fn check_keys(spec: &QuerySpec, known: &[&str]) -> Result<(), String> {
    if let Some(o) = spec.params.as_object() {
        for k in o.keys() {
            if !known.contains(&k.as_str()) {
                return Err(format!(
                    "{} spec has unknown key {k:?} (known: {})",
                    spec.kind,
                    known.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// `[start, end)` of a log query: `range` (default 1h) back from the evaluation instant less
/// `offset`, its end aligned down to the minute like every source's window (windows slide with
/// the evaluation cadence; see `Window`).
fn time_range(spec: &QuerySpec, at: Timestamp) -> Result<(Timestamp, Timestamp), String> {
    let range =
        parse_duration(spec.str("range").unwrap_or("1h")).map_err(|e| format!("range: {e}"))?;
    let offset =
        parse_duration(spec.str("offset").unwrap_or("0")).map_err(|e| format!("offset: {e}"))?;
    let t = at.timestamp().saturating_sub(offset.num_seconds());
    let end = super::window_end(t, 60, range.num_seconds());
    let ts = |s: i64| chrono::DateTime::from_timestamp(s, 0).ok_or("range out of range");
    Ok((ts(end.saturating_sub(range.num_seconds()))?, ts(end)?))
}

fn limit_of(spec: &QuerySpec, default: i64) -> Result<i32, String> {
    match spec.params.get("limit") {
        None | Some(Value::Null) => Ok(default as i32),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=10_000).contains(&n) => Ok(n as i32),
            _ => Err(format!("limit must be a number from 1 to 10000, got {v}")),
        },
    }
}

/// Splits group names into query-sized chunks.
pub fn chunks(groups: &[String]) -> Vec<Vec<String>> {
    groups
        .chunks(MAX_GROUPS_PER_QUERY)
        .map(|c| c.to_vec())
        .collect()
}

impl LogsSource {
    /// A source calling CloudWatch Logs as the `[aws]` table says, with credentials from the
    /// default chain (resolved at the first fetch).
    pub fn new(aws: &AwsConfig, settings: LogsSettings) -> Result<Self, String> {
        if settings.max_concurrent_queries == 0 {
            return Err("max_concurrent_queries must be at least 1".into());
        }
        if settings.filter_calls_per_second <= 0.0 {
            return Err("filter_calls_per_second must be above 0".into());
        }
        let client = lazy_client!(aws, Service::Logs, aws_sdk_cloudwatchlogs)?;
        Ok(LogsSource {
            client,
            queries: Arc::new(Semaphore::new(settings.max_concurrent_queries)),
            settings,
            filter_next: tokio::sync::Mutex::new(Instant::now()),
            groups: Mutex::default(),
        })
    }

    /// Log group names under `prefix`, cached for `discovery_ttl`.
    async fn groups_with_prefix(
        &self,
        client: &Client,
        prefix: &str,
        deadline: Instant,
    ) -> Result<Arc<Vec<String>>, String> {
        if let Some((at, names)) = self.groups.lock().expect("log group cache").get(prefix) {
            if at.elapsed() < self.settings.discovery_ttl {
                return Ok(names.clone());
            }
        }
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _page in 0..1000 {
            let req = client
                .describe_log_groups()
                .log_group_name_prefix(prefix)
                .set_next_token(token.clone());
            let out = with_retries(
                "DescribeLogGroups",
                self.settings.max_attempts,
                deadline,
                || {
                    let req = req.clone();
                    async move {
                        req.send()
                            .await
                            .map_err(|e| classify("DescribeLogGroups", &e))
                    }
                },
            )
            .await
            .map_err(|e| e.message)?;
            names.extend(
                out.log_groups()
                    .iter()
                    .filter_map(|g| g.log_group_name().map(String::from)),
            );
            token = out.next_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        names.sort();
        names.dedup();
        let names = Arc::new(names);
        self.groups
            .lock()
            .expect("log group cache")
            .insert(prefix.to_string(), (Instant::now(), names.clone()));
        Ok(names)
    }

    async fn insights(
        &self,
        client: &Client,
        spec: &QuerySpec,
        ctx: &FetchContext,
    ) -> Result<Table, String> {
        check_keys(
            spec,
            &[
                "query",
                "log_group",
                "log_groups",
                "log_group_prefix",
                "range",
                "offset",
                "limit",
            ],
        )?;
        let query = spec
            .str("query")
            .filter(|q| !q.trim().is_empty())
            .ok_or("logs_insights spec needs `query` (a Logs Insights query string)")?;
        let (start, end) = time_range(spec, ctx.at)?;
        let limit = limit_of(spec, 10_000)?;
        let names = match groups_of(spec)? {
            Groups::Names(n) => Arc::new(n),
            Groups::Prefix(p) => self.groups_with_prefix(client, &p, ctx.deadline).await?,
        };
        if names.is_empty() {
            // No log group matches the prefix: nothing has logged, which is an answer.
            return Ok(Table::new("logs_insights", vec![]));
        }
        let runs = chunks(&names).into_iter().map(|groups| {
            let req = client
                .start_query()
                .set_log_group_names(Some(groups))
                .start_time(start.timestamp())
                .end_time(end.timestamp())
                .query_string(query)
                .limit(limit);
            self.run_insights(client, req, ctx.deadline)
        });
        let mut rows = Vec::new();
        for r in futures::future::join_all(runs).await {
            rows.extend(r?);
        }
        Ok(Table::new("logs_insights", rows))
    }

    /// One Logs Insights query over at most 50 groups: start, poll, stop at the deadline.
    async fn run_insights(
        &self,
        client: &Client,
        req: aws_sdk_cloudwatchlogs::operation::start_query::builders::StartQueryFluentBuilder,
        deadline: Instant,
    ) -> Result<Vec<BTreeMap<String, Value>>, String> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _permit = match tokio::time::timeout(remaining, self.queries.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => return Err(format!("no Logs Insights query slot came free before the deadline ({} queries at most run at once)", self.settings.max_concurrent_queries)),
        };
        let started = with_retries("StartQuery", self.settings.max_attempts, deadline, || {
            let req = req.clone();
            async move { req.send().await.map_err(|e| classify("StartQuery", &e)) }
        })
        .await
        .map_err(|e| e.message)?;
        let id = started
            .query_id()
            .ok_or("StartQuery: no query id in the answer")?
            .to_string();
        let mut wait = self.settings.first_poll;
        let mut polls = 0u32;
        let mut last_error: Option<String> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(wait.min(remaining)).await;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                self.stop(client, &id).await;
                let why = match &last_error {
                    Some(e) => format!("no result after {polls} polls; last: {e}"),
                    None => format!("still running after {polls} polls"),
                };
                return Err(format!(
                    "Logs Insights query {id} stopped at deadline ({why})"
                ));
            }
            polls += 1;
            let sent =
                tokio::time::timeout(remaining, client.get_query_results().query_id(&id).send())
                    .await;
            let out = match sent {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    let e = classify("GetQueryResults", &e);
                    if !e.retryable {
                        return Err(e.message);
                    }
                    last_error = Some(e.message);
                    wait = backoff(polls, Duration::from_millis(250), Duration::from_secs(2));
                    continue;
                }
                // The deadline passed mid-request: the next turn stops the query.
                Err(_) => continue,
            };
            match out.status() {
                Some(QueryStatus::Complete) => {
                    let rows = out
                        .results()
                        .iter()
                        .map(|fields| {
                            fields
                                .iter()
                                .filter_map(|f| {
                                    Some((
                                        f.field()?.to_string(),
                                        Value::String(f.value()?.to_string()),
                                    ))
                                })
                                .filter(|(k, _)| k != "@ptr")
                                .collect()
                        })
                        .collect();
                    return Ok(rows);
                }
                Some(s @ (QueryStatus::Failed | QueryStatus::Cancelled | QueryStatus::Timeout)) => {
                    return Err(format!("Logs Insights query {id} ended {}", s.as_str()))
                }
                _ => wait = backoff(polls, Duration::from_millis(250), Duration::from_secs(2)),
            }
        }
    }

    /// Best effort: a query left running keeps holding one of the account's 30 slots.
    async fn stop(&self, client: &Client, id: &str) {
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.stop_query().query_id(id).send(),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(
                "stopping Logs Insights query {id}: {}",
                classify("StopQuery", &e).message
            ),
            Err(_) => tracing::warn!("stopping Logs Insights query {id}: timed out"),
        }
    }

    /// Waits for the limiter's next slot; fails if that slot is past the deadline.
    async fn filter_slot(&self, deadline: Instant) -> Result<(), String> {
        let interval = Duration::from_secs_f64(1.0 / self.settings.filter_calls_per_second);
        let slot = {
            let mut next = self.filter_next.lock().await;
            let slot = (*next).max(Instant::now());
            if slot >= deadline {
                return Err(
                    "FilterLogEvents: the rate limit leaves no slot before the deadline".into(),
                );
            }
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
        Ok(())
    }

    async fn filter(
        &self,
        client: &Client,
        spec: &QuerySpec,
        ctx: &FetchContext,
    ) -> Result<Table, String> {
        check_keys(
            spec,
            &[
                "log_group",
                "pattern",
                "log_stream_prefix",
                "range",
                "offset",
                "limit",
            ],
        )?;
        let group = spec
            .str("log_group")
            .ok_or("filter_logs spec needs `log_group` (one log group name)")?;
        let (start, end) = time_range(spec, ctx.at)?;
        let limit = limit_of(spec, 1000)? as usize;
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        for _page in 0..1000 {
            let mut req = client
                .filter_log_events()
                .log_group_name(group)
                .start_time(start.timestamp_millis())
                .end_time(end.timestamp_millis())
                .limit((limit - rows.len()).min(10_000) as i32)
                .set_next_token(token.clone());
            if let Some(p) = spec.str("pattern") {
                req = req.filter_pattern(p);
            }
            if let Some(p) = spec.str("log_stream_prefix") {
                req = req.log_stream_name_prefix(p);
            }
            let out = with_retries(
                "FilterLogEvents",
                self.settings.max_attempts,
                ctx.deadline,
                || {
                    let req = req.clone();
                    async move {
                        self.filter_slot(ctx.deadline)
                            .await
                            .map_err(|m| CallError {
                                message: m,
                                retryable: false,
                            })?;
                        req.send()
                            .await
                            .map_err(|e| classify("FilterLogEvents", &e))
                    }
                },
            )
            .await
            .map_err(|e| e.message)?;
            for ev in out.events() {
                let mut row = BTreeMap::new();
                if let Some(ts) = ev
                    .timestamp()
                    .and_then(chrono::DateTime::from_timestamp_millis)
                {
                    row.insert(
                        "@timestamp".to_string(),
                        Value::String(ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    );
                }
                row.insert(
                    "@message".to_string(),
                    Value::String(ev.message().unwrap_or_default().to_string()),
                );
                row.insert(
                    "@logStream".to_string(),
                    Value::String(ev.log_stream_name().unwrap_or_default().to_string()),
                );
                row.insert("@log".to_string(), Value::String(group.to_string()));
                rows.push(row);
                if rows.len() >= limit {
                    break;
                }
            }
            token = out.next_token().map(String::from);
            if token.is_none() || rows.len() >= limit {
                break;
            }
        }
        Ok(Table::new("filter_logs", rows))
    }
}

#[async_trait]
impl Source for LogsSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let client = match self.client.get().await {
            Ok(c) => c,
            Err(e) => {
                return specs
                    .iter()
                    .map(|s| Err(failure(&s.kind, e.clone())))
                    .collect()
            }
        };
        let client = &client;
        let runs = specs.iter().map(|s| async move {
            let r = match s.kind.as_str() {
                "logs_insights" => self.insights(client, s, ctx).await,
                "filter_logs" => self.filter(client, s, ctx).await,
                other => Err(format!(
                    "the logs source answers logs_insights and filter_logs queries, not {other:?}"
                )),
            };
            r.map(QueryData::Table).map_err(|m| failure(&s.kind, m))
        });
        futures::future::join_all(runs).await
    }

    fn requests(&self) -> u64 {
        self.client.requests()
    }

    fn requests_by_operation(&self) -> BTreeMap<String, u64> {
        self.client.requests_by_operation()
    }

    /// Fleet discovery: a `log_group` carrying the pattern (`/aws/lambda/<pattern>`) is matched
    /// against the groups under its literal prefix (`DescribeLogGroups`, cached like
    /// `log_group_prefix`); each subject is the part of a group's name where the pattern stands.
    async fn subjects(
        &self,
        spec: &QuerySpec,
        pattern: &str,
        ctx: &FetchContext,
    ) -> Option<Result<Vec<String>, SourceFailure>> {
        let kind = spec.kind.as_str();
        let template = spec.str("log_group").filter(|g| g.contains(pattern))?;
        let literal = template
            .find(['*', '?'])
            .map_or(template, |i| &template[..i]);
        let client = match self.client.get().await {
            Ok(c) => c,
            Err(e) => return Some(Err(failure(kind, e))),
        };
        Some(
            match self
                .groups_with_prefix(&client, literal, ctx.deadline)
                .await
            {
                Err(e) => Err(failure(kind, format!("discovering log groups: {e}"))),
                Ok(groups) => {
                    let mut out: Vec<String> = groups
                        .iter()
                        .filter_map(|g| crate::source::capture(template, pattern, g))
                        .collect();
                    out.sort();
                    out.dedup();
                    Ok(out)
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_and_chunks() {
        let s = QuerySpec::new(
            "logs_insights",
            json!({"query": "fields @message", "log_groups": ["/b", "/a", "/a"]}),
        );
        assert_eq!(
            groups_of(&s).unwrap(),
            Groups::Names(vec!["/a".into(), "/b".into()])
        );
        let s = QuerySpec::new(
            "logs_insights",
            json!({"query": "x", "log_group_prefix": "/aws/lambda/prd2011-prod1-"}),
        );
        assert_eq!(
            groups_of(&s).unwrap(),
            Groups::Prefix("/aws/lambda/prd2011-prod1-".into())
        );
        let s = QuerySpec::new("logs_insights", json!({"query": "x"}));
        assert!(groups_of(&s).unwrap_err().contains("log_group_prefix"));
        let names: Vec<String> = (0..120).map(|i| format!("/g/{i:03}")).collect();
        assert_eq!(
            chunks(&names).iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![50, 50, 20]
        );
    }

    #[test]
    fn ranges_and_limits() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let s = QuerySpec::new("logs_insights", json!({"range": "15m", "limit": 20}));
        let (start, end) = time_range(&s, at).unwrap();
        assert_eq!((end - start).num_minutes(), 15);
        // 1_800_000_000 is 08:00:00; 37 s later the window still ends at the minute.
        let later = at + chrono::Duration::seconds(37);
        assert_eq!(time_range(&s, later).unwrap(), (start, end));
        assert_eq!(end, at);
        assert_eq!(limit_of(&s, 10_000).unwrap(), 20);
        let s = QuerySpec::new("logs_insights", json!({"limit": 20000}));
        assert!(limit_of(&s, 10_000).is_err());
    }
}
