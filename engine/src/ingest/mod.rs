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

/// Parses a `POST /api/v2/alerts` body: one pass over the bytes, straight into the posted
/// alerts (their label and annotation strings are then moved into the stored alerts, never
/// copied). Anything that is not a JSON array of `postableAlert`s is an error (the handler's 400).
pub fn parse_body(body: &[u8]) -> Result<Vec<PostableAlert>, serde_json::Error> {
    serde_json::from_slice(body)
}

/// The fingerprint an ingested alert with these labels has.
pub fn fingerprint_of(p: &PostableAlert) -> String {
    fingerprint(INGESTED, &p.labels)
}

/// What `merge_posted` returns: the alerts to write, and the earliest `endsAt` among those
/// still firing (what `next_expiry` would find in them, without reading their details again).
#[derive(Debug, Default)]
pub struct Merged {
    pub alerts: Vec<Alert>,
    pub next_expiry: Option<Timestamp>,
}

/// Merges posted alerts into the stored ones. Returns the alerts to write.
pub fn merge(
    posted: Vec<PostableAlert>,
    stored: &[Alert],
    at: Timestamp,
) -> Result<Vec<Alert>, String> {
    let fps = posted.iter().map(fingerprint_of).collect();
    merge_posted(posted, fps, stored, at).map(|m| m.alerts)
}

/// `merge`, with each posted alert's fingerprint (`fingerprint_of`) already computed (the
/// engine computes them once, to look up the posted alerts' earlier selves).
pub fn merge_posted(
    posted: Vec<PostableAlert>,
    fingerprints: Vec<String>,
    stored: &[Alert],
    at: Timestamp,
) -> Result<Merged, String> {
    debug_assert_eq!(posted.len(), fingerprints.len());
    if posted.iter().any(|p| p.labels.is_empty()) {
        return Err("an alert needs at least one label".into());
    }
    let by_fp: BTreeMap<&str, &Alert> =
        stored.iter().map(|a| (a.fingerprint.as_str(), a)).collect();
    // fingerprint → (alert, its endsAt)
    let mut out: BTreeMap<String, (Alert, Timestamp)> = BTreeMap::new();
    for (mut p, fp) in posted.into_iter().zip(fingerprints) {
        // Go clients (amtool) send an unset time as Go's zero time; Alertmanager reads it as unset.
        p.starts_at = p.starts_at.filter(|t| !is_go_zero(t));
        p.ends_at = p.ends_at.filter(|t| !is_go_zero(t));
        p.generator_url = p.generator_url.filter(|g| !g.is_empty());
        let ends = p.ends_at.unwrap_or(at + RESOLVE_TIMEOUT);
        // An alert posted twice in one request: the later post updates the earlier one.
        let earlier = out.remove(&fp);
        let stored_one = by_fp.get(fp.as_str()).copied();
        let prev_active = match &earlier {
            Some((a, _)) => a.is_active(),
            None => stored_one.is_some_and(Alert::is_active),
        };
        let resolved = ends <= at;
        if resolved && !prev_active {
            // A resolve for an alert we never saw firing tells nobody anything.
            if let Some(e) = earlier {
                out.insert(fp, e);
            }
            continue;
        }
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
        let mut a = match (prev_active, earlier, stored_one) {
            (true, Some((a, _)), _) => a,
            (true, None, Some(a)) => a.clone(),
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
        out.insert(fp, (a, ends));
    }
    let next_expiry = out
        .values()
        .filter(|(a, _)| a.is_active())
        .map(|(_, ends)| *ends)
        .min();
    Ok(Merged {
        alerts: out.into_values().map(|(a, _)| a).collect(),
        next_expiry,
    })
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

    #[test]
    fn merge_posted_agrees_with_merge_and_finds_the_earliest_end() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap();
        // A, then B, then A again (the later post wins), a resolve of C never seen firing (dropped),
        // and D posted firing then resolved in the same request (the resolve wins).
        let body = r#"[{"labels":{"alertname":"A"},"endsAt":"2026-11-01T10:09:00Z"},
                       {"labels":{"alertname":"B"},"endsAt":"2026-11-01T10:07:00Z"},
                       {"labels":{"alertname":"A"},"endsAt":"2026-11-01T10:08:00Z","annotations":{"summary":"again"}},
                       {"labels":{"alertname":"C"},"endsAt":"2026-11-01T09:00:00Z"},
                       {"labels":{"alertname":"D"},"endsAt":"2026-11-01T10:03:00Z"},
                       {"labels":{"alertname":"D"},"endsAt":"2026-11-01T09:59:00Z"}]"#;
        let posted = parse_body(body.as_bytes()).unwrap();
        let fps = posted.iter().map(fingerprint_of).collect();
        let m = merge_posted(posted, fps, &[], t0).unwrap();
        assert_eq!(m.alerts, merge(post(body), &[], t0).unwrap());
        let names: Vec<(&str, AlertState)> = m
            .alerts
            .iter()
            .map(|a| (a.labels["alertname"].as_str(), a.state))
            .collect();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&("A", AlertState::Firing)));
        assert!(names.contains(&("B", AlertState::Firing)));
        assert!(names.contains(&("D", AlertState::Resolved)));
        let a = m
            .alerts
            .iter()
            .find(|a| a.labels["alertname"] == "A")
            .unwrap();
        assert_eq!(a.summary, "again");
        // D is resolved: the earliest end of those still firing is B's.
        let b_end = Utc.with_ymd_and_hms(2026, 11, 1, 10, 7, 0).unwrap();
        assert_eq!(m.next_expiry, Some(b_end));
        assert_eq!(m.next_expiry, next_expiry(&m.alerts));
        // E: a resolve first (dropped: never seen firing), firing, resolved, and resolved again
        // (the second resolve finds the first, inactive, and keeps it).
        let body2 = r#"[{"labels":{"alertname":"E"},"endsAt":"2026-11-01T09:59:00Z"},
                        {"labels":{"alertname":"E"},"endsAt":"2026-11-01T10:05:00Z"},
                        {"labels":{"alertname":"E"},"endsAt":"2026-11-01T09:00:00Z"},
                        {"labels":{"alertname":"E"},"endsAt":"2026-11-01T09:30:00Z"}]"#;
        let m2 = merge(post(body2), &[], t0).unwrap();
        assert_eq!(m2.len(), 1);
        assert_eq!(m2[0].state, AlertState::Resolved);
        assert_eq!(
            m2[0].ends_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap())
        );
        assert!(parse_body(b"{\"labels\":{}}").is_err());
        assert!(parse_body(b"[{\"labels\":{\"a\":1}}]").is_err());
    }
}
