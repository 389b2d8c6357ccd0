//! A day of 5-minute `Errors` datapoints with `for = "10m"`, replayed every 5 minutes: the
//! intervals are the ones computed by hand below (incident, flapping, missing data, an incident
//! still firing at the end), and `--set` moves exactly the missing-data interval.

use crate::support::{bin, receiver::Receiver};
use serde_json::{json, Value};
use std::path::Path;

const DAY: &str = "2026-11-01";

/// Bucket values by 5-minute slot of the day (slot 0 = 00:00). Quiet 1.0 everywhere except:
/// - 02:00–02:15 (slots 24–27) 20: breaching at 02:05, 02:10, 02:15, 02:20 → pending 02:05,
///   firing 02:15 (10 m later), resolved 02:25.
/// - 05:00, 05:10, 05:20 (slots 60, 62, 64) 20, in between 0: breaching at 05:05, 05:15, 05:25
///   only → three pending spans of 5 m, never firing.
/// - 09:00–09:15 (slots 108–111) 20, then 09:20–09:30 (slots 112–114) missing: firing 09:15;
///   the rule looks back over CloudWatch's evaluation range (N + 2 = 3 periods), so the last real
///   datapoint (09:15, breaching) decides until it leaves the range: notBreaching resolves at
///   09:35, when all three periods are missing; breaching keeps it firing to 09:40 (the bucket
///   from 09:35 has data again).
/// - 23:30 onwards (slots 282–287) 20: pending 23:35, firing 23:45, still firing at 23:55.
fn bucket(slot: usize) -> Option<f64> {
    match slot {
        24..=27 => Some(20.0),
        60 | 62 | 64 => Some(20.0),
        61 | 63 | 65 => Some(0.0),
        108..=111 => Some(20.0),
        112..=114 => None,
        282..=287 => Some(20.0),
        _ => Some(1.0),
    }
}

pub fn write_day(dir: &Path, hook: &str) {
    let points: Vec<Value> = (0..288)
        .filter_map(|slot| {
            let v = bucket(slot)?;
            Some(json!([
                format!("{DAY}T{:02}:{:02}:00Z", slot / 12, slot % 12 * 5),
                v
            ]))
        })
        .collect();
    let fixture = json!({ "series": [
        { "match": { "metric": "Errors", "dimensions": { "FunctionName": "checkout" } },
          "points": points }
    ]});
    std::fs::write(dir.join("day.json"), fixture.to_string()).unwrap();
    std::fs::write(
        dir.join("tripline.toml"),
        format!(
            r#"
[store]
type = "memory"

[sources.cloudwatch]
type = "fixture"
files = ["day.json"]

[[receiver]]
type = "webhook"
name = "hook"
url = "{hook}"

[route]
receiver = "hook"
group_wait = "0s"

[[rule]]
use = "aws/lambda-errors"
name = "errors"
every = "0 */5 * * * *"
for = "10m"
params = {{ function = "checkout" }}
"#
        ),
    )
    .unwrap();
}

fn t(hm: &str) -> String {
    format!("{DAY}T{hm}:00Z")
}

/// (pending_since, start, end) of each interval; `end` None: still firing at the range's end.
fn intervals(report: &Value) -> Vec<(String, String, Option<String>)> {
    let inst = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "errors")
        .expect("the errors instance");
    let mut out = vec![];
    for s in inst["subjects"].as_array().unwrap() {
        for i in s["intervals"].as_array().unwrap() {
            let ts = |v: &Value| {
                v.as_str().map(|s| {
                    chrono::DateTime::parse_from_rfc3339(s)
                        .unwrap()
                        .with_timezone(&chrono::Utc)
                        .format("%Y-%m-%dT%H:%M:%SZ")
                        .to_string()
                })
            };
            out.push((
                ts(&i["pending_since"]).unwrap(),
                ts(&i["start"]).unwrap(),
                ts(&i["end"]),
            ));
        }
    }
    out.sort();
    out
}

fn pending_spans(report: &Value) -> usize {
    report["instances"][0]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pending"].as_array().unwrap().len())
        .sum()
}

fn backtest(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "backtest",
        "--config",
        "tripline.toml",
        "--from",
        "2026-11-01T00:00:00Z",
        "--to",
        "2026-11-01T23:59:59Z",
        "--format",
        "json",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let out = bin::run(dir, &args);
    assert!(
        out.status.success(),
        "backtest failed: {}\n{}",
        bin::stderr(&out),
        bin::stdout(&out)
    );
    serde_json::from_str(&bin::stdout(&out)).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", bin::stdout(&out));
    })
}

#[test]
fn a_day_with_for_10m_gives_the_hand_computed_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    write_day(dir.path(), &hook.url("/hook"));
    let r = backtest(dir.path(), &[]);
    assert_eq!(r["instants"], 288, "every 5 minutes of the day");
    assert_eq!(
        intervals(&r),
        vec![
            (t("02:05"), t("02:15"), Some(t("02:25"))),
            (t("09:05"), t("09:15"), Some(t("09:35"))),
            (t("23:35"), t("23:45"), None),
        ]
    );
    // Three firing pendings, plus the three flapping ones that never fired.
    assert_eq!(pending_spans(&r), 6);
    // The pipeline ran dry: firing and resolved notifications were counted, none was sent.
    let n = &r["notifications"]["hook"];
    assert_eq!(n["firing"], 3, "{r:#}");
    assert_eq!(n["resolved"], 2, "{r:#}");
    assert!(
        hook.requests().is_empty(),
        "the receiver was called during a backtest: {:?}",
        hook.requests().len()
    );
}

#[test]
fn set_missing_breaching_moves_only_the_missing_data_interval() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    write_day(dir.path(), &hook.url("/hook"));
    let r = backtest(dir.path(), &["--set", "errors.missing=breaching"]);
    assert_eq!(
        intervals(&r["after"]),
        vec![
            (t("02:05"), t("02:15"), Some(t("02:25"))),
            (t("09:05"), t("09:15"), Some(t("09:40"))),
            (t("23:35"), t("23:45"), None),
        ]
    );
    let changes: Vec<(String, String)> = r["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["change"].as_str().unwrap().to_string(),
                d["a"]["start"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes.iter().filter(|c| c.0 == "same").count(),
        2,
        "{changes:?}"
    );
    assert_eq!(
        changes.iter().filter(|c| c.0 == "changed").count(),
        1,
        "{changes:?}"
    );
    assert!(hook.requests().is_empty());
}

#[test]
fn text_report_lists_intervals_and_the_summary_line() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    write_day(dir.path(), &hook.url("/hook"));
    let out = bin::run(
        dir.path(),
        &[
            "backtest",
            "--config",
            "tripline.toml",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-01T23:59:59Z",
        ],
    );
    assert!(out.status.success(), "{}", bin::stderr(&out));
    let text = bin::stdout(&out);
    assert!(
        text.contains("2026-11-01 02:15 → 2026-11-01 02:25       10m"),
        "{text}"
    );
    assert!(text.contains("(still firing)"), "{text}");
    assert!(
        text.contains("hook                     5 (3 firing, 2 resolved)"),
        "{text}"
    );
    assert!(
        bin::stderr(&out).contains("backtest 2026-11-01 00:00 → 2026-11-01 23:59: 288 instants")
    );
    assert!(hook.requests().is_empty());
}
