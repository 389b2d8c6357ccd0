//! Files and arguments through the binary: exit 2 (or 1) with one located line, never 101.

use super::hostile_dir;
use crate::support::bin::{run, stderr, stdout};

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

#[test]
fn an_overflowing_silence_duration_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        "[store]\ntype = \"sqlite\"\npath = \"t.db\"\n",
    )
    .unwrap();
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
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("tripline: --duration: duration \"99999999999999999h\" {TOO_LARGE}\n")
    );
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
