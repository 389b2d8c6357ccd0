//! `tripline notify-preview --config F --receiver NAME`: what that receiver would be sent for a
//! sample group of alerts, rendered exactly as delivery renders it, without sending anything.
//! Secrets (routing keys) show as `***`.

use super::{load_config, report_invalid};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use tripline::config::ReceiverConfig;
use tripline::notify::{console, pagerduty, slack, webhook, Notification, NotificationStatus};
use tripline::pipeline::PipelineConfig;

#[derive(clap::Args)]
pub struct NotifyPreviewArgs {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long)]
    receiver: String,
    #[arg(long, value_enum, default_value_t = PreviewStatus::Firing)]
    status: PreviewStatus,
    /// Alerts in the sample group.
    #[arg(long, default_value_t = 2)]
    alerts: usize,
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
        alerts,
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
    let mut n = sample(&a.receiver, a.alerts, status, chrono::Utc::now());
    for alert in &mut n.alerts {
        pipeline.redactor.alert(alert);
    }
    let body = match rc {
        ReceiverConfig::Console { .. } => {
            print!("{}", console::render_text(&n));
            return Ok(ExitCode::SUCCESS);
        }
        ReceiverConfig::Sns { .. } => {
            let p = tripline::notify::sns::payload::build(
                &n,
                tripline::notify::sns::payload::MAX_MESSAGE_BYTES,
            );
            serde_json::json!({ "subject": p.subject, "message": serde_json::from_str::<serde_json::Value>(&p.message)?, "attributes": p.attributes })
        }
        ReceiverConfig::Slack { .. } => slack::render(&n),
        ReceiverConfig::Pagerduty { .. } => serde_json::Value::Array(pagerduty::render(&n, "***")),
        ReceiverConfig::Webhook { max_alerts, .. } => webhook::render(&n, *max_alerts),
    };
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(ExitCode::SUCCESS)
}
