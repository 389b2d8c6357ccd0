//! `tripline run`: the long-running daemon (scheduler, HTTP API, metrics) from a config file.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(long, short)]
    config: PathBuf,
}

pub async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    match tripline::daemon::run(&a.config).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => match e.downcast::<tripline::Error>() {
            Ok(err) => Ok(super::report_invalid(err)),
            Err(e) => Err(e),
        },
    }
}
