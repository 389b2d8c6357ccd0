//! Helpers for the pipeline's unit tests.

use crate::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use crate::clock::Timestamp;
use chrono::{Duration, TimeZone, Utc};

/// Minutes after a fixed instant.
pub fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
}

/// An alert named `alertname` with extra labels, started at `t(0)`.
pub fn alert(alertname: &str, labels: &[(&str, &str)], state: AlertState) -> Alert {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("alertname".into(), alertname.into());
    let severity = l
        .get("severity")
        .and_then(|s| s.parse().ok())
        .unwrap_or(Severity::Warning);
    Alert {
        fingerprint: fingerprint("test", &l),
        rule: "test".into(),
        instance: alertname.into(),
        labels: l,
        state,
        severity,
        summary: format!("{alertname} is bad"),
        runbook: Some("https://runbooks.example.com/x".into()),
        value: Some(1.0),
        details: Default::default(),
        active_since: t(0),
        starts_at: Some(t(0)),
        ends_at: (state == AlertState::Resolved).then(|| t(0)),
        last_active: t(0),
        updated_at: t(0),
        severity_changed_at: None,
        keep_firing_since: None,
    }
}
