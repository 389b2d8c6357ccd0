//! Escalation policies: ordered steps `(after, receiver)`. An alert that keeps firing without
//! being acknowledged reaches each step's receiver `after` its start (Slack now, PagerDuty after
//! 15m, the manager after 45m). An acknowledgement (`tripline ack`) stops it; a resolve ends it.
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

impl EscalationPolicy {
    /// Whether `alert` has reached step `i` at `at` and is still to be escalated.
    pub fn reached(&self, i: usize, alert: &Alert, ack: Option<&Ack>, at: Timestamp) -> bool {
        let Some(step) = self.steps.get(i) else {
            return false;
        };
        alert.state == AlertState::Firing
            && episode_start(alert) + step.after <= at
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
        assert!(p.reached(0, &a, None, t(0)));
        assert!(!p.reached(1, &a, None, t(14)));
        assert!(p.reached(1, &a, None, t(15)));
        assert!(!p.reached(2, &a, None, t(44)));
        let ack = Ack {
            fingerprint: a.fingerprint.clone(),
            by: "ann".into(),
            at: t(20),
            announced: false,
        };
        assert!(!p.reached(2, &a, Some(&ack), t(45)), "acked: no manager");
        // A new episode after the ack escalates again.
        a.starts_at = Some(t(60));
        assert!(p.reached(1, &a, Some(&ack), t(75)));
        a.state = AlertState::Resolved;
        assert!(!p.reached(1, &a, None, t(80)), "a resolve ends it");
    }
}
