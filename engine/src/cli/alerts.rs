use super::{alert_json, load_config, print_alerts, Format};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AlertsArgs {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Include resolved alerts still kept in the store.
    #[arg(long)]
    all: bool,
}

pub async fn run(a: AlertsArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = tripline::config::wire::build_store(&cfg)?;
    let alerts: Vec<_> = store
        .load_alerts()
        .await?
        .into_iter()
        .filter(|x| a.all || x.is_active())
        .collect();
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = alerts.iter().map(alert_json).collect();
            serde_json::to_writer_pretty(&mut out, &v)?;
            use std::io::Write;
            writeln!(out)?;
        }
        Format::Text => print_alerts(&alerts, &mut out),
    }
    Ok(ExitCode::SUCCESS)
}
