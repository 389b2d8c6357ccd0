//! The Teams receiver through the engine: an engine built from config text (memory store,
//! manual times) routes alerts to a `type = "teams"` receiver, and the outbox delivers to a local
//! recording receiver standing in for the Workflows endpoint: firing then resolved cards, 429
//! paced by `Retry-After`, 5xx retried, 4xx dead-lettered, and the signed URL in no error.

use super::tests::{alert, assert_valid, t0};
use crate::alert::{Alert, AlertState, Severity};
use crate::clock::ManualClock;
use crate::assembly::{self as wire, WireOptions};
use crate::config::Config;
use crate::notify::outbox::{OutboxEntry, OutboxState};
use crate::notify::{BuildContext, Preview};
use crate::Tripline;
use std::sync::Arc;
use tripline_test_receiver::{Receiver, Reply};

/// A Workflows trigger URL's shape: the `sig` query parameter is what makes it a secret.
const PATH: &str = "/workflows/5f1c0e2a/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=S1GN4TUR3x9";
const SIG: &str = "S1GN4TUR3x9";

fn toml(var: &str, extra: &str) -> String {
    format!(
        r#"
stock_rules = false
[store]
type = "memory"

[[receiver]]
type = "teams"
name = "teams"
url_env = "{var}"
{extra}

[route]
receiver = "teams"
group_wait = "0s"
group_interval = "0s"
"#
    )
}

/// An engine whose one receiver is Teams at `rx`; `var` is the test's own variable (tests run
/// in parallel in one process).
fn engine(var: &str, rx: &Receiver) -> Tripline {
    std::env::set_var(var, rx.url(PATH));
    let cfg = Config::parse("tripline.toml".as_ref(), toml(var, "")).unwrap();
    wire::build(
        &cfg,
        WireOptions {
            clock: Arc::new(ManualClock::new(t0())),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn secs(s: i64) -> crate::clock::Timestamp {
    t0() + chrono::Duration::seconds(s)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn firing() -> Alert {
    alert("checkout", Severity::Critical, AlertState::Firing)
}

/// Saves `a` and runs the notification half of a cycle at each of `seconds`; returns the
/// seconds at which the receiver was sent something.
async fn run(
    e: &Tripline,
    rx: &Receiver,
    a: &Alert,
    seconds: std::ops::RangeInclusive<i64>,
) -> Vec<i64> {
    e.store()
        .save_alerts(std::slice::from_ref(a), &[])
        .await
        .unwrap();
    let mut tried = Vec::new();
    for s in seconds {
        let before = rx.requests().len();
        e.notify_at(secs(s)).await.unwrap();
        if rx.requests().len() > before {
            tried.push(s);
        }
    }
    tried
}

async fn only_entry(e: &Tripline) -> OutboxEntry {
    let mut entries = e.store().outbox_entries().await.unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.pop().unwrap()
}

fn title(body: &serde_json::Value) -> String {
    body["attachments"][0]["content"]["body"][0]["items"][0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn firing_then_resolved_cards_reach_the_workflow() {
    let rx = Receiver::start_with(Reply::Status(202));
    let e = engine("TRIPLINE_TEST_TEAMS_URL_FIRING", &rx);
    rt().block_on(async {
        assert_eq!(run(&e, &rx, &firing(), 0..=0).await, [0]);
        let mut gone = firing();
        gone.state = AlertState::Resolved;
        gone.ends_at = Some(secs(60));
        gone.updated_at = secs(60);
        assert_eq!(run(&e, &rx, &gone, 60..=60).await, [60]);
        let reqs = rx.requests();
        assert_eq!(reqs.len(), 2);
        for r in &reqs {
            assert_eq!(r.method, "POST");
            assert_eq!(r.path, PATH);
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert!(r.header("x-tripline-notification-id").is_some());
            assert_valid(&r.json());
        }
        let (fire, resolve) = (reqs[0].json(), reqs[1].json());
        assert_eq!(title(&fire), "[FIRING:1] LambdaErrors");
        assert_eq!(
            fire["attachments"][0]["content"]["body"][0]["style"],
            "attention"
        );
        assert_eq!(title(&resolve), "[RESOLVED:1] LambdaErrors");
        assert_eq!(
            resolve["attachments"][0]["content"]["body"][0]["style"],
            "good"
        );
        let entries = e.store().outbox_entries().await.unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|x| x.state == OutboxState::Delivered));
    });
}

#[test]
fn a_429_waits_for_retry_after_then_delivers() {
    let rx = Receiver::start_with(Reply::Status(202));
    rx.then(vec![Reply::TooManyRequests {
        retry_after_secs: 5,
    }]);
    let e = engine("TRIPLINE_TEST_TEAMS_URL_429", &rx);
    rt().block_on(async {
        assert_eq!(run(&e, &rx, &firing(), 0..=10).await, [0, 5]);
        let entry = only_entry(&e).await;
        assert_eq!(entry.state, OutboxState::Delivered);
        assert_eq!(entry.throttled, 1, "the 429 is a pacing answer");
        assert_eq!(entry.attempts, 1, "and no failed attempt");
        assert_eq!(rx.accepted().len(), 1);
    });
}

#[test]
fn server_errors_are_retried_until_delivered() {
    let rx = Receiver::start_with(Reply::Status(202));
    rx.then(vec![Reply::Status(500), Reply::Status(503)]);
    let e = engine("TRIPLINE_TEST_TEAMS_URL_5XX", &rx);
    rt().block_on(async {
        let tried = run(&e, &rx, &firing(), 0..=20).await;
        assert_eq!(tried.len(), 3, "{tried:?}");
        let entry = only_entry(&e).await;
        assert_eq!(entry.state, OutboxState::Delivered);
        assert_eq!(entry.attempts, 3);
        let answered: Vec<u16> = rx.requests().iter().map(|r| r.answered).collect();
        assert_eq!(answered, [500, 503, 202]);
    });
}

#[test]
fn a_client_error_is_dead_lettered_at_once_without_the_url() {
    let rx = Receiver::start_with(Reply::Status(400));
    let e = engine("TRIPLINE_TEST_TEAMS_URL_4XX", &rx);
    rt().block_on(async {
        let tried = run(&e, &rx, &firing(), 0..=30).await;
        // The alert's card once, never retried; then the group again with the NotificationFailed
        // meta-alert it raised (Teams is the only receiver), refused the same way.
        assert_eq!(tried, [0, 1]);
        let reqs = rx.requests();
        assert_eq!(title(&reqs[0].json()), "[FIRING:1] LambdaErrors");
        assert_eq!(title(&reqs[1].json()), "[FIRING:2] LambdaErrors");
        assert!(
            reqs[1].json().to_string().contains("NotificationFailed"),
            "{:#}",
            reqs[1].json()
        );
        let entries = e.store().outbox_entries().await.unwrap();
        assert!(
            entries.iter().all(|x| x.state == OutboxState::Dead),
            "{entries:?}"
        );
        let entry = entries
            .into_iter()
            .find(|x| x.notification.alerts.len() == 1)
            .unwrap();
        let err = entry.last_error.unwrap();
        assert!(err.contains("teams: HTTP 400"), "{err}");
        for secret in [SIG, "/workflows/", &rx.url("")] {
            assert!(!err.contains(secret), "{secret:?} in {err}");
        }
    });
}

#[test]
fn a_dropped_connection_is_retried_and_its_error_holds_no_url() {
    let rx = Receiver::start_with(Reply::Drop);
    let e = engine("TRIPLINE_TEST_TEAMS_URL_DROP", &rx);
    rt().block_on(async {
        let tried = run(&e, &rx, &firing(), 0..=10).await;
        assert!(tried.len() > 1, "retried: {tried:?}");
        let entry = only_entry(&e).await;
        assert_eq!(entry.state, OutboxState::Pending);
        let err = entry.last_error.unwrap();
        assert!(err.starts_with("teams: "), "{err}");
        for secret in [SIG, "/workflows/", &rx.url("")] {
            assert!(!err.contains(secret), "{secret:?} in {err}");
        }
    });
}

fn kind(extra: &str, var: &str) -> super::TeamsConfig {
    let cfg = Config::parse("tripline.toml".as_ref(), toml(var, extra)).unwrap();
    match cfg.raw.receivers[0].get_ref() {
        crate::config::ReceiverConfig::Teams(t) => t.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_defaults_secrets_and_pace() {
    use crate::notify::ReceiverKind;
    let aws = crate::aws::AwsConfig::default();
    let ctx = BuildContext { aws: &aws };
    let var = "TRIPLINE_TEST_TEAMS_URL_CONFIG";
    let t = kind("", var);
    assert!(t.send_resolved());
    assert_eq!(t.secret_env_vars(), [var]);
    // Unset: the error names the variable.
    let err = t.build(&ctx).err().unwrap();
    assert_eq!(err, format!("environment variable {var} is not set"));
    std::env::set_var(var, "not a url?sig=S1GN4TUR3x9");
    let err = t.build(&ctx).err().unwrap();
    assert!(!err.contains(SIG), "{err}");
    std::env::set_var(var, format!("https://example.invalid{PATH}"));
    assert_eq!(
        t.build(&ctx).unwrap().rate_limit(),
        Some((4.0, 1)),
        "Teams' 4 a second"
    );
    let t = kind(
        "rate_limit = \"30/m\"\nburst = 3\nsend_resolved = false",
        var,
    );
    assert!(!t.send_resolved());
    assert_eq!(t.build(&ctx).unwrap().rate_limit(), Some((0.5, 3)));
    // The URL is a secret: there is no `url` option to write it into the file.
    let err = Config::parse(
        "tripline.toml".as_ref(),
        toml(var, "url = \"https://example.invalid/x\""),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("unknown field `url`"), "{err}");
}

#[test]
fn the_preview_is_the_card_delivery_sends() {
    use crate::notify::ReceiverKind;
    let n = crate::notify::Notification {
        id: "p".into(),
        receiver: "teams".into(),
        status: crate::notify::NotificationStatus::Firing,
        group_key: "g".into(),
        group_labels: Default::default(),
        alerts: vec![std::sync::Arc::new(firing())],
        created_at: t0(),
        acknowledged_by: None,
    };
    let t = kind("", "TRIPLINE_TEST_TEAMS_URL_PREVIEW");
    assert_eq!(t.preview(&n), Preview::Json(super::payload::render(&n)));
}
