//! The outbox table in the SQLite store: one row per notification to deliver, its state and next
//! attempt as columns (so `outbox_due` is an index scan) beside the JSON entry: the SQLite store's
//! `OutboxStore`.
//!
//! The body is written once, when the entry is queued, and never again: a delivery attempt
//! writes only the columns, and the small `status` JSON (attempts, errors, delivered_at), which,
//! when set, overrides the body's fields. Marking a 1,000-alert notification delivered is thus a
//! few bytes, not the whole alert list encoded again. The body lives in its own table
//! (`outbox_body`, by id): SQLite rewrites a whole row on any update, so a claim or an attempt on
//! an `outbox` row holding a 500 kB body would copy it each time. Rows queued before that table
//! existed keep their body in `outbox.body` and are read from there; new rows leave it empty. The store keeps the pending entries it
//! queued or read decoded (`OutboxCache`, by id), so a delivery pass does not decode every
//! pending body again; since bodies never change, a cached entry is never stale.

use super::{from_json, ms, to_json, Inner, SqliteStore};
use crate::alert::Notification;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::notify::outbox::{OutboxEntry, OutboxState, OutboxStore};
use async_trait::async_trait;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    receiver        TEXT NOT NULL,
    state           TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt_at);
CREATE TABLE IF NOT EXISTS outbox_body (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
";

/// An entry's body: in `outbox_body`, or, for a row queued before that table, in `outbox.body`.
const BODY: &str = "SELECT CASE WHEN o.body <> '' THEN o.body ELSE b.body END
     FROM outbox o LEFT JOIN outbox_body b ON b.id = o.id WHERE o.id = ?1";

/// Adds the `status` column to an outbox table made before it existed. Two processes opening
/// one old file at once may both try: the second's "duplicate column" is not an error.
pub(super) fn migrate(c: &Connection) -> rusqlite::Result<()> {
    let has: i64 = c.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'status'",
        [],
        |r| r.get(0),
    )?;
    if has == 0 {
        if let Err(e) = c.execute_batch("ALTER TABLE outbox ADD COLUMN status TEXT") {
            if !e.to_string().contains("duplicate column") {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// What a delivery attempt changes in an entry, kept in the `status` column.
#[derive(Serialize, Deserialize)]
struct Status {
    state: OutboxState,
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivered_at: Option<Timestamp>,
    #[serde(default)]
    throttled: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failing_since: Option<Timestamp>,
}

impl Status {
    fn of(e: &OutboxEntry) -> Self {
        Status {
            state: e.state,
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            delivered_at: e.delivered_at,
            throttled: e.throttled,
            failing_since: e.failing_since,
        }
    }

    fn apply(self, e: &mut OutboxEntry) {
        e.state = self.state;
        e.attempts = self.attempts;
        e.last_error = self.last_error;
        e.delivered_at = self.delivered_at;
        e.throttled = self.throttled;
        e.failing_since = self.failing_since;
    }
}

/// Pending entries as queued (their bodies), decoded, by id. Entries leave it when they are
/// delivered or dead, and when a full read of the pending ones no longer finds them (another
/// process delivered or pruned them).
#[derive(Debug, Default)]
pub(super) struct OutboxCache {
    queued: HashMap<String, OutboxEntry>,
}

impl OutboxCache {
    pub(super) fn clear(&mut self) {
        self.queued.clear();
    }

    /// Entries `queue` wrote, once their transaction committed.
    pub(super) fn add(&mut self, entries: Vec<OutboxEntry>) {
        for e in entries {
            self.queued.insert(e.notification.id.clone(), e);
        }
    }
}

/// Queues `notifications` in the outbox (inside the caller's transaction); returns the entries
/// it wrote, for `OutboxCache::add` once the transaction commits. An id already queued (a
/// replica queued the same news) is left as it is.
pub(super) fn queue(
    tx: &rusqlite::Transaction,
    notifications: &[Arc<Notification>],
) -> rusqlite::Result<Vec<OutboxEntry>> {
    let mut queued = Vec::with_capacity(notifications.len());
    if notifications.is_empty() {
        return Ok(queued);
    }
    let mut seq: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox")?
        .query_row([], |r| r.get(0))?;
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (id, receiver, state, next_attempt_at, seq, body) VALUES (?1, ?2, 'pending', ?3, ?4, '')",
    )?;
    let mut body =
        tx.prepare_cached("INSERT OR REPLACE INTO outbox_body (id, body) VALUES (?1, ?2)")?;
    for n in notifications {
        seq += 1;
        let e = OutboxEntry::queued(n.clone());
        let written = ins.execute(params![n.id, n.receiver, ms(e.next_attempt_at), seq])?;
        if written == 1 {
            body.execute(params![n.id, to_json(&e)?])?;
            queued.push(e);
        }
    }
    Ok(queued)
}

/// One outbox row as read: its id, next attempt and state columns, and its status JSON.
type Row = (String, i64, String, Option<String>);

/// The entries of the rows `sql` selects (`id, next_attempt_at, state, status`, in that
/// order). A pending row's body is decoded only if `cache` does not hold it already.
fn rows(
    c: &Connection,
    cache: &mut OutboxCache,
    sql: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<Vec<OutboxEntry>> {
    let rows: Vec<Row> = c
        .prepare_cached(sql)?
        .query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut body = c.prepare_cached(BODY)?;
    rows.into_iter()
        .map(|(id, next, state, status)| {
            let pending = state == OutboxState::Pending.as_str();
            let mut e = match cache.queued.get(&id) {
                Some(e) if pending => e.clone(),
                _ => {
                    let e: OutboxEntry =
                        from_json(body.query_row([&id], |r| r.get::<_, String>(0))?)?;
                    if pending {
                        cache.queued.insert(id, e.clone());
                    }
                    e
                }
            };
            if let Some(s) = status {
                from_json::<Status>(s)?.apply(&mut e);
            }
            // The column is authoritative: `outbox_defer` and `outbox_claim` move it.
            if let Some(t) = chrono::DateTime::from_timestamp_millis(next) {
                e.next_attempt_at = t;
            }
            Ok(e)
        })
        .collect()
}

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

    /// The connection and the decoded pending entries.
    fn with_outbox<T>(
        &self,
        f: impl FnOnce(&mut Connection, &mut OutboxCache) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut g = self.lock()?;
        let Inner { conn, outbox, .. } = &mut *g;
        f(conn, outbox).map_err(crate::error::Error::from)
    }

    /// The entries of the rows `sql` selects (see `rows`).
    fn outbox_query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<OutboxEntry>> {
        self.with_outbox(|c, cache| rows(c, cache, sql, p))
    }

    pub(super) fn outbox_due_sync(&self, at: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.outbox_query(
            "SELECT id, next_attempt_at, state, status FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY seq LIMIT ?2",
            params![ms(at), limit as i64],
        )
    }

    pub(super) fn outbox_pending_sync(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.with_outbox(|c, cache| {
            // One more than asked: fewer back means every pending row was read.
            let mut v = rows(
                c,
                cache,
                "SELECT id, next_attempt_at, state, status FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?1",
                params![limit.saturating_add(1) as i64],
            )?;
            if v.len() <= limit {
                // Every pending row: the cache forgets what is no longer pending.
                let ids: std::collections::HashSet<&str> =
                    v.iter().map(|e| e.notification.id.as_str()).collect();
                cache.queued.retain(|id, _| ids.contains(id.as_str()));
            }
            v.truncate(limit);
            Ok(v)
        })
    }

    pub(super) fn outbox_entries_sync(&self) -> Result<Vec<OutboxEntry>> {
        self.outbox_query(
            "SELECT id, next_attempt_at, state, status FROM outbox ORDER BY seq",
            [],
        )
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

    /// Writes what an attempt changed: the columns and `status`, never the body.
    pub(super) fn outbox_update_sync(&self, e: &OutboxEntry) -> Result<()> {
        self.with_outbox(|c, cache| {
            c.prepare_cached(
                "UPDATE outbox SET state = ?2, next_attempt_at = ?3, status = ?4 WHERE id = ?1",
            )?
            .execute(params![
                e.notification.id,
                e.state.as_str(),
                ms(e.next_attempt_at),
                to_json(&Status::of(e))?
            ])?;
            if e.state != OutboxState::Pending {
                cache.queued.remove(&e.notification.id);
            }
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
            // Both tables in one transaction: a listing never meets a row without its body.
            let tx = c.transaction()?;
            let p = params![done[0], done[1], ms(before)];
            tx.prepare_cached(
                "DELETE FROM outbox_body WHERE id IN
                 (SELECT id FROM outbox WHERE state IN (?1, ?2) AND next_attempt_at < ?3)",
            )?
            .execute(p)?;
            let n = tx
                .prepare_cached(
                    "DELETE FROM outbox WHERE state IN (?1, ?2) AND next_attempt_at < ?3",
                )?
                .execute(p)?;
            tx.commit()?;
            Ok(n)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertState, NotificationStatus};
    use crate::pipeline::{FlushCommit, PipelineStore};
    use chrono::TimeZone;

    fn note(id: &str) -> Notification {
        let t = chrono::Utc.timestamp_opt(1_790_000_000, 0).unwrap();
        Notification {
            id: id.into(),
            receiver: "ops".into(),
            status: NotificationStatus::Firing,
            group_key: "g".into(),
            group_labels: Default::default(),
            alerts: vec![Arc::new(crate::store::sqlite::tests::alert(
                "f1",
                AlertState::Firing,
                None,
            ))],
            created_at: t,
            acknowledged_by: None,
        }
    }

    fn body_of(s: &SqliteStore, id: &str) -> String {
        s.with_conn(|c| c.query_row(super::BODY, [id], |r| r.get(0)))
            .unwrap()
    }

    #[tokio::test]
    async fn an_attempt_writes_its_status_not_the_body_and_another_connection_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        a.commit_flush(&FlushCommit {
            notifications: vec![Arc::new(note("n1")), Arc::new(note("n2"))],
            ..Default::default()
        })
        .await
        .unwrap();
        let queued = body_of(&a, "n1");
        let row: String = a
            .with_conn(|c| c.query_row("SELECT body FROM outbox WHERE id = 'n1'", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(row, "", "the row an attempt updates does not hold the body");
        assert!(queued.contains("\"f1\""), "{queued}");
        // b decodes the rows a queued; a answers from what it queued.
        let mut e = b.outbox_pending(10).await.unwrap().remove(0);
        assert_eq!(a.outbox_pending(10).await.unwrap()[0], e);
        e.attempts = 3;
        e.state = OutboxState::Delivered;
        e.delivered_at = Some(e.next_attempt_at);
        b.outbox_update(&e).await.unwrap();
        assert_eq!(body_of(&a, "n1"), queued, "the body is written once");
        // a's cached n1 is not what it hands out: the row says delivered, with b's attempts.
        let pending: Vec<String> = a
            .outbox_pending(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.notification.id.clone())
            .collect();
        assert_eq!(pending, ["n2"]);
        let all = a.outbox_entries().await.unwrap();
        assert_eq!(all[0], e);
        assert_eq!(
            a.lock().unwrap().outbox.queued.len(),
            1,
            "n1 left the cache"
        );
    }

    #[tokio::test]
    async fn an_outbox_made_before_the_status_column_is_migrated_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut old = OutboxEntry::new(note("n1"));
        old.attempts = 2;
        old.last_error = Some("HTTP 503".into());
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE outbox (id TEXT PRIMARY KEY, receiver TEXT NOT NULL, state TEXT NOT NULL,
                 next_attempt_at INTEGER NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL)",
            )
            .unwrap();
            c.execute(
                "INSERT INTO outbox VALUES ('n1', 'ops', 'pending', ?1, 1, ?2)",
                params![
                    ms(old.next_attempt_at),
                    serde_json::to_string(&old).unwrap()
                ],
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.outbox_pending(10).await.unwrap(), [old.clone()]);
        old.state = OutboxState::Dead;
        old.attempts = 3;
        s.outbox_update(&old).await.unwrap();
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.outbox_entries().await.unwrap(), [old]);
    }
}
