//! Inhibition: a firing alert (the source) mutes other alerts (the targets) that share some labels,
//! e.g. a critical mutes the warning of the same function, a worker that is down mutes its queue's
//! alerts. Sources are every firing alert, silenced or not, as in Alertmanager: a silenced
//! outage still explains its symptoms. An alert never inhibits itself.
//!
//! Matchers see an alert's severity as the `severity` label (`LabelSource for Alert`). Unlike
//! Alertmanager, an `equal` label must be present on both alerts: a label missing on both is not
//! "equal", so `equal = ["function"]` never lets an alert without a function (a worker outage)
//! mute every warning in the system.

use super::matcher::{all_match, LabelSource, Matcher};
use crate::alert::{Alert, AlertState};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    /// Labels that both alerts must carry, with the same value.
    pub equal: Vec<String>,
}

impl InhibitRule {
    fn inhibits(&self, source: &Alert, target: &Alert) -> bool {
        source.fingerprint != target.fingerprint
            && all_match(&self.source_matchers, source)
            && all_match(&self.target_matchers, target)
            && self
                .equal
                .iter()
                .all(|l| source.label(l).is_some_and(|v| target.label(l) == Some(v)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    pub rules: Vec<InhibitRule>,
}

impl Inhibitor {
    /// Fingerprints of the firing alerts that some other firing alert inhibits. Resolved alerts
    /// are never muted here, so a resolve announced before still reaches its receiver.
    pub fn muted<A: Borrow<Alert>>(&self, alerts: &[A]) -> BTreeSet<String> {
        let firing: Vec<&Alert> = alerts
            .iter()
            .map(Borrow::borrow)
            .filter(|a| a.state == AlertState::Firing)
            .collect();
        let mut out = BTreeSet::new();
        for rule in &self.rules {
            let sources: Vec<&&Alert> = firing
                .iter()
                .filter(|a| all_match(&rule.source_matchers, **a))
                .collect();
            if sources.is_empty() {
                continue;
            }
            for target in &firing {
                if sources.iter().any(|s| rule.inhibits(s, target)) {
                    out.insert(target.fingerprint.clone());
                }
            }
        }
        out
    }

    /// For each inhibited firing alert, the fingerprints of the firing alerts inhibiting it
    /// (what Alertmanager's API reports as `inhibitedBy`). Same decision as `muted`.
    pub fn inhibited_by(&self, alerts: &[Alert]) -> BTreeMap<String, BTreeSet<String>> {
        let firing: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .collect();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for rule in &self.rules {
            let sources: Vec<&Alert> = firing
                .iter()
                .copied()
                .filter(|a| all_match(&rule.source_matchers, *a))
                .collect();
            for target in &firing {
                for s in sources.iter().filter(|s| rule.inhibits(s, target)) {
                    out.entry(target.fingerprint.clone())
                        .or_default()
                        .insert(s.fingerprint.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::alert;

    fn rule(src: &[&str], tgt: &[&str], equal: &[&str]) -> InhibitRule {
        InhibitRule {
            source_matchers: src.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            target_matchers: tgt.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn critical_mutes_warning_of_the_same_function_only() {
        let inh = Inhibitor {
            rules: vec![rule(
                &["severity=critical"],
                &["severity=warning"],
                &["function"],
            )],
        };
        let crit = alert(
            "errors",
            &[("severity", "critical"), ("function", "f1")],
            AlertState::Firing,
        );
        let warn_same = alert(
            "latency",
            &[("severity", "warning"), ("function", "f1")],
            AlertState::Firing,
        );
        let warn_other = alert(
            "latency",
            &[("severity", "warning"), ("function", "f2")],
            AlertState::Firing,
        );
        let muted = inh.muted(&[crit.clone(), warn_same.clone(), warn_other.clone()]);
        assert_eq!(muted, [warn_same.fingerprint.clone()].into());
        // Once the source resolves, nothing is muted any more.
        let mut crit_resolved = crit;
        crit_resolved.state = AlertState::Resolved;
        assert!(inh
            .muted(&[crit_resolved, warn_same, warn_other])
            .is_empty());
    }

    #[test]
    fn worker_down_mutes_its_queue_alerts() {
        let inh = Inhibitor {
            rules: vec![rule(
                &["alertname=WorkerDown"],
                &["alertname=~Queue.*"],
                &["worker"],
            )],
        };
        let down = alert("WorkerDown", &[("worker", "w1")], AlertState::Firing);
        let q1 = alert(
            "QueueDepth",
            &[("worker", "w1"), ("queue", "a")],
            AlertState::Firing,
        );
        let q2 = alert(
            "QueueAge",
            &[("worker", "w2"), ("queue", "b")],
            AlertState::Firing,
        );
        assert_eq!(
            inh.muted(&[down.clone(), q1.clone(), q2]),
            [q1.fingerprint.clone()].into()
        );
        assert!(
            inh.muted(std::slice::from_ref(&down)).is_empty(),
            "never itself"
        );
        assert_eq!(
            inh.inhibited_by(&[down.clone(), q1.clone()]),
            [(q1.fingerprint.clone(), [down.fingerprint.clone()].into())].into()
        );
    }

    #[test]
    fn matchers_see_the_severity_field_and_equal_labels_must_be_present() {
        let inh = Inhibitor {
            rules: vec![rule(
                &["severity=critical"],
                &["severity=warning"],
                &["function"],
            )],
        };
        // Severity set by the rule as a field, not as a label.
        let mut crit = alert("errors", &[("function", "f1")], AlertState::Firing);
        crit.severity = crate::alert::Severity::Critical;
        let mut warn = alert("latency", &[("function", "f1")], AlertState::Firing);
        warn.severity = crate::alert::Severity::Warning;
        // A critical with no `function` label mutes nothing, not every warning without one.
        let mut outage = alert("WorkerDown", &[("worker", "w1")], AlertState::Firing);
        outage.severity = crate::alert::Severity::Critical;
        let mut queue = alert("QueueAge", &[("worker", "w1")], AlertState::Firing);
        queue.severity = crate::alert::Severity::Warning;
        assert_eq!(
            inh.muted(&[crit, warn.clone(), outage, queue]),
            [warn.fingerprint].into()
        );
    }
}
