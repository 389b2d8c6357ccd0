//! Counters read from Redis (`kind = "redis"`), each answered as a one-point `Series` at the
//! evaluation instant, named by its key (or INFO field) and labelled `command` and `key`/`field`:
//!
//! | spec | reads |
//! |---|---|
//! | `redis(#{ command: "LLEN", key })` | a list's length (also `ZCARD`, `XLEN`, `SCARD`, `HLEN`) |
//! | `redis(#{ command: "GET", key })` | a number stored at a key; no point when the key is absent |
//! | `redis(#{ command: "INFO", field, section })` | a numeric `INFO` field (`connected_clients`, `used_memory`, …) |
//! | `redis(#{ command: "BULLMQ", queue: "bull:email" })` | BullMQ job counts: an **array** of `Series` |
//!
//! BULLMQ reads a queue's keys under its prefix (`queue` is the full prefix, `bull:<name>`; or
//! give `prefix: "bull", queue: "<name>"`): `wait`, `paused` and `active` are lists (LLEN);
//! `prioritized`, `waiting-children`, `delayed`, `failed` and `completed` are sorted sets (ZCARD),
//! as BullMQ's own `getCounts` reads them. One series per state, labelled `queue` and `state`;
//! `states: ["wait", "failed"]` narrows them. A missing key counts 0, as in BullMQ.
//!
//! A key of the wrong type, an unknown INFO field, a refused connection or a timeout is an
//! `Err(SourceFailure)` with Redis's (or the socket's) message.

mod config;
pub use config::RedisConfig;

use super::common::{bounded, error_chain, failure, spec_timeout};
use super::{missing_of, FetchContext, Source};
use crate::data::QuerySpec;
use crate::data::{Point, QueryData, QueryOutcome, Series};
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The query kinds this source answers and their result shapes: Redis commands (`BULLMQ` answers
/// series sets: `shape_of_spec`).
pub const KINDS: &[(&str, super::Shape)] = &[("redis", super::Shape::Series)];

const SOURCE: &str = "redis";

/// BullMQ's job states and how each is stored.
pub const BULLMQ_STATES: &[(&str, &str)] = &[
    ("wait", "LLEN"),
    ("paused", "LLEN"),
    ("active", "LLEN"),
    ("prioritized", "ZCARD"),
    ("waiting-children", "ZCARD"),
    ("delayed", "ZCARD"),
    ("failed", "ZCARD"),
    ("completed", "ZCARD"),
];

#[derive(Clone)]
pub struct RedisOptions {
    /// Where to connect: a `redis://[user:password@]host:port[/db]` URL ...
    pub url: Option<String>,
    /// ... or the name of an environment variable holding it (use this when it has a password).
    pub url_env: Option<String>,
    /// Time allowed to connect and for each command's answer.
    pub timeout: Duration,
}

/// Never shows a literal URL: it may hold a password.
impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("url_env", &self.url_env)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisOptions {
    pub fn url(url: impl Into<String>) -> Self {
        RedisOptions {
            url: Some(url.into()),
            url_env: None,
            timeout: Duration::from_secs(5),
        }
    }
}

pub struct RedisSource {
    opts: RedisOptions,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    requests: AtomicU64,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource")
            .field("url_env", &self.opts.url_env)
            .finish()
    }
}

impl RedisSource {
    /// Checks that exactly one of `url` / `url_env` is given and that a literal URL parses.
    pub fn new(opts: RedisOptions) -> Result<Self, String> {
        match (&opts.url, &opts.url_env) {
            (Some(u), None) => {
                redis::Client::open(u.as_str()).map_err(|e| format!("redis url: {e}"))?;
            }
            (None, Some(_)) => {}
            _ => return Err("give the redis source exactly one of `url` and `url_env`".into()),
        }
        Ok(RedisSource {
            opts,
            conn: tokio::sync::Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// The shared connection, opened (or reopened after a failure) on demand, and whether it
    /// was already open.
    async fn connection(&self, timeout: Duration) -> Result<(MultiplexedConnection, bool), String> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok((c.clone(), true));
        }
        let url = match (&self.opts.url, &self.opts.url_env) {
            (Some(u), _) => u.clone(),
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| format!("environment variable {var} (the redis URL) is not set"))?,
            (None, None) => unreachable!("checked in new()"),
        };
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            // The URL may hold a password: name where it came from, not what it is.
            match &self.opts.url_env {
                Some(var) => format!("the redis URL in {var} is invalid ({:?})", e.kind()),
                None => format!("invalid redis url: {e}"),
            }
        })?;
        let addr = client.get_connection_info().addr.to_string();
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let conn = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| format!("connecting to redis at {addr}: {}", error_chain(&e)))?;
        *slot = Some(conn.clone());
        Ok((conn, false))
    }

    async fn forget_connection(&self) {
        *self.conn.lock().await = None;
    }

    async fn answer(&self, spec: &QuerySpec, ctx: &FetchContext) -> QueryOutcome {
        let fail = |m: String| failure(SOURCE, m);
        let plan = Plan::of(spec).map_err(fail)?;
        let missing = missing_of(spec).map_err(fail)?;
        let timeout = spec_timeout(spec, self.opts.timeout, ctx).map_err(fail)?;
        let mut values = None;
        for attempt in 0..2 {
            let (mut conn, reused) = self.connection(timeout).await.map_err(fail)?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            match tokio::time::timeout(timeout, plan.run(&mut conn)).await {
                Err(_) => {
                    self.forget_connection().await;
                    return Err(fail(format!("no answer within {timeout:?}")));
                }
                Ok(Err(e)) if broken(&e) => {
                    self.forget_connection().await;
                    // A kept connection the server has since closed: try once on a new one.
                    if !(reused && attempt == 0) {
                        return Err(fail(redis_error(&e)));
                    }
                }
                Ok(Err(e)) => return Err(fail(redis_error(&e))),
                Ok(Ok(v)) => {
                    values = Some(v);
                    break;
                }
            }
        }
        let values = values.ok_or_else(|| fail("no answer".into()))?;
        let series_of = |name: String, labels: BTreeMap<String, String>, v: Option<f64>| Series {
            name,
            labels,
            period_secs: 0,
            points: v
                .map(|value| Point { ts: ctx.at, value })
                .into_iter()
                .collect(),
            end: None,
            missing,
        };
        match plan {
            Plan::Key { command, key } => {
                let v = values.into_iter().next().flatten();
                Ok(QueryData::Series(series_of(
                    key.clone(),
                    BTreeMap::from([("command".into(), command), ("key".into(), key)]),
                    v,
                )))
            }
            Plan::Info { field, .. } => {
                let v = values.into_iter().next().flatten();
                Ok(QueryData::Series(series_of(
                    field.clone(),
                    BTreeMap::from([("command".into(), "INFO".into()), ("field".into(), field)]),
                    v,
                )))
            }
            Plan::Bullmq { queue, states } => Ok(QueryData::SeriesSet(
                states
                    .iter()
                    .zip(values)
                    .map(|((state, _), v)| {
                        series_of(
                            format!("{queue}:{state}"),
                            BTreeMap::from([
                                ("queue".into(), queue.clone()),
                                ("state".into(), state.to_string()),
                            ]),
                            Some(v.unwrap_or(0.0)),
                        )
                    })
                    .collect(),
            )),
        }
    }
}

/// Whether an error means the connection is no good (as opposed to Redis refusing a command).
fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}

fn redis_error(e: &redis::RedisError) -> String {
    if e.is_connection_refusal() {
        return format!("connection refused: {}", error_chain(e));
    }
    error_chain(e)
}

/// What one spec asks Redis.
#[derive(Debug)]
enum Plan {
    Key {
        command: String,
        key: String,
    },
    Info {
        field: String,
        section: Option<String>,
    },
    Bullmq {
        queue: String,
        states: Vec<(&'static str, &'static str)>,
    },
}

impl Plan {
    fn of(spec: &QuerySpec) -> Result<Plan, String> {
        let command = spec
            .str("command")
            .ok_or("redis(#{ command }) needs a `command` (LLEN, ZCARD, XLEN, SCARD, HLEN, GET, INFO or BULLMQ)")?
            .to_ascii_uppercase();
        let need = |name: &str| -> Result<String, String> {
            spec.str(name)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .ok_or_else(|| format!("redis {command} needs `{name}`"))
        };
        Ok(match command.as_str() {
            "LLEN" | "ZCARD" | "XLEN" | "SCARD" | "HLEN" | "GET" => Plan::Key {
                key: need("key")?,
                command,
            },
            "INFO" => Plan::Info {
                field: need("field")?,
                section: spec.str("section").map(String::from),
            },
            "BULLMQ" => {
                let queue = need("queue")?;
                let queue = match spec.str("prefix") {
                    Some(p) if !p.is_empty() => format!("{p}:{queue}"),
                    _ => queue,
                };
                let states = match spec.params.get("states") {
                    None | Some(Value::Null) => BULLMQ_STATES.to_vec(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|s| {
                            let s = s.as_str().unwrap_or_default();
                            BULLMQ_STATES
                                .iter()
                                .find(|(n, _)| *n == s)
                                .copied()
                                .ok_or_else(|| {
                                    format!(
                                        "unknown BullMQ state {s:?} (use {})",
                                        BULLMQ_STATES
                                            .iter()
                                            .map(|(n, _)| *n)
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )
                                })
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err("states must be an array of state names".into()),
                };
                Plan::Bullmq { queue, states }
            }
            other => {
                return Err(format!(
                    "redis command {other:?} is not supported (use LLEN, ZCARD, XLEN, SCARD, HLEN, GET, INFO or BULLMQ)"
                ))
            }
        })
    }

    /// The numbers the plan reads, in order; `None` where there is no value.
    async fn run(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<Vec<Option<f64>>> {
        match self {
            Plan::Key { command, key } if command == "GET" => {
                let v: Option<String> = redis::cmd("GET").arg(key).query_async(conn).await?;
                match v {
                    None => Ok(vec![None]),
                    Some(s) => s.trim().parse::<f64>().map(|x| vec![Some(x)]).map_err(|_| {
                        redis::RedisError::from((
                            redis::ErrorKind::TypeError,
                            "the value is not a number",
                            format!("GET {key} returned {:?}", truncate(&s)),
                        ))
                    }),
                }
            }
            Plan::Key { command, key } => {
                let n: i64 = redis::cmd(command).arg(key).query_async(conn).await?;
                Ok(vec![Some(n as f64)])
            }
            Plan::Info { field, section } => {
                let mut c = redis::cmd("INFO");
                if let Some(s) = section {
                    c.arg(s);
                }
                let text: String = c.query_async(conn).await?;
                let v = info_field(&text, field).map_err(|m| {
                    redis::RedisError::from((redis::ErrorKind::TypeError, "INFO", m))
                })?;
                Ok(vec![Some(v)])
            }
            Plan::Bullmq { queue, states } => {
                let mut p = redis::pipe();
                for (state, cmd) in states {
                    p.cmd(cmd).arg(format!("{queue}:{state}"));
                }
                let counts: Vec<i64> = p.query_async(conn).await?;
                Ok(counts.into_iter().map(|n| Some(n as f64)).collect())
            }
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A numeric field of `INFO` output (`field:value` lines).
fn info_field(text: &str, field: &str) -> Result<f64, String> {
    let v = text
        .lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v)
        .ok_or_else(|| {
            format!(
                "INFO has no field {field:?} (give `section` if it is not in the default sections)"
            )
        })?;
    v.parse::<f64>()
        .map_err(|_| format!("INFO field {field:?} is {v:?}, not a number"))
}

#[async_trait]
impl Source for RedisSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let futs: Vec<_> = specs.iter().map(|s| self.answer(s, ctx)).collect();
        bounded(futs, 8).await
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn info_fields_are_numbers() {
        let text =
            "# Clients\r\nconnected_clients:3\r\nblocked_clients:0\r\n# Server\r\nrole:master\r\n";
        assert_eq!(info_field(text, "connected_clients").unwrap(), 3.0);
        assert!(info_field(text, "role")
            .unwrap_err()
            .contains("not a number"));
        assert!(info_field(text, "nope").is_err());
    }

    #[test]
    fn plans_check_their_spec() {
        let p = |v| Plan::of(&QuerySpec::new("redis", v));
        assert!(matches!(
            p(json!({"command": "llen", "key": "k"})),
            Ok(Plan::Key { .. })
        ));
        assert!(p(json!({"command": "LLEN"})).unwrap_err().contains("`key`"));
        assert!(p(json!({"command": "DEL", "key": "k"})).is_err());
        match p(json!({"command": "BULLMQ", "queue": "email", "prefix": "bull", "states": ["wait", "failed"]})).unwrap() {
            Plan::Bullmq { queue, states } => {
                assert_eq!(queue, "bull:email");
                assert_eq!(states, vec![("wait", "LLEN"), ("failed", "ZCARD")]);
            }
            other => panic!("{other:?}"),
        }
        assert!(p(json!({"command": "BULLMQ", "queue": "q", "states": ["stuck"]})).is_err());
    }
}
