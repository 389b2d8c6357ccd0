//! Operability (issue 12, point 7): `/metrics` counts notifications sent, failed and
//! dead-lettered per receiver as they happen at real local receivers, and times cycles in a
//! histogram; log lines carry no ANSI colours when stderr is not a terminal, and come as JSON
//! lines when asked.

use super::parse_metrics;
use crate::support::bin::tripline_bin;
use crate::support::daemon::Daemon;
use crate::support::http::{get, request};
use crate::support::receiver::{Receiver, Reply};
use std::path::Path;

#[test]
fn notification_counters_move_as_deliveries_succeed_fail_and_dead_letter() {
    let ok = Receiver::start();
    let flaky = Receiver::start();
    // Fails twice, then takes it.
    flaky.then(vec![Reply::Status(500), Reply::Status(500)]);
    let broken = Receiver::start_with(Reply::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\ntype = \"sqlite\"\npath = \"state.db\"\n\n\
         [notify]\nmax_attempts = 3\nbackoff = \"100ms\"\nmax_backoff = \"200ms\"\n\n\
         [route]\nreceiver = \"ok\"\ngroup_by = [\"alertname\"]\ngroup_wait = \"0s\"\n\n",
    );
    for (name, rx) in [("ok", &ok), ("flaky", &flaky), ("broken", &broken)] {
        config.push_str(&format!(
            "[[route.routes]]\nmatchers = [\"to={name}\"]\nreceiver = \"{name}\"\n\n\
             [[receiver]]\ntype = \"webhook\"\nname = \"{name}\"\nurl = \"{}\"\n\n",
            rx.url("/hook")
        ));
    }
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    let d = Daemon::start(dir.path(), "tripline.toml", &[("TRIPLINE_API_TOKEN", "t")]);
    let metric = |series: &str| {
        parse_metrics(&get(&d.addr, "/metrics").body)
            .get(series)
            .copied()
            .unwrap_or(0.0)
    };
    let count = |receiver: &str, outcome: &str| {
        metric(&format!(
            "tripline_notifications_total{{receiver=\"{receiver}\",outcome=\"{outcome}\"}}"
        ))
    };
    for (name, outcome) in [
        ("ok", "sent"),
        ("flaky", "failed"),
        ("broken", "dead_lettered"),
    ] {
        assert_eq!(
            count(name, outcome),
            0.0,
            "{name} {outcome} before any alert"
        );
    }
    let post = request(
        &d.addr,
        "POST",
        "/api/v2/alerts",
        &[("Authorization", "Bearer t")],
        r#"[{"labels":{"alertname":"A","to":"ok"}},{"labels":{"alertname":"B","to":"flaky"}},
            {"labels":{"alertname":"C","to":"broken"}}]"#,
    )
    .unwrap();
    assert_eq!(post.status, 200, "{}", post.body);

    d.wait_for(30, "the broken receiver's dead letter", || {
        count("broken", "dead_lettered") >= 1.0
    });
    d.wait_for(30, "the flaky receiver's delivery", || {
        count("flaky", "sent") >= 1.0
    });
    assert_eq!(count("ok", "sent"), 1.0);
    assert_eq!(count("ok", "failed"), 0.0);
    assert_eq!(count("flaky", "failed"), 2.0, "two 500s before the 200");
    assert_eq!(count("flaky", "dead_lettered"), 0.0);
    // max_attempts = 3: two failures retried, the third dead-letters.
    assert_eq!(count("broken", "failed"), 2.0);
    assert_eq!(count("broken", "dead_lettered"), 1.0);
    assert_eq!(count("broken", "sent"), 0.0);
    assert_eq!(broken.requests().len(), 3);
    assert_eq!(ok.accepted().len(), 1);
    assert_eq!(count("ok", "queued"), 1.0);
    // The cycle at start was timed.
    assert!(metric("tripline_cycle_duration_seconds_count") >= 1.0);
    assert_eq!(
        metric("tripline_cycle_duration_seconds_count"),
        metric("tripline_cycle_duration_seconds_bucket{le=\"+Inf\"}")
    );
}

/// The demo: its eval logs a debug line per notification it queues.
fn demo(dir: &Path) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    for f in ["tripline.toml", "campaign-workers.json"] {
        std::fs::copy(demo.join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn logs_have_no_colours_off_a_terminal_and_come_as_json_when_asked() {
    // A fresh store each time: only a first evaluation queues notifications.
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        demo(dir.path());
        let mut c = std::process::Command::new(tripline_bin());
        c.args([
            "eval",
            "--config",
            "tripline.toml",
            "--log",
            "tripline=debug",
        ])
        .args(extra)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("TRIPLINE_LOG_FORMAT");
        for (k, v) in env {
            c.env(k, v);
        }
        String::from_utf8(c.output().unwrap().stderr).unwrap()
    };
    let text = run(&[], &[]);
    assert!(text.contains("notification queued"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes in a pipe: {text:?}");

    for json in [
        run(&["--log-format", "json"], &[]),
        run(&[], &[("TRIPLINE_LOG_FORMAT", "json")]),
    ] {
        let lines: Vec<&str> = json.lines().filter(|l| l.starts_with('{')).collect();
        assert!(
            lines.iter().any(|l| l.contains("notification queued")),
            "{json}"
        );
        for l in lines {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v["level"].is_string(), "{l}");
            assert!(v["fields"]["message"].is_string(), "{l}");
        }
        assert!(!json.contains('\u{1b}'));
    }
}
