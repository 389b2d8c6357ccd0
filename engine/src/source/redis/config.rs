//! The `[sources.<kind>]` table of a `type = "redis"` source: `RedisConfig`, wrapped by
//! `config::SourceConfig::Redis`; `assembly` turns it into the source's options.

use serde::Deserialize;

/// Redis counters and BullMQ queue counts; answers `redis` queries (`[sources.redis]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`; give this or `url_env`.
    pub url: Option<String>,
    /// Name of an environment variable holding the URL (use it when the URL has a password).
    pub url_env: Option<String>,
    /// Time allowed to connect and for each answer (default `5s`).
    pub timeout: Option<String>,
}
