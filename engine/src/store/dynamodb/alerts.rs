//! The `alert` and `meta` partitions: each alert one item (its JSON body beside `state` and
//! `ends_at`), small named values under `meta`: the DynamoDB store's `AlertStore`.

use super::{get_n, get_s, n, s, to_json, DynamoStore, ALERT, META};
use crate::alert::{Alert, AlertStore};
use crate::clock::Timestamp;
use crate::error::Result;
use async_trait::async_trait;
use std::collections::HashMap;

#[async_trait]
impl AlertStore for DynamoStore {
    async fn load_alerts(&self) -> Result<Vec<Alert>> {
        let mut v: Vec<Alert> = self.bodies(ALERT).await?;
        v.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        Ok(v)
    }

    async fn save_alerts(&self, changed: &[Alert], deleted: &[String]) -> Result<()> {
        for a in changed {
            let mut item = HashMap::from([
                ("instance".to_string(), s(&a.instance)),
                ("state".to_string(), s(a.state.as_str())),
                ("body".to_string(), s(to_json(a)?)),
            ]);
            if let Some(e) = a.ends_at {
                item.insert("ends_at".into(), n(e.timestamp()));
            }
            self.put(item, ALERT, &a.fingerprint).await?;
        }
        for fp in deleted {
            self.delete(ALERT, fp).await?;
        }
        Ok(())
    }

    async fn prune_resolved(&self, before: Timestamp) -> Result<usize> {
        let mut count = 0;
        for item in self.query_all(ALERT).await? {
            let resolved = get_s(&item, "state") == Some("resolved");
            let ended = get_n(&item, "ends_at").is_some_and(|e| e < before.timestamp());
            if resolved && ended {
                if let Some(sk) = get_s(&item, "sk") {
                    self.delete(ALERT, sk).await?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .get(META, key)
            .await?
            .and_then(|i| get_s(&i, "value").map(str::to_string)))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.put(HashMap::from([("value".into(), s(value))]), META, key)
            .await
    }
}
