//! The `[sources.<kind>]` table of a `type = "logs"` source: `LogsConfig`, wrapped by
//! `config::SourceConfig::Logs`; `assembly` turns it into the source's options.

use serde::Deserialize;

/// CloudWatch Logs (`[sources.logs_insights]` and/or `[sources.filter_logs]`): Logs Insights
/// queries and `FilterLogEvents`; region, endpoint and timeouts come from the `[aws]` table.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Logs Insights queries running at once from this process (default 30, the per-account
    /// limit; set it lower when other tools share the account).
    pub max_concurrent_queries: Option<usize>,
    /// `FilterLogEvents` calls per second (default 5, the per-account limit).
    pub filter_calls_per_second: Option<f64>,
    /// Attempts per API request, the first included (default 4).
    pub max_attempts: Option<u32>,
    /// How long the log groups found for a `log_group_prefix` are reused (default `"10m"`).
    pub discovery_ttl: Option<String>,
}
