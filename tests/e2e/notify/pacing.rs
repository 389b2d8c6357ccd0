//! Rate limits and failing receivers on a manual clock (issue #17, points 1, 2 and 4): a 429 is
//! the receiver pacing us, never a failed attempt; `Retry-After` is capped at `max_backoff` and
//! a long hold raises `ReceiverHeldBack`; a 5xx backs off that entry only, so the receiver's other
//! groups keep going, while one group's entries stay in order.

use super::{alert, engine, resolved, secs};
use crate::support::receiver::{Receiver, Reply};
use tripline::alert::{AlertState, Severity};
use tripline::notify::outbox::{OutboxState, NOTIFY_ERROR, RECEIVER_HELD_BACK};
use tripline::store::AlertStore;
use tripline::store::OutboxStore;
use tripline::Tripline;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A default Slack receiver (1/s, burst 1) named `slack`, and a webhook `ops` that hears the
/// delivery meta-alerts. `notify` is extra `[notify]` settings.
fn config(tag: &str, slack: &Receiver, ops: &Receiver, notify: &str) -> String {
    let var = format!("TRIPLINE_TEST_PACING_SLACK_{tag}");
    std::env::set_var(&var, slack.url("/services/T0/B0/pacing"));
    format!(
        r#"
stock_rules = false
[store]
type = "memory"

[notify]
{notify}

[[receiver]]
type = "slack"
name = "slack"
url_env = "{var}"

[[receiver]]
type = "webhook"
name = "ops"
url = "{ops}"

[route]
receiver = "slack"
group_by = ["host"]
group_wait = "0s"
group_interval = "0s"
  [[route.routes]]
  matchers = ["alertname=~NotificationFailed|ReceiverHeldBack"]
  receiver = "ops"
"#,
        ops = ops.url("/ops")
    )
}

async fn seed(e: &Tripline, hosts: std::ops::Range<usize>) {
    let alerts: Vec<_> = hosts
        .map(|i| alert("Slow", &[("host", &format!("h{i}"))], Severity::Critical))
        .collect();
    e.store().save_alerts(&alerts, &[]).await.unwrap();
}

/// Seconds (from t0) at which the pipeline runs, every half second up to `until`.
fn half_seconds(until: i64) -> impl Iterator<Item = chrono::DateTime<chrono::Utc>> {
    (0..=until * 2).map(|h| super::t0() + chrono::Duration::milliseconds(h * 500))
}

#[test]
fn a_receiver_answering_429_for_60s_loses_nothing_and_is_paced() {
    let slack = Receiver::start_with(Reply::TooManyRequests {
        retry_after_secs: 1,
    });
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    // The default [notify] (a 429 never counts as a failed try; 60 of them used to exhaust 10).
    let (e, _) = engine(dir.path(), &config("429", &slack, &ops, ""));
    rt().block_on(async {
        seed(&e, 0..8).await;
        let mut delivered_at = Vec::new();
        for at in half_seconds(80) {
            if at >= secs(60) {
                slack.reply(Reply::Status(200));
            }
            let (_, r) = e.notify_at(at).await.unwrap();
            assert!(r.dead.is_empty(), "{:?}", r.dead);
            delivered_at.extend(r.delivered.iter().map(|_| (at - super::t0()).num_seconds()));
        }
        let reqs = slack.requests();
        let refused = reqs.iter().filter(|r| r.answered == 429).count();
        // Told to wait 1 s each time: about one try a second for 60 s, none sooner.
        assert!((55..=61).contains(&refused), "{refused} 429s");
        // Then every one of the 8, a second apart (Slack's pace), none twice.
        assert_eq!(delivered_at, (60..68).collect::<Vec<_>>());
        let entries = e.store().outbox_entries().await.unwrap();
        assert_eq!(entries.len(), 8);
        for x in &entries {
            assert_eq!(x.state, OutboxState::Delivered, "{x:?}");
            assert_eq!(x.attempts, 1, "a 429 is not an attempt");
        }
        assert_eq!(
            entries.iter().map(|x| x.throttled).sum::<u32>() as usize,
            refused
        );
        assert!(ops.requests().is_empty(), "nothing failed");
        println!(
            "429 for 60 s: {refused} refused, 8/8 delivered at s={delivered_at:?}, 0 dead-lettered"
        );
    });
}

#[test]
fn retry_after_of_a_day_holds_the_receiver_at_most_max_backoff_and_raises_held_back() {
    let slack = Receiver::start_with(Reply::TooManyRequests {
        retry_after_secs: 86400,
    });
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(
        dir.path(),
        &config(
            "86400",
            &slack,
            &ops,
            "max_backoff = \"1m\"\nheld_back_after = \"3m\"",
        ),
    );
    rt().block_on(async {
        seed(&e, 0..3).await;
        let mut tried = Vec::new();
        let mut held_back_told_at = None;
        for s in 0..=300 {
            if s == 200 {
                slack.reply(Reply::Status(200));
            }
            let before = slack.requests().len();
            e.notify_at(secs(s)).await.unwrap();
            if slack.requests().len() > before {
                tried.push(s);
            }
            if held_back_told_at.is_none() && !ops.accepted().is_empty() {
                held_back_told_at = Some(s);
            }
        }
        // Asked for a day, held for the cap: tries at 0, 60, 120, 180; then, answered 200 at
        // 240, the three go out a second apart.
        assert_eq!(tried, [0, 60, 120, 180, 240, 241, 242], "{tried:?}");
        // The hold passed 3 minutes at the try at 180: ReceiverHeldBack was raised then and
        // reached ops with the next flush, a second later.
        assert_eq!(held_back_told_at, Some(181));
        let first = ops.accepted()[0].json();
        assert_eq!(first["alerts"][0]["labels"]["alertname"], RECEIVER_HELD_BACK);
        assert_eq!(first["alerts"][0]["labels"]["receiver"], "slack");
        let summary = first["alerts"][0]["annotations"]["summary"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            summary.starts_with("slack has taken no notification for 3m"),
            "{summary}"
        );
        // Slack took an entry again: the meta-alert resolved, and ops was told.
        let meta = e
            .store()
            .load_alerts_of_instance(NOTIFY_ERROR)
            .await
            .unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0].state, AlertState::Resolved);
        assert_eq!(ops.accepted().last().unwrap().json()["status"], "resolved");
        let entries = e.store().outbox_entries().await.unwrap();
        assert!(entries
            .iter()
            .filter(|x| x.notification.receiver == "slack")
            .all(|x| x.state == OutboxState::Delivered && x.attempts == 1));
        println!("Retry-After 86400 with max_backoff 1m: tried at s={tried:?}; ReceiverHeldBack raised at s=180, told at s=181: {summary}");
    });
}

#[test]
fn a_failing_entry_backs_off_alone_while_other_groups_go_out() {
    let slack = Receiver::start_with(Reply::Status(200));
    // The first request (group h0) fails four times; everything else is accepted.
    slack.then(vec![Reply::Status(500); 4]);
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(dir.path(), &config("hol", &slack, &ops, ""));
    rt().block_on(async {
        seed(&e, 0..8).await;
        let mut when: Vec<(i64, String)> = Vec::new();
        for s in 0..=40 {
            let before = slack.requests().len();
            e.notify_at(secs(s)).await.unwrap();
            for r in &slack.requests()[before..] {
                let text = r.json()["text"].as_str().unwrap_or_default().to_string();
                let host = (0..8)
                    .map(|i| format!("h{i}"))
                    .find(|h| text.contains(&format!("on {h}")))
                    .unwrap_or(text);
                when.push((s, format!("{host}:{}", r.answered)));
            }
        }
        // h0 fails at 0 and backs off 1, 2, 4 s on its own; the other seven go out one a second
        // meanwhile (Slack's pace), and h0 goes out once its backoff ends.
        let ok: Vec<&(i64, String)> = when.iter().filter(|(_, w)| w.ends_with(":200")).collect();
        assert_eq!(ok.len(), 8, "{when:?}");
        let others_done = ok
            .iter()
            .filter(|(_, w)| !w.starts_with("h0:"))
            .map(|(s, _)| *s)
            .max()
            .unwrap();
        assert!(
            others_done <= 12,
            "the other groups were held back: {when:?}"
        );
        assert_eq!(
            when.iter().filter(|(_, w)| w.ends_with(":500")).count(),
            4,
            "{when:?}"
        );
        assert!(e
            .store()
            .outbox_entries()
            .await
            .unwrap()
            .iter()
            .all(|x| x.state == OutboxState::Delivered));
        println!("per-entry backoff: {when:?}");
    });
}

#[test]
fn within_one_group_a_resolve_never_overtakes_the_firing_it_resolves() {
    let slack = Receiver::start_with(Reply::Status(200));
    slack.then(vec![Reply::Status(500); 3]);
    let ops = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(dir.path(), &config("order", &slack, &ops, ""));
    rt().block_on(async {
        let a = alert("Slow", &[("host", "h0")], Severity::Critical);
        e.store()
            .save_alerts(std::slice::from_ref(&a), &[])
            .await
            .unwrap();
        e.notify_at(secs(0)).await.unwrap();
        // Resolved while its firing message is still being retried.
        e.store()
            .save_alerts(&[resolved(a, secs(1))], &[])
            .await
            .unwrap();
        for s in 1..=20 {
            e.notify_at(secs(s)).await.unwrap();
        }
        let accepted: Vec<String> = slack
            .accepted()
            .iter()
            .map(|r| r.json()["text"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(accepted.len(), 2, "{accepted:?}");
        assert!(accepted[0].contains("FIRING"), "{accepted:?}");
        assert!(accepted[1].contains("RESOLVED"), "{accepted:?}");
    });
}

/// The same in real time, through `tripline run`: Slack (defaults: 1/s, burst 1) answers 429
/// `Retry-After: 1` for 60 s, then 200. About 70 s: `#[ignore]`d in `cargo test`, run by
/// `scripts/suite/chaos.sh`.
#[test]
#[ignore = "realtime: about 70 s; run by scripts/suite/chaos.sh"]
fn realtime_429_for_60s_through_the_daemon_loses_nothing() {
    use crate::support::daemon::Daemon;
    use std::time::{Duration, Instant};
    use tripline::store::SqliteStore;
    let slack = Receiver::start_with(Reply::TooManyRequests {
        retry_after_secs: 1,
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        r#"
stock_rules = false
[server]
listen = "127.0.0.1:0"
[store]
type = "sqlite"
path = "state.db"

[[receiver]]
type = "slack"
name = "slack"
url_env = "TRIPLINE_TEST_REALTIME_SLACK"

[route]
receiver = "slack"
group_by = ["host"]
group_wait = "0s"
"#,
    )
    .unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let rt = rt();
    rt.block_on(async {
        let alerts: Vec<_> = (0..8)
            .map(|i| alert("Slow", &[("host", &format!("h{i}"))], Severity::Critical))
            .collect();
        store.save_alerts(&alerts, &[]).await.unwrap();
    });
    let url = slack.url("/services/T0/B0/realtime");
    let d = Daemon::start(
        dir.path(),
        "tripline.toml",
        &[("TRIPLINE_TEST_REALTIME_SLACK", url.as_str())],
    );
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(60));
    slack.reply(Reply::Status(200));
    d.wait_for(30, "8 deliveries", || slack.accepted().len() >= 8);
    let reqs = slack.requests();
    let refused: Vec<&crate::support::receiver::Request> =
        reqs.iter().filter(|r| r.answered == 429).collect();
    // Told to wait a second each time, it never came sooner.
    let gaps: Vec<f64> = refused
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    assert!(gaps.iter().all(|g| *g >= 0.95), "{gaps:?}");
    assert!((50..=61).contains(&refused.len()), "{}", refused.len());
    let acc = slack.accepted();
    assert_eq!(acc.len(), 8);
    let paced: Vec<f64> = acc
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    assert!(paced.iter().all(|g| *g >= 0.9), "{paced:?}");
    let entries = rt.block_on(store.outbox_entries()).unwrap();
    assert!(entries
        .iter()
        .all(|e| e.state == OutboxState::Delivered && e.attempts == 1));
    println!(
        "realtime: 429 for {:.0} s ({} refused, never sooner than 1 s apart), then 8/8 delivered, gaps {:?} s, 0 dead-lettered",
        (acc[0].at - t0).as_secs_f64().min(60.0),
        refused.len(),
        paced.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>()
    );
}
