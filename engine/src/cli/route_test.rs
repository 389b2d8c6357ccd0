//! `tripline route-test --config F label=value …`: which receivers an alert with these labels
//! would reach, through which route and group, without sending anything.

use super::{load_config, report_invalid, Format};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::alert::Labels;
use tripline::clock::format_duration;
use tripline::pipeline::{Pipeline, PipelineConfig};

#[derive(clap::Args)]
pub struct RouteTestArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// The alert's labels, `name=value`.
    #[arg(required = true)]
    labels: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub async fn run(a: RouteTestArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let pipeline = match PipelineConfig::from_config(&cfg) {
        Ok(p) => Pipeline::new(p),
        Err(e) => return Ok(report_invalid(e)),
    };
    let mut labels = Labels::new();
    for l in &a.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("label {l:?} is not name=value"))?;
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    let targets = pipeline.targets(&labels);
    match a.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = targets
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "receiver": t.receiver,
                        "route": t.route,
                        "group_key": t.group_key,
                        "after": t.after.map(format_duration),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            for t in &targets {
                let after = t
                    .after
                    .map(|d| format!("  (escalation, after {})", format_duration(d)))
                    .unwrap_or_default();
                println!(
                    "{}  route {}  group {}{after}",
                    t.receiver, t.route, t.group_key
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
