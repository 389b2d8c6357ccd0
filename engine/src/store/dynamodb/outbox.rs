//! The `outbox` partition: one item per notification, `state`, `receiver`, `seq` and
//! `next_attempt_at` as attributes beside the JSON entry; claims and defers are conditional
//! updates, so of several replicas exactly one sends each entry: the DynamoDB store's
//! `OutboxStore`.

use super::{body, get_n, get_s, ms, n, s, to_json, written, DynamoStore, OUTBOX};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::notify::outbox::{OutboxEntry, OutboxState, OutboxStore};
use async_trait::async_trait;

impl DynamoStore {
    async fn outbox_items(&self) -> Result<Vec<(i64, OutboxEntry, String, String)>> {
        let mut v = Vec::new();
        for item in self.query_all(OUTBOX).await? {
            let mut e: OutboxEntry = body(&item)?;
            // The attribute is authoritative: claims and defers move it without rewriting bodies.
            if let Some(t) =
                get_n(&item, "next_attempt_at").and_then(chrono::DateTime::from_timestamp_millis)
            {
                e.next_attempt_at = t;
            }
            let state = get_s(&item, "state").unwrap_or_default().to_string();
            let receiver = get_s(&item, "receiver").unwrap_or_default().to_string();
            v.push((get_n(&item, "seq").unwrap_or(0), e, state, receiver));
        }
        v.sort_by_key(|(seq, e, ..)| (*seq, e.notification.id.clone()));
        Ok(v)
    }
}

#[async_trait]
impl OutboxStore for DynamoStore {
    async fn outbox_due(&self, at: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .filter(|(_, e, st, _)| st == "pending" && e.next_attempt_at <= at)
            .map(|(_, e, ..)| e)
            .take(limit)
            .collect())
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .filter(|(_, _, st, _)| st == "pending")
            .map(|(_, e, ..)| e)
            .take(limit)
            .collect())
    }

    async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .map(|(_, e, ..)| e)
            .collect())
    }

    async fn outbox_next_due(&self) -> Result<Option<Timestamp>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .filter(|(_, _, st, _)| st == "pending")
            .map(|(_, e, ..)| e.next_attempt_at)
            .min())
    }

    async fn outbox_update(&self, e: &OutboxEntry) -> Result<()> {
        let r = self
            .update_item(OUTBOX, &e.notification.id)
            .await?
            .update_expression(
                "SET #st = :st, next_attempt_at = :next, body = :body REMOVE lease_until",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":st", s(e.state.as_str()))
            .expression_attribute_values(":next", n(ms(e.next_attempt_at)))
            .expression_attribute_values(":body", s(to_json(e)?))
            .send()
            .await;
        // Not written: like SQLite's UPDATE of a missing row, nothing to do.
        written("UpdateItem", r).map(|_| ())
    }

    async fn outbox_claim(&self, id: &str, at: Timestamp, until: Timestamp) -> Result<bool> {
        // `next_attempt_at` doubles as the lease: a claimed entry is not due again until the
        // lease ends, so a replica that died holding it hands it over then.
        let r = self
            .update_item(OUTBOX, id)
            .await?
            .update_expression("SET next_attempt_at = :until, lease_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND #st = :pending AND next_attempt_at <= :at AND (attribute_not_exists(lease_until) OR lease_until <= :at)",
            )
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":pending", s(OutboxState::Pending.as_str()))
            .expression_attribute_values(":at", n(ms(at)))
            .expression_attribute_values(":until", n(ms(until)))
            .send()
            .await;
        written("UpdateItem", r)
    }

    async fn outbox_defer(&self, receiver: &str, until: Timestamp) -> Result<()> {
        for (_, e, st, rcv) in self.outbox_items().await? {
            if st != "pending" || rcv != receiver || e.next_attempt_at >= until {
                continue;
            }
            let r = self
                .update_item(OUTBOX, &e.notification.id)
                .await?
                .update_expression("SET next_attempt_at = :until")
                .condition_expression("#st = :pending AND next_attempt_at < :until")
                .expression_attribute_names("#st", "state")
                .expression_attribute_values(":pending", s(OutboxState::Pending.as_str()))
                .expression_attribute_values(":until", n(ms(until)))
                .send()
                .await;
            // Not written: claimed, delivered or already deferred further meanwhile.
            written("UpdateItem", r)?;
        }
        Ok(())
    }

    async fn prune_outbox(&self, before: Timestamp) -> Result<usize> {
        let mut count = 0;
        for (_, e, st, _) in self.outbox_items().await? {
            let done = st == OutboxState::Delivered.as_str() || st == OutboxState::Dead.as_str();
            if done && e.next_attempt_at < before {
                self.delete(OUTBOX, &e.notification.id).await?;
                count += 1;
            }
        }
        Ok(count)
    }
}
