use super::{alert_json, print_alerts, Format};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct EvalArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Evaluation instant (RFC 3339); default now.
    #[arg(long)]
    at: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

impl EvalArgs {
    pub fn for_demo(config: PathBuf) -> Self {
        EvalArgs {
            config,
            at: None,
            format: Format::Text,
        }
    }
}

pub async fn run(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let (engine, at) = match super::engine_at(&a.config, a.at.as_deref())? {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let budget = match super::load_config(&a.config) {
        Ok(cfg) => tripline::config::wire::deliver_budget(&cfg)?,
        Err(code) => return Ok(code),
    };
    let mut report = engine.run_cycle_at(at, None).await?;
    // The documented cron mode: deliver everything due in this run, paced at each receiver's
    // real rate, within `[notify] deliver_budget`; what is left waits for the next run.
    let (queued, more) = engine.deliver_for(at, budget, report.flush_busy).await?;
    report.notifications.extend(queued);
    report.delivered.extend(more.delivered.iter().cloned());
    report.delivery_errors.extend(
        more.retrying
            .iter()
            .chain(&more.dead)
            .map(|f| (f.receiver.clone(), f.message.clone())),
    );
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = report.alerts.iter().map(alert_json).collect();
            serde_json::to_writer_pretty(&mut out, &v)?;
            use std::io::Write;
            writeln!(out)?;
        }
        Format::Text => {
            use std::io::Write;
            writeln!(
                out,
                "cycle at {}: {} rule instances, {} queries, {} rule errors, {} source errors",
                at.to_rfc3339(),
                report.instances_evaluated,
                report.queries,
                report.rule_failures.len(),
                report.source_failures.len()
            )?;
            print_alerts(&report.alerts, &mut out);
        }
    }
    for (receiver, e) in &report.delivery_errors {
        eprintln!("tripline: delivery to {receiver} failed: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
