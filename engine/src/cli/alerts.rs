//! `tripline alerts --config F`: the alerts in the store, each with why it is muted (the silences
//! and alerts that mute it) and who acknowledged it. `--format json` prints what
//! `GET /api/v1/alerts` answers.

use super::{alert_json, load_config, print_alerts, report_invalid, Format};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::pipeline::{status, PipelineConfig};

#[derive(clap::Args)]
pub struct AlertsArgs {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Include resolved alerts still kept in the store.
    #[arg(long)]
    all: bool,
    /// Only the alerts these matchers match, in Alertmanager's grammar (as `amtool alert query`):
    /// `severity=critical`, `alertname=~"Lambda.*"`, `'{team="db", env!="dev"}'`.
    matchers: Vec<String>,
}

pub async fn run(a: AlertsArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let mut filter = Vec::new();
    for m in &a.matchers {
        match tripline::pipeline::matcher::parse_matchers(m) {
            Ok(ms) => filter.extend(ms),
            Err(e) => {
                eprintln!("tripline: {e}");
                return Ok(ExitCode::from(super::INVALID));
            }
        }
    }
    let pipeline = match PipelineConfig::from_config(&cfg) {
        Ok(p) => p,
        Err(e) => return Ok(report_invalid(e)),
    };
    let store = tripline::assembly::build_store(&cfg)?;
    let alerts: Vec<_> = store
        .load_alerts()
        .await?
        .into_iter()
        .filter(|x| a.all || x.is_active())
        .filter(|x| tripline::pipeline::matcher::all_match(&filter, x))
        .collect();
    let state = store.load_notify_state().await?;
    let statuses = status::statuses(&pipeline, &alerts, &state, chrono::Utc::now());
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = alerts
                .iter()
                .map(|x| alert_json(x, statuses.get(&x.fingerprint)))
                .collect();
            serde_json::to_writer_pretty(&mut out, &v)?;
            use std::io::Write;
            writeln!(out)?;
        }
        Format::Text => print_alerts(&alerts, Some(&statuses), &mut out),
    }
    Ok(ExitCode::SUCCESS)
}
