//! The pipeline's partitions (`silence`, `ack`, `group`, `nflog`), the flush lease that stands in
//! for SQLite's `IMMEDIATE` transaction, and the commit written in crash-safe order (outbox
//! entries first, then the log and timers; see the module docs of `dynamodb`): the DynamoDB
//! store's `PipelineStore`.

use super::{
    body, get_n, ms, n, s, to_json, wall_ms, written, DynamoStore, ACK, COUNTER, FLUSH_LEASE,
    FLUSH_WAIT, GROUP, LOCK, NFLOG, NFLOG_SEP, OUTBOX, SILENCE,
};
use crate::alert::AlertStore;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::notify::outbox::{OutboxEntry, OutboxState};
use crate::pipeline::escalate::Ack;
use crate::pipeline::group::GroupState;
use crate::pipeline::nflog::NflogEntry;
use crate::pipeline::silence::Silence;
use crate::pipeline::{Flush, FlushCommit, NotifyState, PipelineStore, PlanFn};
use async_trait::async_trait;
use std::time::Duration;

impl DynamoStore {
    async fn read_state(&self) -> Result<NotifyState> {
        let mut silences: Vec<Silence> = self.bodies(SILENCE).await?;
        silences.sort_by(|a, b| (a.ends_at, &a.id).cmp(&(b.ends_at, &b.id)));
        let acks: Vec<Ack> = self.bodies(ACK).await?;
        let groups: Vec<GroupState> = self.bodies(GROUP).await?;
        let mut nflog: Vec<NflogEntry> = self.bodies(NFLOG).await?;
        nflog.sort_by(|a, b| (&a.group_key, &a.receiver).cmp(&(&b.group_key, &b.receiver)));
        Ok(NotifyState {
            silences,
            acks,
            groups,
            nflog,
        })
    }

    /// Reserves `count` outbox sequence numbers; returns the first.
    async fn next_seq(&self, count: usize) -> Result<i64> {
        let resp = self
            .update_item(COUNTER, "outbox-seq")
            .await?
            .update_expression("ADD #n :c")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":c", n(count as i64))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| super::err("UpdateItem", &e))?;
        let last = resp
            .attributes()
            .and_then(|a| get_n(a, "n"))
            .ok_or_else(|| Error::Store("outbox counter without a value".into()))?;
        Ok(last - count as i64 + 1)
    }

    async fn write_commit(&self, f: &FlushCommit) -> Result<()> {
        // Outbox first (see the module docs): a crash after this re-plans onto the same ids.
        if !f.notifications.is_empty() {
            let mut seq = self.next_seq(f.notifications.len()).await?;
            for note in &f.notifications {
                let e = OutboxEntry::queued(note.clone());
                let r = self
                    .put_item()
                    .await?
                    .item("pk", s(OUTBOX))
                    .item("sk", s(&note.id))
                    .item("receiver", s(&note.receiver))
                    .item("state", s(OutboxState::Pending.as_str()))
                    .item("next_attempt_at", n(ms(e.next_attempt_at)))
                    .item("seq", n(seq))
                    .item("body", s(to_json(&e)?))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await;
                seq += 1;
                // Already there: a re-plan after a crash wrote the same id.
                written("PutItem", r)?;
            }
            self.failpoint("flush-after-outbox")?;
        }
        for e in &f.nflog {
            self.put_body(NFLOG, &nflog_key(&e.group_key, &e.receiver), e)
                .await?;
        }
        for g in &f.groups_saved {
            self.put_body(GROUP, &g.key, g).await?;
        }
        for k in &f.groups_deleted {
            self.delete(GROUP, k).await?;
        }
        for fp in &f.acks_announced {
            if let Some(item) = self.get(ACK, fp).await? {
                let mut a: Ack = body(&item)?;
                a.announced = true;
                self.put_body(ACK, fp, &a).await?;
            }
        }
        for (g, r) in &f.nflog_deleted {
            self.delete(NFLOG, &nflog_key(g, r)).await?;
        }
        for id in &f.silences_deleted {
            self.delete(SILENCE, id).await?;
        }
        for fp in &f.acks_deleted {
            self.delete(ACK, fp).await?;
        }
        for id in &f.silences_noticed {
            if let Some(item) = self.get(SILENCE, id).await? {
                let mut sl: Silence = body(&item)?;
                sl.expiry_noticed = true;
                self.put_body(SILENCE, id, &sl).await?;
            }
        }
        Ok(())
    }

    /// Takes the flush lease, waiting for another holder up to `FLUSH_WAIT`; false if it is
    /// still held then.
    async fn lock_flush(&self) -> Result<bool> {
        let give_up = std::time::Instant::now() + FLUSH_WAIT;
        let mut pause = Duration::from_millis(50);
        loop {
            let now = wall_ms();
            let r = self
                .put_item()
                .await?
                .item("pk", s(LOCK))
                .item("sk", s("flush"))
                .item("owner", s(&self.owner))
                .item("lease_until", n(now + FLUSH_LEASE.as_millis() as i64))
                .condition_expression("attribute_not_exists(pk) OR lease_until < :now OR #o = :me")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":me", s(&self.owner))
                .send()
                .await;
            if written("PutItem", r)? {
                return Ok(true);
            }
            if std::time::Instant::now() >= give_up {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn unlock_flush(&self) -> Result<()> {
        let r = self
            .delete_item(LOCK, "flush")
            .await?
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(&self.owner))
            .send()
            .await;
        // Not written: our lease lapsed and another replica holds it now, nothing of ours to
        // release.
        written("DeleteItem", r).map(|_| ())
    }
}

fn nflog_key(group: &str, receiver: &str) -> String {
    format!("{group}{NFLOG_SEP}{receiver}")
}

#[async_trait]
impl PipelineStore for DynamoStore {
    async fn add_silence(&self, sl: &Silence) -> Result<()> {
        self.put_body(SILENCE, &sl.id, sl).await
    }

    async fn list_silences(&self) -> Result<Vec<Silence>> {
        Ok(self.read_state().await?.silences)
    }

    async fn expire_silence(&self, id: &str, at: Timestamp) -> Result<bool> {
        let Some(item) = self.get(SILENCE, id).await? else {
            return Ok(false);
        };
        let mut sl: Silence = body(&item)?;
        if sl.ends_at > at {
            sl.ends_at = at.max(sl.starts_at);
            self.put_body(SILENCE, id, &sl).await?;
        }
        Ok(true)
    }

    async fn ack(&self, a: &Ack) -> Result<()> {
        self.put_body(ACK, &a.fingerprint, a).await
    }

    async fn load_notify_state(&self) -> Result<NotifyState> {
        self.read_state().await
    }

    async fn commit_flush(&self, commit: &FlushCommit) -> Result<()> {
        if !self.lock_flush().await? {
            return Err(Error::Store(format!(
                "dynamodb table {}: another replica has held the flush lease for over {}s",
                self.table,
                FLUSH_WAIT.as_secs()
            )));
        }
        self.failpoint("flush-after-lock")?;
        let r = self.write_commit(commit).await;
        let u = self.unlock_flush().await;
        r.and(u)
    }

    async fn flush_atomically(&self, plan: &PlanFn) -> Result<Flush> {
        if !self.lock_flush().await? {
            tracing::debug!(table = %self.table, "another replica holds the flush lease; not flushing now");
            return Ok(Flush {
                busy: true,
                ..Default::default()
            });
        }
        let r = async {
            self.failpoint("flush-after-lock")?;
            let alerts = self.load_alerts().await?;
            let state = self.read_state().await?;
            let alerts: Vec<std::sync::Arc<crate::alert::Alert>> =
                alerts.into_iter().map(std::sync::Arc::new).collect();
            let flush = plan(&alerts, &state);
            self.write_commit(&flush.commit).await?;
            Ok::<Flush, Error>(flush)
        }
        .await;
        let u = self.unlock_flush().await;
        match (r, u) {
            (Ok(f), Ok(())) => Ok(f),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }
}
