//! The CLI's contract: `check` exit codes and messages, `test` over the stock rules, the demo.

use crate::support::bin::{run, stderr, stdout};
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn every_row_of_cloudwatchs_missing_data_tables_holds() {
    // tests/semantics/gen_cloudwatch_cases.py: 14 rows x 4 treatments x from OK / from ALARM.
    let out = run(repo(), &["test", "tests/semantics"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\n112 passed, 0 failed"), "{text}");
}

#[test]
fn stock_rules_pass_their_fixture_cases() {
    let out = run(repo(), &["test", "rules"]);
    let text = stdout(&out);
    let last = text.lines().last().unwrap_or_default();
    assert!(out.status.success(), "{text}");
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    let rules = text
        .lines()
        .filter(|l| l.starts_with("ok "))
        .map(|l| l.split(" :: ").next().unwrap())
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        passed >= 3 * rules.len(),
        "{passed} cases for {} rules",
        rules.len()
    );
}

#[test]
fn a_failing_case_shows_expected_and_got_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("rules/aws/lambda-throttles.rhai"),
        dir.path().join("t.rhai"),
    )
    .unwrap();
    std::fs::write(dir.path().join("t.test.toml"), "params = { function = \"f\" }\n[[case]]\nname = \"wrongly expects quiet\"\nat = \"2026-11-01T10:00:30Z\"\n[[case.series]]\nmatch = { metric = \"Throttles\" }\npoints = [[\"-5m\", 4.0]]\n").unwrap();
    let out = run(dir.path(), &["test", "."]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("expected:\n      (none)"), "{text}");
    assert!(text.contains("got:\n      firing critical"), "{text}");
    assert_eq!(text.lines().last(), Some("0 passed, 1 failed"));
}

#[test]
fn check_accepts_the_demo_config() {
    let out = run(
        &repo().join("examples/demo"),
        &["check", "--config", "tripline.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ok (6 rule instances"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_locates_every_config_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[store]\ntype = \"memory\"\n\n[[rule]]\nuse = \"aws/lambda-errors\"\nparams = { function = \"f\", treshold = 3 }\n\n[[rule]]\nuse = \"aws/no-such-rule\"\n\n[[rule]]\nuse = \"aws/sqs-queue-depth\"\nfor = \"5 minutes\"\nparams = { queue = \"q\" }\n";
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let out = run(dir.path(), &["check", "--config", "bad.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:13:7: invalid duration \"5 minutes\""),
        "{err}"
    );
    // The duration error stops that instance only; the others are still checked.
    // A parameter's problem is located at its value, with the name it was probably meant to be.
    let unknown_param = "bad.toml:6:39: instance \"lambda-errors\": rule aws/lambda-errors has no parameter \"treshold\" (it takes: datapoints, evaluation_periods, function, missing, period, threshold); did you mean `threshold`?";
    let no_rule = "bad.toml:9:7: instance \"no-such-rule\": no rule with id \"aws/no-such-rule\"";
    assert!(err.contains(unknown_param), "{err}");
    assert!(err.contains(no_rule), "{err}");
    assert_eq!(err.lines().count(), 3, "{err}");

    std::fs::write(dir.path().join("typo.toml"), "[stor]\ntype = \"memory\"\n").unwrap();
    let out = run(dir.path(), &["check", "--config", "typo.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("typo.toml:1:2: unknown field `stor`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_demo_runs_without_aws_and_prints_runbook_links() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["demo", "--dir", "d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("save-data-errors"), "{text}");
    assert!(
        text.contains("runbook=https://runbooks.example.com/campaign-workers#high-error-rate"),
        "{text}"
    );
    // The healthy function stays quiet.
    assert!(!text.contains("scheduled-errors"), "{text}");
    assert!(dir.path().join("d/tripline.db").exists());
}
