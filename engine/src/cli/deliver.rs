//! `tripline deliver --config F`: flush the pipeline at now and deliver the outbox until it is
//! empty or `--within` has passed, waiting out retries and pacing. Resumes whatever a previous
//! process left undelivered.

use super::{load_config, report_invalid};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::clock::parse_duration;
use tripline::config::wire::{self, WireOptions};
use tripline::notify::outbox::OutboxState;

#[derive(clap::Args)]
pub struct DeliverArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Give up waiting after this long (pending entries stay for the next run).
    #[arg(long, default_value = "60s")]
    within: String,
}

pub async fn run(a: DeliverArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let within = parse_duration(&a.within)
        .map_err(|e| anyhow::anyhow!("--within: {e}"))?
        .to_std()?;
    let engine = match wire::build(&cfg, WireOptions::default()) {
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
