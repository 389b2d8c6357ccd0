//! Durable state: alert states now; the notification log, outbox, silences and escalation
//! progress join this trait as the pipeline grows. SQLite is the embedded default; a DynamoDB
//! implementation serves Lambda and replicas.

mod sqlite;

pub use sqlite::SqliteStore;

use crate::alert::Alert;
use crate::clock::Timestamp;
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Store: Send + Sync {
    /// Every stored alert (pending, firing, and resolved ones not yet pruned).
    async fn load_alerts(&self) -> Result<Vec<Alert>>;

    /// Writes the given alerts (insert or replace by fingerprint) and deletes `deleted`, atomically.
    async fn save_alerts(&self, changed: &[Alert], deleted: &[String]) -> Result<()>;

    /// Deletes resolved alerts that ended before `before`.
    async fn prune_resolved(&self, before: Timestamp) -> Result<usize>;

    /// Small named values (last evaluation of an instance, schema marks, leases).
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;
}
