//! The exact payloads each receiver gets, sent over HTTP to a local receiver and snapshotted,
//! plus Block Kit's limits on a large group.

use super::{alert, resolved, secs, snapshot, t0};
use crate::support::receiver::Receiver;
use tripline::alert::Severity;
use tripline::notify::pagerduty::PagerdutyNotifier;
use tripline::notify::redact::Secret;
use tripline::notify::slack::SlackNotifier;
use tripline::notify::webhook::WebhookNotifier;
use tripline::notify::{Notification, NotificationStatus, Notifier};

fn group(status: NotificationStatus) -> Notification {
    let mut a = alert(
        "LambdaErrors",
        &[("function", "checkout"), ("team", "payments")],
        Severity::Critical,
    );
    a.details.insert(
        "top_error".into(),
        "TimeoutError: task timed out after 30.00 seconds".into(),
    );
    let b = alert(
        "LambdaErrors",
        &[("function", "refunds"), ("team", "payments")],
        Severity::Warning,
    );
    let alerts = match status {
        NotificationStatus::Resolved => vec![resolved(a, secs(600)), resolved(b, secs(600))],
        _ => vec![a, resolved(b, secs(300))],
    };
    Notification {
        id: "n-1".into(),
        receiver: "r".into(),
        status,
        group_key: "{}:{alertname=\"LambdaErrors\"}".into(),
        group_labels: [("alertname".to_string(), "LambdaErrors".to_string())].into(),
        alerts: alerts.into_iter().map(std::sync::Arc::new).collect(),
        created_at: t0(),
        acknowledged_by: (status == NotificationStatus::Acknowledged).then(|| "ann".into()),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn slack_firing_resolved_and_acknowledged_messages() {
    let rx = Receiver::start();
    let slack = SlackNotifier::new(
        "slack",
        Secret::new(rx.url("/services/T000/B000/XXXX")),
        None,
        None,
    )
    .unwrap();
    let rt = runtime();
    for (status, name) in [
        (NotificationStatus::Firing, "slack_firing"),
        (NotificationStatus::Resolved, "slack_resolved"),
        (NotificationStatus::Acknowledged, "slack_acknowledged"),
    ] {
        rt.block_on(slack.notify(&group(status))).unwrap();
        let req = rx.requests().pop().unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/services/T000/B000/XXXX");
        assert_eq!(req.header("content-type"), Some("application/json"));
        snapshot(name, &req.json());
    }
}

#[test]
fn slack_keeps_block_kit_limits_on_a_huge_group() {
    let rx = Receiver::start();
    let slack = SlackNotifier::new("slack", Secret::new(rx.url("/hook")), None, None).unwrap();
    let mut n = group(NotificationStatus::Firing);
    n.alerts = (0..500)
        .map(|i| {
            let mut a = alert(
                &"VeryLongAlertName".repeat(12),
                &[("queue", &format!("q{i}"))],
                Severity::Warning,
            );
            a.summary = "x".repeat(5000);
            a.runbook = Some(format!("https://runbooks.example.com/{}", "p".repeat(3100)));
            std::sync::Arc::new(a)
        })
        .collect();
    n.group_labels = [("alertname".to_string(), "VeryLongAlertName".repeat(12))].into();
    runtime().block_on(slack.notify(&n)).unwrap();
    let body = rx.requests().pop().unwrap().json();
    let blocks = body["attachments"][0]["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(header.chars().count() <= 150, "{header}");
    assert!(header.contains("[FIRING:500]"), "{header}");
    for b in blocks.iter().filter(|b| b["type"] == "section") {
        assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 3000);
        assert!(
            b.get("accessory").is_none(),
            "a runbook url over 3000 chars gets no button"
        );
    }
    let last = blocks.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        last,
        "…and 480 more alert(s) not shown (480 firing, 0 resolved)"
    );
    assert!(!body["text"].as_str().unwrap().is_empty(), "text fallback");
}

#[test]
fn pagerduty_events_trigger_resolve_acknowledge() {
    let rx = Receiver::start_with(crate::support::receiver::Reply::Status(202));
    let pd = PagerdutyNotifier::new(
        "pd",
        Secret::new("R0UT1NGKEY"),
        Some(rx.url("/v2/enqueue")),
        None,
        None,
    )
    .unwrap();
    let rt = runtime();
    rt.block_on(pd.notify(&group(NotificationStatus::Firing)))
        .unwrap();
    rt.block_on(pd.notify(&group(NotificationStatus::Acknowledged)))
        .unwrap();
    let events: Vec<serde_json::Value> = rx.requests().iter().map(|r| r.json()).collect();
    assert!(rx.requests().iter().all(|r| r.path == "/v2/enqueue"));
    snapshot(
        "pagerduty_events",
        &serde_json::Value::Array(events.clone()),
    );
    // Firing group: trigger for the firing alert, resolve for the resolved one.
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(events[0]["payload"]["severity"], "critical");
    assert_eq!(
        events[0]["links"][0]["href"],
        "https://runbooks.example.com/lambdaerrors"
    );
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[2]["event_action"], "acknowledge");
    assert_eq!(events[0]["dedup_key"], events[2]["dedup_key"]);
}

#[test]
fn pagerduty_maps_severities() {
    use tripline::notify::pagerduty::severity;
    assert_eq!(
        [
            Severity::Critical,
            Severity::High,
            Severity::Warning,
            Severity::Info
        ]
        .map(severity),
        ["critical", "error", "warning", "info"]
    );
}

#[test]
fn webhook_speaks_alertmanager_v4() {
    let rx = Receiver::start();
    let wh = WebhookNotifier::new("hook", Secret::new(rx.url("/alerts")), None, 0, None).unwrap();
    runtime()
        .block_on(wh.notify(&group(NotificationStatus::Firing)))
        .unwrap();
    let req = rx.requests().pop().unwrap();
    assert_eq!(req.header("x-tripline-notification-id"), Some("n-1"));
    let body = req.json();
    snapshot("webhook_firing", &body);
    assert_eq!(body["version"], "4");
    assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // Acknowledgements have no place in Alertmanager's format: nothing is sent.
    runtime()
        .block_on(wh.notify(&group(NotificationStatus::Acknowledged)))
        .unwrap();
    assert_eq!(rx.requests().len(), 1);
}
