//! The `[sources.<kind>]` table of a `type = "http"` source: `HttpProbeConfig`, wrapped by
//! `config::SourceConfig::Http`; `assembly` turns it into the source's options.

use serde::Deserialize;
use std::collections::BTreeMap;

/// HTTP health checks; answers `http_probe` queries (`[sources.http_probe]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeConfig {
    /// Default time a probe waits for an answer; a spec's `timeout` overrides it (default `10s`).
    pub timeout: Option<String>,
    /// Headers sent with every probe, values read from environment variables: header name →
    /// variable name.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
}
