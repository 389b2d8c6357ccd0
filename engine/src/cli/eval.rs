use super::{alert_json, load_config, print_alerts, report_invalid, Format};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tripline::clock::ManualClock;
use tripline::config::wire::{self, WireOptions};

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
    let report = engine.run_cycle_at(at, None).await?;
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
