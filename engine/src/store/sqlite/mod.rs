//! The embedded store: one SQLite file in WAL mode, created on first use. `SqliteStore` is one
//! connection behind a mutex; its tables are split by family, one file each: `alerts.rs` (the
//! alerts, their decoded cache, and small named values: `AlertStore`), `pipeline.rs` (silences,
//! acknowledgements, group timers, the notification log and the atomic flush: `PipelineStore`)
//! and `outbox.rs` (`OutboxStore`). Rows keep a JSON body plus the columns queries need.

mod alerts;
mod checkpoint;
mod config;
mod outbox;
mod pipeline;

pub use config::{MemoryConfig, SqliteConfig};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct SqliteStore {
    inner: Mutex<Inner>,
    path: PathBuf,
    /// Copies the WAL into the file off the lock (`checkpoint`); `None` in memory, or when its
    /// thread could not start (SQLite's own checkpoint then runs in commits).
    checkpointer: Option<checkpoint::Checkpointer>,
}

/// The store's connection held; releasing it after writes wakes the checkpointer.
struct Locked<'s> {
    guard: std::sync::MutexGuard<'s, Inner>,
    checkpointer: Option<&'s checkpoint::Checkpointer>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.guard
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Every transaction of this hold has ended: what it committed is in the WAL.
        if let Some(c) = self.checkpointer {
            c.poke();
        }
    }
}

struct Inner {
    conn: Connection,
    /// The `alerts` table decoded, so a flush or an ingest does not re-read and re-parse every
    /// alert. Tagged with SQLite's `data_version`, which changes when another connection (another
    /// process sharing the file) commits: then it is read again. This connection's own writes go
    /// through `save_alerts`/`prune_resolved`, which keep it in step.
    alerts: Option<alerts::AlertCache>,
    /// The pending outbox entries, decoded (see `outbox`).
    outbox: outbox::OutboxCache,
    /// Bumped by each of this connection's writes to the tables a plan reads other than
    /// `alerts` (silences, acks, groups, nflog): SQLite's `data_version` tells only of other
    /// connections' commits. `flush_atomically_sync` commits a plan made outside the lock only
    /// if neither moved.
    state_writes: u64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

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
        Self::create_tables(&conn)?;
        let checkpointer = checkpoint::Checkpointer::start(&path);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                alerts: None,
                outbox: Default::default(),
                state_writes: 0,
            }),
            path,
            checkpointer,
        })
    }

    /// A private in-memory store, for tests and embedding without persistence.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        Self::create_tables(&conn)?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                alerts: None,
                outbox: Default::default(),
                state_writes: 0,
            }),
            path: PathBuf::from(":memory:"),
            checkpointer: None,
        })
    }

    fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(alerts::SCHEMA)?;
        conn.execute_batch(pipeline::SCHEMA)?;
        conn.execute_batch(outbox::SCHEMA)?;
        outbox::migrate(conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<Locked<'_>> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| Error::Store("connection lock poisoned".into()))?;
        Ok(Locked {
            guard,
            checkpointer: self.checkpointer.as_ref(),
        })
    }

    /// The connection, for sibling modules that keep their own tables in the same file. It may
    /// write anything, so the decoded alerts and outbox entries are read again afterwards.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut g = self.lock()?;
        g.alerts = None;
        g.outbox.clear();
        g.state_writes += 1;
        f(&mut g.conn).map_err(Error::from)
    }

    /// The connection, for the store's own tables other than `alerts`.
    fn tables<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&mut self.lock()?.conn).map_err(Error::from)
    }

    /// The connection, to write pipeline state a plan reads (see `Inner::state_writes`).
    fn state_tables<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut g = self.lock()?;
        g.state_writes += 1;
        f(&mut g.conn).map_err(Error::from)
    }

    /// The connection and the stored alerts (decoded once, see `Inner::alerts`).
    fn with_alerts<T>(
        &self,
        f: impl FnOnce(&mut Connection, &alerts::Alerts) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut g = self.lock()?;
        let Inner { conn, alerts, .. } = &mut *g;
        let r = alerts::fresh(conn, alerts).and_then(|a| f(conn, a));
        r.map_err(Error::from)
    }
}

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

/// SQLite's count of other connections' commits, as this connection sees it: the decoded
/// alerts and a flush's snapshot are stale when it moved.
fn data_version(c: &Connection) -> rusqlite::Result<i64> {
    c.prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertState, AlertStore, Severity};
    use chrono::TimeZone;

    pub(super) fn alert(fp: &str, state: AlertState, ends: Option<i64>) -> Alert {
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
        // Saving alerts it is given (moved into the decoded copy, not copied): the same rows,
        // the last of a fingerprint winning, deletes after upserts.
        let mut f5 = alert("f5", AlertState::Firing, None);
        let first_f5 = f5.clone();
        f5.summary = "later".into();
        f1.summary = "again".into();
        b.save_alerts_owned(
            vec![
                first_f5,
                f1.clone(),
                f5.clone(),
                alert("f6", AlertState::Firing, None),
            ],
            &["f2".into(), "f6".into()],
        )
        .await
        .unwrap();
        assert_eq!(fps(b.load_alerts().await.unwrap()), ["f1", "f5"]);
        assert_eq!(b.load_alerts().await.unwrap(), [f1, f5]);
        assert_eq!(
            a.load_alerts().await.unwrap(),
            b.load_alerts().await.unwrap()
        );
    }
}
