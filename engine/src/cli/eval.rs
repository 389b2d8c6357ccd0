//! `tripline eval --config F [--at T]`: one evaluation cycle. At now it persists the alerts'
//! state and notifies. `--dry-run` writes and sends nothing and prints what would be sent; an
//! `--at` in the past is a replay and behaves as a dry run unless `--notify` asks for the real
//! thing (a replay that pages people about last week is never what someone meant).

use super::{alert_json, print_alerts, Format};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::notify::Notification;
use tripline::CycleMode;

#[derive(clap::Args)]
pub struct EvalArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Evaluation instant (RFC 3339); default now. An instant more than a minute ago is a
    /// replay: nothing is stored or sent unless --notify is given.
    #[arg(long)]
    at: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Evaluate and print the notifications that would be sent; store nothing, send nothing.
    #[arg(long, conflicts_with = "notify")]
    dry_run: bool,
    /// Run a replay (an --at in the past) for real: store the state and send its notifications.
    #[arg(long)]
    notify: bool,
}

impl EvalArgs {
    pub fn for_demo(config: PathBuf) -> Self {
        EvalArgs {
            config,
            at: None,
            format: Format::Text,
            dry_run: false,
            notify: false,
        }
    }
}

/// One line per notification a dry run would queue.
fn would_send(n: &Notification) -> String {
    let names: std::collections::BTreeSet<&str> = n
        .alerts
        .iter()
        .map(|a| {
            a.labels
                .get("alertname")
                .map(String::as_str)
                .unwrap_or(&a.rule)
        })
        .collect();
    format!(
        "would send to {}: {} {} ({} alert(s): {})",
        n.receiver,
        n.status.as_str(),
        n.group_key,
        n.alerts.len(),
        names.into_iter().collect::<Vec<_>>().join(", ")
    )
}

pub async fn run(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let (cfg, engine, at) = match super::config_engine_at(&a.config, a.at.as_deref())? {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let replay = super::is_replay(a.at.as_deref(), at);
    let mode = if a.dry_run || (replay && !a.notify) {
        CycleMode::DryRun
    } else {
        CycleMode::Live
    };
    if replay && mode == CycleMode::DryRun && !a.dry_run {
        eprintln!(
            "tripline: {} is in the past: replaying without storing or sending anything \
             (give --notify to run it for real)",
            at.to_rfc3339()
        );
    }
    let budget = tripline::assembly::deliver_budget(&cfg)?;
    let mut report = engine.run_cycle_with(at, None, mode).await?;
    if mode == CycleMode::Live {
        // The documented cron mode: deliver everything due in this run, paced at each receiver's
        // real rate, within `[notify] deliver_budget`; what is left waits for the next run.
        let (queued, more) = engine.deliver_for(at, budget, report.flush_busy).await?;
        report.absorb_delivery(queued, &more);
    }
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => {
            let v: Vec<serde_json::Value> =
                report.alerts.iter().map(|x| alert_json(x, None)).collect();
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        Format::Text => {
            writeln!(
                out,
                "cycle at {}: {} rule instances, {} queries, {} rule errors, {} source errors",
                at.to_rfc3339(),
                report.instances_evaluated,
                report.queries,
                report.rule_failures.len(),
                report.source_failures.len()
            )?;
            print_alerts(&report.alerts, None, &mut out);
        }
    }
    if mode == CycleMode::DryRun {
        // With --format json stdout stays the alerts array; the plan goes to stderr.
        let mut plan: Box<dyn Write> = match a.format {
            Format::Json => Box::new(std::io::stderr().lock()),
            Format::Text => Box::new(out),
        };
        if report.notifications.is_empty() {
            writeln!(plan, "dry run: nothing would be sent")?;
        }
        for n in &report.notifications {
            writeln!(plan, "{}", would_send(n))?;
        }
    }
    for (receiver, e) in &report.delivery_errors {
        eprintln!("tripline: delivery to {receiver} failed: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
