//! Alerts posted from outside (`crate::ingest`, Alertmanager's format) taken into the engine's
//! store, and resolved when their `endsAt` passes without a fresh post.

use super::Tripline;
use crate::alert::Alert;
use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// What `Tripline::ingest_posted` took in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Alerts new or changed.
    pub changed: usize,
    /// Some alert falls into a group not seen before: plan now, its `group_wait` runs.
    pub opens_group: bool,
}

/// How often `notify_at` looks for expired ingested alerts when it knows of none due.
const INGEST_RESCAN: chrono::Duration = chrono::Duration::seconds(60);

impl Tripline {
    /// Resolves ingested alerts whose `endsAt` passed. Reads the store only when one may have:
    /// `ingest` keeps the earliest expiry it wrote, and the store is looked at at least every
    /// `INGEST_RESCAN` anyway (another process sharing the store may have taken alerts in).
    pub(super) async fn expire_ingested(&self, at: Timestamp) -> Result<()> {
        {
            let mut next = self.ingest_next_expiry.lock().expect("expiry lock");
            if at < *next {
                return Ok(());
            }
            // Ingests from now on lower this; the look below raises it no further than this.
            *next = at + INGEST_RESCAN;
        }
        let looked = async {
            let stored = self
                .store
                .load_alerts_of_instance(crate::ingest::INGESTED)
                .await?;
            let expired = crate::ingest::expired(&stored, at);
            if !expired.is_empty() {
                self.store.save_alerts(&expired, &[]).await?;
            }
            Ok::<_, Error>((stored, expired))
        };
        let (stored, expired) = match looked.await {
            Ok(x) => x,
            Err(e) => {
                // Look again on the next call.
                *self.ingest_next_expiry.lock().expect("expiry lock") = at;
                return Err(e);
            }
        };
        let gone: std::collections::HashSet<&str> =
            expired.iter().map(|a| a.fingerprint.as_str()).collect();
        let still: Vec<&Alert> = stored
            .iter()
            .filter(|a| !gone.contains(a.fingerprint.as_str()))
            .collect();
        if let Some(t) = crate::ingest::next_expiry(still) {
            let mut next = self.ingest_next_expiry.lock().expect("expiry lock");
            *next = (*next).min(t);
        }
        Ok(())
    }

    /// Takes alerts posted in Alertmanager's format (`POST /api/v2/alerts`) into the store, where
    /// the pipeline picks them up. Returns how many were new or changed.
    ///
    /// The work per request: each posted alert fingerprinted once, its earlier self looked up by
    /// fingerprint (not the whole store), the merge, and one `save_alerts` (one SQLite
    /// transaction with a cached statement, each alert JSON-encoded once). Nothing is planned
    /// here: the notification loop does that on its tick. When this returns `Ok`, the alerts
    /// are committed to the store.
    pub async fn ingest(
        &self,
        alerts: Vec<crate::ingest::PostableAlert>,
        at: Timestamp,
    ) -> Result<usize> {
        Ok(self.ingest_posted(alerts, at).await?.changed)
    }

    /// `ingest`, also telling whether the alerts opened a group (`Pipeline::opens_group`;
    /// only alerts that were not firing before are looked at).
    pub async fn ingest_posted(
        &self,
        alerts: Vec<crate::ingest::PostableAlert>,
        at: Timestamp,
    ) -> Result<Ingested> {
        // Only the posted alerts' earlier selves matter: look those up, not the whole store.
        let fps: Vec<String> = alerts.iter().map(crate::ingest::fingerprint_of).collect();
        let stored = self.store.load_alerts_by_fingerprint(&fps).await?;
        let merged =
            crate::ingest::merge_posted(alerts, fps, &stored, at).map_err(Error::Config)?;
        let was_firing: std::collections::HashSet<&str> = stored
            .iter()
            .filter(|a| a.state == crate::alert::AlertState::Firing)
            .map(|a| a.fingerprint.as_str())
            .collect();
        let opens_group = self.pipeline.opens_group(
            merged
                .alerts
                .iter()
                .filter(|a| !was_firing.contains(a.fingerprint.as_str())),
        );
        drop(was_firing);
        drop(stored);
        let changed = merged.alerts.len();
        self.store.save_alerts_owned(merged.alerts, &[]).await?;
        if let Some(t) = merged.next_expiry {
            let mut next = self.ingest_next_expiry.lock().expect("expiry lock");
            *next = (*next).min(t);
        }
        Ok(Ingested {
            changed,
            opens_group,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::alert::AlertState;
    use crate::ingest::PostableAlert;
    use crate::store::{SqliteStore, Store};
    use chrono::{Duration, TimeZone, Utc};
    use std::sync::Arc;

    fn post(json: &str) -> Vec<PostableAlert> {
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn the_engine_expires_posted_alerts_on_time_without_rereading_the_store() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let engine = crate::Tripline::builder()
            .clock(Arc::new(crate::clock::ManualClock::new(t0)))
            .store(store.clone())
            .build()
            .unwrap();
        let firing = |name: &str, ends: &str| {
            post(&format!(
                r#"[{{"labels":{{"alertname":"{name}"}},"endsAt":"2026-11-01T{ends}Z"}}]"#
            ))
        };
        let state = |name: &'static str| {
            let store = store.clone();
            async move {
                store
                    .load_alerts()
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|a| a.labels["alertname"] == name)
                    .map(|a| a.state)
            }
        };
        engine.ingest(firing("A", "10:04:00"), t0).await.unwrap();
        engine.notify_at(t0 + Duration::minutes(1)).await.unwrap();
        assert_eq!(state("A").await, Some(AlertState::Firing));
        // Posted after a look that found A due at 10:04: B, due earlier, still expires on time.
        engine
            .ingest(firing("B", "10:02:00"), t0 + Duration::minutes(1))
            .await
            .unwrap();
        engine.notify_at(t0 + Duration::minutes(2)).await.unwrap();
        assert_eq!(state("B").await, Some(AlertState::Resolved));
        assert_eq!(state("A").await, Some(AlertState::Firing));
        // A posted again lives on; its first endsAt passing resolves nothing.
        engine
            .ingest(firing("A", "10:09:00"), t0 + Duration::minutes(3))
            .await
            .unwrap();
        engine.notify_at(t0 + Duration::minutes(5)).await.unwrap();
        assert_eq!(state("A").await, Some(AlertState::Firing));
        engine.notify_at(t0 + Duration::minutes(9)).await.unwrap();
        assert_eq!(state("A").await, Some(AlertState::Resolved));
    }

    #[tokio::test]
    async fn posted_alerts_say_when_they_open_a_group_once_per_group() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
        let cfg = crate::config::Config::parse(
            std::path::Path::new("t.toml"),
            r#"
[[receiver]]
type = "console"
name = "c"
[route]
receiver = "c"
group_by = ["alertname"]
"#
            .to_string(),
        )
        .unwrap();
        let engine = crate::Tripline::builder()
            .clock(Arc::new(crate::clock::ManualClock::new(t0)))
            .store(Arc::new(SqliteStore::in_memory().unwrap()))
            .pipeline(crate::pipeline::PipelineConfig::from_config(&cfg).unwrap())
            .build()
            .unwrap();
        let opens = |body: &'static str| {
            let engine = &engine;
            async move {
                engine
                    .ingest_posted(post(body), t0)
                    .await
                    .unwrap()
                    .opens_group
            }
        };
        assert!(opens(r#"[{"labels":{"alertname":"A","i":"1"}}]"#).await);
        // The same group: another alert of it, or the same again, opens nothing.
        assert!(!opens(r#"[{"labels":{"alertname":"A","i":"2"}}]"#).await);
        assert!(!opens(r#"[{"labels":{"alertname":"A","i":"1"}}]"#).await);
        // One new group among alerts of known ones.
        assert!(
            opens(r#"[{"labels":{"alertname":"A","i":"3"}},{"labels":{"alertname":"B"}}]"#).await
        );
        // A resolve opens nothing.
        assert!(!opens(r#"[{"labels":{"alertname":"C"},"endsAt":"2026-11-01T09:00:00Z"}]"#).await);
    }
}
