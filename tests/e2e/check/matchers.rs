//! Matchers on the command line, in Alertmanager's grammar: `route-test` and `alerts` filters.

use crate::support::bin::{run, stderr, stdout};
use std::path::Path;
use std::process::Output;

/// `tripline <command…> --config tripline.toml <args…>` in `dir`.
fn with_config(dir: &Path, command: &[&str], args: &[&str]) -> Output {
    let mut a = command.to_vec();
    a.extend(["--config", "tripline.toml"]);
    a.extend(args);
    run(dir, &a)
}

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
        let out = with_config(dir.path(), &["route-test"], &labels);
        assert!(out.status.success(), "{labels:?}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with("pager  route {}/{severity=\"critical\"}"),
            "{labels:?}: {}",
            stdout(&out)
        );
    }
    let out = with_config(dir.path(), &["route-test"], &["severity=warning"]);
    assert!(
        stdout(&out).starts_with("default  route {}"),
        "{}",
        stdout(&out)
    );

    let out = with_config(dir.path(), &["route-test"], &["severity==critical"]);
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
    let out = with_config(dir.path(), &["silence", "add"], &["severity==critical"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("column 10: unexpected `=`: expected a label value"),
        "{}",
        stderr(&out)
    );
    // A list in one argument, as `amtool silence add '{…}'` takes it; stored unquoted values
    // come back quoted.
    let out = with_config(
        dir.path(),
        &["silence", "add"],
        &[r#"{severity="critical", team=~"db|data"}"#],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&with_config(dir.path(), &["silence", "list"], &[]));
    assert!(
        list.contains(r#"severity="critical" team=~"db|data""#),
        "{list}"
    );
}

/// `tripline alerts MATCHER…` filters as `amtool alert query` does, on the demo's alerts.
#[test]
fn alerts_filters_by_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["demo", "--dir", "d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = dir.path().join("d");
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--format", "json"];
        a.extend(args);
        let out = with_config(&d, &["alerts"], &a);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
            .collect();
        n.sort();
        n
    };
    let all = names(&[]);
    assert!(all.len() >= 2, "{all:?}");
    let errors = names(&[r#"alertname=~".*errors""#]);
    assert!(!errors.is_empty(), "{all:?}");
    assert!(errors.iter().all(|n| n.ends_with("errors")), "{errors:?}");
    let one = names(&[&format!("{{alertname=\"{}\"}}", all[0])]);
    assert!(
        one.iter().all(|n| n == &all[0]) && !one.is_empty(),
        "{one:?}"
    );
    let none = names(&["alertname=nothing-is-called-this"]);
    assert!(none.is_empty(), "{none:?}");
    let out = with_config(&d, &["alerts"], &["alertname==x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("column 11"), "{}", stderr(&out));
}

/// `GET /api/v1/alerts?filter=…` takes the same grammar; a bad matcher is a 400 saying where.
#[test]
fn the_v1_api_filters_alerts_by_matchers() {
    use crate::support::daemon::Daemon;
    use crate::support::http::request;
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["demo", "--dir", "d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = dir.path().join("d");
    let config = std::fs::read_to_string(d.join("tripline.toml")).unwrap();
    std::fs::write(
        d.join("tripline.toml"),
        config.replace(
            "[store]",
            "[server]\nlisten = \"127.0.0.1:0\"\nevaluate_on_start = false\n\n[store]",
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&d, "tripline.toml", &[("TRIPLINE_API_TOKEN", "t0ken")]);
    let auth = [("Authorization", "Bearer t0ken")];
    let names = |query: &str| -> Vec<String> {
        let r = request(
            &daemon.addr,
            "GET",
            &format!("/api/v1/alerts{query}"),
            &auth,
            "",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let all = names("");
    assert!(all.len() >= 2, "{all:?}");
    // alertname=~".*errors", URL-encoded.
    let errors = names("?filter=alertname%3D~%22.%2Aerrors%22");
    assert!(
        !errors.is_empty() && errors.len() < all.len(),
        "{errors:?} of {all:?}"
    );
    assert!(errors.iter().all(|n| n.ends_with("errors")), "{errors:?}");
    let r = request(
        &daemon.addr,
        "GET",
        "/api/v1/alerts?filter=alertname%3D%3Dx",
        &auth,
        "",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("column 11: unexpected `=`"), "{}", r.body);
}
