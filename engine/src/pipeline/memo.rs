//! The incremental plan: `Pipeline::plan` gives exactly what `Pipeline::plan_full` gives, but
//! does not plan again when nothing it reads has changed and nothing it times has come due.
//!
//! A plan is a pure function of the alerts, the stored pipeline state (silences, acks, group
//! timers, notification log) and the instant. After a plan that committed nothing (no
//! notification, no timer, no log entry, no mark, no housekeeping, no notice) the memo keeps a
//! hash of those inputs and the earliest instant at which some time-dependent decision of the
//! plan could change (`next_due`). A later plan with the same inputs before that instant would
//! commit nothing again, so it returns the remembered silenced/inhibited sets without planning.
//! Any change (a new, changed or removed alert, a silence or ack added, a commit written) changes
//! the hash and plans in full; so does a clock that went backwards.
//!
//! The time-dependent decisions of a plan, each with the instants `next_due` takes from it:
//! a group's timer (`next_flush`); a silence becoming active, ending, its expiry notice and its
//! retention (`starts_at`, `ends_at`, `ends_at` + retention); a repeat (`sent_at` + every route's
//! `repeat_interval`) and the log's retention (`sent_at` + retention); an escalation step reached
//! (when an alert joined its group, or would join it now, + every step's `after`). Acks, the
//! inhibition and the routes do not depend on the instant.
//!
//! `TRIPLINE_FULL_REPLAN=1` in the environment makes every plan a full one (a debugging aid: the
//! storm test compares the two).

use super::escalate::entered;
use super::{Flush, NotifyState, Pipeline, PlanAlert, NFLOG_RETENTION};
use crate::alert::{Alert, AlertState};
use crate::clock::Timestamp;
use std::borrow::Borrow;
use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// The environment variable that turns the memo off.
pub const FULL_REPLAN_ENV: &str = "TRIPLINE_FULL_REPLAN";

/// What the last quiet plan left: its inputs' hash, its instant, when it could next differ.
#[derive(Debug)]
struct Quiet {
    inputs: u64,
    at: Timestamp,
    /// `None`: no decision of that plan depends on a later instant.
    due: Option<Timestamp>,
    silenced: BTreeSet<String>,
    inhibited: BTreeSet<String>,
}

/// The memo of one `Pipeline`. A clone starts empty (it may plan for another store).
#[derive(Debug, Default)]
pub(super) struct Memo {
    off: bool,
    last: Mutex<Option<Quiet>>,
    /// Plans answered from the memo (tests check that the generated sequences reach it).
    #[cfg(test)]
    skips: std::sync::atomic::AtomicUsize,
}

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo {
            off: self.off,
            ..Memo::default()
        }
    }
}

impl Memo {
    pub(super) fn from_env() -> Self {
        let off = std::env::var(FULL_REPLAN_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        Memo {
            off,
            ..Memo::default()
        }
    }
}

impl Pipeline {
    /// The pure pipeline: which notifications the alerts call for at `at`. The same flush as
    /// `plan_full`, without planning again when nothing changed and nothing is due (module doc).
    pub fn plan<A: PlanAlert>(&self, stored: &[A], st: &NotifyState, at: Timestamp) -> Flush {
        if self.memo.off {
            return self.plan_full(stored, st, at);
        }
        let mut last = self.memo.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut inputs = None;
        if let Some(q) = last.as_ref() {
            if q.at <= at && q.due.is_none_or(|d| at < d) {
                let h = inputs_hash(stored, st);
                if h == q.inputs {
                    #[cfg(test)]
                    self.memo
                        .skips
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Flush {
                        silenced: q.silenced.clone(),
                        inhibited: q.inhibited.clone(),
                        ..Flush::default()
                    };
                }
                inputs = Some(h);
            }
        }
        let flush = self.plan_full(stored, st, at);
        *last = is_quiet(&flush).then(|| Quiet {
            inputs: inputs.unwrap_or_else(|| inputs_hash(stored, st)),
            at,
            due: self.next_due(stored, st, at),
            silenced: flush.silenced.clone(),
            inhibited: flush.inhibited.clone(),
        });
        flush
    }

    /// When the last plan, if it committed nothing, may next differ (`None`: unknown, or no
    /// decision of it depends on a later instant). The daemon's notification loop wakes then.
    pub fn quiet_until(&self) -> Option<Timestamp> {
        let last = self.memo.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref().and_then(|q| q.due)
    }

    /// The earliest instant not before `at` at which a time-dependent decision of a plan over
    /// these inputs may differ from its decision at `at` (module doc lists them).
    fn next_due<A: Borrow<Alert>>(
        &self,
        stored: &[A],
        st: &NotifyState,
        at: Timestamp,
    ) -> Option<Timestamp> {
        let mut due: Option<Timestamp> = None;
        let mut consider = |t: Option<Timestamp>| {
            if let Some(t) = t.filter(|t| *t >= at) {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        };
        let routes = self.cfg.route.walk();
        let repeats: HashSet<chrono::Duration> =
            routes.iter().map(|r| r.timers.repeat_interval).collect();
        let afters: HashSet<chrono::Duration> = self
            .cfg
            .policies
            .values()
            .flat_map(|p| p.steps.iter().map(|s| s.after))
            .collect();
        for g in &st.groups {
            consider(Some(g.next_flush));
            for j in g.joined.values() {
                for d in &afters {
                    consider(j.checked_add_signed(*d));
                }
            }
        }
        for s in &st.silences {
            consider(Some(s.starts_at));
            consider(Some(s.ends_at));
            consider(s.ends_at.checked_add_signed(NFLOG_RETENTION));
        }
        for e in &st.nflog {
            consider(e.sent_at.checked_add_signed(NFLOG_RETENTION));
            for r in &repeats {
                consider(e.sent_at.checked_add_signed(*r));
            }
        }
        if !afters.is_empty() {
            for a in stored
                .iter()
                .map(Borrow::borrow)
                .filter(|a| a.state == AlertState::Firing)
            {
                let joined = entered(None, a);
                for d in &afters {
                    consider(joined.checked_add_signed(*d));
                }
            }
        }
        due
    }
}

/// Whether a flush changes nothing: a plan over the same inputs would plan the same.
fn is_quiet(f: &Flush) -> bool {
    let c = &f.commit;
    !f.busy
        && f.notices.is_empty()
        && c.notifications.is_empty()
        && c.nflog.is_empty()
        && c.groups_saved.is_empty()
        && c.groups_deleted.is_empty()
        && c.acks_announced.is_empty()
        && c.silences_noticed.is_empty()
        && c.nflog_deleted.is_empty()
        && c.acks_deleted.is_empty()
        && c.silences_deleted.is_empty()
}

/// A hash of everything a plan reads. Each struct is destructured without `..`, so a field
/// added to one of them fails to compile here until it is hashed too.
pub(super) fn inputs_hash<A: Borrow<Alert>>(alerts: &[A], st: &NotifyState) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    alerts.len().hash(&mut h);
    for a in alerts {
        hash_alert(a.borrow(), &mut h);
    }
    let NotifyState {
        silences,
        acks,
        groups,
        nflog,
    } = st;
    silences.len().hash(&mut h);
    for s in silences {
        let super::silence::Silence {
            id,
            matchers,
            starts_at,
            ends_at,
            created_by,
            comment,
            created_at,
            expiry_noticed,
        } = s;
        (id, matchers, starts_at, ends_at, created_by, comment).hash(&mut h);
        (created_at, expiry_noticed).hash(&mut h);
    }
    acks.len().hash(&mut h);
    for a in acks {
        let super::escalate::Ack {
            fingerprint,
            by,
            at,
            announced,
        } = a;
        (fingerprint, by, at, announced).hash(&mut h);
    }
    groups.len().hash(&mut h);
    for g in groups {
        let super::group::GroupState {
            key,
            created_at,
            next_flush,
            joined,
        } = g;
        (key, created_at, next_flush, joined).hash(&mut h);
    }
    nflog.len().hash(&mut h);
    for e in nflog {
        let super::nflog::NflogEntry {
            group_key,
            receiver,
            firing,
            resolved,
            sent_at,
        } = e;
        (group_key, receiver, firing, resolved, sent_at).hash(&mut h);
    }
    h.finish()
}

fn hash_alert(a: &Alert, h: &mut impl Hasher) {
    let Alert {
        fingerprint,
        rule,
        instance,
        labels,
        state,
        severity,
        summary,
        runbook,
        value,
        details,
        active_since,
        starts_at,
        ends_at,
        last_active,
        keep_firing_since,
        updated_at,
        severity_changed_at,
    } = a;
    (
        fingerprint,
        rule,
        instance,
        labels,
        state,
        severity,
        summary,
        runbook,
    )
        .hash(h);
    value.map(f64::to_bits).hash(h);
    details.len().hash(h);
    for (k, v) in details {
        k.hash(h);
        hash_json(v, h);
    }
    (active_since, starts_at, ends_at, last_active).hash(h);
    (keep_firing_since, updated_at, severity_changed_at).hash(h);
}

fn hash_json(v: &serde_json::Value, h: &mut impl Hasher) {
    use serde_json::Value;
    std::mem::discriminant(v).hash(h);
    match v {
        Value::Null => {}
        Value::Bool(b) => b.hash(h),
        // The number as written: 1 and 1.0 differ in a payload, so they differ here.
        Value::Number(n) => n.to_string().hash(h),
        Value::String(s) => s.hash(h),
        Value::Array(items) => {
            items.len().hash(h);
            items.iter().for_each(|i| hash_json(i, h));
        }
        Value::Object(m) => {
            m.len().hash(h);
            for (k, v) in m {
                k.hash(h);
                hash_json(v, h);
            }
        }
    }
}

#[cfg(test)]
mod tests;
