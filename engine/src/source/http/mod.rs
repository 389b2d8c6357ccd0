//! HTTP health checks (`kind = "http_probe"`): `http_probe(#{ url, method, timeout, json_pointer })`
//! requests a URL and answers a one-row `Table`:
//!
//! | column | value |
//! |---|---|
//! | `url` | the URL probed |
//! | `status` | the HTTP status code, `0` when no answer came |
//! | `ok` | `true` for a 2xx answer |
//! | `latency_ms` | time to the response headers (or to the failure), in milliseconds |
//! | `value` | with `json_pointer`: the JSON value at that pointer in the body (RFC 6901), else `()` |
//! | `error` | why there was no answer or no value (`connection refused`, a timeout, …), else `()` |
//!
//! A probe exists to report that its target is down, so an unreachable target — connection
//! refused, DNS failure, timeout, TLS error — is *data*: a row with `ok = false`, `status = 0` and
//! the reason in `error`. Only a spec that cannot be probed at all (no URL, a malformed URL, an
//! unsupported scheme or method) is a source failure.

mod config;
pub use config::HttpProbeConfig;

use super::common::{
    bounded, check_header_names, error_chain, failure, headers_from_env, spec_timeout,
};
use super::{FetchContext, Source};
use crate::data::QuerySpec;
use crate::data::{QueryData, QueryOutcome, Table};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The query kinds this source answers and their result shapes: HTTP probes.
pub const KINDS: &[(&str, super::Shape)] = &[("http_probe", super::Shape::Table)];

const SOURCE: &str = "http_probe";
/// Bodies larger than this are not read further (the pointer lookup sees a truncated body).
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct HttpProbeOptions {
    /// Default per-probe timeout (a spec's `timeout` overrides it).
    pub timeout: Duration,
    /// Header name → environment variable holding its value, sent with every probe.
    pub headers_env: BTreeMap<String, String>,
    /// Probes in flight at once.
    pub concurrency: usize,
}

impl Default for HttpProbeOptions {
    fn default() -> Self {
        HttpProbeOptions {
            timeout: Duration::from_secs(10),
            headers_env: BTreeMap::new(),
            concurrency: 8,
        }
    }
}

#[derive(Debug)]
pub struct HttpProbeSource {
    client: reqwest::Client,
    timeout: Duration,
    headers_env: BTreeMap<String, String>,
    concurrency: usize,
    requests: AtomicU64,
}

impl HttpProbeSource {
    /// Header values are read from the environment per probe; a variable that is not set
    /// fails the probe's query (a misconfiguration, unlike a target being down).
    pub fn new(opts: HttpProbeOptions) -> Result<Self, String> {
        check_header_names(&opts.headers_env)?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("tripline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(HttpProbeSource {
            client,
            timeout: opts.timeout,
            headers_env: opts.headers_env,
            concurrency: opts.concurrency.max(1),
            requests: AtomicU64::new(0),
        })
    }

    async fn answer(&self, spec: &QuerySpec, ctx: &FetchContext) -> QueryOutcome {
        let fail = |m: String| failure(SOURCE, m);
        let raw_url = spec
            .str("url")
            .ok_or_else(|| fail("http_probe(#{ url }) needs a `url`".into()))?;
        let url =
            reqwest::Url::parse(raw_url).map_err(|e| fail(format!("url {raw_url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(format!("url {raw_url:?} must be http:// or https://")));
        }
        let method = match spec
            .str("method")
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_str()
        {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "HEAD" => reqwest::Method::HEAD,
            other => {
                return Err(fail(format!(
                    "method {other:?} is not probed (use GET, POST or HEAD)"
                )))
            }
        };
        let pointer = match spec.params.get("json_pointer") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.is_empty() || p.starts_with('/') => Some(p.clone()),
            Some(other) => {
                return Err(fail(format!(
                    "json_pointer must be a JSON pointer such as \"/status\", got {other}"
                )))
            }
        };
        let timeout = spec_timeout(spec, self.timeout, ctx).map_err(fail)?;
        let headers = headers_from_env(&self.headers_env).map_err(fail)?;
        let mut req = self
            .client
            .request(method, url)
            .headers(headers)
            .timeout(timeout);
        match spec.params.get("body") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => req = req.body(s.clone()),
            Some(other) => req = req.json(other),
        }

        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut row: BTreeMap<String, Value> = BTreeMap::new();
        row.insert("url".into(), json!(raw_url));
        row.insert("value".into(), Value::Null);
        row.insert("error".into(), Value::Null);
        match req.send().await {
            Err(e) => {
                row.insert("status".into(), json!(0));
                row.insert("ok".into(), json!(false));
                row.insert("latency_ms".into(), json!(millis(started)));
                let why = if e.is_timeout() {
                    format!("no answer within {timeout:?}")
                } else {
                    error_chain(&e.without_url())
                };
                row.insert("error".into(), json!(why));
            }
            Ok(mut resp) => {
                row.insert("latency_ms".into(), json!(millis(started)));
                let status = resp.status();
                row.insert("status".into(), json!(status.as_u16()));
                row.insert("ok".into(), json!(status.is_success()));
                if let Some(p) = pointer {
                    let mut body = Vec::new();
                    let mut read_error = None;
                    loop {
                        match resp.chunk().await {
                            Ok(Some(c)) => {
                                body.extend_from_slice(&c);
                                if body.len() >= MAX_BODY {
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                read_error = Some(error_chain(&e));
                                break;
                            }
                        }
                    }
                    let (value, error) = match (read_error, serde_json::from_slice::<Value>(&body))
                    {
                        (Some(e), _) => (Value::Null, Some(format!("reading the body: {e}"))),
                        (None, Err(e)) => (Value::Null, Some(format!("the body is not JSON: {e}"))),
                        (None, Ok(doc)) => match doc.pointer(&p) {
                            Some(v) => (v.clone(), None),
                            None => (Value::Null, Some(format!("no value at json_pointer {p:?}"))),
                        },
                    };
                    row.insert("value".into(), value);
                    if let Some(e) = error {
                        row.insert("error".into(), json!(e));
                    }
                }
            }
        }
        Ok(QueryData::Table(Table::new(SOURCE, vec![row])))
    }
}

fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

#[async_trait]
impl Source for HttpProbeSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let futs: Vec<_> = specs.iter().map(|s| self.answer(s, ctx)).collect();
        bounded(futs, self.concurrency).await
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}
