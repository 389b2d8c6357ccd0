//! `tripline ack FINGERPRINT`: someone took the alert. Escalation stops for its current episode,
//! and receivers that were told of it and track incidents (PagerDuty) are told at once.

use super::{load_config, report_invalid};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tripline::alert::AlertState;
use tripline::clock::ManualClock;
use tripline::config::wire::{self, WireOptions};
use tripline::pipeline::escalate::Ack;

#[derive(clap::Args)]
pub struct AckArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// The alert's fingerprint (`tripline alerts` shows it).
    fingerprint: String,
    /// Who takes it.
    #[arg(long, env = "USER", default_value = "unknown")]
    by: String,
    /// Instant of the ack (RFC 3339); default now.
    #[arg(long)]
    at: Option<String>,
}

pub async fn run(a: AckArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let at = match &a.at {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| anyhow::anyhow!("--at {s:?}: {e}"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let engine = match wire::build(
        &cfg,
        WireOptions {
            clock: Arc::new(ManualClock::new(at)),
            ..Default::default()
        },
    ) {
        Ok(e) => e,
        Err(e) => return Ok(report_invalid(e)),
    };
    let store = engine.store().clone();
    let alerts = store.load_alerts().await?;
    let Some(alert) = alerts.iter().find(|x| x.fingerprint == a.fingerprint) else {
        eprintln!("tripline: no alert with fingerprint {}", a.fingerprint);
        return Ok(ExitCode::from(1));
    };
    if alert.state != AlertState::Firing {
        eprintln!(
            "tripline: alert {} is {}, not firing: nothing to acknowledge",
            a.fingerprint, alert.state
        );
        return Ok(ExitCode::from(1));
    }
    store
        .ack(&Ack {
            fingerprint: a.fingerprint.clone(),
            by: a.by.clone(),
            at,
            announced: false,
        })
        .await?;
    println!(
        "acknowledged {} ({}) by {}",
        a.fingerprint, alert.summary, a.by
    );
    // Tell the receivers now rather than at the next cycle.
    let (flush, delivery) = engine.notify_at(at).await?;
    for n in flush
        .commit
        .notifications
        .iter()
        .filter(|n| delivery.delivered.contains(&n.id))
    {
        println!("told {} ({})", n.receiver, n.status.as_str());
    }
    for f in delivery.retrying.iter().chain(&delivery.dead) {
        eprintln!("tripline: delivery to {} failed: {}", f.receiver, f.message);
    }
    Ok(ExitCode::SUCCESS)
}
