//! Escalation and PagerDuty through the whole engine: a rule fires on pushed data, the cycle's
//! pipeline routes it to an escalation policy (Slack now, PagerDuty after 15m, the manager after
//! 45m), a manual clock walks the minutes, receivers are local HTTP servers.

use super::{engine, mins};
use crate::support::receiver::{Receiver, Reply};
use chrono::{DateTime, Utc};
use tripline::data::{QueryData, Series};
use tripline::pipeline::escalate::Ack;
use tripline::Tripline;

const RULE: &str = r#"
const RULE = #{ id: "test/service-down", severity: "critical",
                runbook: "https://runbooks.example.com/service-down", params: #{ service: () } };
fn query(p) { #{ up: pushed("up") } }
fn evaluate(d, p) {
    let v = d.up.last();
    if v != () && v < 1 { fire(#{ summary: `${p.service} is down`, labels: #{ service: p.service }, value: v }); }
}
"#;

fn setup(tag: &str) -> (Receiver, Tripline, tempfile::TempDir) {
    let rx = Receiver::start_with(Reply::Status(202));
    let slack_var = format!("TRIPLINE_TEST_ESC_SLACK_{tag}");
    let key_var = format!("TRIPLINE_TEST_ESC_PD_{tag}");
    std::env::set_var(&slack_var, rx.url("/slack/T0/B0/esc"));
    std::env::set_var(&key_var, "esc-routing-key");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/down.rhai"), RULE).unwrap();
    let config = format!(
        r#"
stock_rules = false
rules_dirs = ["rules"]
[store]
type = "memory"

[[rule]]
use = "test/service-down"
params = {{ service = "checkout" }}

[[receiver]]
type = "slack"
name = "slack"
url_env = "{slack_var}"

[[receiver]]
type = "pagerduty"
name = "pagerduty"
routing_key_env = "{key_var}"
url = "{pd}"

[[receiver]]
type = "webhook"
name = "manager"
url = "{manager}"

[[escalation]]
name = "oncall"
steps = [
  {{ after = "0s", receiver = "slack" }},
  {{ after = "15m", receiver = "pagerduty" }},
  {{ after = "45m", receiver = "manager" }},
]

[route]
escalation = "oncall"
group_by = ["alertname", "service"]
group_wait = "0s"
"#,
        pd = rx.url("/v2/enqueue"),
        manager = rx.url("/manager"),
    );
    let (e, _) = engine(dir.path(), &config);
    (rx, e, dir)
}

async fn cycle(e: &Tripline, at: DateTime<Utc>, up: f64) {
    e.push(
        "up",
        QueryData::Series(Series::new("up").with_points(60, [(at, up)])),
    );
    let r = e.run_cycle_at(at, None).await.unwrap();
    assert!(r.delivery_errors.is_empty(), "{:?}", r.delivery_errors);
}

/// (path, event_action or status) of every accepted request so far, then forgets them.
fn seen(rx: &Receiver) -> Vec<(String, String)> {
    let out = rx
        .accepted()
        .iter()
        .map(|r| {
            let b = r.json();
            let what = b
                .get("event_action")
                .or(b.get("status"))
                .and_then(|v| v.as_str())
                .map(String::from)
                .unwrap_or_else(|| {
                    b["attachments"][0]["blocks"][0]["text"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                });
            (
                r.path.split('/').nth(1).unwrap_or_default().to_string(),
                what,
            )
        })
        .collect();
    rx.clear();
    out
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn slack_now_pagerduty_at_15m_then_ack_stops_it() {
    let (rx, e, _dir) = setup("ACK");
    rt().block_on(async {
        cycle(&e, mins(0), 0.0).await;
        let first = seen(&rx);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, "slack");
        assert!(first[0].1.contains("[FIRING:1] service-down"), "{first:?}");
        cycle(&e, mins(14), 0.0).await;
        assert!(seen(&rx).is_empty(), "nothing before 15m");

        cycle(&e, mins(15), 0.0).await;
        let reqs = rx.accepted();
        assert_eq!(seen(&rx), [("v2".to_string(), "trigger".to_string())]);
        let trigger = reqs[0].json();
        let fp = e.store().load_alerts().await.unwrap()[0]
            .fingerprint
            .clone();
        assert_eq!(trigger["dedup_key"], fp.as_str());
        assert_eq!(trigger["routing_key"], "esc-routing-key");
        assert_eq!(
            trigger["links"][0]["href"],
            "https://runbooks.example.com/service-down"
        );
        assert_eq!(trigger["payload"]["summary"], "checkout is down");
        assert_eq!(trigger["payload"]["source"], "checkout");

        // Someone takes it at 20m (what `tripline ack` records).
        e.store()
            .ack(&Ack {
                fingerprint: fp.clone(),
                by: "ann".into(),
                at: mins(20),
                announced: false,
            })
            .await
            .unwrap();
        cycle(&e, mins(20), 0.0).await;
        let reqs = rx.accepted();
        let mut got = seen(&rx);
        got.sort();
        assert_eq!(
            got[0],
            (
                "slack".to_string(),
                ":eyes: [ACKNOWLEDGED] service-down by ann".to_string()
            )
        );
        assert_eq!(got[1], ("v2".to_string(), "acknowledge".to_string()));
        let ack = reqs
            .iter()
            .map(|r| r.json())
            .find(|b| b["event_action"] == "acknowledge")
            .unwrap();
        assert_eq!(ack["dedup_key"], fp.as_str());

        for m in [30, 45, 60, 90] {
            cycle(&e, mins(m), 0.0).await;
        }
        assert!(seen(&rx).is_empty(), "no manager, no repeats after the ack");

        // The resolve closes the PagerDuty incident under the same key.
        cycle(&e, mins(100), 1.0).await;
        let reqs = rx.accepted();
        let mut got = seen(&rx);
        got.sort();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1], ("v2".to_string(), "resolve".to_string()));
        let resolve = reqs
            .iter()
            .map(|r| r.json())
            .find(|b| b["event_action"] == "resolve")
            .unwrap();
        assert_eq!(resolve["dedup_key"], fp.as_str());
        assert!(got[0].1.contains("[RESOLVED:1]"), "{got:?}");
    });
}

#[test]
fn a_resolve_ends_the_escalation() {
    let (rx, e, _dir) = setup("RESOLVE");
    rt().block_on(async {
        cycle(&e, mins(0), 0.0).await;
        cycle(&e, mins(15), 0.0).await;
        let got: Vec<String> = seen(&rx).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, ["slack", "v2"]);
        cycle(&e, mins(20), 1.0).await;
        let mut got = seen(&rx);
        got.sort();
        assert_eq!(
            got.iter()
                .map(|(p, w)| format!("{p} {}", w.split(' ').nth(1).unwrap_or(w)))
                .collect::<Vec<_>>(),
            ["slack [RESOLVED:1]", "v2 resolve"]
        );
        for m in [45, 50, 120] {
            cycle(&e, mins(m), 1.0).await;
        }
        assert!(seen(&rx).is_empty(), "nobody else is told");
    });
}

#[test]
fn unacknowledged_it_reaches_the_manager_at_45m() {
    let (rx, e, _dir) = setup("MANAGER");
    rt().block_on(async {
        for m in [0, 15, 44] {
            cycle(&e, mins(m), 0.0).await;
        }
        assert_eq!(
            seen(&rx).into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
            ["slack", "v2"]
        );
        cycle(&e, mins(45), 0.0).await;
        assert_eq!(seen(&rx), [("manager".to_string(), "firing".to_string())]);
    });
}

/// Issue #17, point 9: a backlog that was a warning for 90 minutes and turns critical reaches
/// the critical route's escalation steps counted from then (30 min, 2 h), not at once.
#[test]
fn an_alert_turning_critical_escalates_from_when_it_became_critical() {
    use super::alert;
    use tripline::alert::Severity;
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
stock_rules = false
[store]
type = "memory"

[[receiver]]
type = "webhook"
name = "chat"
url = "{chat}"

[[receiver]]
type = "webhook"
name = "pager"
url = "{pager}"

[[receiver]]
type = "webhook"
name = "manager"
url = "{manager}"

[[escalation]]
name = "critical"
steps = [
  {{ after = "0s", receiver = "chat" }},
  {{ after = "30m", receiver = "pager" }},
  {{ after = "2h", receiver = "manager" }},
]

[route]
receiver = "chat"
group_by = ["alertname"]
group_wait = "0s"
  [[route.routes]]
  matchers = ["severity=critical"]
  escalation = "critical"
"#,
        chat = rx.url("/chat"),
        pager = rx.url("/pager"),
        manager = rx.url("/manager"),
    );
    let (e, _) = engine(dir.path(), &config);
    rt().block_on(async {
        let mut a = alert("Backlog", &[("queue", "orders")], Severity::Warning);
        e.store()
            .save_alerts(std::slice::from_ref(&a), &[])
            .await
            .unwrap();
        let mut first_at = std::collections::BTreeMap::new();
        for m in 0..=240 {
            if m == 90 {
                // What the state machine records when the severity rises.
                a.severity = Severity::Critical;
                a.severity_changed_at = Some(mins(90));
                a.updated_at = mins(90);
                e.store()
                    .save_alerts(std::slice::from_ref(&a), &[])
                    .await
                    .unwrap();
            }
            e.notify_at(mins(m)).await.unwrap();
            for r in rx.accepted() {
                let path = r.path.trim_start_matches('/').to_string();
                first_at.entry(path).or_insert(m);
            }
        }
        // The pager 30 min and the manager 2 h after it turned critical at 90.
        assert_eq!(first_at.get("pager"), Some(&120), "{first_at:?}");
        assert_eq!(first_at.get("manager"), Some(&210), "{first_at:?}");
        println!("warning at 0, critical at 90: first sent at (minute) {first_at:?}");
    });
}
