use super::{load_config, report_invalid};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::config::wire::{self, WireOptions};

#[derive(clap::Args)]
pub struct CheckArgs {
    #[arg(long, short)]
    config: PathBuf,
}

pub async fn run(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // A dry build: every rule compiled, every instance resolved, no state written.
    let opts = WireOptions {
        tolerate_rule_errors: false,
        store: Some(std::sync::Arc::new(
            tripline::store::SqliteStore::in_memory()?,
        )),
        ..Default::default()
    };
    match wire::build(&cfg, opts) {
        Ok(t) => {
            println!(
                "{}: ok ({} rule instances, {} rules available)",
                a.config.display(),
                t.instances().len(),
                t.rules().rules.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_invalid(e)),
    }
}
