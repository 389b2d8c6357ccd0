//! Microbenchmarks for the engine's hot paths, so a regression shows up in a focused place:
//! rule compile, one rule evaluation, fingerprinting, routing-tree matching, and whole cycles of N threshold instances
//! over in-memory series (the workload in `tripline::bench`, which `tripline-bench cycle` also
//! runs for the side-by-side comparison with Prometheus).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use std::sync::Arc;
use tripline::alert::{fingerprint, Labels};
use tripline::bench::{threshold_engine, THRESHOLD_RULE};
use tripline::config::Config;
use tripline::data::{QueryData, QueryOutcome, Series};
use tripline::pipeline::PipelineConfig;
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

    // One `evaluate(data, params)` of the threshold rule over a one-point series.
    let at = chrono::Utc::now();
    let rule = load_rule_source(&engine, "bench.rhai".into(), THRESHOLD_RULE)
        .unwrap()
        .unwrap();
    let mut params = rhai::Map::new();
    params.insert("series".into(), "s0".into());
    params.insert("threshold".into(), rhai::Dynamic::from(100_i64));
    let params = rhai::Dynamic::from_map(params).into_shared();
    let outcome: QueryOutcome = Ok(QueryData::Series(
        Series::new("s0").with_points(60, [(at - chrono::Duration::seconds(30), 150.0)]),
    ));
    c.bench_function("rule_evaluate", |b| {
        b.iter(|| {
            engine
                .evaluate(&rule, &[("s", &outcome)], &params, at)
                .unwrap()
        })
    });

    // Routing-tree matching: 50 team routes, each with a severity child, the alert matching the
    // last team (the worst case of a first-match walk).
    let mut config =
        String::from("[[receiver]]\ntype = \"console\"\nname = \"c\"\n[route]\nreceiver = \"c\"\n");
    for i in 0..50 {
        config.push_str(&format!(
            "[[route.routes]]\nmatchers = [\"team=team-{i}\"]\nreceiver = \"c\"\n\
             [[route.routes.routes]]\nmatchers = [\"severity=~high|critical\"]\nreceiver = \"c\"\n"
        ));
    }
    let cfg = Config::parse(std::path::Path::new("bench.toml"), config).unwrap();
    let route = PipelineConfig::from_config(&cfg).unwrap().route;
    let mut alert_labels = labels.clone();
    alert_labels.insert("team".into(), "team-49".into());
    alert_labels.insert("severity".into(), "critical".into());
    c.bench_function("route_match_50_teams", |b| {
        b.iter(|| route.matching(&alert_labels).len())
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
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
