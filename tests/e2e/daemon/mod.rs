//! `tripline run`: schedule, health, metrics, API auth, SIGHUP reload, SIGTERM.

mod amtool;
mod operability;

use crate::support::daemon::Daemon;
use crate::support::http::{get, request};
use std::collections::BTreeMap;
use std::path::Path;

fn demo_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::copy(
        demo.join("campaign-workers.json"),
        dir.path().join("campaign-workers.json"),
    )
    .unwrap();
    let config = std::fs::read_to_string(demo.join("tripline.toml")).unwrap();
    // Every second, on a free port.
    let config = config
        .replace("[store]", "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]")
        .replace("use = \"aws/", "every = \"* * * * * *\"\nuse = \"aws/");
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    dir
}

/// Parses the text exposition format strictly: every sample line is `name{labels} value`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad metrics line {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels in {line:?}"
            );
        }
        out.insert(series.to_string(), v);
    }
    out
}

#[test]
fn evaluates_every_rule_at_start_without_waiting_for_its_schedule() {
    let dir = demo_dir();
    // Schedules that next tick on the 1st of January: only the start can evaluate them.
    let path = dir.path().join("tripline.toml");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("every = \"* * * * * *\"", "every = \"0 0 0 1 1 *\"");
    std::fs::write(&path, config).unwrap();
    let d = Daemon::start(dir.path(), "tripline.toml", &[]);
    d.wait_for(30, "the cycle at start", || {
        parse_metrics(&get(&d.addr, "/metrics").body)
            .get("tripline_cycles_total")
            .copied()
            .unwrap_or(0.0)
            >= 1.0
    });
    let m = parse_metrics(&get(&d.addr, "/metrics").body);
    assert_eq!(
        m.get("tripline_evaluations_total{instance=\"save-data-errors\"}"),
        Some(&1.0),
        "{m:#?}"
    );
    assert!(
        d.log
            .lock()
            .unwrap()
            .contains("evaluated every rule instance at start"),
        "{}",
        d.log.lock().unwrap()
    );
}

#[test]
fn serves_health_metrics_and_an_authenticated_api() {
    let dir = demo_dir();
    let d = Daemon::start(
        dir.path(),
        "tripline.toml",
        &[("TRIPLINE_API_TOKEN", "t0ken")],
    );
    assert_eq!(get(&d.addr, "/health/live").status, 200);
    assert_eq!(get(&d.addr, "/health/ready").status, 200);
    d.wait_for(20, "two cycles", || {
        parse_metrics(&get(&d.addr, "/metrics").body)
            .get("tripline_cycles_total")
            .copied()
            .unwrap_or(0.0)
            >= 2.0
    });
    let m = parse_metrics(&get(&d.addr, "/metrics").body);
    for name in [
        "tripline_evaluations_total{instance=\"save-data-errors\"}",
        "tripline_evaluation_duration_seconds_count{instance=\"save-data-errors\"}",
        "tripline_alerts{state=\"firing\"}",
        "tripline_queries_per_cycle",
        "tripline_api_calls_per_cycle{source=\"cloudwatch\"}",
        "tripline_cycle_duration_seconds_count",
        "tripline_cycle_duration_seconds_bucket{le=\"+Inf\"}",
        "tripline_last_cycle_duration_seconds",
    ] {
        assert!(m.contains_key(name), "{name} missing from {m:#?}");
    }
    assert_eq!(m["tripline_alerts{state=\"firing\"}"], 5.0);
    // The five firing alerts were delivered to the console receiver.
    assert!(
        m.get("tripline_notifications_total{receiver=\"console\",outcome=\"sent\"}")
            .copied()
            .unwrap_or(0.0)
            >= 1.0,
        "{m:#?}"
    );
    assert!(m.contains_key("tripline_outbox_depth"), "{m:#?}");

    // Mutations need the token; reads need it too unless opened by config.
    assert_eq!(
        request(&d.addr, "POST", "/api/v1/silences", &[], "{}")
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        request(
            &d.addr,
            "POST",
            "/api/v1/silences",
            &[("Authorization", "Bearer wrong")],
            "{}"
        )
        .unwrap()
        .status,
        401
    );
    assert_eq!(get(&d.addr, "/api/v1/alerts").status, 401);
    let alerts = request(
        &d.addr,
        "GET",
        "/api/v1/alerts",
        &[("Authorization", "Bearer t0ken")],
        "",
    )
    .unwrap();
    assert_eq!(alerts.status, 200);
    let v: Vec<serde_json::Value> = serde_json::from_str(&alerts.body).unwrap();
    assert_eq!(v.len(), 5);
    // The token never reaches the log.
    assert!(!d.log.lock().unwrap().contains("t0ken"));
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_rules_and_sigterm_exits_0() {
    let dir = demo_dir();
    let mut d = Daemon::start(dir.path(), "tripline.toml", &[]);
    let evaluations = |d: &Daemon| {
        parse_metrics(&get(&d.addr, "/metrics").body)
            .get("tripline_evaluations_total{instance=\"save-data-errors\"}")
            .copied()
            .unwrap_or(0.0)
    };
    d.wait_for(20, "a first evaluation", || evaluations(&d) >= 1.0);

    std::fs::write(
        dir.path().join("tripline.toml"),
        "[[rule]]\nuse = \"aws/lambda-errors\"\nparams = { function = 12, nonsense = true }\n",
    )
    .unwrap();
    d.signal("HUP");
    d.wait_for(20, "the reload to be rejected", || {
        d.log.lock().unwrap().contains("config reload rejected")
    });
    assert!(
        d.log
            .lock()
            .unwrap()
            .contains("no parameter \\\"nonsense\\\"")
            || d.log.lock().unwrap().contains("nonsense")
    );
    let before = evaluations(&d);
    d.wait_for(20, "the old rules to keep evaluating", || {
        evaluations(&d) > before
    });
    let m = parse_metrics(&get(&d.addr, "/metrics").body);
    assert_eq!(m["tripline_config_reloads_total{result=\"rejected\"}"], 1.0);

    d.signal("TERM");
    assert_eq!(d.wait_exit(30), Some(0));
    assert!(d.log.lock().unwrap().contains("stopped"));
}

#[test]
fn sigterm_with_pending_notifications_exits_0_and_a_restart_delivers_each_once() {
    use crate::support::receiver::{Receiver, Reply};
    let rx = Receiver::start_with(Reply::Status(503));
    let dir = demo_dir();
    let path = dir.path().join("tripline.toml");
    let config = std::fs::read_to_string(&path).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nshutdown_timeout = \"3s\"",
    );
    std::fs::write(
        &path,
        format!(
            "{config}\n[[receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n",
            rx.url("/hook")
        ),
    )
    .unwrap();

    // The receiver is down: notifications wait in the outbox.
    let mut d = Daemon::start(dir.path(), "tripline.toml", &[]);
    let failed = |d: &Daemon| {
        parse_metrics(&get(&d.addr, "/metrics").body)
            .get("tripline_notifications_total{receiver=\"hook\",outcome=\"failed\"}")
            .copied()
            .unwrap_or(0.0)
    };
    d.wait_for(30, "failed deliveries to the hook", || failed(&d) >= 1.0);
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(30),
        Some(0),
        "exit 0 within the shutdown timeout"
    );
    drop(d);

    // Up again: a new process delivers what was pending, each notification once.
    rx.reply(Reply::Status(202));
    let d = Daemon::start(dir.path(), "tripline.toml", &[]);
    d.wait_for(30, "the five firing alerts delivered", || {
        rx.accepted()
            .iter()
            .map(|r| r.json()["alerts"].as_array().map(|a| a.len()).unwrap_or(0))
            .sum::<usize>()
            >= 5
    });
    let mut ids: Vec<String> = rx
        .accepted()
        .iter()
        .map(|r| r.header("x-tripline-notification-id").unwrap().to_string())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a notification was delivered twice");
    let alerts: std::collections::BTreeSet<String> = rx
        .accepted()
        .iter()
        .flat_map(|r| r.json()["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            a["labels"]["alertname"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        alerts.len(),
        5,
        "every firing alert reached the hook: {alerts:?}"
    );
}
