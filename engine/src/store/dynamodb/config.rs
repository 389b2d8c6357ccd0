//! The `[store]` table of the DynamoDB store (`type = "dynamodb"`), wrapped by
//! `config::StoreConfig::Dynamodb`.

use serde::Deserialize;

/// One DynamoDB table shared by every replica (and by the Lambda entry); region, endpoint and
/// credentials come from the `[aws]` table. See docs/deploy.md.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamodbConfig {
    /// The table's name.
    pub table: String,
    /// Create the table (on-demand billing, keys `pk`/`sk`) on first use if it is missing.
    #[serde(default)]
    pub create_table: bool,
}
