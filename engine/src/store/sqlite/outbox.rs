//! The outbox table in the SQLite store: one row per notification to deliver, its state and next
//! attempt as columns (so `outbox_due` is an index scan) beside the JSON entry: the SQLite store's
//! `OutboxStore`.

use super::{from_json, ms, to_json, SqliteStore};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::notify::outbox::{OutboxEntry, OutboxState, OutboxStore};
use async_trait::async_trait;
use rusqlite::params;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    receiver        TEXT NOT NULL,
    state           TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt_at);
";

impl SqliteStore {
    /// Takes a due entry for sending: false when another process took it first. The lease
    /// (`until`) lapses if this process dies mid-send, so the entry is retried, not lost.
    pub(super) fn outbox_claim_sync(
        &self,
        id: &str,
        at: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        self.tables(|c| {
            let n = c.execute(
                "UPDATE outbox SET next_attempt_at = ?3 WHERE id = ?1 AND state = 'pending' AND next_attempt_at <= ?2",
                params![id, ms(at), ms(until)],
            )?;
            Ok(n == 1)
        })
    }

    fn outbox_query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<OutboxEntry>> {
        self.tables(|c| {
            let mut st = c.prepare_cached(sql)?;
            let rows = st.query_map(p, |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|row| {
                let (body, next) = row?;
                let mut e: OutboxEntry = from_json(body)?;
                // The column is authoritative: `outbox_defer` moves it without rewriting bodies.
                if let Some(t) = chrono::DateTime::from_timestamp_millis(next) {
                    e.next_attempt_at = t;
                }
                Ok(e)
            })
            .collect()
        })
    }

    pub(super) fn outbox_due_sync(&self, at: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.outbox_query(
            "SELECT body, next_attempt_at FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY seq LIMIT ?2",
            params![ms(at), limit as i64],
        )
    }

    pub(super) fn outbox_pending_sync(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.outbox_query(
            "SELECT body, next_attempt_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?1",
            params![limit as i64],
        )
    }

    pub(super) fn outbox_entries_sync(&self) -> Result<Vec<OutboxEntry>> {
        self.outbox_query("SELECT body, next_attempt_at FROM outbox ORDER BY seq", [])
    }

    pub(super) fn outbox_pending_count_sync(&self) -> Result<usize> {
        self.tables(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as usize)
    }

    pub(super) fn outbox_next_due_sync(&self) -> Result<Option<Timestamp>> {
        let next: Option<i64> = self.tables(|c| {
            c.query_row(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
        })?;
        Ok(next.and_then(chrono::DateTime::from_timestamp_millis))
    }

    pub(super) fn outbox_update_sync(&self, e: &OutboxEntry) -> Result<()> {
        self.tables(|c| {
            c.execute(
                "UPDATE outbox SET state = ?2, next_attempt_at = ?3, body = ?4 WHERE id = ?1",
                params![
                    e.notification.id,
                    e.state.as_str(),
                    ms(e.next_attempt_at),
                    to_json(e)?
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn outbox_defer_sync(&self, receiver: &str, until: Timestamp) -> Result<()> {
        self.tables(|c| {
            c.execute(
                "UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?2) WHERE receiver = ?1 AND state = 'pending'",
                params![receiver, ms(until)],
            )?;
            Ok(())
        })
    }

    pub(super) fn prune_outbox_sync(&self, before: Timestamp) -> Result<usize> {
        let done = [OutboxState::Delivered.as_str(), OutboxState::Dead.as_str()];
        self.tables(|c| {
            c.prepare_cached("DELETE FROM outbox WHERE state IN (?1, ?2) AND next_attempt_at < ?3")?
                .execute(params![done[0], done[1], ms(before)])
        })
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn outbox_claim(&self, id: &str, at: Timestamp, until: Timestamp) -> Result<bool> {
        self.outbox_claim_sync(id, at, until)
    }

    async fn outbox_due(&self, at: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.outbox_due_sync(at, limit)
    }

    async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>> {
        self.outbox_entries_sync()
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.outbox_pending_sync(limit)
    }

    async fn outbox_pending_count(&self) -> Result<usize> {
        self.outbox_pending_count_sync()
    }

    async fn outbox_next_due(&self) -> Result<Option<Timestamp>> {
        self.outbox_next_due_sync()
    }

    async fn outbox_update(&self, entry: &OutboxEntry) -> Result<()> {
        self.outbox_update_sync(entry)
    }

    async fn outbox_defer(&self, receiver: &str, until: Timestamp) -> Result<()> {
        self.outbox_defer_sync(receiver, until)
    }

    async fn prune_outbox(&self, before: Timestamp) -> Result<usize> {
        self.prune_outbox_sync(before)
    }
}
