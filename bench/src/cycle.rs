//! (to be written: see bench/src/main.rs)

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
