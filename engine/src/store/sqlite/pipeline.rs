//! The pipeline's tables in the SQLite store: silences, acknowledgements, group timers and the
//! notification log, and the flush that plans and commits in one transaction (its commit also
//! queues the outbox rows): the SQLite store's `PipelineStore`.

use super::{all, from_json, ms, to_json, SqliteStore};
use crate::alert::Alert;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::notify::outbox::OutboxEntry;
use crate::pipeline::escalate::Ack;
use crate::pipeline::silence::Silence;
use crate::pipeline::{Flush, FlushCommit, NotifyState, PipelineStore, PlanFn};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS silences (
    id      TEXT PRIMARY KEY,
    ends_at INTEGER NOT NULL,
    body    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    fingerprint TEXT PRIMARY KEY,
    body        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_groups (
    key  TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nflog (
    group_key TEXT NOT NULL,
    receiver  TEXT NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (group_key, receiver)
);
";

impl SqliteStore {
    pub(super) fn add_silence_sync(&self, s: &Silence) -> Result<()> {
        self.tables(|c| {
            c.execute(
                "INSERT INTO silences (id, ends_at, body) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET ends_at = ?2, body = ?3",
                params![s.id, ms(s.ends_at), to_json(s)?],
            )?;
            Ok(())
        })
    }

    pub(super) fn list_silences_sync(&self) -> Result<Vec<Silence>> {
        self.tables(|c| all(c, "SELECT body FROM silences ORDER BY ends_at, id"))
    }

    pub(super) fn expire_silence_sync(&self, id: &str, at: Timestamp) -> Result<bool> {
        self.tables(|c| {
            let tx = c.transaction()?;
            let body: Option<String> = tx
                .query_row("SELECT body FROM silences WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(body) = body else { return Ok(false) };
            let mut s: Silence = from_json(body)?;
            if s.ends_at > at {
                s.ends_at = at.max(s.starts_at);
                tx.execute(
                    "UPDATE silences SET ends_at = ?2, body = ?3 WHERE id = ?1",
                    params![id, ms(s.ends_at), to_json(&s)?],
                )?;
            }
            tx.commit()?;
            Ok(true)
        })
    }

    pub(super) fn ack_sync(&self, a: &Ack) -> Result<()> {
        self.tables(|c| {
            c.execute(
                "INSERT INTO acks (fingerprint, body) VALUES (?1, ?2) ON CONFLICT(fingerprint) DO UPDATE SET body = ?2",
                params![a.fingerprint, to_json(a)?],
            )?;
            Ok(())
        })
    }

    pub(super) fn load_notify_state_sync(&self) -> Result<NotifyState> {
        self.tables(|c| read_state(c))
    }

    pub(super) fn commit_flush_sync(&self, f: &FlushCommit) -> Result<()> {
        let mut g = self.lock()?;
        let super::Inner { conn, outbox, .. } = &mut *g;
        let tx = conn.transaction()?;
        let queued = write_commit(&tx, f)?;
        tx.commit()?;
        outbox.add(queued);
        Ok(())
    }

    /// Reads the alerts and the pipeline's state, plans and writes the plan in one `IMMEDIATE`
    /// transaction: two processes flushing the same file (a daemon and `tripline ack`) take
    /// turns instead of both deciding to send the same news.
    pub(super) fn flush_atomically_sync(&self, plan: &PlanFn) -> Result<Flush> {
        let mut g = self.lock()?;
        let super::Inner {
            conn,
            alerts,
            outbox,
        } = &mut *g;
        let r = (|| -> rusqlite::Result<Flush> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Inside the transaction: what another process committed before it is seen.
            let alerts: Vec<&Alert> = super::alerts::fresh(&tx, alerts)?.values().collect();
            let state = read_state(&tx)?;
            let flush = plan(&alerts, &state);
            let queued = write_commit(&tx, &flush.commit)?;
            tx.commit()?;
            outbox.add(queued);
            Ok(flush)
        })();
        r.map_err(crate::error::Error::from)
    }
}

#[async_trait]
impl PipelineStore for SqliteStore {
    async fn add_silence(&self, s: &Silence) -> Result<()> {
        self.add_silence_sync(s)
    }

    async fn list_silences(&self) -> Result<Vec<Silence>> {
        self.list_silences_sync()
    }

    async fn expire_silence(&self, id: &str, at: Timestamp) -> Result<bool> {
        self.expire_silence_sync(id, at)
    }

    async fn ack(&self, ack: &Ack) -> Result<()> {
        self.ack_sync(ack)
    }

    async fn load_notify_state(&self) -> Result<NotifyState> {
        self.load_notify_state_sync()
    }

    async fn commit_flush(&self, commit: &FlushCommit) -> Result<()> {
        self.commit_flush_sync(commit)
    }

    async fn flush_atomically(&self, plan: &PlanFn) -> Result<Flush> {
        self.flush_atomically_sync(plan)
    }
}

fn read_state(c: &rusqlite::Connection) -> rusqlite::Result<NotifyState> {
    Ok(NotifyState {
        silences: all(c, "SELECT body FROM silences ORDER BY ends_at, id")?,
        acks: all(c, "SELECT body FROM acks ORDER BY fingerprint")?,
        groups: all(c, "SELECT body FROM notify_groups ORDER BY key")?,
        nflog: all(c, "SELECT body FROM nflog ORDER BY group_key, receiver")?,
    })
}

/// Writes a plan's commit; returns the outbox entries it queued (for the store's cache, once
/// the transaction commits).
fn write_commit(tx: &rusqlite::Transaction, f: &FlushCommit) -> rusqlite::Result<Vec<OutboxEntry>> {
    let queued = super::outbox::queue(tx, &f.notifications)?;
    {
        let mut nf = tx.prepare_cached(
            "INSERT INTO nflog (group_key, receiver, body) VALUES (?1, ?2, ?3) ON CONFLICT(group_key, receiver) DO UPDATE SET body = ?3",
        )?;
        for e in &f.nflog {
            nf.execute(params![e.group_key, e.receiver, to_json(e)?])?;
        }
        let mut gs = tx.prepare_cached("INSERT INTO notify_groups (key, body) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET body = ?2")?;
        for g in &f.groups_saved {
            gs.execute(params![g.key, to_json(g)?])?;
        }
        let mut gd = tx.prepare_cached("DELETE FROM notify_groups WHERE key = ?1")?;
        for k in &f.groups_deleted {
            gd.execute([k])?;
        }
        for fp in &f.acks_announced {
            let body: Option<String> = tx
                .query_row("SELECT body FROM acks WHERE fingerprint = ?1", [fp], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(b) = body {
                let mut a: Ack = from_json(b)?;
                a.announced = true;
                tx.execute(
                    "UPDATE acks SET body = ?2 WHERE fingerprint = ?1",
                    params![fp, to_json(&a)?],
                )?;
            }
        }
        for (g, r) in &f.nflog_deleted {
            tx.execute(
                "DELETE FROM nflog WHERE group_key = ?1 AND receiver = ?2",
                params![g, r],
            )?;
        }
        for id in &f.silences_deleted {
            tx.execute("DELETE FROM silences WHERE id = ?1", [id])?;
        }
        for fp in &f.acks_deleted {
            tx.execute("DELETE FROM acks WHERE fingerprint = ?1", [fp])?;
        }
        for id in &f.silences_noticed {
            let body: Option<String> = tx
                .query_row("SELECT body FROM silences WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(b) = body {
                let mut s: Silence = from_json(b)?;
                s.expiry_noticed = true;
                tx.execute(
                    "UPDATE silences SET body = ?2 WHERE id = ?1",
                    params![id, to_json(&s)?],
                )?;
            }
        }
    }
    Ok(queued)
}
