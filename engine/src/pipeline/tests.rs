//! The composed pipeline, planned against in-memory state.

use super::escalate::EscalationStep;
use super::matcher::Matcher;
use super::testutil::{alert, t};
use super::*;
use crate::alert::AlertState::{Firing, Resolved};
use crate::config::Config;
use chrono::Duration;

/// Applies a flush's commit to in-memory state, as the store would.
fn apply(st: &mut NotifyState, f: &Flush) {
    for e in &f.commit.nflog {
        st.nflog
            .retain(|x| !(x.group_key == e.group_key && x.receiver == e.receiver));
        st.nflog.push(e.clone());
    }
    for g in &f.commit.groups_saved {
        st.groups.retain(|x| x.key != g.key);
        st.groups.push(g.clone());
    }
    st.groups
        .retain(|g| !f.commit.groups_deleted.contains(&g.key));
    for a in st.acks.iter_mut() {
        if f.commit.acks_announced.contains(&a.fingerprint) {
            a.announced = true;
        }
    }
    for s in st.silences.iter_mut() {
        if f.commit.silences_noticed.contains(&s.id) {
            s.expiry_noticed = true;
        }
    }
}

fn sent(f: &Flush) -> Vec<(String, NotificationStatus, usize)> {
    f.commit
        .notifications
        .iter()
        .map(|n| (n.receiver.clone(), n.status, n.alerts.len()))
        .collect()
}

fn grouped() -> Pipeline {
    let mut cfg = PipelineConfig::fan_out(&[]);
    cfg.route = Route::root(Some("slack".into()));
    cfg.route.group_by = GroupBy::Labels(vec!["alertname".into()]);
    Pipeline::new(cfg)
}

#[test]
fn a_group_waits_then_sends_once_then_resolves() {
    let p = grouped();
    let mut st = NotifyState::default();
    let a = alert("Errors", &[("function", "f1")], Firing);
    let b = alert("Errors", &[("function", "f2")], Firing);
    let f = p.plan(&[a.clone(), b.clone()], &st, t(0));
    assert!(f.commit.notifications.is_empty(), "group_wait");
    apply(&mut st, &f);
    let f = p.plan(&[a.clone(), b.clone()], &st, t(0) + Duration::seconds(30));
    assert_eq!(sent(&f), [("slack".into(), NotificationStatus::Firing, 2)]);
    apply(&mut st, &f);
    let f = p.plan(&[a.clone(), b.clone()], &st, t(10));
    assert!(f.commit.notifications.is_empty(), "nothing new");
    apply(&mut st, &f);
    let mut ra = a.clone();
    ra.state = Resolved;
    let f = p.plan(&[ra.clone(), b.clone()], &st, t(20));
    assert_eq!(
        sent(&f),
        [("slack".into(), NotificationStatus::Firing, 2)],
        "one resolved, one firing"
    );
    apply(&mut st, &f);
    let mut rb = b.clone();
    rb.state = Resolved;
    let f = p.plan(&[ra.clone(), rb.clone()], &st, t(30));
    assert_eq!(
        sent(&f),
        [("slack".into(), NotificationStatus::Resolved, 1)],
        "only the news"
    );
    apply(&mut st, &f);
    assert!(st.groups.is_empty(), "a resolved group is forgotten");
    assert!(p
        .plan(&[ra, rb], &st, t(40))
        .commit
        .notifications
        .is_empty());
    let f = p.plan(&[a], &st, t(300));
    assert!(
        f.commit.notifications.is_empty(),
        "a new episode waits group_wait again"
    );
}

#[test]
fn escalation_walks_until_acked() {
    let mut cfg = PipelineConfig::fan_out(&[]);
    cfg.route = Route::root(None);
    cfg.route.escalation = Some("oncall".into());
    cfg.route.timers.group_wait = Duration::zero();
    cfg.policies.insert(
        "oncall".into(),
        EscalationPolicy {
            name: "oncall".into(),
            steps: vec![
                EscalationStep {
                    after: Duration::zero(),
                    receiver: "slack".into(),
                },
                EscalationStep {
                    after: Duration::minutes(15),
                    receiver: "pagerduty".into(),
                },
                EscalationStep {
                    after: Duration::minutes(45),
                    receiver: "manager".into(),
                },
            ],
        },
    );
    let p = Pipeline::new(cfg);
    let mut st = NotifyState::default();
    let a = alert("Down", &[], Firing);
    let run = |st: &mut NotifyState, at| {
        let f = p.plan(std::slice::from_ref(&a), st, at);
        apply(st, &f);
        sent(&f)
    };
    assert_eq!(
        run(&mut st, t(0)),
        [("slack".into(), NotificationStatus::Firing, 1)]
    );
    assert!(run(&mut st, t(14)).is_empty());
    assert_eq!(
        run(&mut st, t(15)),
        [("pagerduty".into(), NotificationStatus::Firing, 1)]
    );
    st.acks.push(Ack {
        fingerprint: a.fingerprint.clone(),
        by: "ann".into(),
        at: t(20),
        announced: false,
    });
    assert_eq!(
        run(&mut st, t(20)),
        [
            ("pagerduty".into(), NotificationStatus::Acknowledged, 1),
            ("slack".into(), NotificationStatus::Acknowledged, 1)
        ]
    );
    assert!(run(&mut st, t(45)).is_empty(), "no manager after an ack");
    assert!(run(&mut st, t(60)).is_empty());
    assert!(
        run(&mut st, t(60 * 24)).is_empty(),
        "no reminders of an acknowledged alert"
    );
}

#[test]
fn silence_expiry_over_firing_alerts_notifies_and_tells() {
    let mut cfg = PipelineConfig::fan_out(&["slack".into()]);
    cfg.silences.send_resolved = false;
    let p = Pipeline::new(cfg);
    let a = alert("Errors", &[("team", "db")], Firing);
    let s = Silence::new(
        &[Matcher::parse("team=db").unwrap()],
        t(0),
        t(30),
        "ann",
        "deploy",
        t(0),
    )
    .unwrap();
    let mut st = NotifyState {
        silences: vec![s],
        ..Default::default()
    };
    let f = p.plan(std::slice::from_ref(&a), &st, t(1));
    assert!(f.commit.notifications.is_empty());
    assert_eq!(f.silenced.len(), 1);
    apply(&mut st, &f);
    let f = p.plan(std::slice::from_ref(&a), &st, t(30));
    assert_eq!(sent(&f), [("slack".into(), NotificationStatus::Firing, 1)]);
    assert_eq!(f.notices.len(), 1, "{:?}", f.notices);
    assert!(f.notices[0].contains("expired"), "{}", f.notices[0]);
    apply(&mut st, &f);
    assert!(p.plan(&[a], &st, t(31)).notices.is_empty(), "told once");
}

#[test]
fn redaction_happens_before_anything_is_built() {
    let p = Pipeline::new(PipelineConfig::fan_out(&["slack".into()]));
    let mut a = alert("Leak", &[("api_key", "sekrit")], Firing);
    a.details.insert("password".into(), "hunter2".into());
    let f = p.plan(&[a], &NotifyState::default(), t(0));
    let json = serde_json::to_string(&f.commit.notifications).unwrap();
    assert!(
        !json.contains("sekrit") && !json.contains("hunter2"),
        "{json}"
    );
}

#[test]
fn config_problems_are_all_located() {
    let text = r#"
[[receiver]]
type = "console"
name = "c"

[notify]
redact = "("

[[escalation]]
name = "oncall"
steps = [{ after = "15m", receiver = "c" }, { after = "5m", receiver = "pager" }]

[route]
escalation = "nope"

[[inhibit]]
source_matchers = ["severity=critical"]
target_matchers = ["severity=~(warning"]
"#;
    let cfg = Config::parse(std::path::Path::new("n.toml"), text.to_string()).unwrap();
    let e = PipelineConfig::from_config(&cfg).unwrap_err().to_string();
    for want in [
        "n.toml:11:72: unknown receiver \"pager\" in escalation step",
        "n.toml:11:55: escalation steps must be in order of `after`",
        "n.toml:14:14: unknown escalation policy \"nope\" (defined: oncall)",
        "n.toml:18:31: invalid matcher \"severity=~(warning\": invalid regex \"(warning\" for label \"severity\": unclosed group",
        "n.toml:7:10: invalid redaction pattern \"(\": unclosed group",
    ] {
        assert!(e.contains(want), "missing {want:?} in\n{e}");
    }
}

fn from_toml(text: &str) -> Pipeline {
    let cfg = Config::parse(std::path::Path::new("t.toml"), text.to_string()).unwrap();
    Pipeline::new(PipelineConfig::from_config(&cfg).unwrap())
}

#[test]
fn routes_see_the_severity_and_a_receiver_hears_of_an_alert_once() {
    let p = from_toml(
        r#"
[[receiver]]
type = "console"
name = "slack"
[[receiver]]
type = "console"
name = "pagerduty"

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
matchers = ["page=now"]
receiver = "pagerduty"
"#,
    );
    // Severity is the alert's field; no rule set a `severity` label.
    let mut a = alert("Outage", &[("page", "now")], Firing);
    a.severity = Severity::Critical;
    a.starts_at = Some(t(0));
    assert!(!a.labels.contains_key("severity"));
    let mut st = NotifyState::default();
    let mut run = |a: &Alert, at| {
        let f = p.plan(std::slice::from_ref(a), &st, at);
        apply(&mut st, &f);
        let mut s = sent(&f);
        s.sort_by(|x, y| x.0.cmp(&y.0));
        s
    };
    // The critical route's first step (Slack) and the page=now route (PagerDuty) at once.
    assert_eq!(
        run(&a, t(0)),
        [
            ("pagerduty".into(), NotificationStatus::Firing, 1),
            ("slack".into(), NotificationStatus::Firing, 1)
        ]
    );
    // The escalation reaches PagerDuty at 15m, which already has it: no second trigger.
    assert!(run(&a, t(15)).is_empty());
    assert!(run(&a, t(30)).is_empty());
    // The resolve reaches each receiver once.
    a.state = Resolved;
    assert_eq!(
        run(&a, t(40)),
        [
            ("pagerduty".into(), NotificationStatus::Resolved, 1),
            ("slack".into(), NotificationStatus::Resolved, 1)
        ]
    );

    // A warning takes neither the critical route nor its escalation.
    let mut w = alert("Slow", &[], Firing);
    w.severity = Severity::Warning;
    w.starts_at = Some(t(100));
    assert_eq!(
        run(&w, t(100)),
        [("slack".into(), NotificationStatus::Firing, 1)]
    );
    assert!(run(&w, t(120)).is_empty(), "no PagerDuty for a warning");
}

#[test]
fn notifications_share_the_stored_alerts_and_copy_only_the_redacted_ones() {
    let p = grouped();
    let plain = std::sync::Arc::new(alert("Errors", &[("function", "f1")], Firing));
    let secret = std::sync::Arc::new(alert("Errors", &[("api_key", "k1")], Firing));
    let stored = [plain.clone(), secret.clone()];
    let mut st = NotifyState::default();
    let first = p.plan(&stored, &st, t(0));
    apply(&mut st, &first);
    let f = p.plan(&stored, &st, t(1));
    let [n] = &f.commit.notifications[..] else {
        panic!("one notification: {:?}", sent(&f))
    };
    let of = |fp: &str| n.alerts.iter().find(|a| a.fingerprint == fp).unwrap();
    // The plain alert is the stored one, not a copy; the secret one is a redacted copy, and the
    // stored alert keeps its value.
    assert!(std::sync::Arc::ptr_eq(of(&plain.fingerprint), &plain));
    let redacted = of(&secret.fingerprint);
    assert!(!std::sync::Arc::ptr_eq(redacted, &secret));
    assert_eq!(redacted.labels["api_key"], redact::REDACTED);
    assert_eq!(secret.labels["api_key"], "k1");
    // A plan over plain alerts gives the same notification, by content.
    let copied = p.plan(&[(*plain).clone(), (*secret).clone()], &st, t(1));
    assert_eq!(copied.commit.notifications, f.commit.notifications);
}
