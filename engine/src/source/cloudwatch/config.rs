//! The `[sources.<kind>]` table of a `type = "cloudwatch"` source: `CloudWatchConfig`, wrapped by
//! `config::SourceConfig::Cloudwatch`; `assembly` turns it into the source's options.

use serde::Deserialize;

/// CloudWatch metrics through `GetMetricData` (`[sources.cloudwatch]`); region, endpoint and
/// timeouts come from the `[aws]` table.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchConfig {
    /// Attempts per API request, the first included (default 4); retries back off
    /// exponentially with jitter and never pass `engine.fetch_timeout`.
    pub max_attempts: Option<u32>,
    /// How long the dimension values found for a globbed dimension (e.g.
    /// `FunctionName: "prd2011-prod1-*"`) are reused before `ListMetrics` is asked again
    /// (default `"10m"`).
    pub discovery_ttl: Option<String>,
    /// `GetMetricData` calls in flight at once (default 4; AWS allows 50/s per account).
    pub max_concurrent_calls: Option<usize>,
}
