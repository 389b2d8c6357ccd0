//! The store the alert stages need: stored alerts by fingerprint and instance, and small named
//! values (last evaluation of an instance, schema marks, leases). Implemented in `crate::store`.

use super::Alert;
use crate::clock::Timestamp;
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Every stored alert (pending, firing, and resolved ones not yet pruned).
    async fn load_alerts(&self) -> Result<Vec<Alert>>;

    /// The stored alerts with these fingerprints (those that exist), in fingerprint order. Stores
    /// that can look alerts up by key override this; the default reads them all.
    async fn load_alerts_by_fingerprint(&self, fingerprints: &[String]) -> Result<Vec<Alert>> {
        let want: std::collections::HashSet<&str> =
            fingerprints.iter().map(|f| f.as_str()).collect();
        let mut all = self.load_alerts().await?;
        all.retain(|a| want.contains(a.fingerprint.as_str()));
        Ok(all)
    }

    /// The stored alerts of one rule instance (`Alert::instance`), in fingerprint order.
    async fn load_alerts_of_instance(&self, instance: &str) -> Result<Vec<Alert>> {
        let mut all = self.load_alerts().await?;
        all.retain(|a| a.instance == instance);
        Ok(all)
    }

    /// Writes the given alerts (insert or replace by fingerprint) and deletes `deleted`, atomically.
    async fn save_alerts(&self, changed: &[Alert], deleted: &[String]) -> Result<()>;

    /// `save_alerts` for alerts the caller is done with: a store that keeps decoded alerts
    /// (SQLite's) takes them as they are instead of copying each. The default saves a borrow.
    async fn save_alerts_owned(&self, changed: Vec<Alert>, deleted: &[String]) -> Result<()> {
        self.save_alerts(&changed, deleted).await
    }

    /// Deletes resolved alerts that ended before `before`.
    async fn prune_resolved(&self, before: Timestamp) -> Result<usize>;

    /// Small named values (last evaluation of an instance, schema marks, leases).
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;
}
