//! Assembly: from a checked config to a running engine (store, sources, receivers, rule
//! instances). The only module that knows every component; it sits above them all and below the
//! entry points (daemon, lambda, cli) that start an engine. A new source adds one arm here; a
//! receiver is built through its kind (`crate::notify::ReceiverKind`) and is not named here.

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ReceiverConfig, SourceConfig, StoreConfig};
use crate::error::{Error, Result};
use crate::notify::{console::ConsoleNotifier, BuildContext, Notifier};
use crate::rule::Limits;
use crate::source::{FixtureData, FixtureSource, Source};
use crate::store::{DynamoStore, SqliteStore, Store};
use crate::{InstanceSpec, Tripline};
use std::sync::Arc;

/// Choices the caller makes beyond the config file.
pub struct WireOptions {
    pub clock: Arc<dyn Clock>,
    /// Keep going when a rule file is broken (reported as a rule-error alert) — `eval` and the
    /// daemon; `check` wants every problem as an error instead.
    pub tolerate_rule_errors: bool,
    /// Overrides `[store]` (e.g. `--store` on the command line).
    pub store: Option<Arc<dyn Store>>,
    /// A receiver whose secret's environment variable is unset becomes a stand-in that prints to
    /// the console (`check`, which runs in CI without the secrets; it reports `missing_secrets`).
    /// Otherwise that is an error: a daemon must not start unable to page anyone.
    pub allow_missing_secrets: bool,
}

impl Default for WireOptions {
    fn default() -> Self {
        WireOptions {
            clock: Arc::new(SystemClock),
            tolerate_rule_errors: true,
            store: None,
            allow_missing_secrets: false,
        }
    }
}

pub fn build_store(cfg: &Config) -> Result<Arc<dyn Store>> {
    Ok(match &cfg.raw.store {
        StoreConfig::Sqlite(crate::store::SqliteConfig { path }) => {
            Arc::new(SqliteStore::open(cfg.resolve(path))?)
        }
        StoreConfig::Memory(_) => Arc::new(SqliteStore::in_memory()?),
        StoreConfig::Dynamodb(crate::store::DynamodbConfig {
            table,
            create_table,
        }) => Arc::new(
            DynamoStore::new(&aws_config(cfg), table, *create_table)
                .map_err(|e| aws_error(cfg, e.to_string()))?,
        ),
    })
}

/// An error about `[sources.<kind>]`, located at its table header when it can be found.
fn source_error(cfg: &Config, kind: &str, message: impl Into<String>) -> Error {
    let at = cfg
        .text
        .find(&format!("[sources.{kind}]"))
        .map(|o| o..o + 1)
        .unwrap_or(0..0);
    cfg.error_at(at, message)
}

/// `[sources.<kind>]` of a network source must be the kind that source answers.
fn expect_kind(cfg: &Config, kind: &str, wanted: &str, ty: &str) -> Result<()> {
    if kind == wanted {
        Ok(())
    } else {
        Err(source_error(
            cfg,
            kind,
            format!("a {ty} source answers `{wanted}` queries: configure it as [sources.{wanted}]"),
        ))
    }
}

fn opt_duration(
    cfg: &Config,
    kind: &str,
    name: &str,
    v: &Option<String>,
    default: std::time::Duration,
) -> Result<std::time::Duration> {
    match v {
        None => Ok(default),
        Some(s) => crate::clock::parse_duration(s)
            .and_then(|d| d.to_std().map_err(|_| "must not be negative".to_string()))
            .map_err(|e| source_error(cfg, kind, format!("{name}: {e}"))),
    }
}

pub fn build_source(cfg: &Config, kind: &str, sc: &SourceConfig) -> Result<Arc<dyn Source>> {
    use crate::source::{
        HttpProbeOptions, HttpProbeSource, PostgresOptions, PostgresSource, PrometheusOptions,
        PrometheusSource, RedisOptions, RedisSource,
    };
    Ok(match sc {
        SourceConfig::Prometheus(crate::source::prometheus::PrometheusConfig {
            url,
            timeout,
            headers_env,
        }) => {
            expect_kind(cfg, kind, "prometheus", "prometheus")?;
            let mut o = PrometheusOptions::new(url.clone());
            o.timeout = opt_duration(cfg, kind, "timeout", timeout, o.timeout)?;
            o.headers_env = headers_env.clone();
            Arc::new(PrometheusSource::new(o).map_err(|e| source_error(cfg, kind, e))?)
        }
        SourceConfig::Http(crate::source::http::HttpProbeConfig {
            timeout,
            headers_env,
        }) => {
            expect_kind(cfg, kind, "http_probe", "http")?;
            let mut o = HttpProbeOptions::default();
            o.timeout = opt_duration(cfg, kind, "timeout", timeout, o.timeout)?;
            o.headers_env = headers_env.clone();
            Arc::new(HttpProbeSource::new(o).map_err(|e| source_error(cfg, kind, e))?)
        }
        SourceConfig::Postgres(crate::source::postgres::PostgresConfig {
            dsn_env,
            statement_timeout,
            connect_timeout,
            max_connections,
            ca_file,
        }) => {
            expect_kind(cfg, kind, "sql", "postgres")?;
            let mut o = PostgresOptions::new(dsn_env.clone());
            o.statement_timeout = opt_duration(
                cfg,
                kind,
                "statement_timeout",
                statement_timeout,
                o.statement_timeout,
            )?;
            o.connect_timeout = opt_duration(
                cfg,
                kind,
                "connect_timeout",
                connect_timeout,
                o.connect_timeout,
            )?;
            if let Some(n) = max_connections {
                o.max_connections = (*n).max(1);
            }
            o.ca_file = ca_file.as_ref().map(|f| cfg.resolve(f));
            Arc::new(PostgresSource::new(o).map_err(|e| source_error(cfg, kind, e))?)
        }
        SourceConfig::Redis(crate::source::redis::RedisConfig {
            url,
            url_env,
            timeout,
        }) => {
            expect_kind(cfg, kind, "redis", "redis")?;
            let o = RedisOptions {
                url: url.clone(),
                url_env: url_env.clone(),
                timeout: opt_duration(
                    cfg,
                    kind,
                    "timeout",
                    timeout,
                    std::time::Duration::from_secs(5),
                )?,
            };
            Arc::new(RedisSource::new(o).map_err(|e| source_error(cfg, kind, e))?)
        }
        SourceConfig::Fixture(crate::source::fixture::FixtureConfig { files }) => {
            let mut data = FixtureData::default();
            for f in files {
                let path = cfg.resolve(f);
                // A file that cannot be read is the config's problem: located at its name there.
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    let table = cfg.text.find(&format!("[sources.{kind}]")).unwrap_or(0);
                    let at = cfg.text[table..]
                        .find(&format!("\"{f}\""))
                        .map(|o| table + o..table + o + 1)
                        .unwrap_or(0..0);
                    cfg.error_at(at, format!("fixture file {}: {e}", path.display()))
                })?;
                data.merge(FixtureData::parse(&path, &text)?);
            }
            Arc::new(FixtureSource::new(data))
        }
        SourceConfig::Cloudwatch(crate::source::cloudwatch::CloudWatchConfig {
            max_attempts,
            discovery_ttl,
            max_concurrent_calls,
        }) => {
            expect_kind(cfg, kind, "cloudwatch", "cloudwatch")?;
            let d = crate::source::cloudwatch::CloudWatchSettings::default();
            let settings = crate::source::cloudwatch::CloudWatchSettings {
                max_attempts: max_attempts.unwrap_or(d.max_attempts),
                discovery_ttl: std_duration(cfg, kind, discovery_ttl.as_deref(), d.discovery_ttl)?,
                max_concurrent_calls: max_concurrent_calls.unwrap_or(d.max_concurrent_calls),
                limits: d.limits,
            };
            let src = crate::source::cloudwatch::CloudWatchSource::new(&aws_config(cfg), settings)
                .map_err(|m| aws_or_source_error(cfg, kind, m))?;
            Arc::new(src)
        }
        SourceConfig::Logs(crate::source::logs::LogsConfig {
            max_concurrent_queries,
            filter_calls_per_second,
            max_attempts,
            discovery_ttl,
        }) => {
            if kind != "logs_insights" && kind != "filter_logs" {
                return Err(source_error(cfg, kind, "a logs source answers `logs_insights` and `filter_logs` queries: configure it as [sources.logs_insights] or [sources.filter_logs]"));
            }
            let d = crate::source::logs::LogsSettings::default();
            let settings = crate::source::logs::LogsSettings {
                max_concurrent_queries: max_concurrent_queries.unwrap_or(d.max_concurrent_queries),
                filter_calls_per_second: filter_calls_per_second
                    .unwrap_or(d.filter_calls_per_second),
                max_attempts: max_attempts.unwrap_or(d.max_attempts),
                discovery_ttl: std_duration(cfg, kind, discovery_ttl.as_deref(), d.discovery_ttl)?,
                first_poll: d.first_poll,
            };
            let src = crate::source::logs::LogsSource::new(&aws_config(cfg), settings)
                .map_err(|m| aws_or_source_error(cfg, kind, m))?;
            Arc::new(src)
        }
    })
}

/// A problem with the `[aws]` table is located there, any other at the source's table.
fn aws_or_source_error(cfg: &Config, kind: &str, message: String) -> Error {
    if message.starts_with("aws") {
        aws_error(cfg, message)
    } else {
        source_error(cfg, kind, message)
    }
}

/// The `[aws]` table, or defaults (everything from the default chain) when it is absent.
fn aws_config(cfg: &Config) -> crate::aws::AwsConfig {
    cfg.raw
        .aws
        .as_ref()
        .map(|a| a.get_ref().clone())
        .unwrap_or_default()
}

fn aws_error(cfg: &Config, message: String) -> Error {
    match &cfg.raw.aws {
        Some(a) => cfg.error_at(a.span(), message),
        None => Error::Config(message),
    }
}

// A `toml::Spanned` cannot be read inside the internally tagged `SourceConfig` (serde buffers
// the table first), so a source's durations are plain strings, located at their table.
fn std_duration(
    cfg: &Config,
    kind: &str,
    d: Option<&str>,
    default: std::time::Duration,
) -> Result<std::time::Duration> {
    match d {
        None => Ok(default),
        Some(s) => crate::clock::parse_duration(s)
            .map(|d| d.to_std().unwrap_or(default))
            .map_err(|e| source_error(cfg, kind, format!("discovery_ttl: {e}"))),
    }
}

/// Whether the config calls AWS: an `[aws]` table, a DynamoDB store, or a CloudWatch/Logs source
/// or SNS receiver.
pub fn uses_aws(cfg: &Config) -> bool {
    cfg.raw.aws.is_some()
        || matches!(cfg.raw.store, StoreConfig::Dynamodb(_))
        || cfg.raw.sources.values().any(|s| s.get_ref().uses_aws())
        || cfg
            .raw
            .receivers
            .iter()
            .any(|r| r.get_ref().kind().uses_aws())
}

/// What `tripline check` adds for configs that call AWS: the region and credentials must resolve
/// through the default chain now, rather than every query failing at the first cycle. Calls no
/// AWS service.
pub async fn check_aws(cfg: &Config) -> Result<()> {
    if !uses_aws(cfg) {
        return Ok(());
    }
    aws_config(cfg).check().await.map_err(|m| aws_error(cfg, m))
}

fn unset_secrets(rc: &ReceiverConfig) -> Vec<&str> {
    rc.secret_env_vars()
        .into_iter()
        .filter(|v| std::env::var(v).map_or(true, |x| x.trim().is_empty()))
        .collect()
}

/// Receivers whose secrets' environment variables are not set here, located at their tables:
/// `tripline.toml:12:1: receiver "slack": environment variable SLACK_WEBHOOK_URL is not set`.
pub fn missing_secrets(cfg: &Config) -> Vec<String> {
    cfg.raw
        .receivers
        .iter()
        .flat_map(|rc| {
            unset_secrets(rc.get_ref()).into_iter().map(|var| {
                cfg.error_at(
                    rc.span(),
                    format!(
                        "receiver {:?}: environment variable {var} is not set",
                        rc.get_ref().name()
                    ),
                )
                .to_string()
            })
        })
        .collect()
}

/// Builds a `[[receiver]]` through its kind; an error names the receiver (never a secret).
pub fn build_notifier(cfg: &Config, rc: &ReceiverConfig) -> Result<Arc<dyn Notifier>> {
    let aws = aws_config(cfg);
    rc.kind()
        .build(&BuildContext { aws: &aws })
        .map_err(|e| Error::Config(format!("receiver {:?}: {e}", rc.name())))
}

/// Instance specs of the config's `[[rule]]` tables, with names defaulted and locations attached,
/// and the problems of the tables that could not become one.
pub fn instance_specs(cfg: &Config) -> (Vec<InstanceSpec>, Vec<Error>) {
    let mut uses: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for r in &cfg.raw.rules {
        *uses.entry(r.get_ref().use_.get_ref().as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    // Every instance carries its location: a line index keeps that linear in the file's size
    // (`line_col` from the start for each of 1,000 tables was a third of `eval`'s start-up).
    let lines = crate::config::LineIndex::new(&cfg.text);
    for r in &cfg.raw.rules {
        if !r.get_ref().enabled {
            continue;
        }
        let ri = r.get_ref();
        let at = |span: std::ops::Range<usize>| {
            let (line, col) = lines.line_col(&cfg.text, span.start);
            crate::error::Location {
                path: cfg.path.clone(),
                line,
                col,
            }
        };
        let use_ = ri.use_.get_ref().clone();
        let name = match &ri.name {
            Some(n) => n.get_ref().clone(),
            None if uses[use_.as_str()] == 1 => {
                use_.rsplit('/').next().unwrap_or(&use_).to_string()
            }
            None => {
                problems.push(cfg.error_at(r.span(), format!("rule {use_:?} is used more than once: give each of its [[rule]] tables a `name`")));
                continue;
            }
        };
        // `params` parsed as a table already (a non-table is a located parse error); a value
        // JSON cannot hold is reported where it was written.
        let params = match ri
            .params
            .get_ref()
            .iter()
            .map(|(k, v)| match serde_json::to_value(v.get_ref()) {
                Ok(j) => Ok((k.clone(), j)),
                Err(e) => Err(cfg.error_at(v.span(), format!("param `{k}`: {e}"))),
            })
            .collect::<std::result::Result<serde_json::Map<_, _>, _>>()
        {
            Ok(m) => m,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let dur = |d: &Option<toml::Spanned<String>>| -> Result<Option<chrono::Duration>> {
            d.as_ref().map(|s| cfg.duration(s)).transpose()
        };
        let severity = match &ri.severity {
            Some(s) => match s.get_ref().parse() {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(cfg.error_at(s.span(), e));
                    continue;
                }
            },
            None => None,
        };
        if let Some(e) = &ri.every {
            if let Err(m) = crate::rule::parse_schedule(e.get_ref()) {
                problems.push(cfg.error_at(e.span(), m));
                continue;
            }
        }
        let (for_, keep) = match (dur(&ri.for_), dur(&ri.keep_firing_for)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                problems.push(e);
                continue;
            }
        };
        out.push(InstanceSpec {
            name,
            rule: use_,
            params,
            labels: ri.labels.clone(),
            every: ri.every.as_ref().map(|e| e.get_ref().clone()),
            for_,
            keep_firing_for: keep,
            severity,
            runbook: ri.runbook.clone(),
            exclude: ri.exclude.clone(),
            location: Some(at(ri.use_.span())),
            param_locations: ri
                .params
                .get_ref()
                .iter()
                .map(|(k, v)| (k.clone(), at(v.span())))
                .collect(),
        });
    }
    (out, problems)
}

/// Builds the engine a config describes. All problems found are returned together.
pub fn build(cfg: &Config, opts: WireOptions) -> Result<Tripline> {
    build_with_receivers(cfg, opts, vec![])
}

/// `build`, with receivers the host program implements itself (the Python and Node bindings'
/// callables) next to the config's `[[receiver]]`s; routes may name them.
pub fn build_with_receivers(
    cfg: &Config,
    opts: WireOptions,
    host: Vec<Arc<dyn Notifier>>,
) -> Result<Tripline> {
    let mut problems = Vec::new();
    let e = &cfg.raw.engine;
    let limits = Limits {
        max_operations: e.max_operations,
        max_alerts: e.max_alerts_per_instance,
        deadline: cfg
            .duration(&e.rule_deadline)
            .map(|d| d.to_std().unwrap_or_default())
            .unwrap_or_else(|err| {
                problems.push(err);
                Limits::default().deadline
            }),
        ..Limits::default()
    };
    let fetch_timeout = cfg
        .duration(&e.fetch_timeout)
        .map_err(|err| problems.push(err))
        .ok();
    let retention = cfg
        .duration(&e.resolved_retention)
        .map_err(|err| problems.push(err))
        .ok();
    let mut b = Tripline::builder()
        .limits(limits)
        .stock_rules(cfg.raw.stock_rules)
        .clock(opts.clock)
        .tolerate_rule_errors(opts.tolerate_rule_errors);
    for d in cfg.rules_dirs() {
        b = b.rules_dir(d);
    }
    for (kind, sc) in &cfg.raw.sources {
        match build_source(cfg, kind, sc.get_ref()) {
            Ok(s) => b = b.source(kind.clone(), s),
            Err(err) => problems.push(err),
        }
    }
    let mut names = std::collections::HashSet::new();
    for rc in &cfg.raw.receivers {
        if !names.insert(rc.get_ref().name().to_string()) {
            problems.push(cfg.error_at(
                rc.span(),
                format!("receiver name {:?} is used twice", rc.get_ref().name()),
            ));
        }
        let unset = !unset_secrets(rc.get_ref()).is_empty();
        let built = if unset && opts.allow_missing_secrets {
            Ok(Arc::new(ConsoleNotifier::stdout(
                rc.get_ref().name(),
                Default::default(),
            )) as Arc<dyn Notifier>)
        } else {
            build_notifier(cfg, rc.get_ref())
        };
        match built {
            Ok(n) => b = b.notifier(n),
            // Point at the receiver's table.
            Err(Error::Config(m)) => problems.push(cfg.error_at(rc.span(), m)),
            Err(err) => problems.push(err),
        }
    }
    let host_names: Vec<String> = host.iter().map(|n| n.name().to_string()).collect();
    for n in host {
        if !names.insert(n.name().to_string()) {
            problems.push(Error::Config(format!(
                "receiver name {:?} is used twice",
                n.name()
            )));
        }
        b = b.notifier(n);
    }
    let (specs, instance_problems) = instance_specs(cfg);
    problems.extend(instance_problems);
    for s in specs {
        b = b.instance(s);
    }
    match crate::pipeline::PipelineConfig::from_config_with_receivers(cfg, &host_names) {
        Ok(p) => b = b.pipeline(p),
        Err(err) => problems.extend(err.flatten()),
    }
    match retry_policy(cfg) {
        Ok(p) => b = b.retry_policy(p),
        Err(err) => problems.extend(err.flatten()),
    }
    if let Err(err) = deliver_budget(cfg) {
        problems.extend(err.flatten());
    }
    if let Some(d) = fetch_timeout {
        b = b.fetch_timeout(d.to_std().unwrap_or_default());
    }
    if let Some(d) = retention {
        b = b.resolved_retention(d);
    }
    let store = match opts.store {
        Some(s) => Some(s),
        None => build_store(cfg).map_err(|err| problems.push(err)).ok(),
    };
    if let Some(s) = store {
        b = b.store(s);
    }
    match b.build() {
        Ok(t) if problems.is_empty() => Ok(t),
        Ok(_) => Err(Error::Many(problems)),
        Err(err) => {
            problems.extend(err.flatten());
            Err(Error::Many(problems))
        }
    }
}

/// The outbox's retry policy from `[notify]`.
pub fn retry_policy(cfg: &Config) -> Result<crate::notify::outbox::RetryPolicy> {
    let n = &cfg.raw.notify;
    Ok(crate::notify::outbox::RetryPolicy {
        max_attempts: n.max_attempts.map(|m| m.max(1)),
        backoff: cfg.duration(&n.backoff)?,
        max_backoff: cfg.duration(&n.max_backoff)?,
        max_age: cfg.duration(&n.max_age)?,
        held_back_after: cfg.duration(&n.held_back_after)?,
    })
}

/// `[notify] deliver_budget`: how long a one-shot run goes on delivering after its cycle.
pub fn deliver_budget(cfg: &Config) -> Result<std::time::Duration> {
    let d = cfg.duration(&cfg.raw.notify.deliver_budget)?;
    Ok(d.to_std().unwrap_or_default())
}
