//! The `[sources.<kind>]` table of a `type = "postgres"` source: `PostgresConfig`, wrapped by
//! `config::SourceConfig::Postgres`; `assembly` turns it into the source's options.

use serde::Deserialize;

/// PostgreSQL, every query in a read-only transaction; answers `sql` queries (`[sources.sql]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Name of the environment variable holding the connection string (`host=… user=…
    /// password=… dbname=…` or `postgres://…`), e.g. `"TRIPLINE_PG_DSN"`. Never logged.
    pub dsn_env: String,
    /// `statement_timeout` of each query; a spec's `timeout` overrides it (default `10s`).
    pub statement_timeout: Option<String>,
    /// Time allowed to open a connection (default `5s`).
    pub connect_timeout: Option<String>,
    /// Connections kept open and used at once (default 4).
    pub max_connections: Option<usize>,
    /// PEM file of certificate authorities to trust for TLS besides the public web roots
    /// (e.g. Amazon RDS's bundle), relative to this file. TLS itself follows the connection
    /// string's `sslmode` (`prefer` by default, or `require`, `disable`).
    pub ca_file: Option<String>,
}
