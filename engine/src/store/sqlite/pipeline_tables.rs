//! The pipeline's and the outbox's tables in the SQLite store (beside `mod.rs`'s alerts and meta
//! tables): silences, acknowledgements, group timers, the notification log and the outbox. Rows
//! keep a JSON body plus the columns queries need.

use super::SqliteStore;
use crate::alert::Alert;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::notify::outbox::{OutboxEntry, OutboxState};
use crate::pipeline::escalate::Ack;
use crate::pipeline::silence::Silence;
use crate::pipeline::{Flush, FlushCommit, NotifyState, PlanFn};
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

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(s: String) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn all<T: serde::de::DeserializeOwned>(
    c: &rusqlite::Connection,
    sql: &str,
) -> rusqlite::Result<Vec<T>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|b| from_json(b?)).collect()
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

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
        self.tables(|c| {
            let tx = c.transaction()?;
            write_commit(&tx, f)?;
            tx.commit()
        })
    }

    /// Reads the alerts and the pipeline's state, plans and writes the plan in one `IMMEDIATE`
    /// transaction: two processes flushing the same file (a daemon and `tripline ack`) take
    /// turns instead of both deciding to send the same news.
    pub(super) fn flush_atomically_sync(&self, plan: &PlanFn) -> Result<Flush> {
        let mut g = self.lock()?;
        let super::Inner { conn, alerts } = &mut *g;
        let r = (|| -> rusqlite::Result<Flush> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Inside the transaction: what another process committed before it is seen.
            let alerts: &[Alert] = super::fresh(&tx, alerts)?;
            let state = read_state(&tx)?;
            let flush = plan(alerts, &state);
            write_commit(&tx, &flush.commit)?;
            tx.commit()?;
            Ok(flush)
        })();
        r.map_err(crate::error::Error::from)
    }

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

fn read_state(c: &rusqlite::Connection) -> rusqlite::Result<NotifyState> {
    Ok(NotifyState {
        silences: all(c, "SELECT body FROM silences ORDER BY ends_at, id")?,
        acks: all(c, "SELECT body FROM acks ORDER BY fingerprint")?,
        groups: all(c, "SELECT body FROM notify_groups ORDER BY key")?,
        nflog: all(c, "SELECT body FROM nflog ORDER BY group_key, receiver")?,
    })
}

fn write_commit(tx: &rusqlite::Transaction, f: &FlushCommit) -> rusqlite::Result<()> {
    {
        let mut seq: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox")?
            .query_row([], |r| r.get(0))?;
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO outbox (id, receiver, state, next_attempt_at, seq, body) VALUES (?1, ?2, 'pending', ?3, ?4, ?5)",
        )?;
        for n in &f.notifications {
            seq += 1;
            let e = OutboxEntry::new(n.clone());
            ins.execute(params![
                n.id,
                n.receiver,
                ms(e.next_attempt_at),
                seq,
                to_json(&e)?
            ])?;
        }
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
    Ok(())
}
