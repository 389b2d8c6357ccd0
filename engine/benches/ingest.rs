//! Criterion benchmarks of `POST /api/v2/alerts`'s work without the HTTP layer: one 1,000-alert
//! body (the shape `bench/sections/pipeline.py` posts) parsed, fingerprinted, merged and written
//! to a SQLite store in a temp file, as new alerts (an alert storm's first posts) and as a
//! re-post of the same alerts (Prometheus re-sending what still fires).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::sync::Arc;
use tripline::store::{SqliteStore, Store};

/// One POST body of `n` alerts, starting at alert number `first`.
fn body(first: usize, n: usize) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = (first..first + n)
        .map(|i| {
            serde_json::json!({
                "labels": {
                    "alertname": "BenchAlert",
                    "group": format!("g{:04}", i % 100),
                    "instance": format!("host-{i:07}"),
                    "severity": "warning",
                },
                "annotations": { "summary": format!("bench alert {i}") },
                "startsAt": "2026-11-01T10:00:00Z",
                "endsAt": "2026-11-01T12:00:00Z",
                "generatorURL": "http://bench/graph",
            })
        })
        .collect();
    serde_json::to_vec(&alerts).unwrap()
}

fn engine_on(dir: &tempfile::TempDir, at: tripline::clock::Timestamp) -> tripline::Tripline {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("t.db")).unwrap());
    tripline::Tripline::builder()
        .clock(Arc::new(tripline::clock::ManualClock::new(at)))
        .store(store)
        .build()
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let at: tripline::clock::Timestamp = "2026-11-01T10:00:05Z".parse().unwrap();
    let post = body(0, 1_000);

    c.bench_function("ingest_parse_1000", |b| {
        b.iter(|| tripline::ingest::parse_body(&post).unwrap().len())
    });

    let mut g = c.benchmark_group("ingest_post_1000");
    g.sample_size(20);
    // New alerts: each iteration a fresh store that already holds 10,000 other alerts.
    g.bench_function("new", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let e = engine_on(&dir, at);
                for k in 1..=10 {
                    let p = tripline::ingest::parse_body(&body(k * 1_000, 1_000)).unwrap();
                    rt.block_on(e.ingest(p, at)).unwrap();
                }
                (dir, e)
            },
            |(dir, e)| {
                let p = tripline::ingest::parse_body(&post).unwrap();
                rt.block_on(e.ingest(p, at)).unwrap();
                (dir, e)
            },
            BatchSize::PerIteration,
        )
    });
    // The same 1,000 alerts posted again (they are stored and firing).
    let dir = tempfile::tempdir().unwrap();
    let e = engine_on(&dir, at);
    rt.block_on(e.ingest(tripline::ingest::parse_body(&post).unwrap(), at))
        .unwrap();
    g.bench_function("repost", |b| {
        b.iter(|| {
            let p = tripline::ingest::parse_body(&post).unwrap();
            rt.block_on(e.ingest(p, at)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(ingest_benches, benches);
criterion_main!(ingest_benches);
