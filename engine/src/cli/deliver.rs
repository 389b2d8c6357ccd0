//! `tripline deliver --config F`: flush the pipeline at now and deliver the outbox until it is
//! empty or `--within` has passed, waiting out retries and pacing. Resumes whatever a previous
//! process left undelivered. `--at T` flushes at T (group timers, escalation steps due then) and
//! lets time run on from there, so retries and pacing still wait in real time.

use super::{load_config, report_invalid};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::assembly::{self as wire, WireOptions};
use tripline::clock::parse_duration;
use tripline::notify::outbox::OutboxState;

#[derive(clap::Args)]
pub struct DeliverArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Give up waiting after this long (pending entries stay for the next run).
    #[arg(long, default_value = "60s")]
    within: String,
    /// Flush instant (RFC 3339); default now. Delivery goes on from there at wall-clock pace.
    #[arg(long)]
    at: Option<String>,
}

pub async fn run(a: DeliverArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let within = parse_duration(&a.within)
        .map_err(|e| anyhow::anyhow!("--within: {e}"))?
        .to_std()?;
    let opts = match &a.at {
        Some(_) => WireOptions {
            clock: std::sync::Arc::new(tripline::clock::RunningClock::from(super::parse_at(
                a.at.as_deref(),
            )?)),
            ..Default::default()
        },
        None => WireOptions::default(),
    };
    let engine = match wire::build(&cfg, opts) {
        Ok(e) => e,
        Err(e) => return Ok(report_invalid(e)),
    };
    let clock = engine.clock().clone();
    // What is queued goes out even if this flush fails (the store, another replica's lease).
    let flush = match engine
        .pipeline()
        .flush(engine.store().as_ref(), clock.now())
        .await
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tripline: flushing the pipeline failed, delivering what is queued: {e}");
            Default::default()
        }
    };
    for n in &flush.notices {
        println!("notice: {n}");
    }
    if flush.busy {
        println!("notice: another replica holds the flush lease; it plans the news meanwhile");
    }
    let report = engine
        .outbox()
        .deliver_until_idle(clock.as_ref(), within)
        .await?;
    let entries = engine.store().outbox_entries().await?;
    let pending = entries
        .iter()
        .filter(|e| e.state == OutboxState::Pending)
        .count();
    for f in &report.dead {
        eprintln!(
            "tripline: dead letter {} to {}: {}",
            f.id, f.receiver, f.message
        );
    }
    println!(
        "queued {}, delivered {}, retried {}, dead-lettered {}, pending {pending}",
        flush.commit.notifications.len(),
        report.delivered.len(),
        report.retrying.len(),
        report.dead.len()
    );
    Ok(if pending == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
