//! `tripline notify-preview --config F --receiver NAME`: what that receiver would be sent,
//! rendered exactly as delivery renders it, without sending anything — for the alerts the
//! config's store holds now that reach it (grouped as the pipeline groups them), for the alerts
//! of a fixture file (`--fixture`, Alertmanager's postable-alert JSON), or for a canned sample
//! (`--sample`, or when nothing reaches the receiver). Secrets (routing keys) show as `***`.

use super::{load_config, report_invalid};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use tripline::config::ReceiverConfig;
use tripline::notify::{Notification, NotificationStatus, Preview};
use tripline::pipeline::PipelineConfig;

#[derive(clap::Args)]
pub struct NotifyPreviewArgs {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long)]
    receiver: String,
    #[arg(long, value_enum, default_value_t = PreviewStatus::Firing)]
    status: PreviewStatus,
    /// Alerts in the sample group (implies --sample).
    #[arg(long)]
    alerts: Option<usize>,
    /// Render a canned sample group instead of the stored alerts.
    #[arg(long, conflicts_with = "fixture")]
    sample: bool,
    /// Render these alerts instead of the stored ones: a JSON array as Prometheus posts to
    /// Alertmanager (`[{"labels": {...}, "annotations": {...}}]`).
    #[arg(long)]
    fixture: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PreviewStatus {
    Firing,
    Resolved,
    Acknowledged,
}

/// A sample group: `n` Lambda error alerts of one rule, one function each.
pub fn sample(
    receiver: &str,
    n: usize,
    status: NotificationStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> Notification {
    let alerts: Vec<Alert> = (0..n.max(1))
        .map(|i| {
            let mut labels = Labels::new();
            labels.insert("alertname".into(), "LambdaErrors".into());
            labels.insert("function".into(), format!("prd2011-prod1-worker-{i}"));
            labels.insert("team".into(), "payments".into());
            let mut details = serde_json::Map::new();
            details.insert(
                "top_error".into(),
                "TimeoutError: task timed out after 30.0 seconds".into(),
            );
            let resolved = status == NotificationStatus::Resolved;
            Alert {
                fingerprint: fingerprint("aws/lambda-errors", &labels),
                rule: "aws/lambda-errors".into(),
                instance: "lambda-errors".into(),
                labels,
                state: if resolved {
                    AlertState::Resolved
                } else {
                    AlertState::Firing
                },
                severity: if i == 0 {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                summary: format!("prd2011-prod1-worker-{i} had {} errors in 5m", 12 + i),
                runbook: Some("https://runbooks.example.com/lambda#errors".into()),
                value: Some(12.0 + i as f64),
                details,
                active_since: at - chrono::Duration::minutes(10),
                starts_at: Some(at - chrono::Duration::minutes(5)),
                ends_at: resolved.then_some(at),
                last_active: at,
                updated_at: at,
                severity_changed_at: None,
                keep_firing_since: None,
            }
        })
        .collect();
    Notification {
        id: "preview".into(),
        receiver: receiver.into(),
        status,
        group_key: "{}:{alertname=\"LambdaErrors\"}".into(),
        group_labels: [("alertname".to_string(), "LambdaErrors".to_string())].into(),
        alerts: alerts.into_iter().map(std::sync::Arc::new).collect(),
        created_at: at,
        acknowledged_by: (status == NotificationStatus::Acknowledged).then(|| "ann".to_string()),
    }
}

pub async fn run(a: NotifyPreviewArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let pipeline = match PipelineConfig::from_config(&cfg) {
        Ok(p) => p,
        Err(e) => return Ok(report_invalid(e)),
    };
    let Some(rc) = cfg
        .raw
        .receivers
        .iter()
        .map(|r| r.get_ref())
        .find(|r| r.name() == a.receiver)
    else {
        let known: Vec<&str> = cfg
            .raw
            .receivers
            .iter()
            .map(|r| r.get_ref().name())
            .collect();
        eprintln!(
            "tripline: no receiver {:?} in {} (defined: {})",
            a.receiver,
            a.config.display(),
            known.join(", ")
        );
        return Ok(ExitCode::from(1));
    };
    let status = match a.status {
        PreviewStatus::Firing => NotificationStatus::Firing,
        PreviewStatus::Resolved => NotificationStatus::Resolved,
        PreviewStatus::Acknowledged => NotificationStatus::Acknowledged,
    };
    let now = chrono::Utc::now();
    let groups = if a.sample || a.alerts.is_some() {
        vec![]
    } else {
        let alerts = match &a.fixture {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                let posted: Vec<tripline::ingest::PostableAlert> = serde_json::from_str(&text)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{}:{}:{}: not Alertmanager alerts: {e}",
                            f.display(),
                            e.line(),
                            e.column()
                        )
                    })?;
                tripline::ingest::merge(posted, &[], now).map_err(anyhow::Error::msg)?
            }
            None => tripline::assembly::build_store(&cfg)?.load_alerts().await?,
        };
        let wanted = if status == NotificationStatus::Resolved {
            AlertState::Resolved
        } else {
            AlertState::Firing
        };
        let chosen: Vec<Alert> = alerts.into_iter().filter(|x| x.state == wanted).collect();
        groups_for(&pipeline, &a.receiver, &chosen, status, now)
    };
    let groups = if groups.is_empty() {
        if !a.sample && a.alerts.is_none() {
            eprintln!(
                "tripline: no {} alert {} reaches {:?}; showing a sample group",
                status.as_str(),
                if a.fixture.is_some() {
                    "of the fixture"
                } else {
                    "in the store"
                },
                a.receiver
            );
        }
        vec![sample(&a.receiver, a.alerts.unwrap_or(2), status, now)]
    } else {
        groups
    };
    for mut n in groups {
        for alert in &mut n.alerts {
            pipeline.redactor.alert(std::sync::Arc::make_mut(alert));
        }
        render(rc, &n)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The groups the pipeline would send `receiver` for these alerts: one notification per group
/// key, its alerts ordered as delivery orders them.
fn groups_for(
    pipeline: &PipelineConfig,
    receiver: &str,
    alerts: &[Alert],
    status: NotificationStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<Notification> {
    use tripline::pipeline::group::{group_key, group_labels};
    let mut groups: std::collections::BTreeMap<String, Notification> = Default::default();
    for alert in alerts {
        for r in pipeline.route.matching(alert) {
            let steps = r
                .escalation
                .as_ref()
                .and_then(|p| pipeline.policies.get(p))
                .map(|p| p.steps.iter().any(|s| s.receiver == receiver))
                .unwrap_or(false);
            if r.receiver.as_deref() != Some(receiver) && !steps {
                continue;
            }
            let labels = group_labels(r, &alert.labels, alert);
            let key = group_key(r, &labels);
            groups
                .entry(key.clone())
                .or_insert_with(|| Notification {
                    id: "preview".into(),
                    receiver: receiver.into(),
                    status,
                    group_key: key,
                    group_labels: labels,
                    alerts: vec![],
                    created_at: at,
                    acknowledged_by: (status == NotificationStatus::Acknowledged)
                        .then(|| "preview".to_string()),
                })
                .alerts
                .push(std::sync::Arc::new(alert.clone()));
        }
    }
    let mut out: Vec<Notification> = groups.into_values().collect();
    for n in &mut out {
        n.alerts.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.labels.cmp(&b.labels))
        });
    }
    out
}

fn render(rc: &ReceiverConfig, n: &Notification) -> anyhow::Result<()> {
    match rc.kind().preview(n) {
        Preview::Text(text) => print!("{text}"),
        Preview::Json(body) => println!("{}", serde_json::to_string_pretty(&body)?),
    }
    Ok(())
}
