//! Faults through the engine: PostgreSQL going down, Redis refusing connections, Prometheus (or
//! a proxy in front of it) answering 500. Each gives a `tripline/source-error` alert for the
//! affected rule instance only, and the instance's firing alerts stay firing (a failed fetch is
//! not "no data").

use crate::support::postgres::Postgres;
use crate::support::prometheus::HttpServer;
use crate::support::redis::Redis;
use std::sync::Arc;
use tripline::alert::{Alert, AlertState};
use tripline::data::{QueryData, Series};
use tripline::source::{PostgresOptions, PostgresSource, RedisOptions, RedisSource};
use tripline::{CycleReport, InstanceSpec, Tripline, SOURCE_ERROR};

const ORPHANS_RULE: &str = r#"
const RULE = #{ id: "test/orphaned-records", severity: "warning", params: #{ warning: 10 } };
fn query(p) {
    #{ orphans: sql(#{ query: "SELECT COUNT(*) AS n FROM processing_queue WHERE status = 'processing' AND claimed_at < NOW() - INTERVAL '2 hours'" }) }
}
fn evaluate(d, p) {
    let n = d.orphans.rows[0].n;
    if n > p.warning { fire(#{ summary: `${n} orphaned records`, value: n }); }
}
"#;

const BULLMQ_RULE: &str = r#"
const RULE = #{ id: "test/bullmq-failed", severity: "warning", params: #{ queue: (), max_failed: 10 } };
fn query(p) { #{ counts: redis(#{ command: "BULLMQ", queue: p.queue, states: ["failed"] }) } }
fn evaluate(d, p) {
    for s in d.counts {
        let v = s.last();
        if v != () && v > p.max_failed {
            fire(#{ summary: `${fmt_number(v)} failed jobs in ${p.queue}`, labels: #{ queue: p.queue }, value: v });
        }
    }
}
"#;

const DLQ_RULE: &str = r#"
const RULE = #{ id: "test/high-dlq-depth", severity: "warning", params: #{} };
fn query(p) { #{ dlq: prometheus(#{ query: "intelliflow_queue_dlq_depth > 100" }) } }
fn evaluate(d, p) {
    for s in d.dlq { fire(#{ summary: `DLQ depth high on ${s.labels.queue}`, labels: #{ queue: s.labels.queue }, value: s.last() }); }
}
"#;

/// A rule on pushed data, evaluated next to the failing one to show it is unaffected.
const DEPTH_RULE: &str = r#"
const RULE = #{ id: "test/depth", severity: "warning", params: #{} };
fn query(p) { #{ depth: pushed("depth") } }
fn evaluate(d, p) {
    let v = d.depth.last();
    if v != () && v > 100.0 { fire(#{ summary: "queue depth high", value: v }); }
}
"#;

fn push_depth(engine: &Tripline, at: chrono::DateTime<chrono::Utc>) {
    engine.push(
        "depth",
        QueryData::Series(Series::new("depth").with_points(60, [(at, 250.0)])),
    );
}

fn of_instance<'a>(r: &'a CycleReport, instance: &str) -> Vec<&'a Alert> {
    r.alerts
        .iter()
        .filter(|a| a.instance == instance && a.rule != SOURCE_ERROR)
        .collect()
}

fn source_errors(r: &CycleReport) -> Vec<&Alert> {
    r.alerts
        .iter()
        .filter(|a| a.rule == SOURCE_ERROR && a.state == AlertState::Firing)
        .collect()
}

/// Cycle 1 with the source up: both instances fire. Then `break_it`, cycle 2: a source-error
/// alert for `instance` only, its alert still firing, the other instance unaffected. Returns the
/// source-error alert's summary.
async fn fire_then_break(engine: &Tripline, instance: &str, break_it: impl FnOnce()) -> String {
    let t0 = chrono::Utc::now();
    push_depth(engine, t0);
    let r1 = engine.run_cycle_at(t0, None).await.unwrap();
    assert!(r1.source_failures.is_empty(), "{:?}", r1.source_failures);
    let firing = of_instance(&r1, instance);
    assert_eq!(firing.len(), 1, "{:?}", r1.alerts);
    assert_eq!(firing[0].state, AlertState::Firing);
    let fingerprint = firing[0].fingerprint.clone();

    break_it();

    let t1 = t0 + chrono::Duration::seconds(60);
    push_depth(engine, t1);
    let r2 = engine.run_cycle_at(t1, None).await.unwrap();
    assert_eq!(r2.source_failures.len(), 1, "{:?}", r2.source_failures);
    assert_eq!(r2.source_failures[0].0, instance);
    let errs = source_errors(&r2);
    assert_eq!(errs.len(), 1, "{:?}", r2.alerts);
    assert_eq!(errs[0].labels["instance"], instance);
    // The alert of the failing instance is neither resolved nor dropped.
    let still = of_instance(&r2, instance);
    assert_eq!(still.len(), 1, "{:?}", r2.alerts);
    assert_eq!(still[0].fingerprint, fingerprint);
    assert_eq!(still[0].state, AlertState::Firing);
    assert!(!r2
        .transitions
        .iter()
        .any(|t| t.alert.fingerprint == fingerprint && t.alert.state == AlertState::Resolved));
    // The other instance evaluated as usual.
    let depth = of_instance(&r2, "depth");
    assert_eq!(depth.len(), 1);
    assert_eq!(depth[0].state, AlertState::Firing);
    errs[0].summary.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_down_raises_a_source_error_for_its_instance_only() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    pg.create_processing_queue();
    pg.psql(
        "tripline",
        "INSERT INTO processing_queue (flow_name, status, claimed_at)
         SELECT 'survey-import', 'processing', NOW() - INTERVAL '3 hours' FROM generate_series(1, 12)",
    );
    let mut o = PostgresOptions::new("UNUSED");
    o.dsn = Some(pg.dsn());
    let port = pg.port;
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("orphans.rhai", ORPHANS_RULE)
        .rule_source("depth.rhai", DEPTH_RULE)
        .instance(InstanceSpec::new("orphans", "test/orphaned-records"))
        .instance(InstanceSpec::new("depth", "test/depth"))
        .source("sql", Arc::new(PostgresSource::new(o).unwrap()))
        .build()
        .unwrap();
    let summary = fire_then_break(&engine, "orphans", || pg.stop()).await;
    assert!(
        summary.contains(&format!("connecting to 127.0.0.1:{port}/tripline")),
        "{summary}"
    );
    assert!(summary.to_lowercase().contains("refused"), "{summary}");
    assert!(!summary.contains("pg-secret-do-not-print"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refusing_connections_raises_a_source_error_for_its_instance_only() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    for i in 0..15 {
        redis.cmd(&[
            "ZADD",
            "bull:intelliflow:events:failed",
            &i.to_string(),
            &format!("job{i}"),
        ]);
    }
    let port = redis.port;
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("bullmq.rhai", BULLMQ_RULE)
        .rule_source("depth.rhai", DEPTH_RULE)
        .instance(
            InstanceSpec::new("events-failed", "test/bullmq-failed")
                .param("queue", "bull:intelliflow:events"),
        )
        .instance(InstanceSpec::new("depth", "test/depth"))
        .source(
            "redis",
            Arc::new(RedisSource::new(RedisOptions::url(redis.url())).unwrap()),
        )
        .build()
        .unwrap();
    let summary = fire_then_break(&engine, "events-failed", || redis.stop()).await;
    assert!(summary.contains(&format!("127.0.0.1:{port}")), "{summary}");
    assert!(summary.to_lowercase().contains("refused"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answering_500_raises_a_source_error_for_its_instance_only() {
    // Wired from a config file, as a user would: [sources.prometheus] pointing at a server
    // that answers 500 to everything.
    let down = HttpServer::fixed(500, "text/plain", "internal error: tsdb is corrupted");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/dlq.rhai"), DLQ_RULE).unwrap();
    std::fs::write(dir.path().join("rules/depth.rhai"), DEPTH_RULE).unwrap();
    let text = format!(
        r#"
rules_dirs = ["rules"]
stock_rules = false

[store]
type = "memory"

[sources.prometheus]
type = "prometheus"
url = "{}"
timeout = "5s"

[[rule]]
name = "dlq"
use = "test/high-dlq-depth"

[[rule]]
name = "depth"
use = "test/depth"
"#,
        down.url()
    );
    let path = dir.path().join("tripline.toml");
    let cfg = tripline::config::Config::parse(&path, text).unwrap();
    let engine = tripline::assembly::build(&cfg, Default::default()).unwrap();
    let at = chrono::Utc::now();
    push_depth(&engine, at);
    let r = engine.run_cycle_at(at, None).await.unwrap();
    assert_eq!(r.source_failures.len(), 1, "{:?}", r.source_failures);
    assert_eq!(r.source_failures[0].0, "dlq");
    let errs = source_errors(&r);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].labels["instance"], "dlq");
    assert!(
        errs[0].summary.contains("HTTP 500") && errs[0].summary.contains("tsdb is corrupted"),
        "{}",
        errs[0].summary
    );
    assert_eq!(of_instance(&r, "depth").len(), 1);
    assert!(down.hits.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_behind_a_proxy_that_starts_failing_keeps_its_alerts_firing() {
    let Some(prom) = crate::support::prometheus::Prometheus::start(2) else {
        return;
    };
    // A reverse proxy in front of the real Prometheus, until it starts answering 500.
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (f, port) = (failing.clone(), prom.port);
    let proxy = HttpServer::start(Arc::new(move |request: &str| {
        if f.load(std::sync::atomic::Ordering::Relaxed) {
            return (
                500,
                "text/plain",
                "proxy error: upstream unavailable".into(),
            );
        }
        match crate::support::prometheus::forward(port, request) {
            Some((status, body)) => (status, "application/json", body),
            None => (502, "text/plain", "bad gateway".into()),
        }
    }));
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("dlq.rhai", DLQ_RULE)
        .rule_source("depth.rhai", DEPTH_RULE)
        .instance(InstanceSpec::new("dlq", "test/high-dlq-depth"))
        .instance(InstanceSpec::new("depth", "test/depth"))
        .source(
            "prometheus",
            Arc::new(
                tripline::source::PrometheusSource::new(tripline::source::PrometheusOptions::new(
                    proxy.url(),
                ))
                .unwrap(),
            ),
        )
        .build()
        .unwrap();
    let summary = fire_then_break(&engine, "dlq", || {
        failing.store(true, std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    assert!(
        summary.contains("HTTP 500") && summary.contains("upstream unavailable"),
        "{summary}"
    );
}

#[test]
fn the_cli_reads_the_dsn_from_the_environment_and_never_prints_it() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    pg.create_processing_queue();
    pg.psql(
        "tripline",
        "INSERT INTO processing_queue (flow_name, status, claimed_at)
         SELECT 'survey-import', 'processing', NOW() - INTERVAL '3 hours' FROM generate_series(1, 11)",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/orphans.rhai"), ORPHANS_RULE).unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        r#"
rules_dirs = ["rules"]
stock_rules = false

[store]
type = "sqlite"
path = "tripline.db"

[sources.sql]
type = "postgres"
dsn_env = "TRIPLINE_TEST_PG_DSN"
statement_timeout = "5s"
connect_timeout = "2s"

[[rule]]
name = "orphans"
use = "test/orphaned-records"
"#,
    )
    .unwrap();
    let dsn = pg.dsn();
    let eval = || {
        let out = std::process::Command::new(crate::support::bin::tripline_bin())
            .args(["eval", "--config", "tripline.toml", "--format", "json"])
            .current_dir(dir.path())
            .env("TRIPLINE_TEST_PG_DSN", &dsn)
            .env_remove("RUST_LOG")
            .output()
            .expect("run tripline");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert!(
            !stdout.contains("pg-secret-do-not-print")
                && !stderr.contains("pg-secret-do-not-print"),
            "the password leaked: {stdout}{stderr}"
        );
        serde_json::from_str::<Vec<serde_json::Value>>(&stdout).unwrap()
    };
    let a = eval();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["summary"], "11 orphaned records");
    assert_eq!(a[0]["state"], "firing");

    pg.stop();
    let b = eval();
    let err = b
        .iter()
        .find(|x| x["rule"] == SOURCE_ERROR)
        .unwrap_or_else(|| panic!("{b:?}"));
    assert_eq!(err["labels"]["instance"], "orphans");
    let still = b
        .iter()
        .find(|x| x["rule"] == "test/orphaned-records")
        .unwrap();
    assert_eq!(still["state"], "firing");
    assert_eq!(still["fingerprint"], a[0]["fingerprint"]);
}
