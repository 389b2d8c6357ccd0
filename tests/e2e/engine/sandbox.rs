//! Hostile rules: a syntax error, an endless loop, endless recursion and a 100 MB string. The
//! sandbox stops each, reports it as a rule-error alert, and every other rule still evaluates.

use super::copy_fixtures;
use crate::support::bin::{run, stderr, stdout};

const HOSTILE: &[&str] = &[
    "syntax-error.rhai",
    "infinite-loop.rhai",
    "endless-recursion.rhai",
    "huge-string.rhai",
    "escape-import.rhai",
    "ok.rhai",
];

fn config() -> String {
    let mut c = String::from("rules_dirs = [\"rules\"]\nstock_rules = false\n[store]\ntype = \"sqlite\"\npath = \"state.db\"\n[engine]\nrule_deadline = \"500ms\"\n");
    for (name, id) in [
        ("syntax", "syntax-error"),
        ("loop", "infinite-loop"),
        ("recursion", "endless-recursion"),
        ("string", "huge-string"),
        ("ok", "ok"),
    ] {
        c.push_str(&format!(
            "[[rule]]\nname = \"{name}\"\nuse = \"hostile/{id}\"\n"
        ));
    }
    c
}

#[test]
fn check_reports_the_syntax_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures("hostile", HOSTILE, &dir.path().join("rules"));
    std::fs::write(dir.path().join("tripline.toml"), config()).unwrap();
    let out = run(dir.path(), &["check", "--config", "tripline.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let syntax: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("syntax-error.rhai"))
        .collect();
    assert_eq!(syntax.len(), 1, "{err}");
    assert!(syntax[0].contains("syntax-error.rhai:6:13: "), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("escape-import.rhai") && l.contains("rules directories")),
        "{err}"
    );
}

#[test]
fn eval_stops_hostile_rules_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures("hostile", HOSTILE, &dir.path().join("rules"));
    std::fs::write(dir.path().join("tripline.toml"), config()).unwrap();
    let out = run(
        dir.path(),
        &["eval", "--config", "tripline.toml", "--format", "json"],
    );
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let by_name = |n: &str| -> Vec<&serde_json::Value> {
        alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == n || a["labels"]["instance"] == n)
            .collect()
    };
    // The well-behaved rule fired.
    let ok = by_name("ok");
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["summary"], "the well-behaved rule still fires");
    // Each hostile rule is a firing rule-error alert naming the limit that stopped it.
    for (instance, reason) in [
        ("loop", "max_operations"),
        ("recursion", "max_call_depth"),
        ("string", "max_data_size"),
    ] {
        let a = by_name(instance);
        assert_eq!(a.len(), 1, "{instance}: {alerts:#?}");
        assert_eq!(a[0]["rule"], "tripline/rule-error");
        assert_eq!(a[0]["state"], "firing");
        let err = a[0]["details"]["error"].as_str().unwrap();
        assert!(
            err.contains(reason) || (instance == "loop" && err.contains("deadline")),
            "{instance}: {err}"
        );
        assert!(
            err.contains(".rhai:"),
            "{instance} error has no position: {err}"
        );
    }
    // The rule file that does not compile is reported, with its position.
    let load: Vec<_> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "RuleLoadError")
        .collect();
    assert!(
        load.iter().any(|a| a["summary"]
            .as_str()
            .unwrap()
            .contains("syntax-error.rhai:6:13")),
        "{load:#?}"
    );
}
