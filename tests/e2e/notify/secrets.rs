//! Secrets — a Slack webhook URL, a PagerDuty routing key — reach no log line and no error, at
//! any log level, whatever the receivers answer.

use super::alert;
use crate::support::bin::tripline_bin;
use crate::support::receiver::{Receiver, Reply};
use std::process::Command;
use tripline::alert::Severity;
use tripline::notify::redact::Secret;
use tripline::notify::webhook::WebhookNotifier;
use tripline::notify::{Notification, NotificationStatus, Notifier};
use tripline::store::AlertStore;
use tripline::store::OutboxStore;
use tripline::store::SqliteStore;

const SLACK_PATH: &str = "/services/T0SECRETT/B0SECRETB/XXSECRETXX";
const ROUTING_KEY: &str = "PDSECRETROUTINGKEY0123";

fn assert_clean(text: &str) {
    for s in ["T0SECRETT", "B0SECRETB", "XXSECRETXX", ROUTING_KEY] {
        assert!(!text.contains(s), "secret {s} leaked:\n{text}");
    }
}

#[test]
fn no_secret_in_any_log_line_or_error() {
    let slack = Receiver::start_with(Reply::Status(500));
    let pd = Receiver::start_with(Reply::Status(400));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        format!(
            r#"
stock_rules = false
[store]
type = "sqlite"
path = "state.db"

[notify]
backoff = "100ms"
max_attempts = 3

[[receiver]]
type = "slack"
name = "slack"
url_env = "SLACK_WEBHOOK_URL"

[[receiver]]
type = "pagerduty"
name = "pagerduty"
routing_key_env = "PD_ROUTING_KEY"
url = "{}"

[route]
receiver = "slack"
group_wait = "0s"
  [[route.routes]]
  matchers = ["severity=critical"]
  receiver = "pagerduty"
  continue = true
  [[route.routes]]
  receiver = "slack"
"#,
            pd.url("/v2/enqueue")
        ),
    )
    .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
            let mut a = alert(
                "Errors",
                &[("function", "f1"), ("severity", "critical")],
                Severity::Critical,
            );
            a.details
                .insert("authorization".into(), "Bearer hunter2".into());
            store.save_alerts(&[a], &[]).await.unwrap();
        });
    let out = Command::new(tripline_bin())
        .args([
            "--log",
            "trace",
            "deliver",
            "--config",
            "tripline.toml",
            "--within",
            "3s",
        ])
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .env("SLACK_WEBHOOK_URL", slack.url(SLACK_PATH))
        .env("PD_ROUTING_KEY", ROUTING_KEY)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("HTTP 500") && all.contains("HTTP 400"),
        "the failures are logged:\n{all}"
    );
    assert!(all.contains("dead-lettered"), "{all}");
    // Tripline's own debug lines (the HTTP client's are held at warn: they name hosts).
    assert!(all.contains("DEBUG"), "trace logging is on:\n{all}");
    assert_clean(&all);
    assert!(!all.contains("hunter2"), "redacted detail leaked");
    // Both receivers were really called with the secrets.
    assert_eq!(slack.requests()[0].path, SLACK_PATH);
    assert_eq!(pd.requests()[0].json()["routing_key"], ROUTING_KEY);

    // Stored errors and the dead-letter meta-alert are clean too.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
            let entries = store.outbox_entries().await.unwrap();
            assert!(entries.iter().any(|e| e.last_error.is_some()));
            assert_clean(&serde_json::to_string(&entries).unwrap());
            let alerts = store.load_alerts().await.unwrap();
            assert!(
                alerts
                    .iter()
                    .any(|a| a.labels.get("alertname").map(String::as_str)
                        == Some("NotificationFailed")),
                "{alerts:?}"
            );
            assert_clean(&serde_json::to_string(&alerts).unwrap());
        });

    // Without the variables: the error names the variable, not a value.
    let out = Command::new(tripline_bin())
        .args(["deliver", "--config", "tripline.toml"])
        .current_dir(dir.path())
        .env_remove("SLACK_WEBHOOK_URL")
        .env("PD_ROUTING_KEY", ROUTING_KEY)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment variable SLACK_WEBHOOK_URL is not set"),
        "{err}"
    );
    assert_clean(&err);

    // Not a URL: the error says where it came from, not what it holds.
    let out = Command::new(tripline_bin())
        .args(["deliver", "--config", "tripline.toml"])
        .current_dir(dir.path())
        .env("SLACK_WEBHOOK_URL", "T0SECRETT/B0SECRETB/XXSECRETXX")
        .env("PD_ROUTING_KEY", ROUTING_KEY)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment variable SLACK_WEBHOOK_URL does not hold an http(s) URL"),
        "{err}"
    );
    assert_clean(&err);
}

#[test]
fn timeouts_and_refused_connections_are_retryable_and_name_no_url() {
    let rx = Receiver::start_with(Reply::Hang);
    let url = rx.url("/hook/TOKENINPATH");
    let hook = WebhookNotifier::new(
        "hook",
        Secret::new(url),
        Some(std::time::Duration::from_millis(300)),
        0,
        None,
    )
    .unwrap();
    let n = Notification {
        id: "n".into(),
        receiver: "hook".into(),
        status: NotificationStatus::Firing,
        group_key: "g".into(),
        group_labels: Default::default(),
        alerts: vec![std::sync::Arc::new(alert("X", &[], Severity::Warning))],
        created_at: super::t0(),
        acknowledged_by: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = rt.block_on(hook.notify(&n)).unwrap_err();
    assert!(e.retryable);
    assert_eq!(e.message, "hook: timed out");
    drop(rx);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hook = WebhookNotifier::new(
        "hook",
        Secret::new(format!("http://{closed}/hook/TOKENINPATH")),
        None,
        0,
        None,
    )
    .unwrap();
    let e = rt.block_on(hook.notify(&n)).unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(
        !e.message.contains("TOKENINPATH") && !e.message.contains("127.0.0.1"),
        "{}",
        e.message
    );
}
