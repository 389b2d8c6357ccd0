//! The notification pipeline, in one visible order:
//!
//! ```text
//! redact → silence → inhibit → route → group → escalate → dedup (nflog) → outbox → deliver
//! ```
//!
//! Each stage is a small value testable alone (`silence`, `inhibit`, `route`, `group`,
//! `escalate`, `nflog`); `Pipeline::plan_full` composes them as a pure function of
//! the store's state and an instant (`Pipeline::plan` gives the same without planning again when
//! nothing changed and nothing is due, `memo`), and `Pipeline::flush` reads that state, plans and writes the
//! result back in one transaction: new notifications into the outbox together with the
//! notification log and group timers that decided them. Delivery with retries is
//! `crate::notify::outbox`. Nothing here keeps time in memory, so a one-shot `eval` every minute
//! and a daemon behave alike.

pub mod escalate;
pub mod group;
pub mod inhibit;
pub mod matcher;
mod memo;
pub mod nflog;
mod plan;
pub mod redact;
pub mod route;
pub mod silence;
pub mod status;
mod store;
pub use memo::FULL_REPLAN_ENV;
pub use plan::PlanAlert;
pub use store::PipelineStore;
#[cfg(test)]
pub(crate) mod testutil;

use crate::alert::{Alert, AlertState, Labels, Severity};
pub use crate::alert::{Notification, NotificationStatus};
use crate::clock::Timestamp;
use crate::error::Result;
use escalate::{Ack, EscalationPolicy};
use group::{group_key, group_labels, GroupState};
use inhibit::Inhibitor;
use nflog::{needs_update, NflogEntry};
use redact::Redactor;
use route::{GroupBy, Route};
use silence::{Silence, SilenceStage};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How long the log remembers a group whose alerts all resolved, and expired silences are kept.
const NFLOG_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// The checked notification settings of a config.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub route: Route,
    pub inhibitor: Inhibitor,
    pub policies: BTreeMap<String, EscalationPolicy>,
    pub silences: SilenceStage,
    /// Per receiver; absent means true.
    pub send_resolved: BTreeMap<String, bool>,
    pub redactor: Redactor,
}

impl PipelineConfig {
    /// No routing configured: every alert to every receiver, each alert its own group, no waiting.
    pub fn fan_out(receivers: &[String]) -> Self {
        let mut root = Route::root(None);
        root.group_by = GroupBy::All;
        root.timers.group_wait = chrono::Duration::zero();
        root.timers.group_interval = chrono::Duration::zero();
        root.routes = receivers
            .iter()
            .map(|r| Route {
                id: format!("{{}}/{{receiver={r}}}"),
                receiver: Some(r.clone()),
                continue_: true,
                ..root.clone()
            })
            .collect();
        PipelineConfig {
            route: root,
            inhibitor: Inhibitor::default(),
            policies: BTreeMap::new(),
            silences: SilenceStage::default(),
            send_resolved: BTreeMap::new(),
            redactor: Redactor::default(),
        }
    }
}

/// What the pipeline reads from the store.
#[derive(Debug, Clone, Default)]
pub struct NotifyState {
    pub silences: Vec<Silence>,
    pub acks: Vec<Ack>,
    pub groups: Vec<GroupState>,
    pub nflog: Vec<NflogEntry>,
}

/// What one flush writes back, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct FlushCommit {
    /// Into the outbox; shared with its entries (`OutboxEntry::queued`), not copied.
    pub notifications: Vec<std::sync::Arc<Notification>>,
    pub nflog: Vec<NflogEntry>,
    pub groups_saved: Vec<GroupState>,
    pub groups_deleted: Vec<String>,
    pub acks_announced: Vec<String>,
    pub silences_noticed: Vec<String>,
    /// Housekeeping: log entries of groups gone quiet for a week, acks of alerts no longer firing.
    pub nflog_deleted: Vec<(String, String)>,
    pub acks_deleted: Vec<String>,
    /// Silences that ended more than a week ago.
    pub silences_deleted: Vec<String>,
}

/// A pure plan from the stored alerts and state (`Pipeline::plan` at an instant), handed to the
/// store to run inside its transaction.
pub type PlanFn<'p> =
    dyn for<'a, 'b> Fn(&'a [Arc<Alert>], &'b NotifyState) -> Flush + Send + Sync + 'p;

/// The result of one flush.
#[derive(Debug, Clone, Default)]
pub struct Flush {
    pub commit: FlushCommit,
    pub silenced: BTreeSet<String>,
    pub inhibited: BTreeSet<String>,
    /// Things a person should know that are not alerts (a silence expired over firing alerts).
    pub notices: Vec<String>,
    /// Another process holds the flush (a DynamoDB replica's lease): nothing was planned now;
    /// the holder plans these alerts, or the next flush does once its lease lapses.
    pub busy: bool,
}

/// Where a route-test sends an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTarget {
    pub route: String,
    pub receiver: String,
    /// `Some(after)` when reached through an escalation policy.
    pub after: Option<chrono::Duration>,
    pub group_key: String,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    cfg: PipelineConfig,
    memo: memo::Memo,
    seen: SeenGroups,
}

/// The group keys `Pipeline::opens_group` has been asked about. A clone starts empty.
#[derive(Debug, Default)]
struct SeenGroups(std::sync::Mutex<std::collections::HashSet<String>>);

impl Clone for SeenGroups {
    fn clone(&self) -> Self {
        SeenGroups::default()
    }
}

/// Past this many keys the set starts over (a wake too many, never one too few matters).
const SEEN_GROUPS_CAP: usize = 100_000;

/// A receiver a group reaches in this plan, with the alerts it reaches it with.
type Target<'a> = (&'a str, Vec<&'a Alert>);

struct Group<'a> {
    route: &'a Route,
    labels: Labels,
    alerts: Vec<&'a Alert>,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Self {
        Pipeline {
            cfg,
            memo: memo::Memo::from_env(),
            seen: SeenGroups::default(),
        }
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// Whether some of `alerts` (just taken in) fall into a group this pipeline was not asked
    /// about before. The daemon then plans at once, so that a new group's `group_wait` runs
    /// from its first alert's arrival, as Alertmanager's does, not from the next tick. Each key
    /// answers true once (until `SEEN_GROUPS_CAP` keys), so a storm of posts into known groups
    /// wakes nothing.
    pub fn opens_group<'a>(&self, alerts: impl IntoIterator<Item = &'a Alert>) -> bool {
        let mut seen = self.seen.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SEEN_GROUPS_CAP {
            seen.clear();
        }
        let mut opens = false;
        // A key is built once per route and group_by values in this call, not once per alert.
        let mut asked: std::collections::HashSet<group::GroupValues> = Default::default();
        for a in alerts {
            if a.state != AlertState::Firing {
                continue;
            }
            for r in self.cfg.route.matching(a) {
                if group::group_values(r, a).is_some_and(|v| !asked.insert(v)) {
                    continue;
                }
                let labels = group::group_labels(r, &a.labels, a);
                opens |= seen.insert(group::group_key(r, &labels));
            }
        }
        opens
    }

    /// Reads the store, plans at `at`, and commits the plan (outbox, nflog, timers) atomically.
    pub async fn flush(&self, store: &dyn PipelineStore, at: Timestamp) -> Result<Flush> {
        let flush = store
            .flush_atomically(&|alerts: &[Arc<Alert>], state: &NotifyState| {
                self.plan(alerts, state, at)
            })
            .await?;
        for n in &flush.notices {
            tracing::warn!("{n}");
        }
        for n in &flush.commit.notifications {
            tracing::debug!(id = %n.id, receiver = %n.receiver, group = %n.group_key, alerts = n.alerts.len(), status = ?n.status, "notification queued");
        }
        Ok(flush)
    }

    #[allow(clippy::too_many_arguments)]
    fn dedup(
        &self,
        key: &str,
        g: &Group,
        receiver: &str,
        selected: &[&Alert],
        entry: Option<&NflogEntry>,
        repeat_interval: chrono::Duration,
        shared: &plan::Shared<'_>,
        at: Timestamp,
        commit: &mut FlushCommit,
    ) {
        let firing: BTreeMap<&str, Severity> = selected
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| (a.fingerprint.as_str(), a.severity))
            .collect();
        // Only resolves of alerts this receiver was told of are news to it.
        let resolved: BTreeSet<&str> = selected
            .iter()
            .filter(|a| {
                a.state == AlertState::Resolved
                    && entry.is_some_and(|e| e.firing.contains_key(&a.fingerprint))
            })
            .map(|a| a.fingerprint.as_str())
            .collect();
        let send_resolved = self
            .cfg
            .send_resolved
            .get(receiver)
            .copied()
            .unwrap_or(true);
        if !needs_update(
            entry,
            &firing,
            &resolved,
            send_resolved,
            repeat_interval,
            at,
        ) {
            return;
        }
        let mut alerts: Vec<Arc<Alert>> = selected
            .iter()
            .filter(|a| {
                firing.contains_key(a.fingerprint.as_str())
                    || (send_resolved && resolved.contains(a.fingerprint.as_str()))
            })
            .map(|a| shared.get(a))
            .collect();
        alerts.sort_by(|a, b| {
            (b.state == AlertState::Firing, b.severity)
                .cmp(&(a.state == AlertState::Firing, a.severity))
                .then_with(|| a.labels.cmp(&b.labels))
        });
        commit.nflog.push(NflogEntry {
            group_key: key.to_string(),
            receiver: receiver.to_string(),
            firing: firing
                .into_iter()
                .map(|(fp, s)| (fp.to_string(), s))
                .collect(),
            resolved: resolved.into_iter().map(str::to_string).collect(),
            sent_at: at,
        });
        if !alerts.is_empty() {
            commit.notifications.push(std::sync::Arc::new(notification(
                key,
                &g.labels,
                receiver,
                alerts,
                entry.map(|e| e.sent_at),
                at,
            )));
        }
    }

    /// Where an alert with these labels would go (route-test).
    pub fn targets(&self, labels: &Labels) -> Vec<RouteTarget> {
        let mut out = Vec::new();
        for r in self.cfg.route.matching(labels) {
            let key = group_key(r, &group_labels(r, labels, labels));
            if let Some(rcv) = &r.receiver {
                out.push(RouteTarget {
                    route: r.id.clone(),
                    receiver: rcv.clone(),
                    after: None,
                    group_key: key.clone(),
                });
            }
            if let Some(p) = r.escalation.as_ref().and_then(|p| self.cfg.policies.get(p)) {
                for s in &p.steps {
                    out.push(RouteTarget {
                        route: r.id.clone(),
                        receiver: s.receiver.clone(),
                        after: Some(s.after),
                        group_key: key.clone(),
                    });
                }
            }
        }
        out
    }
}

/// Which group tells each receiver of each firing alert: a receiver hears of an alert through one
/// group only, even when several routes (or a route and an escalation step) lead to it. The group
/// that already told it keeps it, else the first group that reaches it now. (A group that told it
/// but no longer holds the alert, after a config change, gives it up.)
fn receiver_owners<'a>(
    groups: &'a BTreeMap<String, Group>,
    nflog: &'a [NflogEntry],
    planned: &[(&'a String, &Group, Vec<Target<'a>>)],
) -> BTreeMap<(&'a str, &'a str), &'a str> {
    let members: BTreeSet<(&str, &str)> = groups
        .iter()
        .flat_map(|(k, g)| {
            g.alerts
                .iter()
                .map(|a| (k.as_str(), a.fingerprint.as_str()))
        })
        .collect();
    let mut owner = BTreeMap::new();
    for e in nflog {
        for fp in e.firing.keys() {
            if members.contains(&(e.group_key.as_str(), fp.as_str())) {
                owner
                    .entry((e.receiver.as_str(), fp.as_str()))
                    .or_insert(e.group_key.as_str());
            }
        }
    }
    for (key, _, targets) in planned {
        for (receiver, selected) in targets {
            for a in selected.iter().filter(|a| a.state == AlertState::Firing) {
                owner
                    .entry((*receiver, a.fingerprint.as_str()))
                    .or_insert(key.as_str());
            }
        }
    }
    owner
}

/// A notification whose id is derived from what it says, not from when it was planned: the
/// receiver, the group, what the receiver was last told (`generation`: the log entry's instant,
/// or the ack's) and each alert's fingerprint, state, severity and episode. A flush that dies
/// after writing the outbox but before the log is planned again onto the same ids (the outbox
/// keeps the first), so nothing goes out twice under two ids; a repeat or new news has a new
/// generation or content, so a new id.
fn notification(
    key: &str,
    group_labels: &Labels,
    receiver: &str,
    alerts: Vec<Arc<Alert>>,
    generation: Option<Timestamp>,
    at: Timestamp,
) -> Notification {
    let h = crate::alert::fingerprint(receiver, &[("group".to_string(), key.to_string())].into());
    let status = if alerts.iter().any(|a| a.state == AlertState::Firing) {
        NotificationStatus::Firing
    } else {
        NotificationStatus::Resolved
    };
    let mut content = Labels::new();
    content.insert(
        "generation".into(),
        generation.map_or_else(|| "new".into(), |t| t.timestamp_millis().to_string()),
    );
    for a in &alerts {
        content.insert(
            format!("alert:{}", a.fingerprint),
            format!(
                "{}/{}/{}/{}",
                a.state.as_str(),
                a.severity.as_str(),
                a.starts_at.unwrap_or(a.active_since).timestamp_millis(),
                a.ends_at.map_or(0, |t| t.timestamp_millis())
            ),
        );
    }
    let c = crate::alert::fingerprint(&h, &content);
    Notification {
        id: format!("{h}-{c}"),
        receiver: receiver.to_string(),
        status,
        group_key: key.to_string(),
        group_labels: group_labels.clone(),
        alerts,
        created_at: at,
        acknowledged_by: None,
    }
}

#[cfg(test)]
mod tests;
