//! The embedded store: one SQLite file in WAL mode, created on first use.

mod pipeline_tables;

use super::{AlertStore, OutboxStore, PipelineStore};
use crate::alert::Alert;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::notify::outbox::OutboxEntry;
use crate::pipeline::escalate::Ack;
use crate::pipeline::silence::Silence;
use crate::pipeline::{Flush, FlushCommit, NotifyState, PlanFn};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct SqliteStore {
    inner: Mutex<Inner>,
    path: PathBuf,
}

pub(super) struct Inner {
    pub(super) conn: Connection,
    /// The `alerts` table decoded, so a flush or an ingest does not re-read and re-parse every
    /// alert. Tagged with SQLite's `data_version`, which changes when another connection (another
    /// process sharing the file) commits: then it is read again. This connection's own writes go
    /// through `save_alerts`/`prune_resolved`, which keep it in step.
    pub(super) alerts: Option<AlertCache>,
}

pub(super) struct AlertCache {
    version: i64,
    /// Sorted by fingerprint, like `load_alerts`.
    alerts: Vec<Alert>,
}

/// The alerts as stored now: the cache, read again if another connection committed since.
pub(super) fn fresh<'a>(
    c: &Connection,
    cache: &'a mut Option<AlertCache>,
) -> rusqlite::Result<&'a [Alert]> {
    let version: i64 = c
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?;
    if cache.as_ref().is_none_or(|k| k.version != version) {
        *cache = None;
        let mut st = c.prepare_cached("SELECT body FROM alerts ORDER BY fingerprint")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let alerts = rows
            .map(|b| decode(b?))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        *cache = Some(AlertCache { version, alerts });
    }
    Ok(cache.as_ref().map(|k| k.alerts.as_slice()).unwrap_or(&[]))
}

/// Applies a committed `save_alerts` to the cache: upserts (the last of a fingerprint wins),
/// then deletes, as the SQL does.
fn apply(v: &mut Vec<Alert>, changed: &[Alert], deleted: &[String]) {
    let mut new: std::collections::BTreeMap<&str, &Alert> = Default::default();
    for a in changed {
        match v.binary_search_by(|x| x.fingerprint.as_str().cmp(&a.fingerprint)) {
            Ok(i) => v[i] = a.clone(),
            Err(_) => {
                new.insert(a.fingerprint.as_str(), a);
            }
        }
    }
    if !new.is_empty() {
        // Two sorted runs: the sort merges them in linear time.
        v.extend(new.into_values().cloned());
        v.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    }
    if !deleted.is_empty() {
        let gone: std::collections::HashSet<&str> = deleted.iter().map(|s| s.as_str()).collect();
        v.retain(|a| !gone.contains(a.fingerprint.as_str()));
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    instance    TEXT NOT NULL,
    state       TEXT NOT NULL,
    ends_at     INTEGER,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state, ends_at);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, with its parent directories.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(&path)
            .map_err(|e| Error::Store(format!("{}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(pipeline_tables::SCHEMA)?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner { conn, alerts: None }),
            path,
        })
    }

    /// A private in-memory store, for tests and embedding without persistence.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(pipeline_tables::SCHEMA)?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner { conn, alerts: None }),
            path: PathBuf::from(":memory:"),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::Store("connection lock poisoned".into()))
    }

    /// The connection, for sibling modules that keep their own tables in the same file. It may
    /// write anything, so the decoded alerts are read again afterwards.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut g = self.lock()?;
        g.alerts = None;
        f(&mut g.conn).map_err(Error::from)
    }

    /// The connection, for the store's own tables other than `alerts`.
    pub(super) fn tables<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        f(&mut self.lock()?.conn).map_err(Error::from)
    }

    /// The connection and the stored alerts (decoded once, see `Inner::alerts`).
    pub(super) fn with_alerts<T>(
        &self,
        f: impl FnOnce(&mut Connection, &[Alert]) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut g = self.lock()?;
        let Inner { conn, alerts } = &mut *g;
        let r = fresh(conn, alerts).and_then(|a| f(conn, a));
        r.map_err(Error::from)
    }
}

fn decode(body: String) -> rusqlite::Result<Alert> {
    serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn load_alerts(&self) -> Result<Vec<Alert>> {
        self.with_alerts(|_, a| Ok(a.to_vec()))
    }

    async fn load_alerts_by_fingerprint(&self, fingerprints: &[String]) -> Result<Vec<Alert>> {
        let mut want: Vec<&str> = fingerprints.iter().map(|f| f.as_str()).collect();
        want.sort_unstable();
        want.dedup();
        self.with_alerts(|_, all| {
            Ok(want
                .iter()
                .filter_map(|fp| {
                    all.binary_search_by(|a| a.fingerprint.as_str().cmp(fp))
                        .ok()
                        .map(|i| all[i].clone())
                })
                .collect())
        })
    }

    async fn load_alerts_of_instance(&self, instance: &str) -> Result<Vec<Alert>> {
        self.with_alerts(|_, all| {
            Ok(all
                .iter()
                .filter(|a| a.instance == instance)
                .cloned()
                .collect())
        })
    }

    async fn save_alerts(&self, changed: &[Alert], deleted: &[String]) -> Result<()> {
        // Encoded before the connection is taken: the notification loop's flush (which holds it
        // while it plans) and a POST's encoding can then use both cores instead of queueing.
        let bodies = changed
            .iter()
            .map(|a| {
                serde_json::to_string(a)
                    .map_err(|e| Error::Store(format!("alert {}: {e}", a.fingerprint)))
            })
            .collect::<Result<Vec<String>>>()?;
        let mut g = self.lock()?;
        let Inner { conn, alerts } = &mut *g;
        let written = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut up = tx.prepare_cached(
                    "INSERT INTO alerts (fingerprint, instance, state, ends_at, body) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(fingerprint) DO UPDATE SET instance = ?2, state = ?3, ends_at = ?4, body = ?5",
                )?;
                for (a, body) in changed.iter().zip(&bodies) {
                    up.execute(params![
                        a.fingerprint,
                        a.instance,
                        a.state.as_str(),
                        a.ends_at.map(|t| t.timestamp()),
                        body
                    ])?;
                }
                let mut del = tx.prepare_cached("DELETE FROM alerts WHERE fingerprint = ?1")?;
                for fp in deleted {
                    del.execute([fp])?;
                }
            }
            tx.commit()
        })();
        match written {
            Ok(()) => {
                if let Some(k) = alerts {
                    apply(&mut k.alerts, changed, deleted);
                }
                Ok(())
            }
            Err(e) => {
                *alerts = None;
                Err(e.into())
            }
        }
    }

    async fn prune_resolved(&self, before: Timestamp) -> Result<usize> {
        let mut g = self.lock()?;
        let n = g
            .conn
            .prepare_cached("DELETE FROM alerts WHERE state = 'resolved' AND ends_at < ?1")
            .and_then(|mut st| st.execute([before.timestamp()]));
        if !matches!(n, Ok(0)) {
            g.alerts = None;
        }
        Ok(n?)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        self.tables(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.tables(|c| {
            c.execute("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2", [key, value])?;
            Ok(())
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertState, Severity};
    use chrono::TimeZone;

    fn alert(fp: &str, state: AlertState, ends: Option<i64>) -> Alert {
        let t = chrono::Utc.timestamp_opt(1_790_000_000, 0).unwrap();
        Alert {
            fingerprint: fp.into(),
            rule: "r".into(),
            instance: "i".into(),
            labels: [("a".to_string(), "b".to_string())].into(),
            state,
            severity: Severity::High,
            summary: "s".into(),
            runbook: Some("https://r".into()),
            value: Some(1.5),
            details: Default::default(),
            active_since: t,
            starts_at: Some(t),
            ends_at: ends.map(|e| chrono::Utc.timestamp_opt(e, 0).unwrap()),
            last_active: t,
            updated_at: t,
            severity_changed_at: None,
            keep_firing_since: None,
        }
    }

    #[tokio::test]
    async fn file_is_created_in_wal_mode_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/state.db");
        let s = SqliteStore::open(&path).unwrap();
        assert!(path.exists());
        let mode: String = s
            .with_conn(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
        let a = alert("f1", AlertState::Firing, None);
        s.save_alerts(
            &[
                a.clone(),
                alert("f2", AlertState::Resolved, Some(1_790_000_100)),
            ],
            &[],
        )
        .await
        .unwrap();
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        let got = s.load_alerts().await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], a);
        // Pruning removes only resolved alerts that ended before the cut-off.
        assert_eq!(
            s.prune_resolved(chrono::Utc.timestamp_opt(1_790_000_200, 0).unwrap())
                .await
                .unwrap(),
            1
        );
        s.save_alerts(&[], &["f1".into()]).await.unwrap();
        assert!(s.load_alerts().await.unwrap().is_empty());
        s.set_meta("k", "v").await.unwrap();
        assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("v"));
    }

    #[tokio::test]
    async fn decoded_alerts_follow_writes_of_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        a.save_alerts(&[alert("f1", AlertState::Firing, None)], &[])
            .await
            .unwrap();
        assert_eq!(b.load_alerts().await.unwrap().len(), 1);
        // b's own writes keep its decoded copy in step: upserts, new ones in order, deletes.
        let mut f1 = alert("f1", AlertState::Firing, None);
        f1.summary = "changed".into();
        b.save_alerts(
            &[
                alert("f3", AlertState::Firing, None),
                f1.clone(),
                alert("f0", AlertState::Firing, None),
            ],
            &["f3".into()],
        )
        .await
        .unwrap();
        let fps = |v: Vec<Alert>| v.into_iter().map(|a| a.fingerprint).collect::<Vec<_>>();
        assert_eq!(fps(b.load_alerts().await.unwrap()), ["f0", "f1"]);
        assert_eq!(
            b.load_alerts_by_fingerprint(&["f1".into(), "nope".into()])
                .await
                .unwrap(),
            [f1.clone()]
        );
        // a commits after b decoded: b sees it.
        a.save_alerts(&[alert("f2", AlertState::Firing, None)], &["f0".into()])
            .await
            .unwrap();
        assert_eq!(fps(b.load_alerts().await.unwrap()), ["f1", "f2"]);
        assert_eq!(b.load_alerts_of_instance("i").await.unwrap().len(), 2);
        assert_eq!(
            a.load_alerts().await.unwrap(),
            b.load_alerts().await.unwrap()
        );
    }
}
