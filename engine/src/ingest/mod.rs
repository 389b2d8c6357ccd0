//! Alerts that arrive from outside, in the JSON Prometheus sends to Alertmanager
//! (`POST /api/v2/alerts`). They join the same pipeline as Tripline's own alerts: silences,
//! inhibition, routing, grouping, escalation, receivers. Like Alertmanager, an alert stays firing
//! until its `endsAt` passes without a fresh post (default: 5 minutes after the last post).

use crate::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use crate::clock::Timestamp;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Rule id of ingested alerts.
pub const INGESTED: &str = "alertmanager/ingest";
pub use crate::alert::ENDS_AT;
pub use crate::alert::GENERATOR_URL;

/// How long an alert posted without `endsAt` stays firing (Alertmanager's `resolve_timeout`).
pub const RESOLVE_TIMEOUT: chrono::Duration = chrono::Duration::minutes(5);

/// One alert as Prometheus posts it (Alertmanager API v2 `postableAlert`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z), which Go clients send for "not set".
fn is_go_zero(t: &Timestamp) -> bool {
    t.timestamp() == -62_135_596_800
}

/// Merges posted alerts into the stored ones. Returns the alerts to write.
pub fn merge(
    posted: Vec<PostableAlert>,
    stored: &[Alert],
    at: Timestamp,
) -> Result<Vec<Alert>, String> {
    let by_fp: BTreeMap<&str, &Alert> =
        stored.iter().map(|a| (a.fingerprint.as_str(), a)).collect();
    let mut out: BTreeMap<String, Alert> = BTreeMap::new();
    for mut p in posted {
        if p.labels.is_empty() {
            return Err("an alert needs at least one label".into());
        }
        // Go clients (amtool) send an unset time as Go's zero time; Alertmanager reads it as unset.
        p.starts_at = p.starts_at.filter(|t| !is_go_zero(t));
        p.ends_at = p.ends_at.filter(|t| !is_go_zero(t));
        p.generator_url = p.generator_url.filter(|g| !g.is_empty());
        let fp = fingerprint(INGESTED, &p.labels);
        let ends = p.ends_at.unwrap_or(at + RESOLVE_TIMEOUT);
        // An alert posted twice in one request: the later post updates the earlier one.
        let prev = out
            .get(&fp)
            .cloned()
            .or_else(|| by_fp.get(fp.as_str()).map(|a| (*a).clone()));
        let resolved = ends <= at;
        let severity = p
            .labels
            .get("severity")
            .and_then(|s| s.parse().ok())
            .unwrap_or(Severity::Warning);
        // The annotations are moved, not copied: summary and runbook out, the rest as details.
        let mut ann = std::mem::take(&mut p.annotations);
        let summary = ann
            .remove("summary")
            .or_else(|| ann.get("description").cloned())
            .or_else(|| p.labels.get("alertname").cloned())
            .unwrap_or_else(|| "alert".into());
        let runbook_url = ann.remove("runbook_url");
        let runbook_other = ann.remove("runbook");
        let mut a = match prev {
            Some(a) if a.is_active() => a,
            // A resolve for an alert we never saw firing tells nobody anything.
            _ if resolved => continue,
            _ => Alert {
                fingerprint: fp.clone(),
                rule: INGESTED.into(),
                instance: INGESTED.into(),
                labels: std::mem::take(&mut p.labels),
                state: AlertState::Firing,
                severity: Severity::Warning,
                summary: String::new(),
                runbook: None,
                value: None,
                details: Default::default(),
                active_since: p.starts_at.unwrap_or(at),
                starts_at: Some(p.starts_at.unwrap_or(at)),
                ends_at: None,
                last_active: at,
                updated_at: at,
                severity_changed_at: None,
                keep_firing_since: None,
            },
        };
        a.severity = severity;
        a.summary = summary;
        a.runbook = runbook_url.or(runbook_other);
        a.details = ann.into_iter().map(|(k, v)| (k, v.into())).collect();
        if let Some(g) = p.generator_url {
            a.details.insert(GENERATOR_URL.into(), g.into());
        }
        a.details.insert(ENDS_AT.into(), ends.to_rfc3339().into());
        a.last_active = at;
        a.updated_at = at;
        if resolved {
            a.state = AlertState::Resolved;
            a.ends_at = Some(ends);
        }
        out.insert(fp, a);
    }
    Ok(out.into_values().collect())
}

/// When an ingested alert's `endsAt` passes (`None` for other alerts and inactive ones).
fn ends_of(a: &Alert) -> Option<Timestamp> {
    if a.rule != INGESTED || !a.is_active() {
        return None;
    }
    a.details.get(ENDS_AT)?.as_str()?.parse::<Timestamp>().ok()
}

/// The earliest instant one of these active ingested alerts expires.
pub fn next_expiry<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Option<Timestamp> {
    alerts.into_iter().filter_map(ends_of).min()
}

/// Ingested alerts whose `endsAt` has passed, resolved at that instant.
pub fn expired(stored: &[Alert], at: Timestamp) -> Vec<Alert> {
    stored
        .iter()
        .filter_map(|a| {
            let ends = ends_of(a)?;
            (ends <= at).then(|| {
                let mut r = a.clone();
                r.state = AlertState::Resolved;
                r.ends_at = Some(ends);
                r.updated_at = at;
                r
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn post(json: &str) -> Vec<PostableAlert> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn firing_then_expiry_then_explicit_resolve() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
        let body = r#"[{"labels":{"alertname":"WorkerDown","worker":"email","severity":"critical"},
                        "annotations":{"summary":"email worker is down","runbook_url":"https://r/x","description":"d"},
                        "startsAt":"2026-11-01T09:59:00Z","endsAt":"2026-11-01T10:04:00Z","generatorURL":"http://p/graph"}]"#;
        let a = merge(post(body), &[], t0).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].state, AlertState::Firing);
        assert_eq!(a[0].severity, Severity::Critical);
        assert_eq!(a[0].summary, "email worker is down");
        assert_eq!(a[0].runbook.as_deref(), Some("https://r/x"));
        assert_eq!(
            a[0].starts_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 1, 9, 59, 0).unwrap())
        );
        assert!(expired(&a, t0 + Duration::minutes(3)).is_empty());
        let gone = expired(&a, t0 + Duration::minutes(4));
        assert_eq!(gone[0].state, AlertState::Resolved);
        // Prometheus resolving it explicitly (endsAt in the past) resolves it too.
        let resolved = merge(post(&body.replace("10:04:00Z", "09:59:30Z")), &a, t0).unwrap();
        assert_eq!(resolved[0].state, AlertState::Resolved);
        // ... and a resolve of an unknown alert is ignored.
        assert!(
            merge(post(&body.replace("10:04:00Z", "09:59:30Z")), &[], t0)
                .unwrap()
                .is_empty()
        );
        assert!(merge(post(r#"[{"labels":{}}]"#), &[], t0).is_err());
        // amtool's `alert add`: unset times as Go's zero time mean "now" and "no end".
        let amtool = r#"[{"labels":{"alertname":"Muted"},"startsAt":"0001-01-01T00:00:00.000Z",
                         "endsAt":"0001-01-01T00:00:00.000Z","generatorURL":""}]"#;
        let a = merge(post(amtool), &[], t0).unwrap();
        assert_eq!(a[0].state, AlertState::Firing);
        assert_eq!(a[0].starts_at, Some(t0));
        assert!(expired(&a, t0 + Duration::minutes(4)).is_empty());
    }
}
