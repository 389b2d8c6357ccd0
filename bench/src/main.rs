//! `tripline-bench`: Tripline's side of the side-by-side benchmarks. Each subcommand measures one
//! thing in-process and prints one JSON object on stdout, which `bench/run.py` reads and sets
//! beside the peer's figure.

use clap::{Parser, Subcommand};

mod api_cost;
#[path = "../../tests/e2e/support/counting_proxy.rs"]
mod counting_proxy;
mod cycle;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Whole cycles of N threshold rule instances over in-memory series.
    Cycle(cycle::Args),
    /// GetMetricData calls per cycle for N CloudWatch rule instances against an endpoint (moto).
    ApiCost(api_cost::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Cycle(a) => cycle::run(a),
        Command::ApiCost(a) => api_cost::run(a),
    }
}
