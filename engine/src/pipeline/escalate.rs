//! Escalation policies: ordered steps `(after, receiver)`. An alert that keeps firing without
//! being acknowledged reaches each step's receiver `after` it entered the escalating route (Slack
//! now, PagerDuty after 15m, the manager after 45m) — as a PagerDuty escalation policy starts at
//! the incident's trigger. That is when it started firing, or, for an alert that reached the
//! route later (a warning that became critical), when it did: a backlog that was a warning for
//! 90 minutes does not reach the 30-minute and 2-hour steps at once when it turns critical. An acknowledgement (`tripline ack`) stops it; a resolve ends it.
//! Steps after the first are checked on every pipeline run, not on the group's beat, so a page is
//! not late by up to a `group_interval`.

use crate::alert::{Alert, AlertState};
use crate::clock::Timestamp;
use chrono::Duration;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationStep {
    pub after: Duration,
    pub receiver: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    pub name: String,
    pub steps: Vec<EscalationStep>,
}

/// Someone took an alert: escalation stops for its current firing episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub fingerprint: String,
    pub by: String,
    pub at: Timestamp,
    /// Whether receivers that support it (PagerDuty) were told.
    #[serde(default)]
    pub announced: bool,
}

impl Ack {
    /// An ack holds for the episode it was given in: a resolve and a new firing start afresh.
    pub fn covers(&self, alert: &Alert) -> bool {
        self.fingerprint == alert.fingerprint && self.at >= episode_start(alert)
    }
}

fn episode_start(a: &Alert) -> Timestamp {
    a.starts_at.unwrap_or(a.active_since)
}

/// When `alert` entered an escalating group, given when it was last recorded there (`prev`):
/// kept while the firing episode lasts; otherwise the episode's start, or its last severity
/// change if later (the change that brought it onto a severity-matched route).
pub fn entered(prev: Option<Timestamp>, alert: &Alert) -> Timestamp {
    let start = episode_start(alert);
    match prev {
        Some(t) if t >= start => t,
        _ => alert
            .severity_changed_at
            .filter(|t| *t > start)
            .unwrap_or(start),
    }
}

impl EscalationPolicy {
    /// Whether `alert`, on the escalating route since `since` (see `entered`), has reached step
    /// `i` at `at` and is still to be escalated.
    pub fn reached(
        &self,
        i: usize,
        alert: &Alert,
        since: Timestamp,
        ack: Option<&Ack>,
        at: Timestamp,
    ) -> bool {
        let Some(step) = self.steps.get(i) else {
            return false;
        };
        alert.state == AlertState::Firing
            && since
                .checked_add_signed(step.after)
                .is_some_and(|t| t <= at)
            && !ack.is_some_and(|a| a.covers(alert))
    }

    /// The first step is sent on the group's beat like any route; later ones on every run.
    pub fn is_timed(&self, i: usize) -> bool {
        self.steps
            .get(i)
            .is_some_and(|s| s.after > Duration::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::{alert, t};

    fn policy() -> EscalationPolicy {
        EscalationPolicy {
            name: "oncall".into(),
            steps: vec![
                EscalationStep {
                    after: Duration::zero(),
                    receiver: "slack".into(),
                },
                EscalationStep {
                    after: Duration::minutes(15),
                    receiver: "pagerduty".into(),
                },
                EscalationStep {
                    after: Duration::minutes(45),
                    receiver: "manager".into(),
                },
            ],
        }
    }

    #[test]
    fn steps_are_reached_in_time_until_acked() {
        let p = policy();
        let mut a = alert("x", &[], AlertState::Firing);
        a.starts_at = Some(t(0));
        let since = entered(None, &a);
        assert_eq!(since, t(0));
        assert!(p.reached(0, &a, since, None, t(0)));
        assert!(!p.reached(1, &a, since, None, t(14)));
        assert!(p.reached(1, &a, since, None, t(15)));
        assert!(!p.reached(2, &a, since, None, t(44)));
        let ack = Ack {
            fingerprint: a.fingerprint.clone(),
            by: "ann".into(),
            at: t(20),
            announced: false,
        };
        assert!(
            !p.reached(2, &a, since, Some(&ack), t(45)),
            "acked: no manager"
        );
        // A new episode after the ack escalates again, on its own clock.
        a.starts_at = Some(t(60));
        let since = entered(Some(since), &a);
        assert_eq!(since, t(60));
        assert!(p.reached(1, &a, since, Some(&ack), t(75)));
        a.state = AlertState::Resolved;
        assert!(!p.reached(1, &a, since, None, t(80)), "a resolve ends it");
    }

    #[test]
    fn the_clock_starts_when_the_alert_entered_the_escalating_route() {
        let p = policy();
        // A warning since t(0) that turned critical at t(90): it joins the critical route then.
        let mut a = alert("x", &[], AlertState::Firing);
        a.starts_at = Some(t(0));
        a.severity_changed_at = Some(t(90));
        let since = entered(None, &a);
        assert_eq!(since, t(90));
        assert!(!p.reached(1, &a, since, None, t(90)), "not 15m at once");
        assert!(p.reached(1, &a, since, None, t(105)));
        assert!(!p.reached(2, &a, since, None, t(134)));
        assert!(p.reached(2, &a, since, None, t(135)));
        // Once recorded, a later severity change within the route does not restart it.
        a.severity_changed_at = Some(t(100));
        assert_eq!(entered(Some(since), &a), t(90));
    }
}
