//! The Rust side of the bindings' overhead benchmark (`bindings/bench/run.py`): the same work as
//! `bindings/bench/overhead.py` and `overhead.js`, through the Rust embedding API. Builds an
//! engine with the stock `worker/queue-depth` rule on pushed data (not timed), pushes N series
//! (one per queue, 1 in 100 over the threshold) and runs one cycle; prints the two times as JSON.
//!
//! `cargo run --release -p tripline-bindings --example overhead -- 10000`

use std::time::Instant;
use tripline::data::{QueryData, Series};
use tripline::{InstanceSpec, Tripline};

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let engine = Tripline::builder()
        .instance(
            InstanceSpec::new("QueueBacklog", "worker/queue-depth")
                .param("source", "pushed")
                .param("threshold", 1000),
        )
        .build()?;
    let at = chrono::DateTime::from_timestamp(1_793_786_400, 0).expect("instant");

    let started = Instant::now();
    let set: Vec<Series> = (0..n)
        .map(|i| {
            let v = if i % 100 == 0 { 2000.0 } else { 10.0 };
            Series::new("queue_depth")
                .with_points(60, [(at, v)])
                .with_label("queue", format!("q{i}"))
        })
        .collect();
    engine.push("queue_depth", QueryData::SeriesSet(set));
    let push = started.elapsed();

    let started = Instant::now();
    let report = rt.block_on(engine.run_cycle_at(at, None))?;
    let cycle = started.elapsed();
    anyhow::ensure!(
        report.alerts.len() == n.div_ceil(100),
        "{} alerts",
        report.alerts.len()
    );
    println!(
        "{{\"push_ms\": {}, \"cycle_ms\": {}, \"alerts\": {}}}",
        push.as_secs_f64() * 1e3,
        cycle.as_secs_f64() * 1e3,
        report.alerts.len()
    );
    Ok(())
}
