//! `tripline-bench cycle`: whole evaluation cycles of N instances of the threshold rule over
//! pushed in-memory series (`tripline::bench`, the workload criterion's `cycle` benchmark runs),
//! timed one by one at advancing instants, after warm-up cycles that create the alerts.
//!
//! Prints `{"instances", "cycles", "p50_ms", "p99_ms", "mean_ms", "us_per_instance" (p50-based),
//! "peak_rss_kib" (VmHWM of this process), "firing" (alerts firing after the last cycle: N/10)}`.

use anyhow::{ensure, Context};
use std::time::Instant;
use tripline::alert::AlertState;

#[derive(clap::Args)]
pub struct Args {
    /// Rule instances (one pushed series each; one in ten over the threshold).
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// Measured cycles.
    #[arg(long, default_value_t = 20)]
    cycles: usize,
    /// Cycles run before measuring (the first one creates the alerts).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.cycles > 0, "--cycles must be at least 1");
    ensure!(
        args.warmup > 0,
        "--warmup must be at least 1 (the first cycle creates the alerts)"
    );
    let rt = tokio::runtime::Runtime::new()?;
    let start = chrono::Utc::now();
    let engine = tripline::bench::threshold_engine(args.instances, start)?;
    // One cycle a minute, like a `* * * * *` schedule; the pushed points do not expire.
    let at = |k: usize| start + chrono::Duration::minutes(k as i64);

    for k in 0..args.warmup {
        rt.block_on(engine.run_cycle_at(at(k), None))?;
    }
    let mut times_ms = Vec::with_capacity(args.cycles);
    let mut last = None;
    for k in 0..args.cycles {
        let t = at(args.warmup + k);
        let started = Instant::now();
        let report = rt.block_on(engine.run_cycle_at(t, None))?;
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
        last = Some(report);
    }
    let report = last.expect("at least one cycle");
    ensure!(
        report.rule_failures.is_empty() && report.source_failures.is_empty(),
        "the cycle reported failures: {:?} {:?}",
        report.rule_failures.first(),
        report.source_failures.first()
    );
    let firing = report
        .alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .count();
    let expected = args.instances.div_ceil(10);
    ensure!(
        firing == expected,
        "{firing} alerts firing after the last cycle, expected {expected}"
    );

    times_ms.sort_by(f64::total_cmp);
    let p50 = percentile(&times_ms, 50.0);
    let out = serde_json::json!({
        "instances": args.instances,
        "cycles": args.cycles,
        "warmup": args.warmup,
        "p50_ms": p50,
        "p99_ms": percentile(&times_ms, 99.0),
        "mean_ms": times_ms.iter().sum::<f64>() / times_ms.len() as f64,
        "us_per_instance": if args.instances == 0 { 0.0 } else { p50 * 1e3 / args.instances as f64 },
        "peak_rss_kib": peak_rss_kib().context("reading VmHWM from /proc/self/status")?,
        "firing": firing,
    });
    println!("{out}");
    Ok(())
}

/// Nearest-rank percentile of sorted values (as `bench/sections/common.py` computes it).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM line")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("malformed VmHWM line")?
        .parse()?)
}
