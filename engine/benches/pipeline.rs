//! The notification pipeline's plan at 100,000 alerts in 100 groups, every group already
//! notified (the state of a daemon's second after a storm): the full plan (`plan_full`), the
//! incremental plan when nothing changed (answered from its memo), and the incremental plan when
//! one alert changed (issue #15). And the JSON a storm's flush writes: every group's first
//! notification as the outbox stores it and as the webhook receiver sends it.

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use tripline::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use tripline::config::Config;
use tripline::pipeline::{Flush, NotifyState, Pipeline, PipelineConfig};

const N: usize = 100_000;
const GROUPS: usize = 100;

const CONFIG: &str = r#"
[[receiver]]
type = "console"
name = "sink"

[route]
receiver = "sink"
group_by = ["alertname", "group"]
group_wait = "1s"
group_interval = "5m"
repeat_interval = "4h"
"#;

fn alerts() -> Vec<Alert> {
    let t = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let mut v: Vec<Alert> = (0..N)
        .map(|i| {
            let labels: Labels = [
                ("alertname", "BenchAlert".to_string()),
                ("group", format!("g{:04}", i % GROUPS)),
                ("instance", format!("host-{i:07}")),
                ("severity", "warning".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            Alert {
                fingerprint: fingerprint("ingest", &labels),
                rule: "ingest".into(),
                instance: "BenchAlert".into(),
                labels,
                state: AlertState::Firing,
                severity: Severity::Warning,
                summary: format!("bench alert {i}"),
                runbook: None,
                value: None,
                details: Default::default(),
                active_since: t,
                starts_at: Some(t),
                ends_at: None,
                last_active: t,
                keep_firing_since: None,
                updated_at: t,
                severity_changed_at: None,
            }
        })
        .collect();
    v.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    v
}

/// What the store does with a flush's timers and log.
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
}

fn benches(c: &mut Criterion) {
    let cfg = Config::parse(std::path::Path::new("bench.toml"), CONFIG.to_string()).unwrap();
    let p = Pipeline::new(PipelineConfig::from_config(&cfg).unwrap());
    let alerts = alerts();
    let t0 = alerts[0].active_since;
    // Groups created, then notified after group_wait: the state every later second plans over.
    let mut st = NotifyState::default();
    for at in [t0, t0 + Duration::seconds(1)] {
        let f = p.plan_full(&alerts, &st, at);
        apply(&mut st, &f);
    }
    let at = t0 + Duration::seconds(2);
    assert!(p.plan_full(&alerts, &st, at).commit.groups_saved.is_empty());
    let mut changed = alerts.clone();
    changed[N / 2].summary = "changed".into();

    let mut g = c.benchmark_group("plan_100k_alerts");
    g.sample_size(10);
    g.bench_function("full", |b| b.iter(|| p.plan_full(&alerts, &st, at)));
    g.bench_function("incremental_none_changed", |b| {
        b.iter(|| p.plan(&alerts, &st, at))
    });
    // Alternating between the two inputs: one alert changed at every plan.
    let mut flip = false;
    g.bench_function("incremental_one_changed", |b| {
        b.iter(|| {
            flip = !flip;
            p.plan(if flip { &changed } else { &alerts }, &st, at)
        })
    });
    // A storm's flush: every group due its first notification (100 of 1,000 alerts each), over
    // alerts shared as the store shares them (`Arc`), which the notifications then hold.
    let shared: Vec<Arc<Alert>> = alerts.iter().cloned().map(Arc::new).collect();
    let mut waiting = NotifyState::default();
    let first = p.plan_full(&shared, &waiting, t0);
    apply(&mut waiting, &first);
    let due = t0 + Duration::seconds(1);
    assert_eq!(
        p.plan_full(&shared, &waiting, due)
            .commit
            .notifications
            .len(),
        GROUPS
    );
    g.bench_function("notify_every_group", |b| {
        b.iter(|| p.plan_full(&shared, &waiting, due))
    });
    g.finish();

    // The same storm's notifications over alerts as ingest stores them (the webhook's
    // generatorURL and endsAt among their details).
    let ingested: Vec<Arc<Alert>> = alerts
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.details
                .insert("generator_url".into(), "http://bench/graph".into());
            a.details
                .insert("ingest_ends_at".into(), "2026-12-01T02:00:00+00:00".into());
            Arc::new(a)
        })
        .collect();
    let notifications = p.plan_full(&ingested, &waiting, due).commit.notifications;
    assert_eq!(notifications.len(), GROUPS);
    let mut g = c.benchmark_group("encode_100k_alerts");
    g.sample_size(10);
    g.bench_function("outbox_bodies", |b| {
        b.iter(|| {
            notifications
                .iter()
                .map(|n| serde_json::to_vec(n.as_ref()).unwrap().len())
                .sum::<usize>()
        })
    });
    g.bench_function("webhook_bodies", |b| {
        b.iter(|| {
            notifications
                .iter()
                .map(|n| tripline::notify::webhook::encode(n, 0).len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
