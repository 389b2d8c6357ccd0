//! The `[store]` tables of the SQLite store: `type = "sqlite"` (a file) and `type = "memory"`
//! (a private in-memory database), wrapped by `config::StoreConfig`.

use serde::Deserialize;

/// A SQLite file, created on first use.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The file, relative to the config (default `tripline.db`).
    #[serde(default = "default_db")]
    pub path: String,
}

fn default_db() -> String {
    "tripline.db".into()
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig { path: default_db() }
    }
}

/// Nothing persisted (tests, dry runs).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {}
