//! Durable state: alert states now; the notification log, outbox, silences and escalation
//! progress join this trait as the pipeline grows. SQLite is the embedded default; a DynamoDB
//! implementation serves Lambda and replicas.

pub mod dynamodb;
mod notify_tables;
mod sqlite;

pub use dynamodb::DynamoStore;
pub use sqlite::SqliteStore;

use crate::alert::Alert;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::notify::outbox::OutboxEntry;
use crate::pipeline::escalate::Ack;
use crate::pipeline::silence::Silence;
use crate::pipeline::{Flush, FlushCommit, NotifyState, PlanFn};
use async_trait::async_trait;

#[async_trait]
pub trait Store: Send + Sync {
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

    /// Deletes resolved alerts that ended before `before`.
    async fn prune_resolved(&self, before: Timestamp) -> Result<usize>;

    /// Small named values (last evaluation of an instance, schema marks, leases).
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;

    // The notification pipeline's state (see `crate::pipeline`).

    /// Adds (or replaces, by id) a silence.
    async fn add_silence(&self, s: &Silence) -> Result<()>;
    /// Every silence, active, pending or expired.
    async fn list_silences(&self) -> Result<Vec<Silence>>;
    /// Ends a silence at `at` (if it ends later); false when there is no such silence.
    async fn expire_silence(&self, id: &str, at: Timestamp) -> Result<bool>;
    /// Records an acknowledgement, replacing an earlier one for the same alert.
    async fn ack(&self, ack: &Ack) -> Result<()>;
    /// Silences, acks, group timers and the notification log.
    async fn load_notify_state(&self) -> Result<NotifyState>;
    /// Writes one flush atomically: notifications into the outbox, nflog, timers, marks.
    async fn commit_flush(&self, commit: &FlushCommit) -> Result<()>;
    /// Reads the alerts and the pipeline's state, calls `plan` and writes its commit, all in one
    /// transaction that excludes other writers (other processes on the same store included).
    async fn flush_atomically(&self, plan: &PlanFn) -> Result<Flush>;
    /// Pending outbox entries due at `at`, oldest first.
    async fn outbox_due(&self, at: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>>;
    /// Every pending entry, due or not, oldest first: a delivery pass needs the ones not due yet
    /// too, to keep a group's entries in order.
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut v = self.outbox_entries().await?;
        v.retain(|e| e.state == crate::notify::outbox::OutboxState::Pending);
        v.truncate(limit);
        Ok(v)
    }
    /// Every outbox entry (delivered and dead ones until pruned), oldest first.
    async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>>;
    /// How many entries are pending (the daemon's `tripline_outbox_depth`).
    async fn outbox_pending_count(&self) -> Result<usize> {
        Ok(self
            .outbox_entries()
            .await?
            .iter()
            .filter(|e| e.state == crate::notify::outbox::OutboxState::Pending)
            .count())
    }
    /// When the earliest pending entry is due, if any is pending.
    async fn outbox_next_due(&self) -> Result<Option<Timestamp>>;
    /// Writes an entry's new state (delivered, retry, dead letter).
    async fn outbox_update(&self, entry: &OutboxEntry) -> Result<()>;
    /// Takes a pending entry due at `at` for sending until `until`; false if another process
    /// took it first.
    async fn outbox_claim(&self, id: &str, at: Timestamp, until: Timestamp) -> Result<bool>;
    /// Holds every pending entry of a receiver until `until` (after a 429).
    async fn outbox_defer(&self, receiver: &str, until: Timestamp) -> Result<()>;
    /// Deletes delivered and dead entries last touched before `before`.
    async fn prune_outbox(&self, before: Timestamp) -> Result<usize>;
}
