//! The store the outbox needs: its entries, claimed, deferred, updated and pruned, plus the
//! alerts store for the meta-alerts it raises. Implemented in `crate::store`.

use super::{OutboxEntry, OutboxState};
use crate::alert::AlertStore;
use crate::clock::Timestamp;
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait OutboxStore: AlertStore {
    /// Pending outbox entries due at `at`, oldest first.
    async fn outbox_due(&self, at: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>>;
    /// Every pending entry, due or not, oldest first: a delivery pass needs the ones not due yet
    /// too, to keep a group's entries in order.
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut v = self.outbox_entries().await?;
        v.retain(|e| e.state == OutboxState::Pending);
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
            .filter(|e| e.state == OutboxState::Pending)
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
