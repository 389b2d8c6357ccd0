//! `Pipeline::plan_full`, the pure pipeline, as named steps: redact → silence → inhibit → route and
//! group → escalate → dedup (nflog) → forget → announce acks. Each step reads what the steps
//! before it decided and adds to the one `Flush` being planned.

use super::escalate::{self, Ack};
use super::group::{self, group_key, group_labels, GroupState};
use super::nflog::NflogEntry;
use super::route::Route;
use super::{
    notification, receiver_owners, Flush, FlushCommit, Group, NotificationStatus, NotifyState,
    Pipeline, Target, NFLOG_RETENTION,
};
use crate::alert::{Alert, AlertState};
use crate::clock::Timestamp;
use std::borrow::{Borrow, Cow};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What a plan reads its alerts from: an alert, or one the store shares (`Arc`), which the
/// notifications planned from it then share too instead of copying it.
pub trait PlanAlert: Borrow<Alert> {
    fn shared(&self) -> Option<&Arc<Alert>> {
        None
    }
}

impl PlanAlert for Alert {}
impl PlanAlert for Arc<Alert> {
    fn shared(&self) -> Option<&Arc<Alert>> {
        Some(self)
    }
}

/// The `Arc`s a plan was given, by the address of the alert inside: every later step sees
/// `&Alert`s pointing into them (a redacted copy points elsewhere), so a notification can take
/// the stored `Arc` back for each alert it holds.
pub(super) struct Shared<'s>(HashMap<*const Alert, &'s Arc<Alert>, AddressHash>);

/// Hashes an address (the only key `Shared` has): SipHash's resistance to chosen keys buys
/// nothing for addresses. Murmur3's 64-bit finalizer, so aligned addresses spread over all
/// buckets.
#[derive(Default, Clone, Copy)]
struct AddressHash;

struct AddressHasher(u64);

impl std::hash::BuildHasher for AddressHash {
    type Hasher = AddressHasher;
    fn build_hasher(&self) -> AddressHasher {
        AddressHasher(0)
    }
}

impl std::hash::Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl<'s> Shared<'s> {
    fn of<A: PlanAlert>(stored: &'s [A]) -> Self {
        let mut map = HashMap::with_capacity_and_hasher(stored.len(), AddressHash);
        map.extend(
            stored
                .iter()
                .filter_map(PlanAlert::shared)
                .map(|a| (Arc::as_ptr(a), a)),
        );
        Shared(map)
    }

    /// `a` as a notification holds it: the stored `Arc` if `a` is the alert inside one, else a
    /// copy (a redacted alert, or a plan over plain alerts).
    pub(super) fn get(&self, a: &Alert) -> Arc<Alert> {
        match self.0.get(&std::ptr::from_ref(a)) {
            Some(s) => Arc::clone(s),
            None => Arc::new(a.clone()),
        }
    }
}

/// The stored pipeline state, looked up by key.
struct Known<'s> {
    groups: BTreeMap<&'s str, &'s GroupState>,
    nflog: BTreeMap<(&'s str, &'s str), &'s NflogEntry>,
    acks: BTreeMap<&'s str, &'s Ack>,
}

impl<'s> Known<'s> {
    fn of(st: &'s NotifyState) -> Self {
        Known {
            groups: st.groups.iter().map(|g| (g.key.as_str(), g)).collect(),
            nflog: st
                .nflog
                .iter()
                .map(|e| ((e.group_key.as_str(), e.receiver.as_str()), e))
                .collect(),
            acks: st
                .acks
                .iter()
                .map(|a| (a.fingerprint.as_str(), a))
                .collect(),
        }
    }
}

/// One group and the receivers it reaches now, each with the alerts it is told of.
type Planned<'a> = (&'a String, &'a Group<'a>, Vec<Target<'a>>);

impl Pipeline {
    /// The pure pipeline, planned from scratch over every alert: which notifications the
    /// alerts call for at `at`. `Pipeline::plan` gives the same flush, skipping this when
    /// nothing changed and nothing is due; this is its reference.
    pub fn plan_full<A: PlanAlert>(&self, stored: &[A], st: &NotifyState, at: Timestamp) -> Flush {
        let mut out = Flush::default();
        let shared = Shared::of(stored);
        let redacted = self.redact(stored);
        let alerts: Vec<&Alert> = redacted.iter().map(|a| a.as_ref()).collect();
        self.silence(&alerts, st, at, &mut out);
        out.inhibited = self.cfg.inhibitor.muted(&alerts);
        let (groups, in_several_groups) = self.route_and_group(&alerts, &out);
        let known = Known::of(st);
        let planned = self.escalate(&groups, &known, at, &mut out.commit);
        // Only an alert in several groups can reach a receiver twice.
        let owner = in_several_groups.then(|| receiver_owners(&groups, &st.nflog, &planned));
        self.dedup_all(planned, owner, &known, &shared, at, &mut out.commit);
        forget(&groups, &alerts, st, at, &mut out.commit);
        announce_acks(&alerts, st, at, &mut out.commit);
        out
    }

    /// Redact first: nothing after this point sees a secret-looking value. Only alerts that
    /// carry something to redact are copied.
    fn redact<'a, A: Borrow<Alert>>(&self, stored: &'a [A]) -> Vec<Cow<'a, Alert>> {
        let mut clean = None;
        stored
            .iter()
            .map(Borrow::borrow)
            .filter(|a| a.state != AlertState::Pending)
            .map(|a| self.cfg.redactor.redacted_after(a, &mut clean))
            .collect()
    }

    /// Silence: what the silences mute, and a notice for each silence that expired while
    /// alerts it muted still fire.
    fn silence(&self, alerts: &[&Alert], st: &NotifyState, at: Timestamp, out: &mut Flush) {
        out.silenced = self.cfg.silences.muted(alerts, &st.silences, at);
        for (s, fps) in self
            .cfg
            .silences
            .expired_over_firing(alerts, &st.silences, at)
        {
            if s.expiry_noticed {
                continue;
            }
            out.notices.push(format!(
                "silence {} ({}) by {} expired at {} while {} alert(s) it muted still fire: {}",
                s.id,
                s.matchers.join(", "),
                s.created_by,
                s.ends_at.to_rfc3339(),
                fps.len(),
                fps.join(", ")
            ));
            out.commit.silences_noticed.push(s.id.clone());
        }
    }

    /// Route and group: each alert neither silenced nor inhibited joins one group per matching
    /// route. Also says whether some alert is in several groups. A group's key and labels are
    /// built once per group, not once per alert: alerts are first told apart by their route and
    /// the values of its `group_by` labels, borrowed.
    fn route_and_group<'a>(
        &'a self,
        alerts: &[&'a Alert],
        out: &Flush,
    ) -> (BTreeMap<String, Group<'a>>, bool) {
        let mut slots: Vec<(String, Group<'a>)> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let mut by_values: HashMap<group::GroupValues<'a>, usize> = HashMap::new();
        let mut in_several_groups = false;
        for a in alerts.iter().copied().filter(|a| {
            !out.silenced.contains(&a.fingerprint) && !out.inhibited.contains(&a.fingerprint)
        }) {
            let routes = self.cfg.route.matching(a);
            in_several_groups |= routes.len() > 1;
            for r in routes {
                let mut slot_of = |r: &'a Route| {
                    let labels = group_labels(r, &a.labels, a);
                    let key = group_key(r, &labels);
                    *by_key.entry(key).or_insert_with_key(|key| {
                        slots.push((
                            key.clone(),
                            Group {
                                route: r,
                                labels,
                                alerts: vec![],
                            },
                        ));
                        slots.len() - 1
                    })
                };
                let slot = match group::group_values(r, a) {
                    Some(values) => match by_values.entry(values) {
                        Entry::Occupied(e) => *e.get(),
                        Entry::Vacant(e) => *e.insert(slot_of(r)),
                    },
                    None => slot_of(r),
                };
                slots[slot].1.alerts.push(a);
            }
        }
        (slots.into_iter().collect(), in_several_groups)
    }

    /// Group timers and escalation: which receivers each group reaches now, with which of its
    /// alerts. Saves or deletes the groups' timer states.
    fn escalate<'a>(
        &'a self,
        groups: &'a BTreeMap<String, Group<'a>>,
        known: &Known<'a>,
        at: Timestamp,
        commit: &mut FlushCommit,
    ) -> Vec<Planned<'a>> {
        let mut planned: Vec<Planned<'a>> = Vec::new();
        for (key, g) in groups {
            let has_firing = g.alerts.iter().any(|a| a.state == AlertState::Firing);
            let prev = known.groups.get(key.as_str()).copied();
            let mut tick = group::tick(prev, key, has_firing, &g.route.timers, at);
            let policy = g
                .route
                .escalation
                .as_ref()
                .and_then(|p| self.cfg.policies.get(p));
            // Escalation clocks: when each firing alert entered this group.
            if let (Some(_), Some(s)) = (policy, tick.state.as_mut()) {
                let before = prev.map(|p| &p.joined);
                s.joined = g
                    .alerts
                    .iter()
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| {
                        let was = before.and_then(|j| j.get(&a.fingerprint)).copied();
                        (a.fingerprint.clone(), escalate::entered(was, a))
                    })
                    .collect();
            }
            match &tick.state {
                Some(s) if prev != Some(s) => commit.groups_saved.push(s.clone()),
                None if prev.is_some() => commit.groups_deleted.push(key.clone()),
                _ => {}
            }

            // Escalate: which receivers this group reaches now, with which of its alerts.
            let mut targets: Vec<Target> = Vec::new();
            if tick.flush {
                if let Some(r) = &g.route.receiver {
                    targets.push((r, g.alerts.clone()));
                }
            }
            let joined = tick.state.as_ref().map(|s| &s.joined);
            if let Some(policy) = policy {
                for (i, step) in policy.steps.iter().enumerate() {
                    if !policy.is_timed(i) {
                        if tick.flush {
                            targets.push((&step.receiver, g.alerts.clone()));
                        }
                        continue;
                    }
                    let entry = known.nflog.get(&(key.as_str(), step.receiver.as_str()));
                    let reached: Vec<&Alert> = g
                        .alerts
                        .iter()
                        .filter(|a| {
                            let told = entry.is_some_and(|e| e.firing.contains_key(&a.fingerprint));
                            let since = joined
                                .and_then(|j| j.get(&a.fingerprint))
                                .copied()
                                .unwrap_or_else(|| escalate::entered(None, a));
                            told || policy.reached(
                                i,
                                a,
                                since,
                                known.acks.get(a.fingerprint.as_str()).copied(),
                                at,
                            )
                        })
                        .copied()
                        .collect();
                    targets.push((&step.receiver, reached));
                }
            }

            planned.push((key, g, targets));
        }
        planned
    }

    /// Dedup against the notification log (a receiver named twice, by the route and a step,
    /// hears once; an alert in several groups is told to a receiver by the group that owns it).
    fn dedup_all(
        &self,
        planned: Vec<Planned<'_>>,
        owner: Option<BTreeMap<(&str, &str), &str>>,
        known: &Known<'_>,
        shared: &Shared<'_>,
        at: Timestamp,
        commit: &mut FlushCommit,
    ) {
        for (key, g, targets) in planned {
            let mut seen = BTreeSet::new();
            for (receiver, mut selected) in targets {
                if !seen.insert(receiver) {
                    continue;
                }
                if let Some(owner) = &owner {
                    selected.retain(|a| {
                        a.state != AlertState::Firing
                            || owner.get(&(receiver, a.fingerprint.as_str())) == Some(&key.as_str())
                    });
                }
                let entry = known.nflog.get(&(key.as_str(), receiver)).copied();
                // Someone has every firing alert in hand: no reminders.
                let all_acked = selected
                    .iter()
                    .filter(|a| a.state == AlertState::Firing)
                    .all(|a| {
                        known
                            .acks
                            .get(a.fingerprint.as_str())
                            .is_some_and(|k| k.covers(a))
                    });
                let repeat = if all_acked {
                    chrono::Duration::MAX
                } else {
                    g.route.timers.repeat_interval
                };
                self.dedup(
                    key, g, receiver, &selected, entry, repeat, shared, at, commit,
                );
            }
        }
    }
}

/// Forget what no longer matters: timers of groups gone, log entries of groups gone quiet for a
/// week, silences that ended a week ago, acks of alerts no longer firing.
fn forget(
    groups: &BTreeMap<String, Group>,
    alerts: &[&Alert],
    st: &NotifyState,
    at: Timestamp,
    commit: &mut FlushCommit,
) {
    for s in &st.groups {
        if !groups.contains_key(&s.key) {
            commit.groups_deleted.push(s.key.clone());
        }
    }
    for e in &st.nflog {
        if e.firing.is_empty()
            && e.sent_at + NFLOG_RETENTION < at
            && !groups.contains_key(&e.group_key)
        {
            commit
                .nflog_deleted
                .push((e.group_key.clone(), e.receiver.clone()));
        }
    }
    for s in st
        .silences
        .iter()
        .filter(|s| s.ends_at + NFLOG_RETENTION < at)
    {
        commit.silences_deleted.push(s.id.clone());
    }
    for ack in st.acks.iter().filter(|a| a.announced) {
        if !alerts
            .iter()
            .any(|a| a.state == AlertState::Firing && ack.covers(a))
        {
            commit.acks_deleted.push(ack.fingerprint.clone());
        }
    }
}

/// Acknowledgements: tell the receivers that were told of the alert.
fn announce_acks(alerts: &[&Alert], st: &NotifyState, at: Timestamp, commit: &mut FlushCommit) {
    let mut entries: BTreeMap<(String, String), &NflogEntry> = st
        .nflog
        .iter()
        .map(|e| ((e.group_key.clone(), e.receiver.clone()), e))
        .collect();
    for e in &commit.nflog {
        entries.insert((e.group_key.clone(), e.receiver.clone()), e);
    }
    for ack in st.acks.iter().filter(|a| !a.announced) {
        commit.acks_announced.push(ack.fingerprint.clone());
        let Some(alert) = alerts
            .iter()
            .find(|a| a.state == AlertState::Firing && ack.covers(a))
        else {
            continue;
        };
        let receivers: BTreeSet<&str> = entries
            .values()
            .filter(|e| e.firing.contains_key(&ack.fingerprint))
            .map(|e| e.receiver.as_str())
            .collect();
        for r in receivers {
            let mut n = notification(
                &format!("ack:{}", ack.fingerprint),
                &alert.labels,
                r,
                vec![Arc::new((*alert).clone())],
                Some(ack.at),
                at,
            );
            n.status = NotificationStatus::Acknowledged;
            n.acknowledged_by = Some(ack.by.clone());
            commit.notifications.push(n.into());
        }
    }
}
