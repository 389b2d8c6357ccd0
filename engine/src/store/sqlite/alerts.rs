//! The alerts table (one row per fingerprint, its JSON body beside the columns queries need),
//! the decoded copy of it the store keeps in step with its own writes, and the `meta` table of
//! small named values: the SQLite store's `AlertStore`.

use super::{Inner, SqliteStore};
use crate::alert::{Alert, AlertStore};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) const SCHEMA: &str = "
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

pub(super) struct AlertCache {
    version: i64,
    /// By fingerprint, in order, like `load_alerts`. A map, not a sorted vector: a POST of
    /// 1,000 new alerts into 100,000 inserts them, instead of moving every stored one.
    alerts: Alerts,
}

/// The decoded alerts, by fingerprint; shared, so a flush can plan over a snapshot of them
/// without holding the connection (`flush_atomically_sync`).
pub(super) type Alerts = BTreeMap<String, Arc<Alert>>;

/// The alerts as stored now: the cache, read again if another connection committed since.
pub(super) fn fresh<'a>(
    c: &Connection,
    cache: &'a mut Option<AlertCache>,
) -> rusqlite::Result<&'a Alerts> {
    let version = super::data_version(c)?;
    if cache.as_ref().is_none_or(|k| k.version != version) {
        *cache = None;
        let mut st = c.prepare_cached("SELECT body FROM alerts")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let alerts = rows
            .map(|b| decode(b?).map(|a| (a.fingerprint.clone(), Arc::new(a))))
            .collect::<rusqlite::Result<Alerts>>()?;
        Ok(&cache.insert(AlertCache { version, alerts }).alerts)
    } else {
        Ok(&cache.as_ref().expect("checked above").alerts)
    }
}

/// Applies a committed `save_alerts` to the cache: upserts (the last of a fingerprint wins),
/// then deletes, as the SQL does.
fn apply(v: &mut Alerts, changed: impl IntoIterator<Item = Alert>, deleted: &[String]) {
    for a in changed {
        match v.get_mut(&a.fingerprint) {
            Some(x) => *x = Arc::new(a),
            None => {
                v.insert(a.fingerprint.clone(), Arc::new(a));
            }
        }
    }
    for fp in deleted {
        v.remove(fp);
    }
}

impl SqliteStore {
    /// Writes `changed` and `deleted` in one transaction and returns the connection still held,
    /// for the caller to bring the decoded alerts in step (copying `changed`, or moving it). On
    /// failure the decoded alerts are dropped (read again at next use).
    fn write_alerts(&self, changed: &[Alert], deleted: &[String]) -> Result<super::Locked<'_>> {
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
        let Inner { conn, alerts, .. } = &mut *g;
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
            Ok(()) => Ok(g),
            Err(e) => {
                *alerts = None;
                Err(e.into())
            }
        }
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
        self.with_alerts(|_, a| Ok(a.values().map(|a| Alert::clone(a)).collect()))
    }

    async fn load_alerts_by_fingerprint(&self, fingerprints: &[String]) -> Result<Vec<Alert>> {
        let mut want: Vec<&str> = fingerprints.iter().map(|f| f.as_str()).collect();
        want.sort_unstable();
        want.dedup();
        self.with_alerts(|_, all| {
            Ok(want
                .iter()
                .filter_map(|fp| all.get(*fp).map(|a| Alert::clone(a)))
                .collect())
        })
    }

    async fn load_alerts_of_instance(&self, instance: &str) -> Result<Vec<Alert>> {
        self.with_alerts(|_, all| {
            Ok(all
                .values()
                .filter(|a| a.instance == instance)
                .map(|a| Alert::clone(a))
                .collect())
        })
    }

    async fn save_alerts(&self, changed: &[Alert], deleted: &[String]) -> Result<()> {
        let mut g = self.write_alerts(changed, deleted)?;
        if let Some(k) = &mut g.alerts {
            apply(&mut k.alerts, changed.iter().cloned(), deleted);
        }
        Ok(())
    }

    async fn save_alerts_owned(&self, changed: Vec<Alert>, deleted: &[String]) -> Result<()> {
        let mut g = self.write_alerts(&changed, deleted)?;
        if let Some(k) = &mut g.alerts {
            apply(&mut k.alerts, changed, deleted);
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::apply;
    use crate::alert::AlertState;

    #[test]
    fn the_cache_stays_sorted_and_matches_the_table_after_upserts_and_deletes() {
        let a = |fp: &str, summary: &str| {
            let mut x = crate::store::sqlite::tests::alert(fp, AlertState::Firing, None);
            x.summary = summary.into();
            x
        };
        let mut v: super::Alerts = ["b", "d", "f"]
            .iter()
            .map(|fp| (fp.to_string(), std::sync::Arc::new(a(fp, "old"))))
            .collect();
        // New before, between and after the stored ones, an update, a fingerprint twice (the
        // last wins, as the SQL upsert does), then a delete.
        let changed = [
            a("g", "new"),
            a("a", "new"),
            a("d", "updated"),
            a("e", "first"),
            a("e", "second"),
            a("c", "new"),
        ];
        apply(&mut v, changed.iter().cloned(), &["f".to_string()]);
        let got: Vec<(&str, &str)> = v
            .values()
            .map(|x| (x.fingerprint.as_str(), x.summary.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "new"),
                ("b", "old"),
                ("c", "new"),
                ("d", "updated"),
                ("e", "second"),
                ("g", "new")
            ]
        );
    }
}
