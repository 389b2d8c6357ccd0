//! The `[sources.<kind>]` table of a `type = "prometheus"` source: `PrometheusConfig`, wrapped by
//! `config::SourceConfig::Prometheus`; `assembly` turns it into the source's options.

use serde::Deserialize;
use std::collections::BTreeMap;

/// PromQL over Prometheus's HTTP API; answers `prometheus` queries (`[sources.prometheus]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:9090` (a path prefix is kept).
    pub url: String,
    /// Budget of one query, also sent to Prometheus as its `timeout` (default `10s`).
    pub timeout: Option<String>,
    /// Headers whose values are read from environment variables: header name → variable
    /// name, e.g. `{ Authorization = "PROMETHEUS_AUTH" }`.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
}
