//! Microbenchmarks for the engine's hot paths, so a regression shows up in a focused place:
//! rule compile, one rule evaluation, fingerprinting, and whole cycles of N threshold instances
//! over in-memory series (the workload in `tripline::bench`, which `tripline-bench cycle` also
//! runs for the side-by-side comparison with Prometheus).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use std::sync::Arc;
use tripline::alert::{fingerprint, Labels};
use tripline::bench::{threshold_engine, THRESHOLD_RULE};
use tripline::rule::{load_rule_source, Limits, RuleEngine};

fn benches(c: &mut Criterion) {
    let engine = RuleEngine::new(Limits::default(), &[]);
    c.bench_function("rule_compile", |b| {
        b.iter(|| load_rule_source(&engine, "bench.rhai".into(), THRESHOLD_RULE).unwrap())
    });

    let labels: Labels = [
        ("alertname", "save-data-errors"),
        ("function", "prd2011-prod1-us-east-1-cmp-save-data"),
        ("team", "campaign"),
        ("env", "prod1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    c.bench_function("fingerprint", |b| {
        b.iter(|| fingerprint("aws/lambda-errors", &labels))
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let at = chrono::Utc::now();
    let mut g = c.benchmark_group("cycle");
    g.sample_size(10);
    for n in [1_000usize, 10_000] {
        let t = Arc::new(threshold_engine(n, at).unwrap());
        // Warm: the first cycle creates the alerts; later ones are steady state.
        rt.block_on(t.run_cycle_at(at, None)).unwrap();
        g.bench_with_input(BenchmarkId::new("threshold_instances", n), &n, |b, _| {
            b.iter_batched(
                || (),
                |_| rt.block_on(t.run_cycle_at(at, None)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
