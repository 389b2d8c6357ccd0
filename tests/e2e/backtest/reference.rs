//! The backtest's evaluation memo changes no answer: two days of Prometheus history (Debian's
//! Prometheus, backfilled with promtool) with incidents, flapping, gaps longer than the 5-minute
//! lookback and a queue that comes and goes, replayed by rules with `for`, `keep_firing_for`,
//! none, a rule that reads `now()`, one that writes into its own params and one over raw series,
//! with a receiver behind a grouping route: the JSON report of `tripline backtest` and of
//! `tripline backtest --reference` (the plain cycle at every instant) must be identical, and
//! the memo must have answered some evaluations. Needs `TRIPLINE_PROMETHEUS` (promtool beside it).

use super::vmalert_replay::{backfilled_prometheus, rfc, Killed};
use crate::support::{bin, real_part, receiver::Receiver};
use serde_json::Value;

/// Fires every series of the vector it is given: the query carries the condition, as in a
/// PromQL alerting rule.
const SPARSE: &str = r#"
const RULE = #{ id: "test/sparse", severity: "warning", params: #{ query: "" } };
fn query(p) { #{ x: prometheus(#{ query: p.query }) } }
fn evaluate(d, p) {
    for s in d.x {
        let v = s.last();
        if v != () {
            fire(#{ summary: `${s.labels.queue}: ${v}`, labels: #{ queue: s.labels.queue }, value: v });
        }
    }
}
"#;

/// The same, but only in the second half of every hour: it reads the instant.
const CLOCK: &str = r#"
const RULE = #{ id: "test/clock", severity: "warning", params: #{ query: "" } };
fn query(p) { #{ x: prometheus(#{ query: p.query }) } }
fn evaluate(d, p) {
    if now() % 3600 >= 1800 {
        for s in d.x {
            fire(#{ summary: "late", labels: #{ queue: s.labels.queue }, value: s.last() });
        }
    }
}
"#;

/// Counts its calls in its params (they are a shared script value) and fires on some counts
/// only: its result depends on how often it ran, so a reused evaluation would show.
const COUNTER: &str = r#"
const RULE = #{ id: "test/counter", severity: "warning", params: #{ query: "", calls: 0 } };
fn query(p) { #{ x: prometheus(#{ query: p.query }) } }
fn evaluate(d, p) {
    p.calls += 1;
    if p.calls % 90 < 30 {
        fire(#{ summary: "counted", labels: #{ n: "1" }, value: p.calls });
    }
}
"#;

/// Raw series with a threshold and a severity ladder: the data differs at every instant.
const RAW: &str = r#"
const RULE = #{ id: "test/raw", severity: "warning", params: #{ warning: 100, critical: 200 } };
fn query(p) { #{ depth: prometheus(#{ query: "queue_depth" }) } }
fn evaluate(d, p) {
    for s in d.depth {
        let v = s.last();
        if v != () && v > p.warning {
            let sev = if v > p.critical { "critical" } else { "warning" };
            fire(#{ summary: `${v}`, labels: #{ queue: s.labels.queue }, value: v, severity: sev });
        }
    }
}
"#;

/// Queue `q`'s depth at minute `m`; None: no sample.
fn depth(q: &str, m: i64) -> Option<f64> {
    match q {
        // An incident every 6 hours, 20 minutes long, critical in its middle.
        "a" if m % 360 < 20 => Some(if m % 360 >= 8 && m % 360 < 12 {
            260.0
        } else {
            180.0
        }),
        // Flapping: breaching every other few minutes around hour 10 of each day.
        "b" if (600..660).contains(&(m % 1440)) && (m / 3) % 2 == 0 => Some(150.0),
        // An incident with no sample for 9 minutes in its middle (longer than the lookback).
        "c" if (1200..1209).contains(&(m % 1440)) => None,
        "c" if (1190..1230).contains(&(m % 1440)) => Some(300.0),
        // Comes and goes: no samples at all for an hour each day.
        "d" if (300..360).contains(&(m % 1440)) => None,
        "d" if (280..300).contains(&(m % 1440)) => Some(120.0),
        // An incident still going at the end of the range.
        "e" if m >= 2860 => Some(500.0),
        _ => Some(10.0),
    }
}

#[test]
fn the_evaluation_memo_gives_the_reports_of_the_plain_cycle() {
    let Some(prometheus) = real_part("TRIPLINE_PROMETHEUS", "prometheus", |p| p.exists()) else {
        return;
    };
    let promtool = prometheus.with_file_name("promtool");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now = chrono::Utc::now().timestamp();
    let end = now - now.rem_euclid(3600) - 3600;
    let minutes = 2 * 1440;
    let start = end - minutes * 60;
    let (child, port) = backfilled_prometheus(
        d,
        &promtool,
        &prometheus,
        &["a", "b", "c", "d", "e"],
        start,
        minutes,
        depth,
    );
    let _guard = Killed(vec![child]);

    let hook = Receiver::start();
    std::fs::create_dir(d.join("rules")).unwrap();
    for (name, src) in [
        ("sparse", SPARSE),
        ("clock", CLOCK),
        ("counter", COUNTER),
        ("raw", RAW),
    ] {
        std::fs::write(d.join(format!("rules/{name}.rhai")), src).unwrap();
    }
    let rule = |use_: &str, name: &str, every: &str, extra: &str| {
        format!("[[rule]]\nuse = \"{use_}\"\nname = \"{name}\"\nevery = \"{every}\"\n{extra}\n")
    };
    let mut cfg = format!(
        "rules_dirs = [\"rules\"]\n\n[store]\ntype = \"memory\"\n\n[sources.prometheus]\n\
         type = \"prometheus\"\nurl = \"http://127.0.0.1:{port}\"\n\n[[receiver]]\n\
         type = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n\n[route]\nreceiver = \"hook\"\n\
         group_by = [\"alertname\"]\ngroup_wait = \"30s\"\ngroup_interval = \"5m\"\n\
         repeat_interval = \"1h\"\n\n",
        hook.url("/hook")
    );
    let minute = "0 * * * * *";
    cfg += &rule(
        "test/sparse",
        "all-for-5m-keep-3m",
        minute,
        "for = \"5m\"\nkeep_firing_for = \"3m\"\nparams = { query = \"queue_depth > 100\" }",
    );
    cfg += &rule(
        "test/sparse",
        "b-no-for",
        minute,
        "params = { query = 'queue_depth{queue=\"b\"} > 100' }",
    );
    cfg += &rule(
        "test/sparse",
        "c-every-2m-keep-10m",
        "0 */2 * * * *",
        "for = \"4m\"\nkeep_firing_for = \"10m\"\nparams = { query = 'queue_depth{queue=\"c\"} > 100' }",
    );
    cfg += &rule(
        "test/clock",
        "late-for-2m",
        minute,
        "for = \"2m\"\nparams = { query = \"queue_depth > 100\" }",
    );
    cfg += &rule(
        "test/counter",
        "counter",
        minute,
        "params = { query = 'queue_depth{queue=\"a\"} > 1000' }",
    );
    cfg += &rule(
        "test/raw",
        "raw-for-10m-keep-10m",
        minute,
        "for = \"10m\"\nkeep_firing_for = \"10m\"",
    );
    std::fs::write(d.join("tripline.toml"), cfg).unwrap();

    let run = |extra: &[&str]| -> (Value, String) {
        let (from, to) = (rfc(start), rfc(end));
        let mut args = vec![
            "backtest",
            "--config",
            "tripline.toml",
            "--from",
            &from,
            "--to",
            &to,
            "--format",
            "json",
            "--no-progress",
        ];
        args.extend_from_slice(extra);
        let out = bin::run(d, &args);
        assert!(out.status.success(), "{}", bin::stderr(&out));
        let mut r: Value = serde_json::from_str(&bin::stdout(&out)).unwrap();
        r.as_object_mut().unwrap().remove("elapsed_secs");
        (r, bin::stderr(&out))
    };
    let (fast, fast_err) = run(&[]);
    let (reference, reference_err) = run(&["--reference"]);
    eprintln!(
        "memo: {}\nreference: {}",
        fast_err.lines().last().unwrap_or(""),
        reference_err.lines().last().unwrap_or("")
    );
    assert_eq!(fast, reference, "the memo changed the report");

    // Not a vacuous comparison: every kind of outcome is in it.
    let inst = |name: &str| {
        fast["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {fast:#}"))
            .clone()
    };
    let count = |i: &Value, what: &str| -> usize {
        i["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[what].as_array().unwrap().len())
            .sum()
    };
    for name in [
        "all-for-5m-keep-3m",
        "b-no-for",
        "c-every-2m-keep-10m",
        "late-for-2m",
        "counter",
        "raw-for-10m-keep-10m",
    ] {
        assert!(count(&inst(name), "intervals") > 0, "{name} never fired");
    }
    assert!(
        count(&inst("all-for-5m-keep-3m"), "pending")
            > count(&inst("all-for-5m-keep-3m"), "intervals"),
        "flapping that never lasts `for`"
    );
    let n = &fast["notifications"]["hook"];
    assert!(
        n["firing"].as_u64().unwrap() > 0 && n["resolved"].as_u64().unwrap() > 0,
        "{n}"
    );
    assert!(
        hook.requests().is_empty(),
        "a backtest notified the receiver"
    );
    // The memo answered evaluations; the reference none.
    let reused = |err: &str| -> u64 {
        let line = err.lines().last().unwrap_or("");
        let at = line
            .find(" reused)")
            .unwrap_or_else(|| panic!("no reuse count: {line}"));
        line[..at].rsplit('(').next().unwrap().parse().unwrap()
    };
    assert!(reused(&fast_err) > 0, "{fast_err}");
    assert_eq!(reused(&reference_err), 0, "{reference_err}");
}
