//! SQL as a metric source (`kind = "sql"`): `sql(#{ query })` runs one statement against
//! PostgreSQL and answers its rows as a `Table`.
//!
//! Safety: every query runs alone in a `START TRANSACTION READ ONLY` transaction with
//! `SET LOCAL statement_timeout`, through the extended protocol (so one statement per query: a
//! `;`-chained second statement is refused), and the transaction is rolled back afterwards. A
//! statement that writes fails with PostgreSQL's own "cannot execute INSERT in a read-only
//! transaction". Give Tripline a role that can only read as well: the transaction is a guard
//! rail, not a permission system.
//!
//! TLS follows the connection string's `sslmode` (`prefer` by default, `require`, `disable`);
//! the server's certificate is verified against the web roots and `ca_file`.
//!
//! The connection string comes from an environment variable (`dsn_env`); it is read when a
//! connection is opened and never logged or put into an error message (only the variable's name,
//! host and database are).
//!
//! Columns map to JSON: integers, floats and `numeric` → numbers (NaN/±Infinity → strings);
//! text-like columns and enums → strings; `bool` → bool; `timestamp`/`timestamptz` → RFC 3339
//! strings in UTC (`timestamp` without time zone is read as UTC); `date` → `YYYY-MM-DD`; `time` →
//! `HH:MM:SS[.ffffff]`; `interval` → seconds (a month counts 30 days); `json`/`jsonb` → their
//! value; `uuid` → string; one-dimensional arrays → arrays; domains as their base type;
//! NULL → `()`. Other types fail the query with a hint to cast them.
//!
//! With `series: #{ value: "col", label: "col" or ["a", "b"], time: "col" }` the rows become an
//! array of `Series` instead: one per distinct label value, a point per row at `time` (a
//! timestamp or epoch-seconds column; the evaluation instant when omitted). `period` (default
//! unknown) sets the series' datapoint size.

mod config;
pub use config::PostgresConfig;

use super::common::{bounded, error_chain, failure, spec_timeout};
use super::{missing_of, FetchContext, Source};
use crate::clock::{parse_duration, Timestamp};
use crate::data::QuerySpec;
use crate::data::{Point, QueryData, QueryOutcome, Series, Table};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::Client;

/// The query kinds this source answers and their result shapes: SQL rows (a `series: #{...}`
/// option makes them series: `shape_of_spec`).
pub const KINDS: &[(&str, super::Shape)] = &[("sql", super::Shape::Table)];

const SOURCE: &str = "sql";

#[derive(Clone)]
pub struct PostgresOptions {
    /// Name of the environment variable holding the connection string
    /// (`host=… user=… password=… dbname=…` or `postgres://…`).
    pub dsn_env: String,
    /// For host programs that hold the connection string themselves: used instead of
    /// `dsn_env` when set (the config file only takes `dsn_env`).
    pub dsn: Option<String>,
    /// Default `statement_timeout` of each query (a spec's `timeout` overrides it).
    pub statement_timeout: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Connections kept open and used at once.
    pub max_connections: usize,
    /// PEM file of the certificate authorities to trust for TLS (e.g. Amazon RDS's bundle), in
    /// addition to the public web roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Never shows the connection string: it may hold a password.
impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("dsn_env", &self.dsn_env)
            .field("dsn", &self.dsn.as_ref().map(|_| "<redacted>"))
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_connections", &self.max_connections)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PostgresOptions {
    pub fn new(dsn_env: impl Into<String>) -> Self {
        PostgresOptions {
            dsn_env: dsn_env.into(),
            dsn: None,
            statement_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_connections: 4,
            ca_file: None,
        }
    }
}

/// A few connections, opened on demand and reused across cycles; broken ones are dropped.
pub struct PostgresSource {
    opts: PostgresOptions,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    idle: Mutex<Vec<Client>>,
    slots: tokio::sync::Semaphore,
    queries: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("dsn_env", &self.opts.dsn_env)
            .finish()
    }
}

impl PostgresSource {
    /// Reads `ca_file` now: an unreadable one is a configuration error.
    pub fn new(opts: PostgresOptions) -> Result<Self, String> {
        let n = opts.max_connections.max(1);
        let tls = tls_connector(opts.ca_file.as_deref())?;
        Ok(PostgresSource {
            opts,
            tls,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(n),
            queries: Default::default(),
        })
    }

    /// Where we connect, for messages: host, port and database, never the password.
    fn describe(cfg: &tokio_postgres::Config) -> String {
        let host = cfg
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let db = cfg.get_dbname().or(cfg.get_user()).unwrap_or("?");
        format!("{host}:{port}/{db}")
    }

    async fn connect(&self, timeout: Duration) -> Result<Client, String> {
        let var = match self.opts.dsn {
            Some(_) => "the connection string given",
            None => self.opts.dsn_env.as_str(),
        };
        let dsn = match &self.opts.dsn {
            Some(d) => d.clone(),
            None => std::env::var(var).map_err(|_| {
                format!("environment variable {var} (the connection string) is not set")
            })?,
        };
        let mut cfg: tokio_postgres::Config = dsn.parse().map_err(|e: tokio_postgres::Error| {
            format!("the connection string in {var} cannot be parsed: {e}")
        })?;
        if cfg.get_application_name().is_none() {
            cfg.application_name("tripline");
        }
        let timeout = timeout.min(self.opts.connect_timeout);
        cfg.connect_timeout(timeout);
        let where_ = Self::describe(&cfg);
        let (client, conn) =
            match tokio::time::timeout(timeout, cfg.connect(self.tls.clone())).await {
                Err(_) => {
                    return Err(format!(
                        "connecting to {where_}: no answer within {timeout:?}"
                    ))
                }
                Ok(Err(e)) => return Err(format!("connecting to {where_}: {}", pg_error(&e))),
                Ok(Ok(pair)) => pair,
            };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("postgres connection closed: {e}");
            }
        });
        Ok(client)
    }

    async fn answer(&self, spec: &QuerySpec, ctx: &FetchContext) -> QueryOutcome {
        let fail = |m: String| failure(SOURCE, m);
        let query = spec
            .str("query")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| fail("sql(#{ query }) needs a `query`".into()))?;
        let shape = SeriesOption::of(spec).map_err(fail)?;
        let timeout = spec_timeout(spec, self.opts.statement_timeout, ctx).map_err(fail)?;
        let _slot = tokio::time::timeout(timeout, self.slots.acquire())
            .await
            .map_err(|_| fail("every connection stayed busy until the deadline".into()))?
            .map_err(|e| fail(e.to_string()))?;
        // PostgreSQL enforces statement_timeout; our own limit, a little longer, catches a server
        // that stopped answering altogether.
        let guard = timeout + Duration::from_secs(1);
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pooled = self.idle.lock().expect("pool lock").pop();
        let mut result = None;
        if let Some(mut client) = pooled.filter(|c| !c.is_closed()) {
            match tokio::time::timeout(guard, run(&mut client, query, timeout)).await {
                Err(_) => return Err(fail(format!("no answer within {guard:?}"))),
                // A kept connection the server has since closed (a restart, an idle timeout):
                // its failure says nothing about the query, so try once more on a fresh one.
                Ok(Err(_)) if client.is_closed() => {}
                Ok(r) => {
                    self.put_back(client);
                    result = Some(r);
                }
            }
        }
        let result = match result {
            Some(r) => r,
            None => {
                let mut client = self.connect(timeout).await.map_err(fail)?;
                let r = tokio::time::timeout(guard, run(&mut client, query, timeout))
                    .await
                    .map_err(|_| fail(format!("no answer within {guard:?}")))?;
                self.put_back(client);
                r
            }
        };
        let (columns, rows) = result.map_err(fail)?;
        match shape {
            None => Ok(QueryData::Table(Table::new(SOURCE, rows))),
            Some(s) => s
                .series(&columns, rows, spec, ctx.at)
                .map(QueryData::SeriesSet)
                .map_err(fail),
        }
    }

    fn put_back(&self, client: Client) {
        if !client.is_closed() {
            self.idle.lock().expect("pool lock").push(client);
        }
    }
}

/// TLS as the connection string's `sslmode` asks (`prefer`, the default, falls back to plain
/// text when the server offers no TLS; `require` insists), verifying the server's certificate
/// against the public web roots and `ca_file`.
fn tls_connector(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("ca_file {} holds no certificate", path.display()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    // An explicit provider: the process may link more than one.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

type Row = BTreeMap<String, Value>;

/// One read-only transaction: the statement's column names and rows.
async fn run(
    client: &mut Client,
    query: &str,
    timeout: Duration,
) -> Result<(Vec<String>, Vec<Row>), String> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(|e| pg_error(&e))?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        timeout.as_millis().max(1)
    ))
    .await
    .map_err(|e| pg_error(&e))?;
    let stmt = tx.prepare(query).await.map_err(|e| pg_error(&e))?;
    let columns: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let pg_rows = tx.query(&stmt, &[]).await.map_err(|e| pg_error(&e))?;
    // Nothing to keep: a read-only transaction is rolled back.
    tx.rollback().await.map_err(|e| pg_error(&e))?;
    let mut rows = Vec::with_capacity(pg_rows.len());
    for r in &pg_rows {
        let mut row = Row::new();
        for (i, col) in r.columns().iter().enumerate() {
            let raw: Raw = r.try_get(i).map_err(|e| pg_error(&e))?;
            let v =
                decode(col.type_(), raw.0).map_err(|e| format!("column {:?}: {e}", col.name()))?;
            row.insert(col.name().to_string(), v);
        }
        rows.push(row);
    }
    Ok((columns, rows))
}

/// PostgreSQL's own message (`ERROR: … (SQLSTATE 25006)`) when the server sent one.
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => error_chain(e),
    }
}

/// Any column's raw bytes, decoded by `decode`.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn be<const N: usize>(raw: &[u8], at: usize) -> Result<[u8; N], String> {
    raw.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| "truncated value".to_string())
}

fn number(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x.is_nan() {
        json!("NaN")
    } else if x > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

const PG_EPOCH: i64 = 946_684_800; // 2000-01-01T00:00:00Z

fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Value, String> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    let text = || {
        std::str::from_utf8(raw)
            .map(|s| json!(s))
            .map_err(|_| "not UTF-8 text".to_string())
    };
    Ok(match *ty {
        Type::BOOL => json!(raw.first().is_some_and(|b| *b != 0)),
        Type::INT2 => json!(i16::from_be_bytes(be(raw, 0)?)),
        Type::INT4 => json!(i32::from_be_bytes(be(raw, 0)?)),
        Type::INT8 => json!(i64::from_be_bytes(be(raw, 0)?)),
        Type::OID => json!(u32::from_be_bytes(be(raw, 0)?)),
        Type::FLOAT4 => number(f32::from_be_bytes(be(raw, 0)?) as f64),
        Type::FLOAT8 => number(f64::from_be_bytes(be(raw, 0)?)),
        Type::NUMERIC => number(numeric(raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::CHAR => {
            text()?
        }
        Type::JSON => serde_json::from_slice(raw).map_err(|e| e.to_string())?,
        Type::JSONB => {
            serde_json::from_slice(raw.get(1..).unwrap_or_default()).map_err(|e| e.to_string())?
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(be(raw, 0)?);
            match us {
                i64::MAX => json!("infinity"),
                i64::MIN => json!("-infinity"),
                _ => json!(timestamp(us)?.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            }
        }
        Type::DATE => {
            let days = i32::from_be_bytes(be(raw, 0)?);
            match days {
                i32::MAX => json!("infinity"),
                i32::MIN => json!("-infinity"),
                _ => json!(timestamp(days as i64 * 86_400_000_000)?
                    .format("%Y-%m-%d")
                    .to_string()),
            }
        }
        Type::TIME => {
            let us = i64::from_be_bytes(be(raw, 0)?);
            let t = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                (us / 1_000_000) as u32,
                ((us % 1_000_000) * 1000) as u32,
            )
            .ok_or("time out of range")?;
            json!(t.to_string())
        }
        Type::INTERVAL => {
            let us = i64::from_be_bytes(be(raw, 0)?);
            let days = i32::from_be_bytes(be(raw, 8)?) as f64;
            let months = i32::from_be_bytes(be(raw, 12)?) as f64;
            number(us as f64 / 1e6 + days * 86_400.0 + months * 30.0 * 86_400.0)
        }
        Type::UUID => {
            let b: [u8; 16] = be(raw, 0)?;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            json!(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        _ if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" => text()?,
        _ => match ty.kind() {
            Kind::Domain(base) => decode(base, Some(raw))?,
            Kind::Array(elem) => array(elem, raw)?,
            _ => {
                return Err(format!(
                    "type {} cannot be read; cast it in the query (e.g. `col::text`)",
                    ty.name()
                ))
            }
        },
    })
}

/// A one-dimensional array (PostgreSQL's binary array format) as a JSON array.
fn array(elem: &Type, raw: &[u8]) -> Result<Value, String> {
    let ndim = i32::from_be_bytes(be(raw, 0)?);
    if ndim == 0 {
        return Ok(json!([]));
    }
    if ndim != 1 {
        return Err(format!(
            "{ndim}-dimensional arrays cannot be read; unnest them in the query"
        ));
    }
    let len = i32::from_be_bytes(be(raw, 12)?).max(0) as usize;
    let mut at = 20;
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let n = i32::from_be_bytes(be(raw, at)?);
        at += 4;
        if n < 0 {
            out.push(Value::Null);
            continue;
        }
        let bytes = raw
            .get(at..at + n as usize)
            .ok_or("truncated array element")?;
        out.push(decode(elem, Some(bytes))?);
        at += n as usize;
    }
    Ok(Value::Array(out))
}

fn timestamp(us_since_2000: i64) -> Result<Timestamp, String> {
    let s = PG_EPOCH + us_since_2000.div_euclid(1_000_000);
    let ns = (us_since_2000.rem_euclid(1_000_000) * 1000) as u32;
    chrono::DateTime::from_timestamp(s, ns).ok_or_else(|| "timestamp out of range".into())
}

/// PostgreSQL's binary `numeric`: base-10000 digits with a weight and a sign word.
fn numeric(raw: &[u8]) -> Result<f64, String> {
    let ndigits = i16::from_be_bytes(be(raw, 0)?) as usize;
    let weight = i16::from_be_bytes(be(raw, 2)?) as i32;
    let sign = u16::from_be_bytes(be(raw, 4)?);
    match sign {
        0xC000 => return Ok(f64::NAN),
        0xD000 => return Ok(f64::INFINITY),
        0xF000 => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let mut v = 0.0f64;
    for i in 0..ndigits {
        let d = i16::from_be_bytes(be(raw, 8 + 2 * i)?) as f64;
        v += d * 10_000f64.powi(weight - i as i32);
    }
    // Round away the binary noise of the base conversion at the value's own scale.
    let dscale = u16::from_be_bytes(be(raw, 6)?) as i32;
    if dscale <= 15 {
        let f = 10f64.powi(dscale);
        let r = (v * f).round() / f;
        if r.is_finite() {
            v = r;
        }
    }
    Ok(if sign == 0x4000 { -v } else { v })
}

/// `series: #{ value, label, time }` of a sql spec.
#[derive(Debug)]
struct SeriesOption {
    value: String,
    labels: Vec<String>,
    time: Option<String>,
}

impl SeriesOption {
    fn of(spec: &QuerySpec) -> Result<Option<SeriesOption>, String> {
        let Some(s) = spec.params.get("series") else {
            return Ok(None);
        };
        let m = s
            .as_object()
            .ok_or("series must be a map such as #{ value: \"n\", label: \"status\" }")?;
        for k in m.keys() {
            if !matches!(k.as_str(), "value" | "label" | "time") {
                return Err(format!(
                    "series: unknown key {k:?} (use value, label, time)"
                ));
            }
        }
        let value = m
            .get("value")
            .and_then(|v| v.as_str())
            .ok_or("series needs `value`: the numeric column")?
            .to_string();
        let labels = match m.get("label") {
            None | Some(Value::Null) => vec![],
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or("series.label must be a column name or an array of them")?,
            Some(_) => return Err("series.label must be a column name or an array of them".into()),
        };
        let time = m.get("time").and_then(|v| v.as_str()).map(String::from);
        Ok(Some(SeriesOption {
            value,
            labels,
            time,
        }))
    }

    fn series(
        &self,
        columns: &[String],
        rows: Vec<Row>,
        spec: &QuerySpec,
        at: Timestamp,
    ) -> Result<Vec<Series>, String> {
        for c in std::iter::once(&self.value)
            .chain(&self.labels)
            .chain(self.time.as_ref())
        {
            if !columns.contains(c) {
                return Err(format!(
                    "series: the query has no column {c:?} (it has {})",
                    columns.join(", ")
                ));
            }
        }
        let period = match spec.str("period") {
            Some(p) => parse_duration(p)
                .map_err(|e| format!("period: {e}"))?
                .num_seconds(),
            None => 0,
        };
        let missing = missing_of(spec)?;
        let mut by_labels: BTreeMap<BTreeMap<String, String>, Vec<Point>> = BTreeMap::new();
        for row in rows {
            let labels: BTreeMap<String, String> = self
                .labels
                .iter()
                .map(|c| {
                    let v = match row.get(c) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    };
                    (c.clone(), v)
                })
                .collect();
            let entry = by_labels.entry(labels).or_default();
            let value = match row.get(&self.value) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.parse::<f64>().ok(),
                Some(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
                _ => None,
            };
            let Some(value) = value else { continue };
            let ts = match &self.time {
                None => at,
                Some(c) => match row.get(c) {
                    Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .or_else(|_| {
                            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                        })
                        .map_err(|_| format!("series.time: {s:?} is not a time"))?,
                    Some(Value::Number(n)) => {
                        let secs = n.as_f64().unwrap_or(0.0);
                        chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64)
                            .ok_or_else(|| format!("series.time: {secs} is out of range"))?
                    }
                    _ => continue,
                },
            };
            entry.push(Point { ts, value });
        }
        Ok(by_labels
            .into_iter()
            .map(|(labels, mut points)| {
                points.sort_by_key(|p| p.ts);
                Series {
                    name: self.value.clone(),
                    labels,
                    period_secs: period,
                    points,
                    end: None,
                    missing,
                }
            })
            .collect())
    }
}

#[async_trait]
impl Source for PostgresSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let n = self.opts.max_connections.max(1);
        let futs: Vec<_> = specs.iter().map(|s| self.answer(s, ctx)).collect();
        bounded(futs, n).await
    }

    /// Queries sent to the server.
    fn requests(&self) -> u64 {
        self.queries.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(ndigits.to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_decode_with_their_scale() {
        // 12345.67 = [1, 2345, 6700], weight 1
        assert_eq!(
            numeric(&numeric_bytes(3, 1, 0, 2, &[1, 2345, 6700])).unwrap(),
            12345.67
        );
        // -0.05 = [500], weight -1
        assert_eq!(
            numeric(&numeric_bytes(1, -1, 0x4000, 2, &[500])).unwrap(),
            -0.05
        );
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, 0, &[])).unwrap(), 0.0);
        assert!(numeric(&numeric_bytes(0, 0, 0xC000, 0, &[]))
            .unwrap()
            .is_nan());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let v = decode(&Type::TIMESTAMPTZ, Some(&0i64.to_be_bytes())).unwrap();
        assert_eq!(v, json!("2000-01-01T00:00:00Z"));
        let v = decode(&Type::DATE, Some(&1i32.to_be_bytes())).unwrap();
        assert_eq!(v, json!("2000-01-02"));
        assert_eq!(decode(&Type::INT4, None).unwrap(), Value::Null);
    }

    #[test]
    fn series_option_groups_rows_by_label() {
        let spec = QuerySpec::new(
            "sql",
            json!({"query": "q", "series": {"value": "n", "label": "status"}}),
        );
        let opt = SeriesOption::of(&spec).unwrap().unwrap();
        let rows = vec![
            Row::from([("status".into(), json!("failed")), ("n".into(), json!(3))]),
            Row::from([
                ("status".into(), json!("completed")),
                ("n".into(), json!(7.5)),
            ]),
        ];
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = opt
            .series(&["status".into(), "n".into()], rows, &spec, at)
            .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].labels["status"], "completed");
        assert_eq!(s[0].points[0].value, 7.5);
        assert_eq!(s[1].name, "n");
        let bad = QuerySpec::new(
            "sql",
            json!({"query": "q", "series": {"value": "x", "lable": "y"}}),
        );
        assert!(SeriesOption::of(&bad).is_err());
    }
}
