//! Small helpers shared by the network sources (Prometheus, HTTP probe, PostgreSQL, Redis).

use super::FetchContext;
use crate::clock::parse_duration;
use crate::data::QuerySpec;
use crate::data::SourceFailure;
use std::collections::BTreeMap;
use std::time::Duration;

/// `value` read against `template`, a string in which `pattern` was written once: the part of
/// `value` standing where the pattern stands, if the rest is equal and that part matches the glob.
/// `capture("/aws/lambda/p-*", "p-*", "/aws/lambda/p-a")` is `Some("p-a")`.
pub fn capture(template: &str, pattern: &str, value: &str) -> Option<String> {
    let i = template.find(pattern)?;
    let (prefix, suffix) = (&template[..i], &template[i + pattern.len()..]);
    let mid = value.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!mid.is_empty() && super::cloudwatch::spec::glob_match(pattern, mid)).then(|| mid.to_string())
}

/// Parses a duration written like `10s` or `500ms` into a std `Duration`.
pub fn std_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    d.to_std()
        .map_err(|_| format!("duration {s:?} must not be negative"))
}

/// A spec's optional duration parameter (`timeout: "2s"`).
pub fn spec_duration(spec: &QuerySpec, name: &str) -> Result<Option<Duration>, String> {
    match spec.params.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => std_duration(s)
            .map(Some)
            .map_err(|e| format!("{name}: {e}")),
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or_else(|| format!("{name}: a number of seconds must be positive")),
        Some(other) => Err(format!(
            "{name} must be a duration such as \"5s\", got {other}"
        )),
    }
}

/// The time left before the cycle's fetch deadline, never below 1 ms.
pub fn remaining(ctx: &FetchContext) -> Duration {
    ctx.deadline
        .saturating_duration_since(std::time::Instant::now())
        .max(Duration::from_millis(1))
}

/// `wanted` capped by what is left of the cycle's deadline.
pub fn budget(wanted: Duration, ctx: &FetchContext) -> Duration {
    wanted.min(remaining(ctx))
}

/// A spec's `timeout` (else `default`), capped by what is left of the cycle's deadline: the
/// time one query of a network source may take.
pub fn spec_timeout(
    spec: &QuerySpec,
    default: Duration,
    ctx: &FetchContext,
) -> Result<Duration, String> {
    Ok(budget(
        spec_duration(spec, "timeout")?.unwrap_or(default),
        ctx,
    ))
}

/// Checks the header names of a `headers_env` map at load (their values are read per request).
pub fn check_header_names(headers_env: &BTreeMap<String, String>) -> Result<(), String> {
    headers_env
        .keys()
        .try_for_each(|name| header_name(name).map(drop))
}

fn header_name(name: &str) -> Result<reqwest::header::HeaderName, String> {
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid HTTP header name"))
}

/// Reads header values from environment variables: `{ "Authorization" = "PROM_AUTH" }` sends
/// the value of `$PROM_AUTH` as `Authorization`. A variable that is not set is an error naming
/// the variable (never its value).
pub fn headers_from_env(
    headers_env: &BTreeMap<String, String>,
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderMap, HeaderValue};
    let mut out = HeaderMap::new();
    for (name, var) in headers_env {
        let value = std::env::var(var).map_err(|_| {
            format!("header {name:?} reads environment variable {var}, which is not set")
        })?;
        let n = header_name(name)?;
        let mut v = HeaderValue::from_str(&value).map_err(|_| {
            format!("environment variable {var} does not hold a valid value for header {name:?}")
        })?;
        v.set_sensitive(true);
        out.insert(n, v);
    }
    Ok(out)
}

/// A failure of `source` with `message`.
pub fn failure(source: &str, message: impl Into<String>) -> SourceFailure {
    SourceFailure {
        source: source.to_string(),
        message: message.into(),
    }
}

/// The chain of an error's causes, joined: reqwest and hyper hide the useful part ("connection
/// refused") a few levels down.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Runs `futures` with at most `limit` in flight, keeping their order.
pub async fn bounded<Fut, R>(futures: impl IntoIterator<Item = Fut>, limit: usize) -> Vec<R>
where
    Fut: std::future::Future<Output = R>,
{
    use futures::stream::StreamExt;
    futures::stream::iter(futures)
        .buffered(limit.max(1))
        .collect()
        .await
}
