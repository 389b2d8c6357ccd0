//! Files and arguments through the binary: exit 2 (or 1) with one located line, never 101.

use super::hostile_dir;
use crate::support::bin::{run, stderr, stdout};
use tripline::store::AlertStore;

const TOO_LARGE: &str = "is too large (at most 106751d, about 292 years)";

#[test]
fn overflowing_durations_in_a_config_are_located_errors() {
    let dir = hostile_dir().join("overflow");
    for (file, at) in [
        ("for.toml", "9:7"),
        ("group-wait.toml", "12:14"),
        ("max-backoff.toml", "7:15"),
        ("escalation-after.toml", "17:13"),
        ("resolved-retention.toml", "7:22"),
        ("rule-deadline.toml", "7:17"),
    ] {
        let out = run(&dir, &["check", "--config", file]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("{file}:{at}: duration \"99999999999999999h\" {TOO_LARGE}\n"),
            "{file}"
        );
    }
}

#[test]
fn overflowing_instants_in_rule_test_files_are_located_errors() {
    let dir = hostile_dir().join("overflow");
    for (file, at, duration) in [
        ("at.test.toml", "7:6", "9223372036854775807s"),
        ("point.test.toml", "10:26", "5000000000000000000ms"),
        ("step.test.toml", "10:6", "99999999999999999h"),
    ] {
        let out = run(&dir, &["test", file]);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!(
                "FAIL ? :: (file) ({file})\n  {file}:{at}: duration \"{duration}\" {TOO_LARGE}\n\
                 0 passed, 1 failed\n"
            ),
            "{file}"
        );
    }
}

#[test]
fn an_overflowing_fixture_point_is_located_in_its_file_by_eval_and_check() {
    let dir = hostile_dir().join("overflow");
    for cmd in ["eval", "check"] {
        let out = run(&dir, &[cmd, "--config", "eval-point.toml"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("point.json:2:52: duration \"5000000000000000000ms\" {TOO_LARGE}\n"),
            "{cmd}"
        );
    }
}

/// A directory holding a tripline.toml with only a SQLite store.
fn sqlite_config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[store]\ntype = \"sqlite\"\npath = \"t.db\"\n";
    std::fs::write(dir.path().join("tripline.toml"), toml).unwrap();
    dir
}

#[test]
fn an_overflowing_silence_duration_is_an_error_not_a_panic() {
    let dir = sqlite_config_dir();
    let out = run(
        dir.path(),
        &[
            "silence",
            "add",
            "--config",
            "tripline.toml",
            "--duration",
            "99999999999999999h",
            "team=db",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("tripline: --duration: duration \"99999999999999999h\" {TOO_LARGE}\n")
    );
}

#[test]
fn silence_add_refuses_bad_arguments_with_the_usage_exit_code() {
    let dir = sqlite_config_dir();
    let cases: [(&[&str], &str); 3] = [
        (
            &["team=~\"(\""],
            "tripline: invalid matcher \"team=~\\\"(\\\"\", column 7: invalid regex \"(\" for label \"team\": unclosed group; did you mean `team=~\"\\\\(\"`?\n",
        ),
        (
            &["--starts", "yesterday", "team=db"],
            "tripline: --starts \"yesterday\" is not an RFC 3339 instant such as 2026-12-02T18:00:00Z (premature end of input)\n",
        ),
        (
            &["--until", "2020-01-02T00:00:00Z", "team=db"],
            "tripline: the silence would end at 2020-01-02T00:00:00+00:00, which has already passed\n",
        ),
    ];
    for (args, want) in cases {
        let out = run(
            dir.path(),
            &[&["silence", "add", "--config", "tripline.toml"][..], args].concat(),
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), want, "{args:?}");
    }
    // Nothing was stored.
    let out = run(
        dir.path(),
        &["silence", "list", "--config", "tripline.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("team"));
}

#[test]
fn a_missing_fixture_file_is_located_at_its_name_in_the_config() {
    let out = run(
        &hostile_dir(),
        &["check", "--config", "missing-fixture.toml"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "missing-fixture.toml:7:10: fixture file no-such-file.json: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_rule_firing_200000_times_is_stopped_at_the_cap_and_its_neighbour_still_fires() {
    let out = run(
        &hostile_dir().join("storm"),
        &["eval", "--config", "tripline.toml"],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let cap =
        "./fire-storm.rhai:8:9: stopped by the sandbox (max_alerts_per_instance): fire() was \
               called more than 1000 times in one evaluate (engine.max_alerts_per_instance); none \
               of this cycle's alerts were kept";
    assert!(
        text.contains(&format!(
            "FIRING   warning  RuleError                rule fire-storm (hostile/fire-storm) evaluate failed: {cap}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("2 rule instances, 0 queries, 1 rule errors"),
        "{text}"
    );
    assert!(
        text.contains("FIRING   warning  one                      one\n"),
        "{text}"
    );
    // The storm's alerts were not kept: the RuleError and the neighbour's are the only ones.
    assert_eq!(text.matches("\nFIRING ").count(), 2, "{text}");
}

#[test]
fn ack_does_not_claim_to_have_told_a_webhook_receiver() {
    use crate::support::receiver::{Receiver, Reply};
    use tripline::store::SqliteStore;
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "stock_rules = false\n[store]\ntype = \"sqlite\"\npath = \"state.db\"\n\n\
         [[receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n\n\
         [route]\nreceiver = \"hook\"\ngroup_wait = \"0s\"\n",
        rx.url("/hook")
    );
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    let a = crate::notify::alert(
        "Outage",
        &[("page", "now")],
        tripline::alert::Severity::Critical,
    );
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
    let out = run(
        dir.path(),
        &["deliver", "--config", "tripline.toml", "--within", "10s"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(rx.accepted().len(), 1);
    let out = run(
        dir.path(),
        &[
            "ack",
            "--config",
            "tripline.toml",
            &a.fingerprint,
            "--by",
            "bob",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "acknowledged {} (Outage on now) by bob\n\
             not told hook: its format has no acknowledged state\n",
            a.fingerprint
        )
    );
    assert_eq!(
        rx.accepted().len(),
        1,
        "the ack sent nothing to the webhook"
    );
}

#[test]
fn every_command_exits_quietly_on_a_closed_pipe() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::copy(
        demo.join("campaign-workers.json"),
        dir.path().join("campaign-workers.json"),
    )
    .unwrap();
    // Without the console receiver, whose output is stdout too: a console notification that
    // cannot be written stays in the outbox for the next run (it is retried, never dropped).
    let config = std::fs::read_to_string(demo.join("tripline.toml"))
        .unwrap()
        .replace("[[receiver]]\ntype = \"console\"\nname = \"console\"\n", "");
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("preview.toml"),
        "[store]\ntype = \"memory\"\n[[receiver]]\ntype = \"console\"\nname = \"console\"\n",
    )
    .unwrap();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rules/aws/lambda-throttles.test.toml");
    let rules = rules.to_str().unwrap();
    let c = ["--config", "tripline.toml"];
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "notify-preview",
            "--config",
            "preview.toml",
            "--receiver",
            "console",
            "--alerts",
            "50",
        ],
        [&["route-test"][..], &c, &["team=campaign"]].concat(),
        [&["check"][..], &c].concat(),
        [&["eval"][..], &c].concat(),
        [&["eval"][..], &c, &["--format", "json"]].concat(),
        [&["alerts"][..], &c, &["--all"]].concat(),
        [&["alerts"][..], &c, &["--format", "json"]].concat(),
        [&["silence", "list"][..], &c].concat(),
        [&["deliver"][..], &c].concat(),
        vec!["test", rules],
    ];
    for args in cases {
        let mut child = Command::new(crate::support::bin::tripline_bin())
            .args(&args)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes anything, as `| head -0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[test]
fn connection_logs_do_not_name_a_secret_receiver_host_even_at_trace() {
    use crate::support::receiver::{Receiver, Reply};
    let rx = Receiver::start_with(Reply::Status(200));
    let url = rx.url("/T0PSECRET");
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::copy(
        demo.join("campaign-workers.json"),
        dir.path().join("campaign-workers.json"),
    )
    .unwrap();
    let config = std::fs::read_to_string(demo.join("tripline.toml"))
        .unwrap()
        .replace(
            "[[receiver]]\ntype = \"console\"\nname = \"console\"\n",
            "[[receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl_env = \"TRIPLINE_SECRET_HOOK\"\n\n\
             [route]\nreceiver = \"hook\"\ngroup_wait = \"0s\"\n",
        );
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    for level in ["debug", "trace"] {
        // A fresh store each time, so that each run connects to the hook.
        let _ = std::fs::remove_file(dir.path().join("tripline.db"));
        let out = std::process::Command::new(crate::support::bin::tripline_bin())
            .args(["eval", "--config", "tripline.toml", "--log", level])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env("TRIPLINE_SECRET_HOOK", &url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let log = stderr(&out);
        assert!(!log.is_empty(), "{level}: nothing logged");
        for secret in [host.as_str(), "T0PSECRET"] {
            assert!(
                !log.contains(secret),
                "{level}: {secret} in the log:\n{log}"
            );
        }
    }
    assert_eq!(rx.accepted().len(), 2, "the hook was called once per run");
}
