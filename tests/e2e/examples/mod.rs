//! The five runbook examples (`examples/<name>/tripline.toml`) end to end: each runbook's
//! incident seeded into the real services it reads (moto, PostgreSQL, Redis, Prometheus), the
//! example config run by `tripline eval` with only its endpoints rewritten, and the notifications
//! read back from local receivers standing in for Slack, PagerDuty and webhooks (SNS from moto).
//! A healthy system, evaluated with the same config, notifies no one.

mod campaign_workers;
mod check;
mod clarivum_jobs;
mod intelliflow_workers;
mod lambda_job_alerts;
mod processing_queue;

use crate::support::bin::{stderr, stdout, tripline_bin};
use crate::support::receiver::Receiver;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

/// The example configs, as shipped.
pub const CAMPAIGN_WORKERS: &str = include_str!("../../../examples/campaign-workers/tripline.toml");
pub const CLARIVUM_JOBS: &str = include_str!("../../../examples/clarivum-jobs/tripline.toml");
pub const LAMBDA_JOB_ALERTS: &str =
    include_str!("../../../examples/lambda-job-alerts/tripline.toml");
pub const PROCESSING_QUEUE: &str = include_str!("../../../examples/processing-queue/tripline.toml");
pub const INTELLIFLOW_WORKERS: &str =
    include_str!("../../../examples/intelliflow-workers/tripline.toml");

pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Replaces `from` (which must occur) with `to`: the only edits the tests make to a config.
#[track_caller]
pub fn rewrite(config: &str, from: &str, to: &str) -> String {
    assert!(config.contains(from), "the config has no {from:?}");
    config.replace(from, to)
}

/// Local receivers standing in for the example's Slack, PagerDuty and webhook receivers, and the
/// environment variables pointing the config at them.
pub struct Receivers {
    by_name: BTreeMap<&'static str, Receiver>,
    pub env: Vec<(String, String)>,
}

impl Receivers {
    /// `(receiver name, env var)`; the env var holds its URL (Slack, webhook) or, for a
    /// PagerDuty receiver (env var `PAGERDUTY_ROUTING_KEY`), a routing key; its URL is the
    /// config's to rewrite with `pagerduty_url`.
    pub fn start(names: &[(&'static str, &str)]) -> Receivers {
        let mut by_name = BTreeMap::new();
        let mut env = Vec::new();
        for (name, var) in names {
            let r = Receiver::start();
            if var.contains("ROUTING_KEY") {
                env.push((var.to_string(), "R0UT1NGKEY".to_string()));
            } else {
                env.push((var.to_string(), r.url(&format!("/{name}"))));
            }
            by_name.insert(*name, r);
        }
        Receivers { by_name, env }
    }

    pub fn url(&self, name: &str) -> String {
        self.by_name[name].url(&format!("/{name}"))
    }

    /// JSON bodies `name` accepted, in order.
    pub fn bodies(&self, name: &str) -> Vec<Value> {
        self.by_name[name]
            .accepted()
            .iter()
            .map(|r| r.json())
            .collect()
    }

    /// Every receiver that got anything, with how many requests.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.by_name
            .iter()
            .map(|(n, r)| (*n, r.requests().len()))
            .filter(|(_, c)| *c > 0)
            .collect()
    }

    pub fn clear(&self) {
        for r in self.by_name.values() {
            r.clear();
        }
    }
}

/// PagerDuty trigger events a receiver got: `(class = alertname, severity, runbook link)`.
pub fn pagerduty_triggers(bodies: &[Value]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = bodies
        .iter()
        .filter(|b| b["event_action"] == "trigger")
        .map(|b| {
            (
                b["payload"]["class"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                b["payload"]["severity"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                b["links"][0]["href"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Webhook (Alertmanager v4) bodies: `(alertname, runbook_url)` of each firing alert.
pub fn webhook_alerts(bodies: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<_> = bodies
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["status"] == "firing")
        .map(|a| {
            (
                a["labels"]["alertname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                a["annotations"]["runbook_url"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs `tripline ARGS` in `dir` with `env`.
pub fn tripline(dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(tripline_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("AWS_PROFILE")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("start tripline")
}

/// `tripline eval --format json` of `dir/tripline.toml` (at `at` if given): the alerts it reports.
#[track_caller]
pub fn eval(dir: &Path, env: &[(String, String)], at: Option<&str>) -> Vec<Value> {
    let mut args = vec!["eval", "--config", "tripline.toml", "--format", "json"];
    if let Some(at) = at {
        // A past instant is a replay, which stores and sends nothing unless asked.
        args.extend(["--at", at, "--notify"]);
    }
    let out = tripline(dir, env, &args);
    assert!(
        out.status.success(),
        "eval: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let alerts =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    // `eval` makes one delivery pass; receivers are paced (Slack 1/s), so drain the rest
    // (unless the evaluation is in the future: what it paced is not due yet).
    let future = at.is_some_and(|at| {
        chrono::DateTime::parse_from_rfc3339(at).expect("--at") > chrono::Utc::now()
    });
    if future {
        return alerts;
    }
    let out = tripline(
        dir,
        env,
        &["deliver", "--config", "tripline.toml", "--within", "20s"],
    );
    assert!(
        out.status.success(),
        "deliver: {}{}",
        stdout(&out),
        stderr(&out)
    );
    alerts
}

/// `(instance, state, severity)` of each alert, sorted.
pub fn summary(alerts: &[Value]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a["instance"].as_str().unwrap_or_default().to_string(),
                a["state"].as_str().unwrap_or_default().to_string(),
                a["severity"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Owned triples from literals, to compare with `summary`.
pub fn triples(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = v
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    v.sort();
    v
}

/// A temp dir holding `config` as `tripline.toml`.
pub fn dir_with(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    dir
}
