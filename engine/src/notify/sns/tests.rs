//! The SNS payload's tests: the exact firing and resolved documents, a one-line subject of at
//! most 100 characters, and SNS's 256 KB message limit met by cutting details (never the
//! runbook) and then alerts, with a count.

use super::payload::{build, subject, MAX_MESSAGE_BYTES};
use super::*;
use crate::alert::{Alert, AlertState, Labels, Severity};
use crate::notify::NotificationStatus;
use chrono::TimeZone;
use serde_json::{json, Value};

const RUNBOOK: &str = "https://runbooks.example.com/campaign-workers#lambda-errors";

fn alert(state: AlertState) -> Alert {
    let t = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 5, 0).unwrap();
    let mut labels = Labels::new();
    labels.insert("alertname".into(), "lambda-errors".into());
    labels.insert(
        "function".into(),
        "prd2011-prod1-us-east-1-cmp-save-data".into(),
    );
    let mut details = serde_json::Map::new();
    details.insert(
        "top_errors".into(),
        json!([
            "TypeError: x is undefined",
            "Task timed out after 60.00 seconds"
        ]),
    );
    Alert {
        fingerprint: "0123456789abcdef".into(),
        rule: "aws/lambda-errors".into(),
        instance: "lambda-errors".into(),
        labels,
        state,
        severity: Severity::Critical,
        summary: "prd2011-prod1-us-east-1-cmp-save-data: 25 errors in 5m (threshold 10)".into(),
        runbook: Some(RUNBOOK.into()),
        value: Some(25.0),
        details,
        active_since: t,
        starts_at: Some(t),
        ends_at: (state == AlertState::Resolved).then(|| t + chrono::Duration::minutes(10)),
        last_active: t,
        updated_at: t,
        severity_changed_at: None,
        keep_firing_since: None,
    }
}

fn notification(status: NotificationStatus, alerts: Vec<Alert>) -> Notification {
    Notification {
        id: "0123456789abcdef:firing:1793527500".into(),
        receiver: "ops-sns".into(),
        status,
        group_key: "0123456789abcdef".into(),
        group_labels: alerts[0].labels.clone(),
        alerts: alerts.into_iter().map(std::sync::Arc::new).collect(),
        created_at: chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 5, 0).unwrap(),
        acknowledged_by: None,
    }
}

#[test]
fn exact_firing_payload() {
    let p = build(
        &notification(NotificationStatus::Firing, vec![alert(AlertState::Firing)]),
        MAX_MESSAGE_BYTES,
    );
    assert_eq!(
        p.subject,
        "[FIRING] prd2011-prod1-us-east-1-cmp-save-data: 25 errors in 5m (threshold 10)"
    );
    assert_eq!(
        p.attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        vec![
            "fingerprint=0123456789abcdef",
            "rule=aws/lambda-errors",
            &format!("runbook={RUNBOOK}"),
            "severity=critical",
            "status=firing"
        ]
    );
    let m: Value = serde_json::from_str(&p.message).unwrap();
    assert_eq!(
        m["default"].as_str().unwrap(),
        "[FIRING] 1 alert(s) from Tripline\n\
         \n\
         FIRING critical: prd2011-prod1-us-east-1-cmp-save-data: 25 errors in 5m (threshold 10)\n\
         Runbook: https://runbooks.example.com/campaign-workers#lambda-errors\n\
         Rule: aws/lambda-errors (instance lambda-errors)\n\
         Value: 25\n\
         Since: 2026-11-01T10:05:00Z\n\
         Labels: alertname=lambda-errors function=prd2011-prod1-us-east-1-cmp-save-data\n\
         top_errors: \n    - TypeError: x is undefined\n    - Task timed out after 60.00 seconds\n\
         Fingerprint: 0123456789abcdef\n"
    );
    assert_eq!(
        m["sqs"].as_str().unwrap(),
        r#"{"version":"1","source":"tripline","id":"0123456789abcdef:firing:1793527500","receiver":"ops-sns","status":"firing","groupKey":"0123456789abcdef","groupLabels":{"alertname":"lambda-errors","function":"prd2011-prod1-us-east-1-cmp-save-data"},"createdAt":"2026-11-01T10:05:00Z","alerts":[{"status":"firing","fingerprint":"0123456789abcdef","rule":"aws/lambda-errors","instance":"lambda-errors","severity":"critical","summary":"prd2011-prod1-us-east-1-cmp-save-data: 25 errors in 5m (threshold 10)","labels":{"alertname":"lambda-errors","function":"prd2011-prod1-us-east-1-cmp-save-data"},"runbook":"https://runbooks.example.com/campaign-workers#lambda-errors","value":25.0,"startsAt":"2026-11-01T10:05:00Z","endsAt":null,"details":{"top_errors":["TypeError: x is undefined","Task timed out after 60.00 seconds"]}}],"truncated":false}"#
    );
    for proto in ["lambda", "http", "https"] {
        assert_eq!(m[proto], m["sqs"], "{proto}");
    }
    assert_eq!(m.as_object().unwrap().len(), 5);
}

#[test]
fn resolved_variant() {
    let p = build(
        &notification(
            NotificationStatus::Resolved,
            vec![alert(AlertState::Resolved)],
        ),
        MAX_MESSAGE_BYTES,
    );
    assert!(
        p.subject.starts_with("[RESOLVED] prd2011-prod1"),
        "{}",
        p.subject
    );
    assert_eq!(p.attributes["status"], "resolved");
    let m: Value = serde_json::from_str(&p.message).unwrap();
    let text = m["default"].as_str().unwrap();
    assert!(text.starts_with("[RESOLVED] 1 alert(s)"), "{text}");
    assert!(text.contains("Resolved at: 2026-11-01T10:15:00Z"), "{text}");
    let body: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["alerts"][0]["status"], "resolved");
    assert_eq!(body["alerts"][0]["endsAt"], "2026-11-01T10:15:00Z");
}

#[test]
fn subject_is_one_line_of_at_most_100_chars() {
    let mut a = alert(AlertState::Firing);
    a.summary = format!("line one\nline two {}", "x".repeat(300));
    let n = notification(NotificationStatus::Firing, vec![a.clone(), a]);
    let s = subject(&n);
    assert_eq!(s.chars().count(), 100);
    assert!(
        s.starts_with("[FIRING:2] lambda-errors: line one line two xxx"),
        "{s}"
    );
    assert!(s.ends_with("...") && !s.contains('\n'));
}

#[test]
fn oversized_details_are_cut_but_never_the_runbook() {
    let mut a = alert(AlertState::Firing);
    // Triage attached 400 KB of log lines.
    a.details.insert(
        "log_lines".into(),
        Value::Array(
            (0..4000)
                .map(|i| json!(format!("{i:05} {}", "e".repeat(95))))
                .collect(),
        ),
    );
    a.details
        .insert("request_ids".into(), json!("r".repeat(150_000)));
    let p = build(
        &notification(NotificationStatus::Firing, vec![a]),
        MAX_MESSAGE_BYTES,
    );
    assert!(p.size() <= MAX_MESSAGE_BYTES, "{}", p.size());
    assert!(
        p.size() > MAX_MESSAGE_BYTES / 2,
        "cut far more than needed: {}",
        p.size()
    );
    assert_eq!(p.attributes["runbook"], RUNBOOK);
    let m: Value = serde_json::from_str(&p.message).unwrap();
    let text = m["default"].as_str().unwrap();
    assert!(text.contains(&format!("Runbook: {RUNBOOK}\n")));
    assert!(text.contains("Some details were cut"));
    let body: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(body["truncated"], true);
    assert_eq!(body["alerts"][0]["runbook"], RUNBOOK);
    assert_eq!(
        body["alerts"][0]["summary"],
        "prd2011-prod1-us-east-1-cmp-save-data: 25 errors in 5m (threshold 10)"
    );
}

#[test]
fn many_alerts_are_dropped_last_with_a_count() {
    let mut alerts = Vec::new();
    for i in 0..600 {
        let mut a = alert(AlertState::Firing);
        a.fingerprint = format!("{i:016x}");
        a.summary = format!("{i}: {}", "s".repeat(150));
        a.details.insert("note".into(), json!("d".repeat(150)));
        alerts.push(a);
    }
    let p = build(
        &notification(NotificationStatus::Firing, alerts),
        MAX_MESSAGE_BYTES,
    );
    assert!(p.size() <= MAX_MESSAGE_BYTES);
    let m: Value = serde_json::from_str(&p.message).unwrap();
    let body: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
    let kept = body["alerts"].as_array().unwrap().len();
    assert!(kept > 10 && kept < 600, "{kept}");
    assert_eq!(body["omittedAlerts"], 600 - kept);
    assert!(body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["runbook"] == RUNBOOK));
}

#[test]
fn topic_arns_and_dedup_ids() {
    assert!(validate_topic_arn("arn:aws:sns:us-east-1:123456789012:alerts").is_ok());
    assert!(validate_topic_arn("alerts")
        .unwrap_err()
        .contains("not an SNS topic ARN"));
    assert_eq!(dedup_id("abc:firing:1"), "abc:firing:1");
    assert_eq!(dedup_id(&"x".repeat(200)).len(), 16);
}
