//! The notification subcommands: route-test, notify-preview, silence, ack, and config checks.

use super::alert;
use crate::support::bin::{run, stderr, stdout, tripline_bin};
use crate::support::receiver::{Receiver, Reply};
use std::path::Path;
use std::process::Command;
use tripline::alert::Severity;
use tripline::store::AlertStore;
use tripline::store::SqliteStore;

const CONFIG: &str = r#"
stock_rules = false
[store]
type = "sqlite"
path = "state.db"

[[receiver]]
type = "slack"
name = "slack"
url_env = "TRIPLINE_CLI_SLACK_URL"

[[receiver]]
type = "pagerduty"
name = "pagerduty"
routing_key_env = "TRIPLINE_CLI_PD_KEY"
url = "PD_URL"

[[receiver]]
type = "webhook"
name = "db-team"
url = "http://127.0.0.1:9/db"

[[escalation]]
name = "oncall"
steps = [{ after = "0s", receiver = "slack" }, { after = "15m", receiver = "pagerduty" }]

[route]
receiver = "slack"
group_by = ["alertname"]
group_wait = "0s"

[[route.routes]]
matchers = ["severity=critical"]
escalation = "oncall"
continue = true

[[route.routes]]
matchers = ["team=~db|data"]
receiver = "db-team"

[[route.routes]]
matchers = ["page=now"]
receiver = "pagerduty"
"#;

fn write(dir: &Path, pd_url: &str) {
    std::fs::write(dir.join("tripline.toml"), CONFIG.replace("PD_URL", pd_url)).unwrap();
}

#[test]
fn route_test_prints_the_receivers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "http://127.0.0.1:9/v2/enqueue");
    let out = run(
        dir.path(),
        &[
            "route-test",
            "--config",
            "tripline.toml",
            "alertname=Errors",
            "severity=critical",
            "team=db",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let receivers: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(receivers, ["slack", "pagerduty", "db-team"], "{text}");
    assert!(
        text.contains(
            "pagerduty  route {}/{severity=critical}  group {}/{severity=critical}:{alertname=\"Errors\"}  (escalation, after 15m)"
        ),
        "{text}"
    );
    let out = run(
        dir.path(),
        &[
            "route-test",
            "--config",
            "tripline.toml",
            "alertname=Errors",
            "team=web",
        ],
    );
    assert_eq!(
        stdout(&out)
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .next(),
        Some("slack")
    );
    let out = run(
        dir.path(),
        &[
            "route-test",
            "--config",
            "tripline.toml",
            "--format",
            "json",
            "page=now",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["receiver"], "pagerduty");
}

#[test]
fn check_rejects_unknown_receivers_and_bad_regexes_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "stock_rules = false\n[store]\ntype = \"memory\"\n\n[[receiver]]\ntype = \"console\"\nname = \"c\"\n\n[route]\nreceiver = \"c\"\n\n[[route.routes]]\nmatchers = [\"team=~(db\"]\nreceiver = \"nobody\"\n\n[[inhibit]]\nsource_matchers = [\"severity\"]\ntarget_matchers = []\n";
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = run(dir.path(), &["check", "--config", "bad.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:13:20: invalid matcher \"team=~(db\": invalid regex \"(db\" for label \"team\""),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:14:12: unknown receiver \"nobody\" (defined: c)"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:17:29: invalid matcher \"severity\": unexpected end of input: expected an operator"),
        "{err}"
    );
}

#[test]
fn check_passes_without_the_receivers_secrets_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "http://127.0.0.1:9/v2/enqueue");
    // CI checks configs without the secrets: a warning per unset variable, at its receiver.
    let out = Command::new(tripline_bin())
        .args(["check", "--config", "tripline.toml"])
        .current_dir(dir.path())
        .env_remove("TRIPLINE_CLI_SLACK_URL")
        .env_remove("TRIPLINE_CLI_PD_KEY")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{}{err}", stdout(&out));
    assert!(
        err.contains("warning: tripline.toml:7:1: receiver \"slack\": environment variable TRIPLINE_CLI_SLACK_URL is not set"),
        "{err}"
    );
    assert!(
        err.contains("tripline.toml:12:1: receiver \"pagerduty\": environment variable TRIPLINE_CLI_PD_KEY is not set"),
        "{err}"
    );
    // `eval` needs them: it fails, at the receiver, naming the variable and no value.
    let out = Command::new(tripline_bin())
        .args(["eval", "--config", "tripline.toml"])
        .current_dir(dir.path())
        .env("TRIPLINE_CLI_SLACK_URL", "not a url hunter2")
        .env_remove("TRIPLINE_CLI_PD_KEY")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("tripline.toml:12:1: receiver \"pagerduty\": environment variable TRIPLINE_CLI_PD_KEY is not set"),
        "{err}"
    );
    assert!(
        err.contains("tripline.toml:7:1: receiver \"slack\""),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "a secret leaked: {err}");
}

#[test]
fn notify_preview_renders_without_sending() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &rx.url("/v2/enqueue"));
    let out = Command::new(tripline_bin())
        .args([
            "notify-preview",
            "--config",
            "tripline.toml",
            "--receiver",
            "slack",
            "--alerts",
            "3",
        ])
        .current_dir(dir.path())
        .env("TRIPLINE_CLI_SLACK_URL", rx.url("/never"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["attachments"][0]["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("[FIRING:3] LambdaErrors"));
    let out = run(
        dir.path(),
        &[
            "notify-preview",
            "--config",
            "tripline.toml",
            "--receiver",
            "pagerduty",
            "--status",
            "resolved",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["event_action"], "resolve");
    assert_eq!(v[0]["routing_key"], "***");
    assert!(rx.requests().is_empty(), "nothing sent");
    let out = run(
        dir.path(),
        &[
            "notify-preview",
            "--config",
            "tripline.toml",
            "--receiver",
            "nope",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no receiver \"nope\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn silences_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "http://127.0.0.1:9/v2/enqueue");
    let out = run(
        dir.path(),
        &[
            "silence",
            "add",
            "--config",
            "tripline.toml",
            "team=db",
            "function=~prd-.*",
            "--duration",
            "2h",
            "--author",
            "ann",
            "--comment",
            "migration",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let out = run(
        dir.path(),
        &["silence", "list", "--config", "tripline.toml"],
    );
    let text = stdout(&out);
    assert!(text.starts_with(&format!("{id}  active ")), "{text}");
    assert!(
        text.contains("by ann  team=\"db\" function=~\"prd-.*\"  migration"),
        "{text}"
    );
    let out = run(
        dir.path(),
        &["silence", "expire", "--config", "tripline.toml", &id],
    );
    assert!(out.status.success());
    assert!(stdout(&run(
        dir.path(),
        &["silence", "list", "--config", "tripline.toml"]
    ))
    .is_empty());
    let all = stdout(&run(
        dir.path(),
        &["silence", "list", "--config", "tripline.toml", "--all"],
    ));
    assert!(all.contains(&format!("{id}  expired")), "{all}");
    let out = run(
        dir.path(),
        &["silence", "add", "--config", "tripline.toml", "team=~("],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid regex"), "{}", stderr(&out));
}

#[test]
fn ack_from_the_command_line_acknowledges_on_pagerduty() {
    let rx = Receiver::start_with(Reply::Status(202));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &rx.url("/v2/enqueue"));
    let a = alert("Outage", &[("page", "now")], Severity::Critical);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            SqliteStore::open(dir.path().join("state.db"))
                .unwrap()
                .save_alerts(std::slice::from_ref(&a), &[])
                .await
                .unwrap();
        });
    let env = |c: &mut Command| {
        c.current_dir(dir.path())
            .env("TRIPLINE_CLI_SLACK_URL", rx.url("/slack"))
            .env("TRIPLINE_CLI_PD_KEY", "cli-key");
    };
    let mut deliver = Command::new(tripline_bin());
    deliver.args(["deliver", "--config", "tripline.toml", "--within", "10s"]);
    env(&mut deliver);
    let out = deliver.output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let mut ack = Command::new(tripline_bin());
    ack.args([
        "ack",
        "--config",
        "tripline.toml",
        &a.fingerprint,
        "--by",
        "bob",
    ]);
    env(&mut ack);
    let out = ack.output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "acknowledged {} (Outage on now) by bob",
            a.fingerprint
        )),
        "{}",
        stdout(&out)
    );
    let pd: Vec<serde_json::Value> = rx
        .accepted()
        .iter()
        .filter(|r| r.path == "/v2/enqueue")
        .map(|r| r.json())
        .collect();
    let actions: Vec<&str> = pd
        .iter()
        .map(|e| e["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge"]);
    assert_eq!(pd[1]["dedup_key"], a.fingerprint.as_str());
    let mut again = Command::new(tripline_bin());
    again.args(["ack", "--config", "tripline.toml", "0000000000000000"]);
    env(&mut again);
    let out = again.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// One-shot `eval` runs: group timers live in the store, so `group_wait` spans processes.
#[test]
fn eval_runs_group_across_processes() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::copy(
        demo.join("campaign-workers.json"),
        dir.path().join("campaign-workers.json"),
    )
    .unwrap();
    let config = std::fs::read_to_string(demo.join("tripline.toml")).unwrap().replace(
        "[[receiver]]\ntype = \"console\"\nname = \"console\"\n",
        &format!(
            "[[receiver]]\ntype = \"webhook\"\nname = \"team\"\nurl = \"{}\"\n\n[route]\nreceiver = \"team\"\ngroup_by = [\"team\"]\ngroup_wait = \"30s\"\n",
            rx.url("/team")
        ),
    );
    assert!(config.contains("[route]"), "the demo config changed shape");
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    let eval = |at: &str| {
        let out = run(
            dir.path(),
            &["eval", "--config", "tripline.toml", "--at", at, "--notify"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    };
    eval("2026-11-01T10:00:00Z");
    assert!(
        rx.requests().is_empty(),
        "group_wait holds the first message"
    );
    eval("2026-11-01T10:01:00Z");
    let got = rx.accepted();
    assert_eq!(got.len(), 1, "one message for the team's group");
    let body = got[0].json();
    assert_eq!(body["groupLabels"]["team"], "campaign");
    let firing = body["alerts"].as_array().unwrap().len();
    assert!(firing >= 2, "{body}");
    eval("2026-11-01T10:02:00Z");
    assert_eq!(rx.accepted().len(), 1, "nothing new, nothing sent");
}
