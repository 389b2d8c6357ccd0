//! `tripline test`: runs the fixture cases of `*.test.toml` files (default: `rules/`) and
//! reports each, failing when one fails or none ran.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TestArgs {
    /// Test files or directories (searched for `*.test.toml`); default `rules`.
    paths: Vec<PathBuf>,
}

pub async fn run(a: TestArgs) -> anyhow::Result<ExitCode> {
    let paths = if a.paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        a.paths
    };
    let (passed, failed) = tripline::ruletest::run(&paths, &mut std::io::stdout().lock()).await?;
    Ok(if failed > 0 || passed == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
