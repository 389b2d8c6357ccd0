//! Safe replays and the small CLI mistakes of a first hour (issue 12, point 5): `eval --dry-run`
//! and `eval --at <past>` send nothing (the local receiver's log proves it) and store nothing;
//! `deliver --at` flushes at its instant; a silence already over is refused; a second `ack` tells
//! nobody again; `silence expire` of an expired silence says so; `alerts` shows why an alert is
//! muted.

use crate::support::bin::{stderr, stdout, tripline_bin};
use crate::support::receiver::Receiver;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// The demo (five alerts fire at any instant) sending to a webhook and a Slack receiver, both
/// local, each alert its own group, sent at once unless `group_wait` says otherwise.
fn demo(dir: &Path, rx: &Receiver, group_wait: &str, extra: &str) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::copy(
        demo.join("campaign-workers.json"),
        dir.join("campaign-workers.json"),
    )
    .unwrap();
    let config = std::fs::read_to_string(demo.join("tripline.toml")).unwrap().replace(
        "[[receiver]]\ntype = \"console\"\nname = \"console\"\n",
        &format!(
            "[[receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n\n\
             [[receiver]]\ntype = \"slack\"\nname = \"slack\"\nurl_env = \"REPLAY_SLACK_URL\"\n\n\
             [route]\nreceiver = \"hook\"\ngroup_by = [\"alertname\"]\ngroup_wait = \"{group_wait}\"\n\n\
             [[route.routes]]\nmatchers = [\"alertname=save-data-errors\"]\nreceiver = \"slack\"\ncontinue = true\n\n\
             {extra}\n",
            rx.url("/hook")
        ),
    );
    assert!(config.contains("[route]"), "the demo config changed shape");
    std::fs::write(dir.join("tripline.toml"), config).unwrap();
}

fn tripline(dir: &Path, rx: &Receiver, args: &[&str]) -> Output {
    Command::new(tripline_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("REPLAY_SLACK_URL", rx.url("/slack"))
        .output()
        .expect("start tripline")
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

fn stored_alerts(dir: &Path, rx: &Receiver) -> Vec<serde_json::Value> {
    let out = tripline(
        dir,
        rx,
        &["alerts", "--config", "tripline.toml", "--format", "json"],
    );
    serde_json::from_str(&ok(&out)).unwrap()
}

fn ago(d: chrono::Duration) -> String {
    (chrono::Utc::now() - d).to_rfc3339()
}

#[test]
fn dry_runs_and_past_replays_send_nothing_and_store_nothing() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), &rx, "0s", "");

    let out = tripline(
        dir.path(),
        &rx,
        &["eval", "--config", "tripline.toml", "--dry-run"],
    );
    let text = ok(&out);
    assert!(
        text.contains("would send to slack: firing {}/{alertname=save-data-errors}:{alertname=\"save-data-errors\"} (1 alert(s): save-data-errors)"),
        "{text}"
    );
    assert_eq!(
        text.matches("would send to hook").count(),
        4,
        "one message per alertname group, the errors' going to Slack: {text}"
    );

    // Yesterday, as the JSON a script reads: the alerts on stdout, the plan and why on stderr.
    let yesterday = ago(chrono::Duration::days(1));
    let out = tripline(
        dir.path(),
        &rx,
        &[
            "eval",
            "--config",
            "tripline.toml",
            "--at",
            &yesterday,
            "--format",
            "json",
        ],
    );
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(alerts.len(), 5);
    let err = stderr(&out);
    assert!(err.contains("is in the past: replaying without storing or sending anything (give --notify to run it for real)"), "{err}");
    assert!(err.contains("would send to hook"), "{err}");

    // Each process has exited: whatever it sent has been recorded.
    assert!(
        rx.requests().is_empty(),
        "a dry run or a replay reached a receiver: {:?}",
        rx.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(
        stored_alerts(dir.path(), &rx).is_empty(),
        "a dry run stored alerts"
    );

    // Asked for, the same replay runs for real: stored, and the receivers hear of it.
    let out = tripline(
        dir.path(),
        &rx,
        &[
            "eval",
            "--config",
            "tripline.toml",
            "--at",
            &yesterday,
            "--notify",
        ],
    );
    ok(&out);
    assert_eq!(stored_alerts(dir.path(), &rx).len(), 5);
    assert!(
        rx.wait_accepted(5, Duration::from_secs(10)),
        "{:?}",
        rx.requests()
    );
}

#[test]
fn deliver_at_flushes_the_groups_due_at_that_instant() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), &rx, "30s", "");
    let t = chrono::Utc::now() - chrono::Duration::hours(2);
    let at = |s: i64| (t + chrono::Duration::seconds(s)).to_rfc3339();
    ok(&tripline(
        dir.path(),
        &rx,
        &[
            "eval",
            "--config",
            "tripline.toml",
            "--at",
            &at(0),
            "--notify",
        ],
    ));
    assert!(
        rx.requests().is_empty(),
        "group_wait holds the first message"
    );
    // Ten seconds in, the groups still wait (a `deliver` at now would send them all).
    let text = ok(&tripline(
        dir.path(),
        &rx,
        &[
            "deliver",
            "--config",
            "tripline.toml",
            "--at",
            &at(10),
            "--within",
            "5s",
        ],
    ));
    assert!(text.contains("queued 0, delivered 0"), "{text}");
    assert!(rx.requests().is_empty());
    let text = ok(&tripline(
        dir.path(),
        &rx,
        &[
            "deliver",
            "--config",
            "tripline.toml",
            "--at",
            &at(31),
            "--within",
            "10s",
        ],
    ));
    // Four groups to the hook, the errors' to Slack.
    assert!(text.contains("queued 5, delivered 5"), "{text}");
    assert_eq!(rx.accepted().len(), 5);
}

#[test]
fn silences_that_already_ended_and_repeated_expiries_are_told() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), &rx, "0s", "");
    let out = tripline(
        dir.path(),
        &rx,
        &[
            "silence",
            "add",
            "--config",
            "tripline.toml",
            "--starts",
            &ago(chrono::Duration::hours(3)),
            "--until",
            &ago(chrono::Duration::hours(2)),
            "team=campaign",
        ],
    );
    // A silence that has already ended is a bad argument: the usage exit code, 2.
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("which has already passed"),
        "{}",
        stderr(&out)
    );
    let list = ok(&tripline(
        dir.path(),
        &rx,
        &["silence", "list", "--config", "tripline.toml", "--all"],
    ));
    assert!(list.trim().is_empty(), "{list}");

    let id = ok(&tripline(
        dir.path(),
        &rx,
        &[
            "silence",
            "add",
            "--config",
            "tripline.toml",
            "team=campaign",
        ],
    ))
    .trim()
    .to_string();
    let expire = || {
        tripline(
            dir.path(),
            &rx,
            &["silence", "expire", "--config", "tripline.toml", &id],
        )
    };
    assert_eq!(ok(&expire()).trim(), format!("expired {id}"));
    let again = expire();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains(&format!("silence {id} already expired at ")),
        "{}",
        stderr(&again)
    );
}

#[test]
fn alerts_show_silences_inhibitions_and_acks_and_a_second_ack_tells_nobody() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    // The Lambda's errors explain its slowness: the duration alert is inhibited.
    demo(
        dir.path(),
        &rx,
        "0s",
        "[[inhibit]]\nsource_matchers = [\"alertname=save-data-errors\"]\n\
         target_matchers = [\"alertname=save-data-duration\"]\nequal = [\"function\"]\n",
    );
    ok(&tripline(
        dir.path(),
        &rx,
        &["eval", "--config", "tripline.toml"],
    ));
    ok(&tripline(
        dir.path(),
        &rx,
        &["deliver", "--config", "tripline.toml", "--within", "10s"],
    ));
    let sid = ok(&tripline(
        dir.path(),
        &rx,
        &[
            "silence",
            "add",
            "--config",
            "tripline.toml",
            "alertname=mv-mrgd-queue-depth",
        ],
    ))
    .trim()
    .to_string();
    let alerts = stored_alerts(dir.path(), &rx);
    let by_name = |alerts: &[serde_json::Value], n: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == n)
            .unwrap_or_else(|| panic!("no {n} in {alerts:#?}"))
            .clone()
    };
    let errors = by_name(&alerts, "save-data-errors");
    let fp = errors["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(
        by_name(&alerts, "mv-mrgd-queue-depth")["status"]["silenced_by"],
        serde_json::json!([sid])
    );
    assert_eq!(
        by_name(&alerts, "save-data-duration")["status"]["inhibited_by"],
        serde_json::json!([fp])
    );
    assert_eq!(
        by_name(&alerts, "save-data-duration")["status"]["state"],
        "suppressed"
    );
    assert_eq!(errors["status"]["state"], "active");
    assert_eq!(errors["status"]["acknowledged_by"], serde_json::Value::Null);

    let slack = || rx.accepted().iter().filter(|r| r.path == "/slack").count();
    assert_eq!(slack(), 1, "Slack was told of the errors");
    let ack = || {
        tripline(
            dir.path(),
            &rx,
            &["ack", "--config", "tripline.toml", &fp, "--by", "ann"],
        )
    };
    let first = ok(&ack());
    assert!(first.contains(&format!("acknowledged {fp}")), "{first}");
    ok(&tripline(
        dir.path(),
        &rx,
        &["deliver", "--config", "tripline.toml", "--within", "10s"],
    ));
    assert_eq!(slack(), 2, "Slack was told of the ack");
    let second = ok(&ack());
    assert!(
        second.contains(&format!("already acknowledged {fp} by ann at ")),
        "{second}"
    );
    ok(&tripline(
        dir.path(),
        &rx,
        &["deliver", "--config", "tripline.toml", "--within", "10s"],
    ));
    assert_eq!(slack(), 2, "a second ack told Slack again");

    let text = ok(&tripline(
        dir.path(),
        &rx,
        &["alerts", "--config", "tripline.toml"],
    ));
    assert!(text.contains(&format!("silenced_by={sid}")), "{text}");
    assert!(text.contains(&format!("inhibited_by={fp}")), "{text}");
    assert!(text.contains("acked_by=ann"), "{text}");
    assert_eq!(
        by_name(&stored_alerts(dir.path(), &rx), "save-data-errors")["status"]["acknowledged_by"],
        "ann"
    );
}

#[test]
fn notify_preview_renders_the_stored_alerts_or_a_fixture_not_a_canned_sample() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), &rx, "0s", "");
    let preview = |extra: &[&str]| {
        let mut args = vec!["notify-preview", "--config", "tripline.toml"];
        args.extend_from_slice(extra);
        tripline(dir.path(), &rx, &args)
    };
    // Nothing stored yet: a sample, and a word saying so.
    let out = preview(&["--receiver", "hook"]);
    assert!(
        stderr(&out).contains("showing a sample group"),
        "{}",
        stderr(&out)
    );
    assert!(ok(&out).contains("LambdaErrors"));

    ok(&tripline(
        dir.path(),
        &rx,
        &["eval", "--config", "tripline.toml"],
    ));
    let sent_before = rx.requests().len();
    let text = ok(&preview(&["--receiver", "hook"]));
    // The four groups that reach the hook, one webhook body each, with the stored alerts.
    let bodies: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    let names: Vec<&str> = bodies
        .iter()
        .map(|b| b["groupLabels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "mrg-avro-throttles",
            "mv-mrgd-queue-depth",
            "save-data-duration",
            "save-data-iterator-age"
        ],
        "{text}"
    );
    assert!(!text.contains("LambdaErrors"), "{text}");
    let slack = ok(&preview(&["--receiver", "slack"]));
    assert!(slack.contains("save-data-errors"), "{slack}");

    std::fs::write(
        dir.path().join("alerts.json"),
        r#"[{"labels":{"alertname":"WorkerDown","worker":"email"},"annotations":{"summary":"email worker is down"}}]"#,
    )
    .unwrap();
    let text = ok(&preview(&[
        "--receiver",
        "hook",
        "--fixture",
        "alerts.json",
    ]));
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["groupLabels"]["alertname"], "WorkerDown");
    assert_eq!(
        body["alerts"][0]["annotations"]["summary"],
        "email worker is down"
    );
    assert_eq!(rx.requests().len(), sent_before, "a preview sent something");
}
