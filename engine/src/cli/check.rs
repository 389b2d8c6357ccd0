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
        // CI checks configs without the receivers' secrets: say which are unset, don't fail.
        allow_missing_secrets: true,
        store: Some(std::sync::Arc::new(
            tripline::store::SqliteStore::in_memory()?,
        )),
        ..Default::default()
    };
    // AWS region and credentials must resolve now, not fail every query at the first cycle.
    let built = match wire::build(&cfg, opts) {
        Ok(t) => wire::check_aws(&cfg).await.map(|_| t),
        Err(e) => Err(e),
    };
    match built {
        Ok(t) => {
            for w in wire::missing_secrets(&cfg) {
                eprintln!("warning: {w} (needed by `run`, `eval` and `deliver`)");
            }
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
