//! Microbenchmarks for the engine's hot paths, so a regression shows up in a focused place:
//! rule compile, one rule evaluation, fingerprinting, and whole cycles of N threshold instances
//! over in-memory series (the figures BENCHMARKS.md compares with Prometheus).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use std::sync::Arc;
use tripline::alert::{fingerprint, Labels};
use tripline::data::{QueryData, Series};
use tripline::rule::{load_rule_source, Limits, RuleEngine};
use tripline::{InstanceSpec, Tripline};

/// The threshold rule the benchmarks and the Prometheus comparison use: `value > threshold`.
pub const THRESHOLD_RULE: &str = r#"
const RULE = #{ id: "bench/threshold", severity: "warning", params: #{ series: (), threshold: 100 } };
fn query(p) { #{ s: pushed(p.series) } }
fn evaluate(d, p) {
    let v = d.s.last();
    if v != () && v > p.threshold { fire(#{ summary: "over", value: v, labels: #{ series: p.series } }); }
}
"#;

fn engine_with(n: usize, at: chrono::DateTime<chrono::Utc>) -> Tripline {
    let mut b = Tripline::builder()
        .stock_rules(false)
        .rule_source("bench.rhai", THRESHOLD_RULE);
    for i in 0..n {
        b = b.instance(
            InstanceSpec::new(format!("i{i}"), "bench/threshold").param("series", format!("s{i}")),
        );
    }
    let t = b.build().unwrap();
    for i in 0..n {
        // One in ten over the threshold.
        let v = if i % 10 == 0 { 150.0 } else { 50.0 };
        t.push(
            format!("s{i}"),
            QueryData::Series(
                Series::new(format!("s{i}"))
                    .with_points(60, [(at - chrono::Duration::seconds(30), v)]),
            ),
        );
    }
    t
}

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
        let t = Arc::new(engine_with(n, at));
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
