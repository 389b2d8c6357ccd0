//! The pipeline's tables in the SQLite store: silences, acknowledgements, group timers and the
//! notification log, and the flush that plans and commits in one transaction (its commit also
//! queues the outbox rows): the SQLite store's `PipelineStore`.

use super::{all, data_version, from_json, ms, to_json, SqliteStore};
use crate::alert::Alert;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::notify::outbox::OutboxEntry;
use crate::pipeline::escalate::Ack;
use crate::pipeline::silence::Silence;
use crate::pipeline::{Flush, FlushCommit, NotifyState, PipelineStore, PlanFn};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use std::sync::Arc;

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
        self.state_tables(|c| {
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
        self.state_tables(|c| {
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
        self.state_tables(|c| {
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
        g.state_writes += 1;
        let super::Inner { conn, outbox, .. } = &mut *g;
        let tx = conn.transaction()?;
        let queued = write_commit(&tx, f)?;
        tx.commit()?;
        outbox.add(queued);
        Ok(())
    }

    /// Reads the alerts and the pipeline's state, plans, and writes the plan, as one step that
    /// no other write to what the plan read comes between: two processes flushing the same
    /// file (a daemon and `tripline ack`) take turns instead of both deciding to send the same
    /// news.
    ///
    /// The plan is made over a snapshot, without holding the connection, so that POSTs are
    /// taken meanwhile (planning 100,000 alerts takes a good part of a second): it is committed
    /// if, under an `IMMEDIATE` transaction, neither another connection (`data_version`) nor
    /// this one (`state_writes`) changed anything since but this process's own alerts, which
    /// is then the same as those alerts arriving just after the flush. Otherwise it plans again
    /// inside that transaction, as one step.
    pub(super) fn flush_atomically_sync(&self, plan: &PlanFn) -> Result<Flush> {
        let (version, writes, snapshot, state) = {
            let mut g = self.lock()?;
            let super::Inner {
                conn,
                alerts,
                state_writes,
                ..
            } = &mut *g;
            let writes = *state_writes;
            let r = (|| -> rusqlite::Result<_> {
                let tx = conn.transaction()?;
                let version = data_version(&tx)?;
                let snapshot: Vec<Arc<Alert>> = super::alerts::fresh(&tx, alerts)?
                    .values()
                    .cloned()
                    .collect();
                let state = read_state(&tx)?;
                tx.commit()?;
                Ok((version, writes, snapshot, state))
            })();
            r.map_err(crate::error::Error::from)?
        };
        let planned = plan(&snapshot, &state);
        let mut g = self.lock()?;
        let super::Inner {
            conn,
            alerts,
            outbox,
            state_writes,
        } = &mut *g;
        let unchanged_writes = *state_writes == writes;
        let r = (|| -> rusqlite::Result<Flush> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let flush = if unchanged_writes && data_version(&tx)? == version {
                planned
            } else {
                // Inside the transaction: what another process committed before it is seen.
                let alerts: Vec<Arc<Alert>> = super::alerts::fresh(&tx, alerts)?
                    .values()
                    .cloned()
                    .collect();
                let state = read_state(&tx)?;
                plan(&alerts, &state)
            };
            let queued = write_commit(&tx, &flush.commit)?;
            tx.commit()?;
            outbox.add(queued);
            Ok(flush)
        })();
        *state_writes += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertState, AlertStore};
    use crate::store::sqlite::tests::alert;
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn silence() -> Silence {
        let t = chrono::Utc.timestamp_opt(1_790_000_000, 0).unwrap();
        Silence {
            id: "s1".into(),
            matchers: vec!["a=b".into()],
            starts_at: t,
            ends_at: t + chrono::Duration::hours(1),
            created_by: "ann".into(),
            comment: "maintenance".into(),
            created_at: t,
            expiry_noticed: false,
        }
    }

    /// Runs a flush whose plan calls `between` on its first call (outside the lock, as a POST,
    /// an API call or another process would act while it plans); returns what each call saw:
    /// (alerts, silences).
    fn flush_with(s: &SqliteStore, between: impl Fn() + Send + Sync) -> Vec<(usize, usize)> {
        let calls = AtomicUsize::new(0);
        let seen = Mutex::new(vec![]);
        let plan = |alerts: &[Arc<Alert>], state: &NotifyState| {
            seen.lock()
                .unwrap()
                .push((alerts.len(), state.silences.len()));
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                between();
            }
            Flush::default()
        };
        s.flush_atomically_sync(&plan).unwrap();
        seen.into_inner().unwrap()
    }

    #[test]
    fn a_plan_made_outside_the_lock_is_made_again_when_what_it_read_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        let save = |s: &SqliteStore, fp: &str| {
            futures::executor::block_on(s.save_alerts(&[alert(fp, AlertState::Firing, None)], &[]))
                .unwrap()
        };
        save(&a, "f1");
        // This process's own alerts meanwhile: the plan stands (as if they came just after).
        assert_eq!(flush_with(&a, || save(&a, "f2")), [(1, 0)]);
        // A silence added meanwhile (API call in this process): planned again, seeing it.
        assert_eq!(
            flush_with(&a, || a.add_silence_sync(&silence()).unwrap()),
            [(2, 0), (2, 1)]
        );
        // Another process's commit meanwhile: planned again, seeing its alert.
        assert_eq!(flush_with(&a, || save(&b, "f3")), [(2, 1), (3, 1)]);
        // Nothing meanwhile: planned once.
        assert_eq!(flush_with(&a, || ()), [(3, 1)]);
    }
}
