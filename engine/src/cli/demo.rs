//! The demo: the campaign-workers incident (runbook 000) on fixture data, with the embedded
//! stock rules, a SQLite state file and console output. No AWS account, no network.

use std::path::PathBuf;
use std::process::ExitCode;

const DEMO_CONFIG: &str = include_str!("../../../examples/demo/tripline.toml");
const DEMO_DATA: &str = include_str!("../../../examples/demo/campaign-workers.json");

#[derive(clap::Args, Default)]
pub struct DemoArgs {
    /// Where to write the demo's config, data and state (default `./tripline-demo`).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = a.dir.unwrap_or_else(|| PathBuf::from("tripline-demo"));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("tripline.toml");
    std::fs::write(&config, DEMO_CONFIG)?;
    std::fs::write(dir.join("campaign-workers.json"), DEMO_DATA)?;
    println!("Tripline demo: campaign-workers (runbook 000) incident on fixture data");
    println!(
        "config {}  ·  state {}\n",
        config.display(),
        dir.join("tripline.db").display()
    );
    super::eval::run(super::eval::EvalArgs::for_demo(config)).await
}
