//! The TOML config file: parsed into raw, span-carrying structs (unknown keys are errors), then
//! checked as a whole against the loaded rules. Every problem is reported as `path:line:col:`.

mod notify;
mod pipeline;
mod receiver;

pub use notify::{
    EscalationConfig, EscalationStepConfig, InhibitConfig, NotifyConfig, RouteConfig,
    SilencesConfig, DEFAULT_REDACT,
};
pub use receiver::ReceiverConfig;

use crate::clock::parse_duration;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub use crate::error::line_col;

/// The byte offsets where the lines of a text start, for many `line_col` look-ups in one text.
pub struct LineIndex(Vec<usize>);

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }

    /// What `line_col(text, offset)` returns, for the `text` this index was built from.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.0.partition_point(|&s| s <= offset);
        let start = self.0[line - 1];
        let col = text.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directories of your own `*.rhai` rules, relative to this file.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub rules_dirs: Vec<Spanned<String>>,
    /// Whether the stock rules shipped with Tripline are available to `use` (default true).
    #[serde(default = "yes")]
    pub stock_rules: bool,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub store: StoreConfig,
    /// Sources by query kind: `[sources.cloudwatch]`, `[sources.prometheus]`, …
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SourceConfig>")]
    pub sources: BTreeMap<String, Spanned<SourceConfig>>,
    /// Rule instances.
    #[serde(default, rename = "rule")]
    #[schemars(with = "Vec<RuleInstanceConfig>")]
    pub rules: Vec<Spanned<RuleInstanceConfig>>,
    #[serde(default, rename = "receiver")]
    #[schemars(with = "Vec<ReceiverConfig>")]
    pub receivers: Vec<Spanned<ReceiverConfig>>,
    /// The routing tree's root; without it every alert goes to every receiver, ungrouped.
    #[schemars(with = "Option<RouteConfig>")]
    pub route: Option<Spanned<RouteConfig>>,
    #[serde(default)]
    #[schemars(with = "Vec<InhibitConfig>")]
    pub inhibit: Vec<Spanned<InhibitConfig>>,
    #[serde(default)]
    #[schemars(with = "Vec<EscalationConfig>")]
    pub escalation: Vec<Spanned<EscalationConfig>>,
    #[serde(default)]
    pub silences: SilencesConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    /// The daemon's HTTP server (`tripline run`).
    #[serde(default)]
    pub server: ServerConfig,
    /// Region, endpoint and timeouts for CloudWatch, CloudWatch Logs and SNS (see docs/aws.md).
    #[serde(default)]
    #[schemars(with = "Option<crate::aws::AwsConfig>")]
    pub aws: Option<Spanned<crate::aws::AwsConfig>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the HTTP server: health, metrics and the JSON API.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Environment variable holding the bearer token that mutating API calls must present.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Let read-only API calls through without the token.
    #[serde(default)]
    pub open_reads: bool,
    /// How long SIGTERM waits for the cycle in flight and the outbox to drain.
    #[serde(default = "default_shutdown_timeout")]
    #[schemars(with = "String")]
    pub shutdown_timeout: Spanned<String>,
    /// Evaluate every rule instance once at start (and after nothing else), instead of waiting
    /// for each one's first scheduled tick: a restart during an incident does not go blind for
    /// up to a schedule period.
    #[serde(default = "yes")]
    pub evaluate_on_start: bool,
}

fn default_listen() -> String {
    "127.0.0.1:9095".into()
}
fn default_token_env() -> String {
    "TRIPLINE_API_TOKEN".into()
}
fn default_shutdown_timeout() -> Spanned<String> {
    Spanned::new(0..0, "30s".into())
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            token_env: default_token_env(),
            open_reads: false,
            evaluate_on_start: true,
            shutdown_timeout: default_shutdown_timeout(),
        }
    }
}

/// A `[[rule]]` table's `params`, each value with the span where it was written.
pub type Params = BTreeMap<String, Spanned<toml::Value>>;

fn empty_params() -> Spanned<Params> {
    Spanned::new(0..0, Params::new())
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Wall-clock budget of one rule call (`query`, `evaluate`, `triage`), e.g. `"1s"`.
    #[serde(default = "default_rule_deadline")]
    #[schemars(with = "String")]
    pub rule_deadline: Spanned<String>,
    /// Operations one rule call may run.
    #[serde(default = "default_max_operations")]
    pub max_operations: u64,
    /// Alerts one rule instance may report in one cycle; beyond it the evaluation fails with a
    /// `RuleError` naming this cap, and the instance's alerts keep their state.
    #[serde(default = "default_max_alerts_per_instance")]
    pub max_alerts_per_instance: usize,
    /// Budget for fetching a cycle's data, retries included.
    #[serde(default = "default_fetch_timeout")]
    #[schemars(with = "String")]
    pub fetch_timeout: Spanned<String>,
    /// How long resolved alerts stay in the store.
    #[serde(default = "default_retention")]
    #[schemars(with = "String")]
    pub resolved_retention: Spanned<String>,
}

fn default_rule_deadline() -> Spanned<String> {
    Spanned::new(0..0, "1s".into())
}
fn default_max_operations() -> u64 {
    2_000_000
}
fn default_max_alerts_per_instance() -> usize {
    crate::rule::Limits::default().max_alerts
}
fn default_fetch_timeout() -> Spanned<String> {
    Spanned::new(0..0, "30s".into())
}
fn default_retention() -> Spanned<String> {
    Spanned::new(0..0, "24h".into())
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rule_deadline: default_rule_deadline(),
            max_operations: default_max_operations(),
            max_alerts_per_instance: default_max_alerts_per_instance(),
            fetch_timeout: default_fetch_timeout(),
            resolved_retention: default_retention(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StoreConfig {
    /// A SQLite file, created on first use.
    Sqlite(crate::store::SqliteConfig),
    /// Nothing persisted (tests, dry runs).
    Memory(crate::store::MemoryConfig),
    /// One DynamoDB table shared by every replica (and by the Lambda entry); region, endpoint
    /// and credentials come from the `[aws]` table. See docs/deploy.md.
    Dynamodb(crate::store::DynamodbConfig),
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Sqlite(Default::default())
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// Serve this kind's queries from fixture files (JSON or TOML), relative to the config.
    Fixture(crate::source::fixture::FixtureConfig),
    /// PromQL over Prometheus's HTTP API; answers `prometheus` queries (`[sources.prometheus]`).
    Prometheus(crate::source::prometheus::PrometheusConfig),
    /// HTTP health checks; answers `http_probe` queries (`[sources.http_probe]`).
    #[serde(alias = "http_probe")]
    Http(crate::source::http::HttpProbeConfig),
    /// PostgreSQL, every query in a read-only transaction; answers `sql` queries (`[sources.sql]`).
    Postgres(crate::source::postgres::PostgresConfig),
    /// Redis counters and BullMQ queue counts; answers `redis` queries (`[sources.redis]`).
    Redis(crate::source::redis::RedisConfig),
    /// CloudWatch metrics through `GetMetricData` (`[sources.cloudwatch]`); region, endpoint and
    /// timeouts come from the `[aws]` table.
    Cloudwatch(crate::source::cloudwatch::CloudWatchConfig),
    /// CloudWatch Logs (`[sources.logs_insights]` and/or `[sources.filter_logs]`): Logs Insights
    /// queries and `FilterLogEvents`; region, endpoint and timeouts come from the `[aws]` table.
    Logs(crate::source::logs::LogsConfig),
}

impl SourceConfig {
    /// Whether this source calls AWS (and so needs a region and credentials).
    pub fn uses_aws(&self) -> bool {
        matches!(self, SourceConfig::Cloudwatch(_) | SourceConfig::Logs(_))
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInstanceConfig {
    /// The instance's name, unique in the config; becomes the `alertname` label.
    /// Defaults to the rule id's last segment when that rule is used once.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// The rule id to instantiate (stock or your own).
    #[serde(rename = "use")]
    #[schemars(with = "String")]
    pub use_: Spanned<String>,
    /// Each value keeps its own span, for errors about it (`params = { threshold = "10" }`
    /// points at `"10"`), so the file is parsed once, not again to find them.
    #[serde(default = "empty_params")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub params: Spanned<Params>,
    /// Extra labels on every alert of this instance.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Overrides the rule's cron schedule.
    #[schemars(with = "Option<String>")]
    pub every: Option<Spanned<String>>,
    #[serde(rename = "for")]
    #[schemars(with = "Option<String>")]
    pub for_: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub keep_firing_for: Option<Spanned<String>>,
    /// Overrides the rule's default severity (alerts that set their own keep theirs).
    #[schemars(with = "Option<String>")]
    pub severity: Option<Spanned<String>>,
    pub runbook: Option<String>,
    /// A fleet instance's subjects to leave out: names or globs (`crate::fleet`).
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// The JSON Schema of `tripline.toml` (draft 2020-12), generated from the types the file is
/// read into, doc comments included: `tripline config-schema`.
pub fn json_schema() -> serde_json::Value {
    let mut s = schemars::schema_for!(RawConfig).to_value();
    if let Some(o) = s.as_object_mut() {
        o.insert("title".into(), "tripline.toml".into());
    }
    s
}

/// A parsed config with the text and path it came from, for locating problems.
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    pub path: PathBuf,
    pub text: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Config::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> Result<Config> {
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let (l, c) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
            Error::invalid(path, l, c, e.message().trim().to_string())
        })?;
        Ok(Config {
            raw,
            path: path.to_path_buf(),
            text,
        })
    }

    /// An error located at a span of this file.
    pub fn error_at(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> Error {
        let (l, c) = if span.is_empty() && span.start == 0 {
            (1, 1)
        } else {
            line_col(&self.text, span.start)
        };
        Error::invalid(&self.path, l, c, message)
    }

    /// An error at byte `offset` of the value of a string whose span is `span`: the position is
    /// mapped through the TOML string's quotes and escapes, so that `matchers = ["a==b"]` points
    /// at the second `=`. Falls back to the string's start when the mapping is unclear.
    pub fn error_in_string(
        &self,
        span: std::ops::Range<usize>,
        offset: usize,
        message: impl Into<String>,
    ) -> Error {
        let at = self
            .text
            .get(span.clone())
            .and_then(|raw| string_offset(raw, offset))
            .map(|o| span.start + o)
            .unwrap_or(span.start);
        self.error_at(at..at + 1, message)
    }

    /// Resolves a path written in the config relative to the config file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    pub fn duration(&self, s: &Spanned<String>) -> Result<chrono::Duration> {
        parse_duration(s.get_ref()).map_err(|e| self.error_at(s.span(), e))
    }

    pub fn rules_dirs(&self) -> Vec<PathBuf> {
        self.raw
            .rules_dirs
            .iter()
            .map(|d| self.resolve(d.get_ref()))
            .collect()
    }
}

/// The byte offset in `raw` (a TOML string as written, quotes included) of byte `offset` of its
/// value. Single-line basic and literal strings; `None` for others.
fn string_offset(raw: &str, offset: usize) -> Option<usize> {
    if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        return None;
    }
    if raw.starts_with('\'') {
        return (offset <= raw.len().saturating_sub(2)).then_some(1 + offset);
    }
    if !raw.starts_with('"') {
        return None;
    }
    // Walk the raw text, counting the decoded bytes each piece stands for.
    let b = raw.as_bytes();
    let (mut i, mut decoded) = (1, 0);
    while i < b.len() {
        if decoded >= offset {
            return Some(i);
        }
        match b[i] {
            b'"' => return None,
            b'\\' => {
                let (len, out) = match b.get(i + 1)? {
                    b'u' => (
                        6,
                        char::from_u32(u32::from_str_radix(raw.get(i + 2..i + 6)?, 16).ok()?)?
                            .len_utf8(),
                    ),
                    b'U' => (
                        10,
                        char::from_u32(u32::from_str_radix(raw.get(i + 2..i + 10)?, 16).ok()?)?
                            .len_utf8(),
                    ),
                    _ => (2, 1),
                };
                i += len;
                decoded += out;
            }
            _ => {
                i += 1;
                decoded += 1;
            }
        }
    }
    (decoded >= offset).then_some(i.min(raw.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_inside_strings_map_through_escapes() {
        assert_eq!(string_offset("\"a==b\"", 2), Some(3));
        assert_eq!(string_offset("'a==b'", 2), Some(3));
        assert_eq!(string_offset(r#""a=\"b\"x""#, 3), Some(5));
        assert_eq!(string_offset(r#""\u00e9=x""#, 2), Some(7));
        assert_eq!(string_offset("\"\"\"a\"\"\"", 0), None);
    }

    #[test]
    fn line_index_agrees_with_line_col() {
        let text = "a\nbé c\n\nlast";
        let idx = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            if text.is_char_boundary(offset.min(text.len())) {
                assert_eq!(
                    idx.line_col(text, offset),
                    line_col(text, offset),
                    "{offset}"
                );
            }
        }
    }

    #[test]
    fn unknown_keys_are_located() {
        let text =
            "stock_rules = true\n\n[[rule]]\nuse = \"aws/lambda-errors\"\nparms = {}\n".to_string();
        let e = Config::parse(Path::new("t.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:5:1: unknown field `parms`"), "{e}");
    }

    #[test]
    fn param_values_keep_their_spans() {
        let text = "[[rule]]\nuse = \"aws/lambda-errors\"\nparams = { function = \"f\", threshold = \"10\" }\n";
        let cfg = Config::parse(Path::new("t.toml"), text.to_string()).unwrap();
        let params = cfg.raw.rules[0].get_ref().params.get_ref();
        assert_eq!(&text[params["threshold"].span()], "\"10\"");
        assert_eq!(&text[params["function"].span()], "\"f\"");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
