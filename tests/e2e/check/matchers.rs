//! Matchers on the command line, in Alertmanager's grammar: `route-test` and `alerts` filters.

use crate::support::bin::{run, stderr, stdout};

const CONFIG: &str = r#"stock_rules = false
[store]
type = "memory"

[[receiver]]
type = "console"
name = "default"

[[receiver]]
type = "console"
name = "pager"

[route]
receiver = "default"

[[route.routes]]
matchers = ['severity="critical"']
receiver = "pager"
"#;

#[test]
fn route_test_reads_labels_in_alertmanagers_grammar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tripline.toml"), CONFIG).unwrap();
    for labels in [
        vec![r#"{severity="critical"}"#],
        vec![r#"severity="critical""#],
        vec!["severity=critical", "team=db"],
        vec![r#"{severity="critical", team="db"}"#],
    ] {
        let mut args = vec!["route-test", "--config", "tripline.toml"];
        args.extend(&labels);
        let out = run(dir.path(), &args);
        assert!(out.status.success(), "{labels:?}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with("pager  route {}/{severity=\"critical\"}"),
            "{labels:?}: {}",
            stdout(&out)
        );
    }
    let out = run(
        dir.path(),
        &[
            "route-test",
            "--config",
            "tripline.toml",
            "severity=warning",
        ],
    );
    assert!(
        stdout(&out).starts_with("default  route {}"),
        "{}",
        stdout(&out)
    );

    let out = run(
        dir.path(),
        &[
            "route-test",
            "--config",
            "tripline.toml",
            "severity==critical",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "tripline: invalid matcher \"severity==critical\", column 10: unexpected `=`: expected a label value; did you mean `severity=\"critical\"`?\n"
    );
}

#[test]
fn silence_add_refuses_what_alertmanager_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        CONFIG.replace("type = \"memory\"", "type = \"sqlite\"\npath = \"t.db\""),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "silence",
            "add",
            "--config",
            "tripline.toml",
            "severity==critical",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("column 10: unexpected `=`: expected a label value"),
        "{}",
        stderr(&out)
    );
    // A list in one argument, as `amtool silence add '{…}'` takes it; stored unquoted values
    // come back quoted.
    let out = run(
        dir.path(),
        &[
            "silence",
            "add",
            "--config",
            "tripline.toml",
            r#"{severity="critical", team=~"db|data"}"#,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&run(
        dir.path(),
        &["silence", "list", "--config", "tripline.toml"],
    ));
    assert!(
        list.contains(r#"severity="critical" team=~"db|data""#),
        "{list}"
    );
}
