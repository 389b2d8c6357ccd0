//! `tripline check`: validates a config and its rules without running them, every problem at its
//! `path:line:col`.

use super::{load_config, report_invalid};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::assembly::{self as wire, WireOptions};

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The config file (`tripline.toml`).
    #[arg(long, short)]
    config: PathBuf,
    /// Also resolve the AWS region and credentials through the default chain (environment,
    /// profile, SSO, web identity, container or instance role), as `run` will. Without it `check`
    /// works offline, as `promtool check` and `amtool check-config` do: no credentials, no
    /// network, no instance-metadata probe.
    #[arg(long)]
    online: bool,
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
    // AWS clients are built lazily, at the first fetch: the build resolves no credentials and
    // sends nothing. `--online` resolves region and credentials now instead of at the first cycle.
    let built = match wire::build(&cfg, opts) {
        Ok(t) if a.online => wire::check_aws(&cfg).await.map(|_| t),
        other => other,
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
                t.rules().available(cfg.raw.stock_rules)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_invalid(e)),
    }
}
