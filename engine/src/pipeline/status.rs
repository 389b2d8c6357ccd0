//! Why an alert is or is not being notified right now: the silences muting it, the alerts
//! inhibiting it, who acknowledged it. Read-only, for `tripline alerts`, `GET /api/v1/alerts`
//! and the Alertmanager API; it asks the same stages the pipeline asks (on the same redacted
//! labels), so what it shows is what the pipeline does.

use super::escalate::Ack;
use super::{NotifyState, PipelineConfig};
use crate::alert::{Alert, AlertState};
use crate::clock::Timestamp;
use std::collections::BTreeMap;

/// One alert's muting state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertStatus {
    /// Ids of the active silences that mute it.
    pub silenced_by: Vec<String>,
    /// Fingerprints of the firing alerts that inhibit it.
    pub inhibited_by: Vec<String>,
    /// The acknowledgement of its current firing episode.
    pub acked: Option<Ack>,
}

impl AlertStatus {
    /// Alertmanager's word for it: `suppressed` (silenced or inhibited) or `active`.
    pub fn state(&self) -> &'static str {
        if self.silenced_by.is_empty() && self.inhibited_by.is_empty() {
            "active"
        } else {
            "suppressed"
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "state": self.state(),
            "silenced_by": self.silenced_by,
            "inhibited_by": self.inhibited_by,
            "acknowledged_by": self.acked.as_ref().map(|a| &a.by),
            "acknowledged_at": self.acked.as_ref().map(|a| a.at),
        })
    }
}

/// The status of each alert at `at`, by fingerprint (every alert given has an entry).
pub fn statuses(
    cfg: &PipelineConfig,
    alerts: &[Alert],
    st: &NotifyState,
    at: Timestamp,
) -> BTreeMap<String, AlertStatus> {
    let mut redacted: Vec<Alert> = alerts.to_vec();
    for a in &mut redacted {
        cfg.redactor.alert(a);
    }
    let active: Vec<_> = st
        .silences
        .iter()
        .filter(|s| s.is_active(at))
        .filter_map(|s| s.parsed().map(|m| (s, m)))
        .collect();
    let inhibited = cfg.inhibitor.inhibited_by(&redacted);
    redacted
        .iter()
        .map(|a| {
            let silenced_by = if cfg.silences.send_resolved && a.state == AlertState::Resolved {
                vec![]
            } else {
                active
                    .iter()
                    .filter(|(_, m)| super::matcher::all_match(m, a))
                    .map(|(s, _)| s.id.clone())
                    .collect()
            };
            let status = AlertStatus {
                silenced_by,
                inhibited_by: inhibited
                    .get(&a.fingerprint)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                acked: st
                    .acks
                    .iter()
                    .find(|k| a.state == AlertState::Firing && k.covers(a))
                    .cloned(),
            };
            (a.fingerprint.clone(), status)
        })
        .collect()
}

/// An alert as `tripline alerts --format json` and `GET /api/v1/alerts` show it (one function,
/// so the two cannot drift); `status` when it is known.
pub fn alert_json(a: &Alert, status: Option<&AlertStatus>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "instance": a.instance,
        "state": a.state,
        "severity": a.severity,
        "labels": a.labels,
        "summary": a.summary,
        "runbook": a.runbook,
        "value": a.value,
        "starts_at": a.starts_at,
        "active_since": a.active_since,
        "ends_at": a.ends_at,
        "details": a.details,
    });
    if let Some(s) = status {
        v["status"] = s.json();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::inhibit::{InhibitRule, Inhibitor};
    use crate::pipeline::matcher::Matcher;
    use crate::pipeline::silence::Silence;
    use crate::pipeline::testutil::{alert, t};

    #[test]
    fn reports_silences_inhibitors_and_acks_per_alert() {
        let mut cfg = PipelineConfig::fan_out(&["hook".to_string()]);
        cfg.inhibitor = Inhibitor {
            rules: vec![InhibitRule {
                source_matchers: vec![Matcher::parse("alertname=WorkerDown").unwrap()],
                target_matchers: vec![Matcher::parse("alertname=QueueDepth").unwrap()],
                equal: vec!["worker".into()],
            }],
        };
        let down = alert("WorkerDown", &[("worker", "w1")], AlertState::Firing);
        let queue = alert("QueueDepth", &[("worker", "w1")], AlertState::Firing);
        let other = alert("Errors", &[("team", "db")], AlertState::Firing);
        let silence = Silence::new(
            &[Matcher::parse("team=db").unwrap()],
            t(0),
            t(3600),
            "ann",
            "",
            t(0),
        )
        .unwrap();
        let st = NotifyState {
            silences: vec![silence.clone()],
            acks: vec![Ack {
                fingerprint: down.fingerprint.clone(),
                by: "bob".into(),
                at: t(10),
                announced: true,
            }],
            ..Default::default()
        };
        let all = [down.clone(), queue.clone(), other.clone()];
        let s = statuses(&cfg, &all, &st, t(60));
        assert_eq!(s[&other.fingerprint].silenced_by, vec![silence.id.clone()]);
        assert_eq!(s[&other.fingerprint].state(), "suppressed");
        assert_eq!(
            s[&queue.fingerprint].inhibited_by,
            vec![down.fingerprint.clone()]
        );
        assert_eq!(s[&down.fingerprint].state(), "active");
        assert_eq!(s[&down.fingerprint].acked.as_ref().unwrap().by, "bob");
        assert!(s[&queue.fingerprint].acked.is_none());
        // Once the silence has ended it mutes nothing.
        let later = statuses(&cfg, &all, &st, t(3600));
        assert!(later[&other.fingerprint].silenced_by.is_empty());
    }
}
