//! Retries on a manual clock: 5xx backs off exponentially and then succeeds; with the default
//! `[notify]` a receiver down for an hour loses nothing (only `max_age` gives up on a transient
//! failure); with an explicit `max_attempts` a receiver that never recovers is dead-lettered
//! after the last try with its reason, and a `NotificationFailed` meta-alert reaches another
//! receiver; a 4xx is dead-lettered at once.

use super::{alert, engine, secs};
use crate::support::receiver::{Receiver, Reply};
use tripline::alert::{AlertState, Severity};
use tripline::notify::outbox::{OutboxState, NOTIFY_ERROR};

fn config(flaky: &str, ops: &str) -> String {
    config_with(
        flaky,
        ops,
        "max_attempts = 4\nbackoff = \"1s\"\nmax_backoff = \"1m\"",
    )
}

fn config_with(flaky: &str, ops: &str, notify: &str) -> String {
    format!(
        r#"
stock_rules = false
[store]
type = "memory"

[notify]
{notify}

[[receiver]]
type = "webhook"
name = "flaky"
url = "{flaky}"

[[receiver]]
type = "webhook"
name = "ops"
url = "{ops}"

[route]
receiver = "flaky"
group_wait = "0s"
group_interval = "0s"
  [[route.routes]]
  matchers = ['alertname=~"NotificationFailed|ReceiverHeldBack"']
  receiver = "ops"
"#
    )
}

/// Stores one firing `DiskFull` alert for `host`.
async fn disk_full(e: &tripline::Tripline, host: &str, severity: Severity) {
    let a = alert("DiskFull", &[("host", host)], severity);
    e.store().save_alerts(&[a], &[]).await.unwrap();
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn server_errors_back_off_exponentially_then_deliver() {
    let flaky = Receiver::start_with(Reply::Status(200));
    flaky.then(vec![
        Reply::Status(500),
        Reply::Status(503),
        Reply::Status(502),
    ]);
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(dir.path(), &config(&flaky.url("/flaky"), &ops.url("/ops")));
    rt().block_on(async {
        disk_full(&e, "h1", Severity::Warning).await;
        e.pipeline()
            .flush(e.store().as_ref(), secs(0))
            .await
            .unwrap();
        let mut tried_at = Vec::new();
        for s in 0..=10 {
            let before = flaky.requests().len();
            e.outbox().deliver_due(secs(s)).await.unwrap();
            if flaky.requests().len() > before {
                tried_at.push(s);
            }
        }
        // Tries at 0, then 1 s, 2 s and 4 s later.
        assert_eq!(tried_at, [0, 1, 3, 7]);
        let entries = e.store().outbox_entries().await.unwrap();
        assert_eq!(entries[0].state, OutboxState::Delivered);
        assert_eq!(entries[0].attempts, 4);
        assert!(ops.requests().is_empty());
    });
}

#[test]
fn the_last_failed_try_dead_letters_and_raises_a_meta_alert() {
    let flaky = Receiver::start_with(Reply::Status(500));
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(dir.path(), &config(&flaky.url("/flaky"), &ops.url("/ops")));
    rt().block_on(async {
        disk_full(&e, "h1", Severity::Warning).await;
        for s in 0..=10 {
            e.notify_at(secs(s)).await.unwrap();
        }
        assert_eq!(flaky.requests().len(), 4, "max_attempts");
        let dead: Vec<_> = e
            .store()
            .outbox_entries()
            .await
            .unwrap()
            .into_iter()
            .filter(|x| x.state == OutboxState::Dead)
            .collect();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("gave up after 4 attempts: flaky: HTTP 500: {\"status\":\"error\"}")
        );
        // The meta-alert went through the pipeline to the ops receiver.
        let told = ops.accepted();
        assert_eq!(told.len(), 1);
        let body = told[0].json();
        assert_eq!(
            body["alerts"][0]["labels"]["alertname"],
            "NotificationFailed"
        );
        assert_eq!(body["alerts"][0]["labels"]["receiver"], "flaky");
        assert!(body["alerts"][0]["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("gave up after 4 attempts"));

        // The receiver recovers: the next delivery resolves the meta-alert, and ops hears so.
        flaky.reply(Reply::Status(200));
        disk_full(&e, "h2", Severity::Warning).await;
        e.notify_at(secs(20)).await.unwrap();
        e.notify_at(secs(21)).await.unwrap();
        let meta = e
            .store()
            .load_alerts()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.rule == NOTIFY_ERROR)
            .unwrap();
        assert_eq!(meta.state, AlertState::Resolved);
        assert_eq!(ops.accepted().last().unwrap().json()["status"], "resolved");
    });
}

#[test]
fn with_the_default_notify_a_receiver_down_for_an_hour_loses_nothing() {
    // Every try fails with a 500, a timeout-like drop or a 503 for the first hour.
    let flaky = Receiver::start_with(Reply::Status(500));
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(
        dir.path(),
        &config_with(&flaky.url("/flaky"), &ops.url("/ops"), ""),
    );
    assert_eq!(e.outbox().policy().max_attempts, None, "opt-in");
    rt().block_on(async {
        disk_full(&e, "h1", Severity::Critical).await;
        let mut delivered_at = None;
        for s in (0..=4000).step_by(5) {
            if s == 3600 {
                flaky.reply(Reply::Status(200));
            } else if s == 1800 {
                flaky.reply(Reply::Drop);
            }
            let (_, r) = e.notify_at(secs(s)).await.unwrap();
            assert!(r.dead.is_empty(), "at {s}s: {:?}", r.dead);
            if !flaky.accepted().is_empty() && delivered_at.is_none() {
                delivered_at = Some(s);
            }
        }
        let failed = flaky
            .requests()
            .iter()
            .filter(|r| r.answered != 200)
            .count();
        // 1 s doubling to the 5 min cap: far more than the old limit of 10 tries.
        assert!(failed >= 15, "{failed} failed tries");
        // Delivered on the first try after recovery: at most one max_backoff (5 min) later.
        let at = delivered_at.expect("delivered once the receiver recovered");
        assert!((3600..=3900).contains(&at), "delivered at {at}s");
        let entries: Vec<_> = (e.store().outbox_entries().await.unwrap().into_iter())
            .filter(|x| x.notification.receiver == "flaky")
            .collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].state, OutboxState::Delivered);
        assert_eq!(entries[0].attempts as usize, failed + 1);
        assert_eq!(flaky.accepted().len(), 1, "sent once");
        // Ops heard that the receiver was held back (and then that it recovered), never that a
        // notification was given up on.
        let told: Vec<_> = ops
            .accepted()
            .iter()
            .map(|r| {
                let b = r.json();
                format!(
                    "{} {}",
                    b["alerts"][0]["labels"]["alertname"].as_str().unwrap(),
                    b["status"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            told,
            ["ReceiverHeldBack firing", "ReceiverHeldBack resolved"]
        );
    });
}

#[test]
fn past_max_age_a_transient_failure_dead_letters() {
    let flaky = Receiver::start_with(Reply::Status(503));
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(
        dir.path(),
        &config_with(&flaky.url("/flaky"), &ops.url("/ops"), "max_age = \"10m\""),
    );
    rt().block_on(async {
        disk_full(&e, "h1", Severity::Warning).await;
        let mut dead = Vec::new();
        for s in (0..=1200).step_by(5) {
            let (_, r) = e.notify_at(secs(s)).await.unwrap();
            dead.extend(r.dead.into_iter().map(|d| (s, d.message)));
        }
        assert_eq!(dead.len(), 1, "{dead:?}");
        let (s, message) = &dead[0];
        assert!((600..=900).contains(s), "dead-lettered at {s}s");
        assert!(message.starts_with("gave up after 1"), "{message}");
        assert!(
            message.ends_with("flaky: HTTP 503: {\"status\":\"error\"}"),
            "{message}"
        );
    });
}

#[test]
fn a_client_error_is_dead_lettered_at_once() {
    let flaky = Receiver::start_with(Reply::Status(404));
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(dir.path(), &config(&flaky.url("/flaky"), &ops.url("/ops")));
    rt().block_on(async {
        disk_full(&e, "h1", Severity::Warning).await;
        let (_, report) = e.notify_at(secs(0)).await.unwrap();
        assert_eq!(report.dead.len(), 1);
        assert!(
            report.dead[0]
                .message
                .starts_with("permanent error: flaky: HTTP 404"),
            "{}",
            report.dead[0].message
        );
        assert_eq!(flaky.requests().len(), 1, "never retried");
    });
}
