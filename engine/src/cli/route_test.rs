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
    /// The alert's labels in Alertmanager's matcher grammar, equality only: `severity=critical`,
    /// `team="db ops"`, or a list `'{severity="critical", team="db"}'`.
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
    let labels = match labels_of(&a.labels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tripline: {e}");
            return Ok(ExitCode::from(super::INVALID));
        }
    };
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

/// The labels given as equality matchers, in Alertmanager's grammar.
fn labels_of(args: &[String]) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for a in args {
        for m in tripline::pipeline::matcher::parse_matchers(a).map_err(|e| e.to_string())? {
            if m.op != tripline::pipeline::matcher::MatchOp::Equal {
                return Err(format!(
                    "{a:?}: route-test takes an alert's labels, name=\"value\", not the matcher {m}"
                ));
            }
            labels.insert(m.name, m.value);
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::labels_of;

    #[test]
    fn labels_in_the_matcher_grammar() {
        let l = labels_of(&[
            r#"{severity="critical", team="db"}"#.into(),
            "env=prod".into(),
        ])
        .unwrap();
        assert_eq!(l["severity"], "critical");
        assert_eq!(l["team"], "db");
        assert_eq!(l["env"], "prod");
        let e = labels_of(&["severity==critical".into()]).unwrap_err();
        assert!(
            e.contains("column 10") && e.contains("severity=\"critical\""),
            "{e}"
        );
        assert!(labels_of(&["team=~db".into()])
            .unwrap_err()
            .contains("not the matcher"));
    }
}
