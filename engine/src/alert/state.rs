//! The per-fingerprint state machine: inactive → pending (`for`) → firing → resolved
//! (`keep_firing_for`). Pure: given the stored alerts of one rule instance, what the rule
//! reported now and the instant, it returns the new alerts and the transitions to announce.

use super::{fingerprint, Alert, AlertState, Labels, Severity};
use crate::clock::Timestamp;
use std::collections::{BTreeMap, HashSet};

/// What a rule's `evaluate` reported for one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertCandidate {
    pub labels: Labels,
    pub severity: Severity,
    pub summary: String,
    pub runbook: Option<String>,
    pub value: Option<f64>,
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionKind {
    /// Seen for the first time, waiting out `for`.
    Pending,
    /// Started firing.
    Firing,
    /// Still firing, with another severity.
    SeverityChanged {
        from: Severity,
    },
    Resolved,
    /// A pending alert whose condition went away before `for` elapsed: nobody was told of it.
    Dropped,
    /// Same state, fresher value/summary/last_active: stored, never announced.
    Updated,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub kind: TransitionKind,
    pub alert: Alert,
}

/// Timing of one rule instance.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub for_: chrono::Duration,
    pub keep_firing_for: chrono::Duration,
}

/// What one evaluation of a rule instance said.
#[derive(Debug, Clone, Default)]
pub struct Reported {
    pub fired: Vec<AlertCandidate>,
    /// Subjects whose state must not change this time (missing data treated as `ignore`).
    pub retained: Vec<Labels>,
    /// Keep every alert of the instance as it is (e.g. a source failed: no verdict at all).
    pub retain_all: bool,
}

/// Advances the alerts of one rule instance. `current` holds that instance's stored alerts.
/// Returns every alert that changed (to be stored; `Dropped` ones are to be deleted) and the
/// transitions in a stable order.
pub fn advance(
    rule: &str,
    instance: &str,
    current: &[Alert],
    reported: &Reported,
    timing: Timing,
    at: Timestamp,
) -> Vec<Transition> {
    let mut out = Vec::new();
    let by_fp: BTreeMap<&str, &Alert> = current
        .iter()
        .map(|a| (a.fingerprint.as_str(), a))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();

    for c in &reported.fired {
        let fp = fingerprint(rule, &c.labels);
        if !seen.insert(fp.clone()) {
            continue; // the same subject fired twice in one evaluation: first one wins
        }
        match by_fp.get(fp.as_str()).copied().filter(|a| a.is_active()) {
            None => {
                let mut a = Alert {
                    fingerprint: fp,
                    rule: rule.to_string(),
                    instance: instance.to_string(),
                    labels: c.labels.clone(),
                    state: AlertState::Pending,
                    severity: c.severity,
                    summary: c.summary.clone(),
                    runbook: c.runbook.clone(),
                    value: c.value,
                    details: c.details.clone(),
                    active_since: at,
                    starts_at: None,
                    ends_at: None,
                    last_active: at,
                    keep_firing_since: None,
                    updated_at: at,
                    severity_changed_at: None,
                };
                if timing.for_ <= chrono::Duration::zero() {
                    a.state = AlertState::Firing;
                    a.starts_at = Some(at);
                    out.push(Transition {
                        kind: TransitionKind::Firing,
                        alert: a,
                    });
                } else {
                    out.push(Transition {
                        kind: TransitionKind::Pending,
                        alert: a,
                    });
                }
            }
            Some(prev) => {
                let mut a = prev.clone();
                a.summary = c.summary.clone();
                a.value = c.value;
                a.details = c.details.clone();
                a.runbook = c.runbook.clone();
                a.last_active = at;
                a.keep_firing_since = None;
                a.updated_at = at;
                let old_sev = a.severity;
                a.severity = c.severity;
                let kind = match prev.state {
                    AlertState::Pending if at - prev.active_since >= timing.for_ => {
                        a.state = AlertState::Firing;
                        a.starts_at = Some(at);
                        Some(TransitionKind::Firing)
                    }
                    AlertState::Firing if old_sev != c.severity => {
                        a.severity_changed_at = Some(at);
                        Some(TransitionKind::SeverityChanged { from: old_sev })
                    }
                    _ => None,
                };
                if let Some(kind) = kind {
                    out.push(Transition { kind, alert: a });
                } else if changed_beyond_heartbeat(prev, &a) || prev.keep_firing_since.is_some() {
                    // A sighting that ends a keep_firing_for hold must be stored (the next
                    // hold starts afresh); otherwise an unchanged alert costs no write.
                    out.push(Transition {
                        kind: TransitionKind::Updated,
                        alert: a,
                    });
                }
            }
        }
    }

    let retained: HashSet<String> = reported
        .retained
        .iter()
        .map(|l| fingerprint(rule, l))
        .collect();
    for prev in current
        .iter()
        .filter(|a| a.is_active() && !seen.contains(&a.fingerprint))
    {
        if reported.retain_all || retained.contains(&prev.fingerprint) {
            continue;
        }
        match prev.state {
            AlertState::Pending => out.push(Transition {
                kind: TransitionKind::Dropped,
                alert: prev.clone(),
            }),
            // Prometheus measures keep_firing_for from the first evaluation that found the
            // condition gone, so a hold shorter than the interval still keeps one evaluation.
            AlertState::Firing
                if at - prev.keep_firing_since.unwrap_or(at) < timing.keep_firing_for =>
            {
                if prev.keep_firing_since.is_none() {
                    let mut a = prev.clone();
                    a.keep_firing_since = Some(at);
                    a.updated_at = at;
                    out.push(Transition {
                        kind: TransitionKind::Updated,
                        alert: a,
                    });
                }
            }
            AlertState::Firing => {
                let mut a = prev.clone();
                a.state = AlertState::Resolved;
                a.keep_firing_since = None;
                a.ends_at = Some(at);
                a.updated_at = at;
                out.push(Transition {
                    kind: TransitionKind::Resolved,
                    alert: a,
                });
            }
            AlertState::Resolved => {}
        }
    }
    out
}

/// Whether anything but the heartbeat fields (`last_active`, `updated_at`) differs.
fn changed_beyond_heartbeat(prev: &Alert, now: &Alert) -> bool {
    prev.summary != now.summary
        || prev.value != now.value
        || prev.details != now.details
        || prev.runbook != now.runbook
        || prev.labels != now.labels
}

impl Transition {
    /// Whether this transition is something a person should hear about.
    pub fn is_announced(&self) -> bool {
        matches!(
            self.kind,
            TransitionKind::Firing
                | TransitionKind::Resolved
                | TransitionKind::SeverityChanged { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t(min: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn cand(sev: Severity) -> AlertCandidate {
        AlertCandidate {
            labels: [("queue".to_string(), "q1".to_string())].into(),
            severity: sev,
            summary: "deep".into(),
            runbook: None,
            value: Some(1.0),
            details: Default::default(),
        }
    }

    /// Walks a clock through instants, applying each step's report, and returns the kinds seen.
    struct Walk {
        alerts: Vec<Alert>,
        timing: Timing,
    }

    impl Walk {
        fn new(for_min: i64, keep_min: i64) -> Self {
            Walk {
                alerts: vec![],
                timing: Timing {
                    for_: Duration::minutes(for_min),
                    keep_firing_for: Duration::minutes(keep_min),
                },
            }
        }
        fn step(&mut self, at: i64, fired: Option<Severity>) -> Vec<TransitionKind> {
            let reported = Reported {
                fired: fired.map(cand).into_iter().collect(),
                ..Default::default()
            };
            self.apply(at, reported)
        }
        fn apply(&mut self, at: i64, reported: Reported) -> Vec<TransitionKind> {
            let ts = advance("r", "i", &self.alerts, &reported, self.timing, t(at));
            for tr in &ts {
                self.alerts
                    .retain(|a| a.fingerprint != tr.alert.fingerprint);
                if tr.kind != TransitionKind::Dropped {
                    self.alerts.push(tr.alert.clone());
                }
            }
            ts.into_iter().map(|t| t.kind).collect()
        }
        fn state(&self) -> Option<AlertState> {
            self.alerts.first().map(|a| a.state)
        }
    }

    #[test]
    fn for_duration_holds_an_alert_pending() {
        let mut w = Walk::new(5, 0);
        assert_eq!(
            w.step(0, Some(Severity::Warning)),
            vec![TransitionKind::Pending]
        );
        // Nothing but the heartbeat changed: nothing to store.
        assert!(w.step(4, Some(Severity::Warning)).is_empty());
        assert_eq!(w.state(), Some(AlertState::Pending));
        assert_eq!(
            w.step(5, Some(Severity::Warning)),
            vec![TransitionKind::Firing]
        );
        assert_eq!(w.alerts[0].starts_at, Some(t(5)));
        assert_eq!(w.alerts[0].active_since, t(0));
    }

    #[test]
    fn pending_that_clears_is_dropped_silently() {
        let mut w = Walk::new(5, 0);
        w.step(0, Some(Severity::Warning));
        assert_eq!(w.step(2, None), vec![TransitionKind::Dropped]);
        assert!(w.alerts.is_empty());
        // Coming back restarts the `for` clock.
        w.step(3, Some(Severity::Warning));
        assert!(w.step(7, Some(Severity::Warning)).is_empty());
        assert_eq!(
            w.step(8, Some(Severity::Warning)),
            vec![TransitionKind::Firing]
        );
    }

    #[test]
    fn a_new_value_is_stored_and_a_sighting_ending_a_hold_too() {
        let mut w = Walk::new(0, 0);
        w.step(0, Some(Severity::Warning));
        let mut changed = Reported {
            fired: vec![cand(Severity::Warning)],
            ..Default::default()
        };
        changed.fired[0].value = Some(2.0);
        assert_eq!(w.apply(1, changed), vec![TransitionKind::Updated]);
        assert_eq!(w.alerts[0].value, Some(2.0));
        let mut k = Walk::new(0, 10);
        k.step(0, Some(Severity::Warning));
        assert!(k.step(1, Some(Severity::Warning)).is_empty());
        assert_eq!(k.step(2, None), vec![TransitionKind::Updated]);
        assert_eq!(k.alerts[0].keep_firing_since, Some(t(2)));
        assert_eq!(
            k.step(3, Some(Severity::Warning)),
            vec![TransitionKind::Updated]
        );
        assert_eq!(k.alerts[0].keep_firing_since, None);
        assert_eq!(k.alerts[0].last_active, t(3));
    }

    #[test]
    fn keep_firing_for_delays_the_resolve() {
        let mut w = Walk::new(0, 10);
        assert_eq!(
            w.step(0, Some(Severity::Warning)),
            vec![TransitionKind::Firing]
        );
        // Measured from the first evaluation without the condition (5), not the last with it.
        assert_eq!(w.step(5, None), vec![TransitionKind::Updated]);
        assert_eq!(w.state(), Some(AlertState::Firing));
        assert!(w.step(14, None).is_empty());
        assert_eq!(w.state(), Some(AlertState::Firing));
        assert_eq!(w.step(15, None), vec![TransitionKind::Resolved]);
        assert_eq!(w.alerts[0].ends_at, Some(t(15)));
        // Nothing more to say once resolved.
        assert!(w.step(16, None).is_empty());
    }

    #[test]
    fn keep_firing_for_below_the_interval_still_holds_one_evaluation() {
        // Prometheus: 30 s keep_firing_for at a 1 m interval keeps the alert at the first false
        // evaluation (0 s < 30 s) and resolves it at the next.
        let mut w = Walk::new(0, 0);
        w.timing.keep_firing_for = Duration::seconds(30);
        w.step(0, Some(Severity::Warning));
        assert_eq!(w.step(1, None), vec![TransitionKind::Updated]);
        assert_eq!(w.state(), Some(AlertState::Firing));
        assert_eq!(w.step(2, None), vec![TransitionKind::Resolved]);
    }

    #[test]
    fn severity_rises_on_the_same_alert() {
        let mut w = Walk::new(0, 0);
        w.step(0, Some(Severity::Warning));
        let fp = w.alerts[0].fingerprint.clone();
        assert_eq!(
            w.step(1, Some(Severity::Critical)),
            vec![TransitionKind::SeverityChanged {
                from: Severity::Warning
            }]
        );
        assert_eq!(w.alerts.len(), 1);
        assert_eq!(w.alerts[0].fingerprint, fp);
        assert_eq!(w.alerts[0].severity, Severity::Critical);
        assert_eq!(w.alerts[0].starts_at, Some(t(0)));
    }

    #[test]
    fn retained_subjects_and_unknown_outcomes_change_nothing() {
        let mut w = Walk::new(0, 0);
        w.step(0, Some(Severity::Warning));
        let retain_one = Reported {
            retained: vec![cand(Severity::Info).labels],
            ..Default::default()
        };
        assert!(w.apply(1, retain_one).is_empty());
        assert!(w
            .apply(
                2,
                Reported {
                    retain_all: true,
                    ..Default::default()
                }
            )
            .is_empty());
        assert_eq!(w.state(), Some(AlertState::Firing));
        assert_eq!(w.step(3, None), vec![TransitionKind::Resolved]);
    }

    #[test]
    fn a_resolved_alert_that_returns_starts_afresh() {
        let mut w = Walk::new(0, 0);
        w.step(0, Some(Severity::Warning));
        w.step(1, None);
        assert_eq!(
            w.step(2, Some(Severity::Warning)),
            vec![TransitionKind::Firing]
        );
        assert_eq!(w.alerts[0].starts_at, Some(t(2)));
        assert_eq!(w.alerts[0].ends_at, None);
    }
}
