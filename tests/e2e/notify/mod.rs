//! The notification pipeline end to end: real stores, real HTTP to local receivers
//! (`support::receiver`), the `tripline` binary where a process boundary matters.

mod chaos;
mod cli;
mod daemon;
mod escalation;
mod muting;
mod oneshot;
mod overlap;
mod pacing;
mod payloads;
mod replay;
mod restart;
mod retry;
mod secrets;
mod storm;
mod storm_daemon;

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::path::Path;
use std::sync::Arc;
use tripline::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use tripline::assembly::{self as wire, WireOptions};
use tripline::clock::ManualClock;
use tripline::config::Config;
use tripline::Tripline;

/// A fixed instant the tests count from.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()
}

pub fn mins(m: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(m)
}

pub fn secs(s: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(s)
}

/// A firing alert of rule `test/<alertname>` with these labels (plus `alertname`), started at t0.
pub fn alert(alertname: &str, labels: &[(&str, &str)], severity: Severity) -> Alert {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("alertname".into(), alertname.into());
    let rule = format!("test/{alertname}");
    Alert {
        fingerprint: fingerprint(&rule, &l),
        rule,
        instance: alertname.into(),
        labels: l,
        state: AlertState::Firing,
        severity,
        summary: format!(
            "{alertname} on {}",
            labels.iter().map(|(_, v)| *v).collect::<Vec<_>>().join("/")
        ),
        runbook: Some(format!(
            "https://runbooks.example.com/{}",
            alertname.to_lowercase()
        )),
        value: Some(42.0),
        details: Default::default(),
        active_since: t0(),
        starts_at: Some(t0()),
        ends_at: None,
        last_active: t0(),
        updated_at: t0(),
        severity_changed_at: None,
        keep_firing_since: None,
    }
}

pub fn resolved(mut a: Alert, at: DateTime<Utc>) -> Alert {
    a.state = AlertState::Resolved;
    a.ends_at = Some(at);
    a.updated_at = at;
    a
}

/// An engine from config text (written into `dir`), on a manual clock at t0.
pub fn engine(dir: &Path, toml: &str) -> (Tripline, Arc<ManualClock>) {
    let path = dir.join("tripline.toml");
    std::fs::write(&path, toml).unwrap();
    let cfg = Config::load(&path).unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let e = wire::build(
        &cfg,
        WireOptions {
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (e, clock)
}

/// Compares `value` with `snapshots/NAME.json` (`tripline_test_receiver::snapshot`).
pub fn snapshot(name: &str, value: &serde_json::Value) {
    tripline_test_receiver::snapshot(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/notify/snapshots"),
        name,
        value,
    );
}
