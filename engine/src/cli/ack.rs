//! `tripline ack FINGERPRINT`: someone took the alert. Escalation stops for its current episode,
//! and receivers that were told of it and track incidents (PagerDuty) are told at once. A second
//! ack of the same firing episode says who took it first and tells nobody again.

use std::path::PathBuf;
use std::process::ExitCode;
use tripline::alert::AlertState;
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
    let (engine, at) = match super::engine_at(&a.config, a.at.as_deref())? {
        Ok(e) => e,
        Err(code) => return Ok(code),
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
    // A second ack of the same episode changes nothing: it must not tell the receivers again.
    if let Some(k) = store
        .load_notify_state()
        .await?
        .acks
        .iter()
        .find(|k| k.covers(alert))
    {
        println!(
            "already acknowledged {} by {} at {}: nothing sent",
            a.fingerprint,
            k.by,
            k.at.to_rfc3339()
        );
        return Ok(ExitCode::SUCCESS);
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
        let tells = engine
            .notifiers()
            .iter()
            .find(|r| r.name() == n.receiver)
            .is_none_or(|r| r.tells_acks());
        if tells {
            println!("told {} ({})", n.receiver, n.status.as_str());
        } else {
            // Delivered in the outbox's sense, but the receiver sent nothing: say so.
            println!(
                "not told {}: its format has no acknowledged state",
                n.receiver
            );
        }
    }
    for f in delivery.retrying.iter().chain(&delivery.dead) {
        eprintln!("tripline: delivery to {} failed: {}", f.receiver, f.message);
    }
    Ok(ExitCode::SUCCESS)
}
