//! The incremental plan against the full one: generated sequences of alert changes, silences,
//! acks and clock steps, planned by both, must give the same flush at every step.

use super::super::escalate::Ack;
use super::super::matcher::Matcher;
use super::super::silence::Silence;
use super::super::testutil::{alert, t};
use super::super::{Flush, NotifyState, Pipeline, PipelineConfig};
use crate::alert::{Alert, AlertState, Severity};
use crate::config::Config;
use chrono::Duration;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

const CONFIG: &str = r#"
[[receiver]]
type = "console"
name = "slack"
[[receiver]]
type = "console"
name = "pager"
[[receiver]]
type = "console"
name = "manager"
[[receiver]]
type = "console"
name = "audit"

[[escalation]]
name = "oncall"
steps = [{ after = "0s", receiver = "pager" }, { after = "7m", receiver = "manager" }]

[[inhibit]]
source_matchers = ["severity=critical"]
target_matchers = ["severity=warning"]
equal = ["service"]

[route]
receiver = "slack"
group_by = ["alertname"]
group_wait = "30s"
group_interval = "15m"
repeat_interval = "40m"

[[route.routes]]
matchers = ["severity=critical"]
escalation = "oncall"
group_by = ["service"]
continue = true

[[route.routes]]
matchers = ["service=db"]
receiver = "audit"
group_wait = "0s"
group_interval = "10m"
repeat_interval = "25m"
"#;

fn routed() -> PipelineConfig {
    let cfg = Config::parse(std::path::Path::new("t.toml"), CONFIG.to_string()).unwrap();
    let mut p = PipelineConfig::from_config(&cfg).unwrap();
    p.send_resolved.insert("audit".into(), false);
    p.silences.send_resolved = true;
    p
}

/// Applies a flush's commit to in-memory state, as a store does.
fn apply(st: &mut NotifyState, f: &Flush) {
    let c = &f.commit;
    for e in &c.nflog {
        st.nflog
            .retain(|x| !(x.group_key == e.group_key && x.receiver == e.receiver));
        st.nflog.push(e.clone());
    }
    st.nflog.retain(|x| {
        !c.nflog_deleted
            .iter()
            .any(|(g, r)| *g == x.group_key && *r == x.receiver)
    });
    for g in &c.groups_saved {
        st.groups.retain(|x| x.key != g.key);
        st.groups.push(g.clone());
    }
    st.groups.retain(|g| !c.groups_deleted.contains(&g.key));
    for a in st.acks.iter_mut() {
        if c.acks_announced.contains(&a.fingerprint) {
            a.announced = true;
        }
    }
    st.acks.retain(|a| !c.acks_deleted.contains(&a.fingerprint));
    for s in st.silences.iter_mut() {
        if c.silences_noticed.contains(&s.id) {
            s.expiry_noticed = true;
        }
    }
    st.silences.retain(|s| !c.silences_deleted.contains(&s.id));
}

const NAMES: [&str; 3] = ["Errors", "Latency", "Disk"];
const SERVICES: [&str; 3] = ["db", "web", "api"];
const SEVERITIES: [Severity; 3] = [Severity::Warning, Severity::High, Severity::Critical];
const SILENCES: [&str; 4] = [
    "service=db",
    "alertname=Errors",
    "severity=critical",
    "service=~web|api",
];
const STEPS_S: [i64; 12] = [0, 1, 1, 5, 10, 30, 30, 60, 60, 120, 300, 1800];

/// One generated change to the alerts or the state at `at`.
fn change(
    rng: &mut StdRng,
    alerts: &mut BTreeMap<String, Alert>,
    st: &mut NotifyState,
    at: crate::clock::Timestamp,
) {
    let pick = |rng: &mut StdRng, alerts: &BTreeMap<String, Alert>| {
        let keys: Vec<String> = alerts.keys().cloned().collect();
        (!keys.is_empty()).then(|| keys[rng.gen_range(0..keys.len())].clone())
    };
    match rng.gen_range(0..100) {
        // A firing alert, new or updated.
        0..=34 => {
            let id = rng.gen_range(0..12usize);
            let mut labels = vec![
                ("service", SERVICES[id / 3 % 3]),
                ("inst", ["a", "b", "c", "d"][id % 4]),
            ];
            if id == 7 {
                labels.push(("api_token", "s3cret"));
            }
            let mut a = alert(NAMES[id % 3], &labels, AlertState::Firing);
            let severity = SEVERITIES[rng.gen_range(0..3)];
            match alerts.get(&a.fingerprint) {
                Some(old) if old.state == AlertState::Firing => {
                    a = old.clone();
                    if a.severity != severity {
                        a.severity_changed_at = Some(at);
                    }
                }
                _ => {
                    a.active_since = at;
                    a.starts_at = Some(at);
                }
            }
            a.severity = severity;
            a.state = AlertState::Firing;
            a.ends_at = None;
            a.last_active = at;
            a.updated_at = at;
            alerts.insert(a.fingerprint.clone(), a);
        }
        35..=46 => {
            if let Some(fp) = pick(rng, alerts) {
                let a = alerts.get_mut(&fp).unwrap();
                a.state = AlertState::Resolved;
                a.ends_at = Some(at);
                a.updated_at = at;
            }
        }
        47..=51 => {
            if let Some(fp) = pick(rng, alerts) {
                alerts.remove(&fp);
            }
        }
        // Content only, no timestamp moves: the memo must see it anyway.
        52..=56 => {
            if let Some(fp) = pick(rng, alerts) {
                let a = alerts.get_mut(&fp).unwrap();
                a.summary = format!("changed {}", rng.gen_range(0..1000));
                a.details
                    .insert("n".into(), serde_json::json!(rng.gen_range(0..3)));
            }
        }
        57..=60 => {
            let mut a = alert("Pending", &[("service", "web")], AlertState::Pending);
            a.updated_at = at;
            alerts.insert(a.fingerprint.clone(), a);
        }
        61..=66 => {
            let m = Matcher::parse(SILENCES[rng.gen_range(0..SILENCES.len())]).unwrap();
            let starts = at + Duration::seconds(rng.gen_range(0..3) * rng.gen_range(1..400));
            let ends = starts + Duration::seconds(rng.gen_range(60..1800));
            st.silences
                .push(Silence::new(&[m], starts, ends, "t", "gen", at).unwrap());
        }
        67..=69 if !st.silences.is_empty() => {
            let i = rng.gen_range(0..st.silences.len());
            let s = &mut st.silences[i];
            if s.ends_at > at {
                s.ends_at = at;
            }
        }
        70..=75 => {
            let firing: Vec<String> = alerts
                .values()
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| a.fingerprint.clone())
                .collect();
            if !firing.is_empty() {
                let fp = firing[rng.gen_range(0..firing.len())].clone();
                st.acks.retain(|a| a.fingerprint != fp);
                st.acks.push(Ack {
                    fingerprint: fp,
                    by: "ann".into(),
                    at,
                    announced: false,
                });
            }
        }
        _ => {}
    }
}

/// Runs `steps` generated steps through an incremental and a full pipeline over the same
/// state; returns (plans answered from the memo, notifications planned).
fn run(cfg: &PipelineConfig, seed: u64, steps: usize) -> (usize, usize) {
    let inc = Pipeline::new(cfg.clone());
    let full = Pipeline::new(cfg.clone());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut alerts: BTreeMap<String, Alert> = BTreeMap::new();
    let mut st = NotifyState::default();
    let mut at = t(0);
    let mut notified = 0;
    for step in 0..steps {
        // Most steps change nothing: the quiet seconds the memo is for.
        if rng.gen_bool(0.25) {
            change(&mut rng, &mut alerts, &mut st, at);
        }
        let stored: Vec<Alert> = alerts.values().cloned().collect();
        let want = full.plan_full(&stored, &st, at);
        let got = inc.plan(&stored, &st, at);
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "seed {seed}, step {step}, at {at}"
        );
        notified += want.commit.notifications.len();
        apply(&mut st, &want);
        at += Duration::seconds(if rng.gen_bool(0.01) {
            8 * 24 * 3600
        } else {
            STEPS_S[rng.gen_range(0..STEPS_S.len())]
        });
    }
    (inc.memo.skips.load(Ordering::Relaxed), notified)
}

#[test]
fn incremental_plans_equal_full_plans_over_generated_sequences() {
    // Fan-out has no timers (every flush re-saves its groups), so the memo skips less there.
    let configs = [
        ("routed", routed(), 500),
        (
            "fan_out",
            PipelineConfig::fan_out(&["slack".into(), "pager".into()]),
            100,
        ),
    ];
    for (name, cfg, min_skips) in &configs {
        let (mut skips, mut notified) = (0, 0);
        for seed in 0..30 {
            let (s, n) = run(cfg, seed, 250);
            skips += s;
            notified += n;
        }
        // The sequences reach both paths: plans answered from the memo, and notifications.
        assert!(skips > *min_skips, "{name}: only {skips} plans skipped");
        assert!(notified > 100, "{name}: only {notified} notifications");
    }
}

#[test]
fn the_memo_skips_only_what_it_may() {
    let p = Pipeline::new(routed());
    let a = alert("Errors", &[("service", "web")], AlertState::Firing);
    let st = NotifyState::default();
    // A new group: a timer to save, so nothing is remembered.
    let f = p.plan(std::slice::from_ref(&a), &st, t(0));
    assert_eq!(f.commit.groups_saved.len(), 1);
    let mut st2 = st.clone();
    apply(&mut st2, &f);
    // Waiting for group_wait: quiet, remembered, then skipped until the timer is due.
    assert!(p
        .plan(std::slice::from_ref(&a), &st2, t(0) + Duration::seconds(1))
        .commit
        .notifications
        .is_empty());
    let before = p.memo.skips.load(Ordering::Relaxed);
    p.plan(std::slice::from_ref(&a), &st2, t(0) + Duration::seconds(2));
    assert_eq!(p.memo.skips.load(Ordering::Relaxed), before + 1);
    // A changed summary is a changed input: planned, not skipped.
    let mut b = a.clone();
    b.summary = "other".into();
    p.plan(std::slice::from_ref(&b), &st2, t(0) + Duration::seconds(3));
    assert_eq!(p.memo.skips.load(Ordering::Relaxed), before + 1);
    // The timer comes due: planned, and the group is told.
    let f = p.plan(std::slice::from_ref(&b), &st2, t(0) + Duration::seconds(30));
    assert_eq!(f.commit.notifications.len(), 1);
}
