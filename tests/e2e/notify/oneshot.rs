//! One-shot runs deliver everything due in that run (issue #17, point 3): `tripline eval` (the
//! documented cron mode) and the Lambda handler, with four alerts for a Slack receiver on its
//! defaults (1 message/s, burst 1), send all four in the run, paced a second apart in real time.

use crate::support::bin::{run, stderr, stdout};
use crate::support::receiver::{Receiver, Reply};
use std::path::Path;
use std::time::Duration;
use tripline::store::OutboxStore;

const RULE: &str = r#"
const RULE = #{ id: "test/four-hosts", severity: "critical", params: #{} };
fn query(p) { #{} }
fn evaluate(d, p) {
    for h in ["h1", "h2", "h3", "h4"] {
        fire(#{ summary: `${h} is slow`, labels: #{ host: h } });
    }
}
"#;

fn setup(dir: &Path, slack_var: &str) {
    std::fs::create_dir(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/four.rhai"), RULE).unwrap();
    std::fs::write(
        dir.join("tripline.toml"),
        format!(
            r#"
stock_rules = false
rules_dirs = ["rules"]
[store]
type = "sqlite"
path = "state.db"

[[rule]]
use = "test/four-hosts"

[[receiver]]
type = "slack"
name = "slack"
url_env = "{slack_var}"

[route]
receiver = "slack"
group_by = ["alertname", "host"]
group_wait = "0s"
"#
        ),
    )
    .unwrap();
}

/// Seconds between consecutive accepted requests.
fn gaps(rx: &Receiver) -> Vec<f64> {
    let acc = rx.accepted();
    acc.windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect()
}

fn assert_paced(rx: &Receiver, what: &str) {
    let acc = rx.accepted();
    assert_eq!(acc.len(), 4, "{what}: {} accepted", acc.len());
    let g = gaps(rx);
    // Slack's default pace is one a second: never faster, and not idling in between.
    assert!(
        g.iter().all(|s| (0.9..2.5).contains(s)),
        "{what}: gaps {g:?}"
    );
    println!(
        "{what}: 4/4 delivered in the run, gaps {:?} s",
        g.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>()
    );
}

#[test]
fn one_eval_delivers_all_four_notifications_a_second_apart() {
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    let var = "TRIPLINE_TEST_ONESHOT_SLACK_EVAL";
    setup(dir.path(), var);
    let out = std::process::Command::new(crate::support::bin::tripline_bin())
        .args(["eval", "--config", "tripline.toml"])
        .current_dir(dir.path())
        .env(var, rx.url("/services/T0/B0/oneshot"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("h4"), "{}", stdout(&out));
    // All four arrived before eval exited.
    assert_paced(&rx, "tripline eval");
    // Nothing left for the next run.
    let out = run(dir.path(), &["alerts", "--config", "tripline.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = tripline::store::SqliteStore::open(dir.path().join("state.db")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(store.outbox_pending_count()).unwrap(), 0);
}

#[test]
fn one_lambda_invocation_delivers_all_four_within_its_deadline() {
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    let var = "TRIPLINE_TEST_ONESHOT_SLACK_LAMBDA";
    std::env::set_var(var, rx.url("/services/T0/B0/lambda"));
    setup(dir.path(), var);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handler = tripline::lambda::Handler::load(dir.path().join("tripline.toml")).unwrap();
    let event = serde_json::json!({
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "detail": {}
    });
    // A deadline 60 s away (a Lambda's context): far enough for four paced messages.
    let deadline = std::time::SystemTime::now() + Duration::from_secs(60);
    let summary = rt
        .block_on(handler.handle_within(&event, Some(deadline)))
        .unwrap();
    assert_eq!(summary.notifications_queued, 4, "{summary:?}");
    assert_eq!(summary.notifications_sent, 4, "{summary:?}");
    assert_eq!(summary.delivery_errors, 0, "{summary:?}");
    assert_paced(&rx, "Lambda handler");

    // An invocation about to time out sends what its remaining time allows and leaves the rest
    // queued for the next one.
    rx.clear();
    let dir2 = tempfile::tempdir().unwrap();
    setup(dir2.path(), var);
    let handler = tripline::lambda::Handler::load(dir2.path().join("tripline.toml")).unwrap();
    let deadline = std::time::SystemTime::now()
        + tripline::lambda::DEADLINE_MARGIN
        + Duration::from_millis(1500);
    let summary = rt
        .block_on(handler.handle_within(&event, Some(deadline)))
        .unwrap();
    assert!((1..4).contains(&summary.notifications_sent), "{summary:?}");
    assert_eq!(rx.accepted().len(), summary.notifications_sent);
}
