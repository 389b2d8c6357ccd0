//! Criterion benchmarks of start-up: compiling one stock rule (`aws/lambda-errors`), parsing a
//! config of 1,000 `[[rule]]` instances of it, and building the engine from that config (the
//! config parse, the stock rule compile, the instances and the SQLite store open) — what every
//! `tripline eval` does before its cycle (`bench/sections/cold_start.py` times the whole process).

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use tripline::config::Config;
use tripline::rule::{load_rule_source, Limits, RuleEngine};

const LAMBDA_ERRORS: &str = include_str!("../../rules/aws/lambda-errors.rhai");

/// The cold-start section's config: `n` instances of `aws/lambda-errors` over a fixture file.
fn write_config(dir: &Path, n: usize) -> std::path::PathBuf {
    let series: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "match": {"kind": "cloudwatch", "metric": "Errors",
                          "dimensions": {"FunctionName": format!("fn-{i:04}")}},
                "points": [["-3m", if i % 10 == 0 { 25.0 } else { 1.0 }]],
            })
        })
        .collect();
    std::fs::write(
        dir.join("data.json"),
        serde_json::to_vec(&serde_json::json!({ "series": series })).unwrap(),
    )
    .unwrap();
    let mut text = String::from(
        "[store]\ntype = \"sqlite\"\npath = \"tripline.db\"\n\n\
         [sources.cloudwatch]\ntype = \"fixture\"\nfiles = [\"data.json\"]\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[[rule]]\nname = \"errors-{i:04}\"\nuse = \"aws/lambda-errors\"\nparams = {{ function = \"fn-{i:04}\" }}\n"
        ));
    }
    let path = dir.join("tripline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn benches(c: &mut Criterion) {
    let engine = RuleEngine::new(Limits::default(), &[]);
    c.bench_function("load_compile_stock_rule", |b| {
        b.iter(|| {
            load_rule_source(
                &engine,
                "<stock>/aws/lambda-errors.rhai".into(),
                LAMBDA_ERRORS,
            )
            .unwrap()
            .unwrap()
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), 1_000);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut g = c.benchmark_group("load_1000_instances");
    g.sample_size(20);
    g.bench_function("config_parse", |b| {
        b.iter(|| Config::parse(&path, text.clone()).unwrap())
    });
    g.bench_function("config_and_engine", |b| {
        b.iter(|| {
            let cfg = Config::load(&path).unwrap();
            tripline::assembly::build(&cfg, Default::default()).unwrap()
        })
    });
    g.finish();
}

criterion_group!(load_benches, benches);
criterion_main!(load_benches);
