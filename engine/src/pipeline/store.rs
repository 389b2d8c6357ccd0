//! The store the notification pipeline needs: silences, acks, group timers and the notification
//! log, read and written around one flush. Implemented in `crate::store`.

use super::escalate::Ack;
use super::silence::Silence;
use super::{Flush, FlushCommit, NotifyState, PlanFn};
use crate::alert::AlertStore;
use crate::clock::Timestamp;
use crate::error::Result;
use async_trait::async_trait;

#[async_trait]
pub trait PipelineStore: AlertStore {
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
}
