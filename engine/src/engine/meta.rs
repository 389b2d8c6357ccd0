//! Meta-alerts: the `tripline/rule-error` and `tripline/source-error` alerts a failing rule or
//! source raises for its instance, and the `RuleLoadError` alerts of broken rule files.

use super::{RuleInstance, Tripline};
use crate::alert::{
    self, Alert, AlertCandidate, Labels, Reported, Severity, Timing, Transition, RULE_ERROR,
    SOURCE_ERROR,
};
use crate::clock::Timestamp;

fn alertname_of(rule_id: &str) -> &'static str {
    if rule_id == RULE_ERROR {
        "RuleError"
    } else {
        "SourceError"
    }
}

pub(super) fn meta_candidate(
    inst: &RuleInstance,
    rule_id: &str,
    severity: Severity,
    summary: String,
    detail: &str,
) -> AlertCandidate {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), alertname_of(rule_id).into());
    labels.insert("instance".into(), inst.name.clone());
    labels.insert("rule".into(), inst.rule.meta.id.clone());
    let mut details = serde_json::Map::new();
    details.insert("error".into(), detail.into());
    AlertCandidate {
        labels,
        severity,
        summary,
        runbook: None,
        value: None,
        details,
    }
}

impl Tripline {
    /// Rule-error and source-error alerts: one per failing instance (and per broken rule file);
    /// they resolve when the instance next evaluates cleanly.
    pub(super) fn meta_transitions(
        &self,
        stored: &[Alert],
        due: &[&RuleInstance],
        mut fired: Vec<AlertCandidate>,
        at: Timestamp,
    ) -> Vec<Transition> {
        for e in &self.load_errors {
            let mut labels = Labels::new();
            labels.insert("alertname".into(), "RuleLoadError".into());
            labels.insert(
                "file".into(),
                e.split(':').next().unwrap_or_default().to_string(),
            );
            fired.push(AlertCandidate {
                labels,
                severity: Severity::Warning,
                summary: format!("rule file failed to load: {e}"),
                runbook: None,
                value: None,
                details: Default::default(),
            });
        }
        let mut out = Vec::new();
        for rule_id in [RULE_ERROR, SOURCE_ERROR] {
            let current: Vec<Alert> = stored
                .iter()
                .filter(|a| a.rule == rule_id)
                .cloned()
                .collect();
            // Instances not evaluated this cycle keep their error alerts as they are.
            let retained = current
                .iter()
                .filter(|a| {
                    a.labels
                        .get("instance")
                        .is_some_and(|i| !due.iter().any(|d| &d.name == i))
                })
                .map(|a| a.labels.clone())
                .collect();
            let reported = Reported {
                fired: fired
                    .iter()
                    .filter(|c| {
                        (c.labels.get("alertname").map(|s| s.as_str())
                            == Some(alertname_of(rule_id)))
                            || (rule_id == RULE_ERROR
                                && c.labels.get("alertname").map(|s| s.as_str())
                                    == Some("RuleLoadError"))
                    })
                    .cloned()
                    .collect(),
                retained,
                retain_all: false,
            };
            out.extend(alert::advance(
                rule_id,
                rule_id,
                &current,
                &reported,
                Timing::default(),
                at,
            ));
        }
        out
    }
}
