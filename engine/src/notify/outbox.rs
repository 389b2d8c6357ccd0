//! The durable outbox: every notification is in the store before it is sent, and is marked
//! delivered only on a 2xx. A 429 holds the whole receiver for its `Retry-After`; 5xx and timeouts
//! back off exponentially; other 4xx, and the last failed retry, dead-letter the entry with the
//! reason and raise a meta-alert (`NotificationFailed`) that goes through the pipeline like any
//! alert. Per-receiver token buckets pace a storm instead of dropping it. A restarted process
//! simply picks up the pending entries. Time comes from the caller (`at`), so tests drive it
//! with a manual clock.

use super::{Notification, Notifier};
use crate::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::store::Store;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How long delivered and dead entries stay in the outbox (for `tripline` to show and tests to
/// read) before they are pruned.
pub const KEEP_DONE: Duration = Duration::days(7);

/// How long a process holds an entry it is sending, at least; if it dies mid-send the entry is
/// retried after the lease. See `send_lease` for receivers with long timeouts.
pub const SEND_LEASE: Duration = Duration::seconds(20);

/// The lease for sending `n` through `notifier`: twice the time its requests may take, so that
/// a slow receiver's send never outlives its lease and is taken over by another replica.
pub fn send_lease(notifier: &dyn Notifier, n: &Notification) -> Duration {
    let worst = notifier
        .request_timeout()
        .map(|t| t * notifier.cost(n).max(1))
        .and_then(|t| Duration::from_std(t).ok())
        .unwrap_or_else(Duration::zero);
    SEND_LEASE.max(worst * 2)
}

/// Rule id of the meta-alerts raised when notifications to a receiver are dead-lettered.
pub const NOTIFY_ERROR: &str = "tripline/notify-error";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Pending,
    Delivered,
    /// Given up on: a permanent error, or retries exhausted.
    Dead,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub notification: Notification,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
}

impl OutboxEntry {
    pub fn new(n: Notification) -> Self {
        OutboxEntry {
            next_attempt_at: n.created_at,
            notification: n,
            state: OutboxState::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            backoff: Duration::seconds(1),
            max_backoff: Duration::minutes(5),
        }
    }
}

impl RetryPolicy {
    /// Delay after the `attempts`-th failed attempt: backoff · 2^(attempts−1), capped.
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 1i32
            .checked_shl(attempts.saturating_sub(1).min(30))
            .unwrap_or(i32::MAX);
        // `backoff * factor` can leave chrono's range for a long configured backoff.
        self.backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }
}

/// A token bucket on the caller's time: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Timestamp,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32, now: Timestamp) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        if now > self.last {
            let secs = (now - self.last).num_milliseconds() as f64 / 1000.0;
            self.tokens = (self.tokens + secs * self.rate).min(self.burst);
            self.last = now;
        }
    }

    /// Takes `cost` tokens, or says when they will be there. A cost above the burst is allowed
    /// once the bucket is full (it then goes into debt), so a large request is slow, not stuck.
    pub fn take(&mut self, cost: u32, now: Timestamp) -> std::result::Result<(), Timestamp> {
        self.refill(now);
        let cost = f64::from(cost);
        let need = cost.min(self.burst);
        if self.tokens + 1e-9 >= need {
            self.tokens -= cost;
            Ok(())
        } else {
            let wait_ms = ((need - self.tokens) / self.rate * 1000.0).ceil() as i64;
            Err(now + Duration::milliseconds(wait_ms.max(1)))
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryFailure {
    pub id: String,
    pub receiver: String,
    pub message: String,
}

/// What one delivery pass did.
#[derive(Debug, Clone, Default)]
pub struct DeliveryReport {
    pub delivered: Vec<String>,
    /// Deliveries per receiver.
    pub sent: BTreeMap<String, usize>,
    /// Failed attempts that will be retried.
    pub retrying: Vec<DeliveryFailure>,
    /// Entries given up on.
    pub dead: Vec<DeliveryFailure>,
    /// Entries held back by a receiver's pace.
    pub paced: usize,
}

impl DeliveryReport {
    fn merge(&mut self, o: DeliveryReport) {
        self.delivered.extend(o.delivered);
        for (r, n) in o.sent {
            *self.sent.entry(r).or_default() += n;
        }
        self.retrying.extend(o.retrying);
        self.dead.extend(o.dead);
        self.paced += o.paced;
    }
}

pub struct Outbox {
    store: Arc<dyn Store>,
    notifiers: BTreeMap<String, Arc<dyn Notifier>>,
    buckets: Mutex<BTreeMap<String, TokenBucket>>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("receivers", &self.notifiers.keys().collect::<Vec<_>>())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        notifiers: &[Arc<dyn Notifier>],
        policy: RetryPolicy,
    ) -> Self {
        Outbox {
            store,
            notifiers: notifiers
                .iter()
                .map(|n| (n.name().to_string(), n.clone()))
                .collect(),
            buckets: Mutex::new(BTreeMap::new()),
            policy,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// One pass: tries every pending entry due at `at`, each receiver in order of creation and
    /// receivers side by side.
    pub async fn deliver_due(&self, at: Timestamp) -> Result<DeliveryReport> {
        self.store.prune_outbox(at - KEEP_DONE).await?;
        let due = self.store.outbox_due(at, 10_000).await?;
        if due.is_empty() {
            return Ok(DeliveryReport::default());
        }
        let failing: BTreeMap<String, Alert> = self
            .store
            .load_alerts_of_instance(NOTIFY_ERROR)
            .await?
            .into_iter()
            .filter(|a| a.rule == NOTIFY_ERROR && a.state == AlertState::Firing)
            .filter_map(|a| a.labels.get("receiver").cloned().map(|r| (r, a)))
            .collect();
        let mut by_receiver: BTreeMap<String, Vec<OutboxEntry>> = BTreeMap::new();
        for e in due {
            by_receiver
                .entry(e.notification.receiver.clone())
                .or_default()
                .push(e);
        }
        let runs = by_receiver.into_iter().map(|(r, entries)| {
            let failing = failing.get(&r).cloned();
            async move { self.deliver_receiver(&r, entries, failing, at).await }
        });
        let mut report = DeliveryReport::default();
        for r in futures::future::join_all(runs).await {
            report.merge(r?);
        }
        Ok(report)
    }

    async fn deliver_receiver(
        &self,
        receiver: &str,
        entries: Vec<OutboxEntry>,
        mut failing: Option<Alert>,
        at: Timestamp,
    ) -> Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        let notifier = self.notifiers.get(receiver);
        let total = entries.len();
        for (i, mut e) in entries.into_iter().enumerate() {
            let Some(notifier) = notifier else {
                self.dead_letter(
                    &mut e,
                    format!("no receiver named {receiver:?} is configured"),
                    at,
                    &mut report,
                )
                .await?;
                continue;
            };
            if let Some((rate, burst)) = notifier.rate_limit() {
                let ready = {
                    let mut buckets = self.buckets.lock().expect("bucket lock");
                    let b = buckets
                        .entry(receiver.to_string())
                        .or_insert_with(|| TokenBucket::new(rate, burst, at));
                    b.take(notifier.cost(&e.notification), at)
                };
                if let Err(ready_at) = ready {
                    self.store.outbox_defer(receiver, ready_at).await?;
                    report.paced += total - i;
                    tracing::debug!(receiver, held = total - i, until = %ready_at, "paced");
                    break;
                }
            }
            if !self
                .store
                .outbox_claim(
                    &e.notification.id,
                    at,
                    at + send_lease(notifier.as_ref(), &e.notification),
                )
                .await?
            {
                continue; // another process is sending it
            }
            e.attempts += 1;
            match notifier.notify(&e.notification).await {
                Ok(()) => {
                    e.state = OutboxState::Delivered;
                    e.delivered_at = Some(at);
                    e.next_attempt_at = at;
                    e.last_error = None;
                    self.store.outbox_update(&e).await?;
                    tracing::info!(receiver, id = %e.notification.id, attempts = e.attempts, "notification delivered");
                    report.delivered.push(e.notification.id.clone());
                    *report.sent.entry(receiver.to_string()).or_default() += 1;
                    if let Some(mut a) = failing.take() {
                        a.state = AlertState::Resolved;
                        a.ends_at = Some(at);
                        a.updated_at = at;
                        self.store.save_alerts(&[a], &[]).await?;
                    }
                }
                Err(err) if err.retryable && e.attempts < self.policy.max_attempts => {
                    let backoff = self.policy.delay(e.attempts);
                    let asked = err.retry_after.and_then(|d| Duration::from_std(d).ok());
                    let delay = asked.map_or(backoff, |a| a.max(Duration::milliseconds(1)));
                    e.next_attempt_at = at + delay;
                    e.last_error = Some(err.message.clone());
                    self.store.outbox_update(&e).await?;
                    tracing::warn!(receiver, id = %e.notification.id, attempt = e.attempts, retry_in_ms = delay.num_milliseconds(), "delivery failed, will retry: {}", err.message);
                    report.retrying.push(DeliveryFailure {
                        id: e.notification.id.clone(),
                        receiver: receiver.to_string(),
                        message: err.message,
                    });
                    // The service is refusing or down: hold its other entries as long.
                    self.store.outbox_defer(receiver, e.next_attempt_at).await?;
                    report.paced += total - i - 1;
                    break;
                }
                Err(err) => {
                    let reason = if err.retryable {
                        format!("gave up after {} attempts: {}", e.attempts, err.message)
                    } else {
                        format!("permanent error: {}", err.message)
                    };
                    self.dead_letter(&mut e, reason, at, &mut report).await?;
                }
            }
        }
        Ok(report)
    }

    async fn dead_letter(
        &self,
        e: &mut OutboxEntry,
        reason: String,
        at: Timestamp,
        report: &mut DeliveryReport,
    ) -> Result<()> {
        let receiver = e.notification.receiver.clone();
        e.state = OutboxState::Dead;
        e.last_error = Some(reason.clone());
        e.next_attempt_at = at;
        self.store.outbox_update(e).await?;
        tracing::error!(receiver = %receiver, id = %e.notification.id, "notification dead-lettered: {reason}");
        report.dead.push(DeliveryFailure {
            id: e.notification.id.clone(),
            receiver: receiver.clone(),
            message: reason.clone(),
        });
        self.raise_meta_alert(&receiver, &reason, at).await
    }

    async fn raise_meta_alert(&self, receiver: &str, reason: &str, at: Timestamp) -> Result<()> {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), "NotificationFailed".into());
        labels.insert("receiver".into(), receiver.into());
        let fp = fingerprint(NOTIFY_ERROR, &labels);
        let existing = self
            .store
            .load_alerts_by_fingerprint(std::slice::from_ref(&fp))
            .await?
            .into_iter()
            .find(|a| a.fingerprint == fp && a.state == AlertState::Firing);
        let alert = match existing {
            Some(mut a) => {
                a.summary = format!("notifications to {receiver} are failing: {reason}");
                a.last_active = at;
                a.updated_at = at;
                a
            }
            None => Alert {
                fingerprint: fp,
                rule: NOTIFY_ERROR.into(),
                instance: NOTIFY_ERROR.into(),
                labels,
                state: AlertState::Firing,
                severity: Severity::Warning,
                summary: format!("notifications to {receiver} are failing: {reason}"),
                runbook: None,
                value: None,
                details: Default::default(),
                active_since: at,
                starts_at: Some(at),
                ends_at: None,
                last_active: at,
                updated_at: at,
                severity_changed_at: None,
            },
        };
        self.store.save_alerts(&[alert], &[]).await
    }

    /// Entries still waiting to be delivered (the daemon's `tripline_outbox_depth`).
    pub async fn pending(&self) -> Result<usize> {
        self.store.outbox_pending_count().await
    }

    /// Delivers until nothing is pending or `within` has passed, waiting (for real) between
    /// passes for the next entry to come due. For `tripline deliver` and the daemon.
    pub async fn deliver_until_idle(
        &self,
        clock: &dyn Clock,
        within: std::time::Duration,
    ) -> Result<DeliveryReport> {
        let deadline = clock.now() + Duration::from_std(within).unwrap_or(Duration::MAX);
        let mut report = DeliveryReport::default();
        loop {
            let now = clock.now();
            report.merge(self.deliver_due(now).await?);
            let Some(next) = self.store.outbox_next_due().await? else {
                break;
            };
            let now = clock.now();
            if next > deadline {
                break;
            }
            if next > now {
                let wait = (next - now)
                    .to_std()
                    .unwrap_or_default()
                    .min(std::time::Duration::from_secs(5));
                tokio::time::sleep(wait).await;
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::seconds(s)
    }

    #[test]
    fn bucket_paces_on_injected_time() {
        let mut b = TokenBucket::new(1.0, 1, t(0));
        assert!(b.take(1, t(0)).is_ok());
        assert_eq!(b.take(1, t(0)), Err(t(1)));
        assert!(b.take(1, t(1)).is_ok());
        let mut pd = TokenBucket::new(2.0, 10, t(0));
        assert!(pd.take(10, t(0)).is_ok());
        assert_eq!(pd.take(1, t(0)), Err(t(0) + Duration::milliseconds(500)));
    }

    #[test]
    fn the_send_lease_outlasts_a_slow_receivers_requests() {
        use crate::notify::{console::ConsoleNotifier, pagerduty::PagerdutyNotifier};
        use crate::notify::{redact::Secret, webhook::WebhookNotifier, NotificationStatus};
        let alerts: Vec<Alert> = (0..5)
            .map(|i| {
                crate::pipeline::testutil::alert(
                    "Down",
                    &[("i", &i.to_string())],
                    AlertState::Firing,
                )
            })
            .collect();
        let n = Notification {
            id: "n1".into(),
            receiver: "r".into(),
            status: NotificationStatus::Firing,
            group_key: "g".into(),
            group_labels: Labels::new(),
            alerts,
            created_at: t(0),
            acknowledged_by: None,
        };
        let secs = std::time::Duration::from_secs;
        let console = ConsoleNotifier::stdout("c", Default::default());
        assert_eq!(send_lease(&console, &n), SEND_LEASE);
        // One request with the default 10s timeout: the floor.
        let hook = WebhookNotifier::new(
            "w",
            Secret::new("http://127.0.0.1:9/".to_string()),
            None,
            0,
            None,
        )
        .unwrap();
        assert_eq!(send_lease(&hook, &n), SEND_LEASE);
        let slow = WebhookNotifier::new(
            "w",
            Secret::new("http://127.0.0.1:9/".to_string()),
            Some(secs(30)),
            0,
            None,
        )
        .unwrap();
        assert_eq!(send_lease(&slow, &n), Duration::seconds(60));
        // PagerDuty sends one event per alert: 5 requests of up to 10s.
        let pd =
            PagerdutyNotifier::new("pd", Secret::new("k".to_string()), None, None, None).unwrap();
        assert_eq!(send_lease(&pd, &n), Duration::seconds(100));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::seconds(1));
        assert_eq!(p.delay(4), Duration::seconds(8));
        assert_eq!(p.delay(30), Duration::minutes(5));
    }
}
