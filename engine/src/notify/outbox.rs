//! The durable outbox: every notification is in the store before it is sent, and is marked
//! delivered only on a 2xx.
//!
//! * A **429** is the receiver pacing us, not failing: it never counts as a failed try. It
//!   holds the whole receiver (every process sharing the store: the hold is a stored mark) for
//!   its `Retry-After`, capped at `max_backoff` so that no answer can freeze a receiver for a day.
//! * A **5xx, 408 or timeout** backs that entry off exponentially, on its own: the receiver's
//!   other groups go on being delivered (no head-of-line blocking). Within one group and
//!   receiver, entries go out in the order they were queued: a newer one waits for an older one
//!   still being retried, so a receiver never hears "resolved" before the "firing" it resolves.
//! * A transient failure (429, 5xx, 408, timeout, dropped connection) is retried until the
//!   entry is `max_age` old: a receiver down for an hour loses nothing. Only other 4xx, a
//!   failure of an entry older than `max_age`, or (opt-in) the `max_attempts`-th failed try
//!   dead-letter the entry with the reason and raise a `NotificationFailed`
//!   meta-alert that goes through the pipeline like any alert. A receiver that has been unable
//!   to take an entry for `held_back_after` raises `ReceiverHeldBack`. Both resolve on the
//!   receiver's next success.
//!
//! Per-receiver token buckets (in memory) pace a storm instead of dropping it. A restarted
//! process simply picks up the pending entries. Time comes from the caller (`at`), so tests
//! drive it with a manual clock.

mod store;
pub use store::OutboxStore;

use super::{Notification, Notifier};
use crate::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use crate::clock::{Clock, Timestamp};
use crate::error::Result;
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

pub use crate::alert::NOTIFY_ERROR;

/// `alertname` of the meta-alert raised when an entry is dead-lettered.
pub const NOTIFICATION_FAILED: &str = "NotificationFailed";
/// `alertname` of the meta-alert raised when a receiver has refused or failed every try for
/// longer than `held_back_after`.
pub const RECEIVER_HELD_BACK: &str = "ReceiverHeldBack";

/// The stored mark (`Store::get_meta`) holding a receiver after a 429, until an RFC 3339 instant.
fn hold_key(receiver: &str) -> String {
    format!("outbox-hold:{receiver}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Pending,
    Delivered,
    /// Given up on: a permanent error, retries exhausted, or too old.
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
    /// Shared, never changed after queueing: a store can hand out an entry it keeps decoded
    /// without copying the notification's alerts.
    pub notification: Arc<Notification>,
    pub state: OutboxState,
    /// Tries that failed or succeeded, not counting rate-limit answers (`throttled`).
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    /// Answers 429 (rate limited): never counted toward `max_attempts`.
    #[serde(default)]
    pub throttled: u32,
    /// When its first try failed (or was refused), while it has not been delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
}

impl OutboxEntry {
    pub fn new(n: Notification) -> Self {
        Self::queued(Arc::new(n))
    }

    /// A new pending entry for a notification a plan queued, sharing it.
    pub fn queued(n: Arc<Notification>) -> Self {
        OutboxEntry {
            next_attempt_at: n.created_at,
            notification: n,
            state: OutboxState::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
            throttled: 0,
            failing_since: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Opt-in: failed tries (5xx, timeouts; never 429s) before an entry is dead-lettered.
    /// `None` (the default): transient failures are retried until `max_age`.
    pub max_attempts: Option<u32>,
    pub backoff: Duration,
    /// The longest wait between tries, and the cap on a receiver's `Retry-After`.
    pub max_backoff: Duration,
    /// An entry that fails when older than this is dead-lettered, whatever the answer.
    pub max_age: Duration,
    /// A receiver that has not taken an entry for this long raises `ReceiverHeldBack`.
    pub held_back_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: None,
            backoff: Duration::seconds(1),
            max_backoff: Duration::minutes(5),
            max_age: Duration::hours(6),
            held_back_after: Duration::minutes(10),
        }
    }
}

impl RetryPolicy {
    /// Delay after the `attempts`-th failed attempt: backoff · 2^(attempts−1), capped.
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 1i32
            .checked_shl(attempts.saturating_sub(1).min(30))
            .unwrap_or(i32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// How long a 429 holds the receiver: what it asked for (at least 1 ms), else the backoff
    /// for the `throttled`-th refusal; never more than `max_backoff`.
    pub fn hold(&self, retry_after: Option<std::time::Duration>, throttled: u32) -> Duration {
        let asked = retry_after.map(|d| Duration::from_std(d).unwrap_or(Duration::MAX));
        asked
            .map_or_else(
                || self.delay(throttled),
                |a| a.max(Duration::milliseconds(1)),
            )
            .min(self.max_backoff)
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
    /// The receiver answered 429 (or throttled): pacing, not a failure.
    pub rate_limited: bool,
}

/// What one delivery pass did.
#[derive(Debug, Clone, Default)]
pub struct DeliveryReport {
    pub delivered: Vec<String>,
    /// Deliveries per receiver.
    pub sent: BTreeMap<String, usize>,
    /// Failed attempts that will be retried (429s included).
    pub retrying: Vec<DeliveryFailure>,
    /// Entries given up on.
    pub dead: Vec<DeliveryFailure>,
    /// Due entries held back by a receiver's pace or hold, or behind an older entry of their group.
    pub paced: usize,
    /// When a next pass can make progress: the earliest of a pending entry coming due, a paced
    /// receiver's next token and the end of a receiver's hold. `None`: nothing is pending.
    pub wake_at: Option<Timestamp>,
}

impl DeliveryReport {
    /// Adds a later pass's outcome; `wake_at` becomes the later pass's.
    pub fn absorb(&mut self, o: DeliveryReport) {
        let wake = o.wake_at;
        self.merge(o);
        self.wake_at = wake;
    }

    fn merge(&mut self, o: DeliveryReport) {
        self.delivered.extend(o.delivered);
        for (r, n) in o.sent {
            *self.sent.entry(r).or_default() += n;
        }
        self.retrying.extend(o.retrying);
        self.dead.extend(o.dead);
        self.paced += o.paced;
        self.wake(o.wake_at);
    }

    fn wake(&mut self, t: Option<Timestamp>) {
        self.wake_at = match (self.wake_at, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

pub struct Outbox {
    store: Arc<dyn OutboxStore>,
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
        store: Arc<dyn OutboxStore>,
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

    pub fn store(&self) -> &Arc<dyn OutboxStore> {
        &self.store
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// One pass: tries every pending entry due at `at`, each receiver in order of creation and
    /// receivers side by side.
    pub async fn deliver_due(&self, at: Timestamp) -> Result<DeliveryReport> {
        self.store.prune_outbox(at - KEEP_DONE).await?;
        let pending = self.store.outbox_pending(10_000).await?;
        if pending.is_empty() {
            return Ok(DeliveryReport::default());
        }
        let mut meta: BTreeMap<String, Vec<Alert>> = BTreeMap::new();
        for a in self.store.load_alerts_of_instance(NOTIFY_ERROR).await? {
            if a.rule == NOTIFY_ERROR && a.state == AlertState::Firing {
                if let Some(r) = a.labels.get("receiver") {
                    meta.entry(r.clone()).or_default().push(a);
                }
            }
        }
        let mut by_receiver: BTreeMap<String, Vec<OutboxEntry>> = BTreeMap::new();
        for e in pending {
            by_receiver
                .entry(e.notification.receiver.clone())
                .or_default()
                .push(e);
        }
        let runs = by_receiver.into_iter().map(|(r, entries)| {
            let meta = meta.remove(&r).unwrap_or_default();
            async move { self.deliver_receiver(&r, entries, meta, at).await }
        });
        let mut report = DeliveryReport::default();
        for r in futures::future::join_all(runs).await {
            report.merge(r?);
        }
        Ok(report)
    }

    /// Until when a 429 holds `receiver`, if it still does at `at`.
    async fn held_until(&self, receiver: &str, at: Timestamp) -> Result<Option<Timestamp>> {
        Ok(self
            .store
            .get_meta(&hold_key(receiver))
            .await?
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .filter(|t| *t > at))
    }

    async fn deliver_receiver(
        &self,
        receiver: &str,
        entries: Vec<OutboxEntry>,
        mut meta: Vec<Alert>,
        at: Timestamp,
    ) -> Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        let notifier = self.notifiers.get(receiver);
        let due = |e: &OutboxEntry| e.next_attempt_at <= at;
        if notifier.is_some() {
            if let Some(until) = self.held_until(receiver, at).await? {
                report.paced = entries.iter().filter(|e| due(e)).count();
                report.wake(Some(until));
                return Ok(report);
            }
        }
        // Groups with an older entry still pending: their newer entries wait (order per group).
        let mut busy_groups: std::collections::HashSet<String> = Default::default();
        // Set when this pass stops for the receiver: when the next one can go on.
        let mut stopped: Option<Timestamp> = None;
        // Sends in flight, at most one per group (its newer entries wait for it, as they would
        // for an older entry being retried) and at most `in_flight()` in all. The pass's first
        // send goes alone: a receiver refusing (429) or hanging costs one request per pass, as
        // when sends went one by one; only after it took one do the others overlap.
        let width = notifier.map_or(1, |n| n.in_flight().max(1));
        let mut flying = futures::stream::FuturesUnordered::new();
        let mut flying_groups: std::collections::HashSet<String> = Default::default();
        let mut took_one = false;
        let mut queue: std::collections::VecDeque<OutboxEntry> = entries.into();
        loop {
            let room = if took_one { width } else { 1 };
            let next = if flying.len() < room {
                queue
                    .iter()
                    .position(|e| !flying_groups.contains(&e.notification.group_key))
                    .and_then(|i| queue.remove(i))
            } else {
                None
            };
            let Some(mut e) = next else {
                // Nothing to start now: take the next send that lands, or end the pass.
                let Some((mut e, sent)): Option<(
                    OutboxEntry,
                    std::result::Result<(), super::NotifyError>,
                )> = futures::StreamExt::next(&mut flying).await
                else {
                    break;
                };
                flying_groups.remove(&e.notification.group_key);
                took_one |= sent.is_ok();
                self.landed(
                    &mut e,
                    sent,
                    receiver,
                    at,
                    &mut meta,
                    &mut busy_groups,
                    &mut stopped,
                    &mut report,
                )
                .await?;
                continue;
            };
            let group = e.notification.group_key.clone();
            if !due(&e) {
                report.wake(Some(e.next_attempt_at));
                busy_groups.insert(group);
                continue;
            }
            if let Some(resume) = stopped {
                // Due now, but this pass stopped for the receiver: it resumes then.
                report.paced += 1;
                report.wake(Some(resume));
                busy_groups.insert(group);
                continue;
            }
            if busy_groups.contains(&group) {
                // Behind an older entry of its group, whose own time is in `wake_at` already.
                report.paced += 1;
                continue;
            }
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
                    tracing::debug!(receiver, until = %ready_at, "paced");
                    report.paced += 1;
                    report.wake(Some(ready_at));
                    busy_groups.insert(group);
                    stopped = Some(ready_at);
                    continue;
                }
            }
            let lease_until = at + send_lease(notifier.as_ref(), &e.notification);
            if !self
                .store
                .outbox_claim(&e.notification.id, at, lease_until)
                .await?
            {
                // Another process is sending it; if it dies, the lease hands it back.
                report.wake(Some(lease_until));
                busy_groups.insert(group);
                continue;
            }
            flying_groups.insert(group);
            flying.push(async move {
                let sent = notifier.notify(&e.notification).await;
                (e, sent)
            });
        }
        Ok(report)
    }

    /// What one send's outcome does to its entry, the pass and the report.
    #[allow(clippy::too_many_arguments)]
    async fn landed(
        &self,
        e: &mut OutboxEntry,
        sent: std::result::Result<(), super::NotifyError>,
        receiver: &str,
        at: Timestamp,
        meta: &mut Vec<Alert>,
        busy_groups: &mut std::collections::HashSet<String>,
        stopped: &mut Option<Timestamp>,
        report: &mut DeliveryReport,
    ) -> Result<()> {
        match sent {
            Ok(()) => {
                e.attempts += 1;
                e.state = OutboxState::Delivered;
                e.delivered_at = Some(at);
                e.next_attempt_at = at;
                e.last_error = None;
                e.failing_since = None;
                self.store.outbox_update(e).await?;
                tracing::info!(receiver, id = %e.notification.id, attempts = e.attempts, throttled = e.throttled, "notification delivered");
                report.delivered.push(e.notification.id.clone());
                *report.sent.entry(receiver.to_string()).or_default() += 1;
                self.resolve_meta(meta, at).await?;
            }
            Err(err) if err.retryable => {
                let throttled = err.rate_limited;
                if throttled {
                    e.throttled += 1;
                } else {
                    e.attempts += 1;
                }
                let since = *e.failing_since.get_or_insert(at);
                let age = at - e.notification.created_at;
                if age >= self.policy.max_age {
                    let reason = format!(
                        "gave up after {} ({} attempts, {} rate-limited): {}",
                        crate::clock::format_duration(age),
                        e.attempts,
                        e.throttled,
                        err.message
                    );
                    return self.dead_letter(e, reason, at, report).await;
                }
                if !throttled
                    && self
                        .policy
                        .max_attempts
                        .is_some_and(|max| e.attempts >= max)
                {
                    let reason = format!("gave up after {} attempts: {}", e.attempts, err.message);
                    return self.dead_letter(e, reason, at, report).await;
                }
                let delay = if throttled {
                    self.policy.hold(err.retry_after, e.throttled)
                } else {
                    self.policy.delay(e.attempts)
                };
                e.next_attempt_at = at + delay;
                e.last_error = Some(err.message.clone());
                self.store.outbox_update(e).await?;
                tracing::warn!(receiver, id = %e.notification.id, attempt = e.attempts, throttled = e.throttled, retry_in_ms = delay.num_milliseconds(), "delivery failed, will retry: {}", err.message);
                report.retrying.push(DeliveryFailure {
                    id: e.notification.id.clone(),
                    receiver: receiver.to_string(),
                    message: err.message.clone(),
                    rate_limited: throttled,
                });
                report.wake(Some(e.next_attempt_at));
                busy_groups.insert(e.notification.group_key.clone());
                if throttled {
                    // The service asked everyone to wait: hold all of this receiver's entries,
                    // in every process sharing the store.
                    self.store
                        .set_meta(&hold_key(receiver), &e.next_attempt_at.to_rfc3339())
                        .await?;
                }
                if at - since >= self.policy.held_back_after {
                    self.raise_held_back(receiver, since, &err.message, at)
                        .await?;
                }
                // A failing service: the rest waits for the next pass (at once, unless
                // held), so that a hanging receiver costs one timeout per pass, not one
                // per entry, and the caller can flush in between.
                *stopped = Some(if throttled { e.next_attempt_at } else { at });
            }
            Err(err) => {
                e.attempts += 1;
                let reason = format!("permanent error: {}", err.message);
                self.dead_letter(e, reason, at, report).await?;
            }
        }
        Ok(())
    }

    /// The receiver took an entry: its delivery meta-alerts resolve.
    async fn resolve_meta(&self, meta: &mut Vec<Alert>, at: Timestamp) -> Result<()> {
        if meta.is_empty() {
            return Ok(());
        }
        let resolved: Vec<Alert> = meta
            .drain(..)
            .map(|mut a| {
                a.state = AlertState::Resolved;
                a.ends_at = Some(at);
                a.updated_at = at;
                a
            })
            .collect();
        self.store.save_alerts(&resolved, &[]).await
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
            rate_limited: false,
        });
        self.raise_meta_alert(
            NOTIFICATION_FAILED,
            &receiver,
            format!("notifications to {receiver} are failing: {reason}"),
            at,
            at,
        )
        .await
    }

    async fn raise_held_back(
        &self,
        receiver: &str,
        since: Timestamp,
        last: &str,
        at: Timestamp,
    ) -> Result<()> {
        let summary = format!(
            "{receiver} has taken no notification for {} (since {}): {last}",
            crate::clock::format_duration(at - since),
            since.to_rfc3339()
        );
        self.raise_meta_alert(RECEIVER_HELD_BACK, receiver, summary, since, at)
            .await
    }

    async fn raise_meta_alert(
        &self,
        alertname: &str,
        receiver: &str,
        summary: String,
        since: Timestamp,
        at: Timestamp,
    ) -> Result<()> {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), alertname.into());
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
                a.summary = summary;
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
                summary,
                runbook: None,
                value: None,
                details: Default::default(),
                active_since: since,
                starts_at: Some(at),
                ends_at: None,
                last_active: at,
                updated_at: at,
                severity_changed_at: None,
                keep_firing_since: None,
            },
        };
        self.store.save_alerts(&[alert], &[]).await
    }

    /// Entries still waiting to be delivered (the daemon's `tripline_outbox_depth`).
    pub async fn pending(&self) -> Result<usize> {
        self.store.outbox_pending_count().await
    }

    /// Delivers until nothing is pending or `within` has passed, waiting (for real) between
    /// passes for the next entry to come due or the next paced send. For `tripline deliver`,
    /// one-shot runs (`eval`, Lambda) and the daemon's drain at shutdown; `clock` must move.
    pub async fn deliver_until_idle(
        &self,
        clock: &dyn Clock,
        within: std::time::Duration,
    ) -> Result<DeliveryReport> {
        let deadline = clock.now() + Duration::from_std(within).unwrap_or(Duration::MAX);
        let mut report = DeliveryReport::default();
        loop {
            let pass = self.deliver_due(clock.now()).await?;
            report.absorb(pass);
            let Some(next) = report.wake_at else { break };
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
            alerts: alerts.into_iter().map(Arc::new).collect(),
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
    fn a_receivers_retry_after_is_capped_at_max_backoff() {
        use crate::notify::http::parse_retry_after;
        let p = RetryPolicy::default();
        let cap = Duration::minutes(5);
        for asked in ["86400", "99999999999", "Thu, 01 Jan 2099 00:00:00 GMT"] {
            assert_eq!(p.hold(parse_retry_after(asked), 1), cap, "{asked}");
        }
        assert_eq!(p.hold(parse_retry_after("1"), 1), Duration::seconds(1));
        assert_eq!(p.hold(parse_retry_after("0"), 1), Duration::milliseconds(1));
        // No Retry-After (PagerDuty): exponential by refusals, capped too.
        assert_eq!(p.hold(None, 1), Duration::seconds(1));
        assert_eq!(p.hold(None, 4), Duration::seconds(8));
        assert_eq!(p.hold(None, 40), cap);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::seconds(1));
        assert_eq!(p.delay(4), Duration::seconds(8));
        assert_eq!(p.delay(30), Duration::minutes(5));
    }
}
