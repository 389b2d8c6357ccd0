//! How many real requests a cycle costs, and dimension discovery, counted at the HTTP layer of
//! the CloudWatch client talking to moto.

use super::{aws_config, in_period, now, test_credentials_in_env, Seeder};
use crate::support::moto::Moto;
use std::sync::Arc;
use std::time::Duration;
use tripline::source::cloudwatch::{CloudWatchSettings, CloudWatchSource};
use tripline::source::Source;
use tripline::{InstanceSpec, Tripline};

const FOUR_METRICS: &str = r#"
const RULE = #{ id: "test/four-metrics", severity: "warning", params: #{ function: () } };

fn query(p) {
    let dims = #{ FunctionName: p.function };
    #{
        errors: cloudwatch(#{ namespace: "AWS/Lambda", metric: "Errors", stat: "Sum", dimensions: dims, period: "5m" }),
        throttles: cloudwatch(#{ namespace: "AWS/Lambda", metric: "Throttles", stat: "Sum", dimensions: dims, period: "5m" }),
        invocations: cloudwatch(#{ namespace: "AWS/Lambda", metric: "Invocations", stat: "Sum", dimensions: dims, period: "5m" }),
        duration: cloudwatch(#{ namespace: "AWS/Lambda", metric: "Duration", stat: "Maximum", dimensions: dims, period: "5m" }),
    }
}

fn evaluate(d, p) {
    let e = d.errors.sum();
    if e > 0 {
        fire(#{ summary: `${p.function}: ${e} errors, ${d.invocations.sum()} invocations`, labels: #{ function: p.function }, value: e });
    }
}
"#;

/// Asks for exactly the same Errors query as `test/four-metrics`.
const ERRORS_ONLY: &str = r#"
const RULE = #{ id: "test/errors-only", params: #{ function: () } };
fn query(p) {
    #{ e: cloudwatch(#{ period: "5m", namespace: "AWS/Lambda", stat: "Sum", metric: "Errors", dimensions: #{ FunctionName: p.function } }) }
}
fn evaluate(d, p) {
    if d.e.sum() > 0 { fire(#{ summary: `${p.function} errors`, labels: #{ function: p.function }, value: d.e.sum() }); }
}
"#;

/// The rule-side discovery API (docs/aws.md, "Discovery"): a glob in a dimension gives an array
/// of series, one per matching function, each labelled with its dimensions.
const FLEET_ERRORS: &str = r#"
const RULE = #{ id: "test/fleet-errors", severity: "critical", fleet: false, params: #{ functions: (), threshold: 10 } };
fn query(p) {
    #{ errors: cloudwatch(#{ namespace: "AWS/Lambda", metric: "Errors", stat: "Sum", dimensions: #{ FunctionName: p.functions }, period: "5m" }) }
}
fn evaluate(d, p) {
    for s in d.errors {
        if s.breaching(">", p.threshold, 1, 1) {
            let f = s.labels.FunctionName;
            fire(#{ summary: `${f}: ${s.max()} errors`, labels: #{ function: f }, value: s.max() });
        }
    }
}
"#;

fn function(i: usize) -> String {
    format!("prd2011-prod1-fn-{i:03}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_hundred_queries_from_300_instances_take_three_get_metric_data_calls() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    // Values that say which function they belong to, in the first, second and third call.
    for i in [0usize, 149, 150, 298, 299] {
        seed.lambda(
            "Errors",
            &function(i),
            in_period(at, 300, 0),
            (i + 1) as f64,
        )
        .await;
        seed.lambda(
            "Invocations",
            &function(i),
            in_period(at, 300, 0),
            1000.0 + i as f64,
        )
        .await;
    }
    let cw =
        Arc::new(CloudWatchSource::new(&aws_config(&moto), CloudWatchSettings::default()).unwrap());
    let mut b = Tripline::builder()
        .stock_rules(false)
        .rule_source("four.rhai", FOUR_METRICS)
        .rule_source("errors.rhai", ERRORS_ONLY)
        .source("cloudwatch", cw.clone())
        .fetch_timeout(Duration::from_secs(30));
    for i in 0..300 {
        b = b.instance(
            InstanceSpec::new(format!("four-{i:03}"), "test/four-metrics")
                .param("function", function(i)),
        );
    }
    // The same Errors query from a second rule: fetched once.
    for i in [0usize, 150] {
        b = b.instance(
            InstanceSpec::new(format!("errors-{i:03}"), "test/errors-only")
                .param("function", function(i)),
        );
    }
    let engine = b.build().unwrap();
    let report = engine.run_cycle_at(at, None).await.unwrap();
    assert!(
        report.source_failures.is_empty(),
        "{:?}",
        report.source_failures
    );
    assert!(
        report.rule_failures.is_empty(),
        "{:?}",
        report.rule_failures
    );
    assert_eq!(
        report.queries, 1200,
        "302 instances ask 1,200 distinct queries"
    );
    assert_eq!(
        cw.requests(),
        3,
        "1,200 queries at ≤ 500 per GetMetricData call"
    );

    // Every result went back to the query it answers.
    let mut got: Vec<(String, f64)> = report
        .alerts
        .iter()
        .map(|a| (a.instance.clone(), a.value.unwrap()))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, f64)> = vec![
        ("errors-000".into(), 1.0),
        ("errors-150".into(), 151.0),
        ("four-000".into(), 1.0),
        ("four-149".into(), 150.0),
        ("four-150".into(), 151.0),
        ("four-298".into(), 299.0),
        ("four-299".into(), 300.0),
    ];
    assert_eq!(got, want);
    let a = report
        .alerts
        .iter()
        .find(|a| a.instance == "four-299")
        .unwrap();
    assert_eq!(
        a.summary,
        format!("{}: 300.0 errors, 1299.0 invocations", function(299))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_rule_alerts_per_matching_function_and_ignores_the_rest() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    // Three cycles within one five-minute period, so they all see the same window.
    let t = now().timestamp();
    let at = chrono::DateTime::from_timestamp(t - t % 300 + 30, 0).unwrap();
    let t = in_period(at, 300, 0);
    seed.lambda("Errors", "prd2011-prod1-us-east-1-cmp-save-data", t, 25.0)
        .await;
    seed.lambda("Errors", "prd2011-prod1-us-east-1-cmp-mrg-avro", t, 3.0)
        .await;
    seed.lambda("Errors", "prd2011-prod1-us-east-1-cmp-mv-mrgd", t, 40.0)
        .await;
    // Not prod1: ignored however bad.
    seed.lambda("Errors", "prd2011-dev1-us-east-1-cmp-save-data", t, 50.0)
        .await;
    // Same function, another dimension set (per version): not the metric the rule watches.
    seed.metric(
        "AWS/Lambda",
        "Errors",
        &[
            ("FunctionName", "prd2011-prod1-us-east-1-cmp-mrg-avro"),
            ("ExecutedVersion", "7"),
        ],
        t,
        99.0,
    )
    .await;

    let settings = CloudWatchSettings {
        discovery_ttl: Duration::from_secs(2),
        ..Default::default()
    };
    let cw = Arc::new(CloudWatchSource::new(&aws_config(&moto), settings).unwrap());
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("fleet.rhai", FLEET_ERRORS)
        .source("cloudwatch", cw.clone())
        .instance(
            InstanceSpec::new("prod1-errors", "test/fleet-errors")
                .param("functions", "prd2011-prod1-*"),
        )
        .build()
        .unwrap();
    let report = engine.run_cycle_at(at, None).await.unwrap();
    assert!(
        report.source_failures.is_empty(),
        "{:?}",
        report.source_failures
    );
    let mut got: Vec<(String, f64)> = report
        .alerts
        .iter()
        .map(|a| (a.labels["function"].clone(), a.value.unwrap()))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("prd2011-prod1-us-east-1-cmp-mv-mrgd".to_string(), 40.0),
            ("prd2011-prod1-us-east-1-cmp-save-data".to_string(), 25.0)
        ]
    );
    assert!(report
        .alerts
        .iter()
        .all(|a| a.state.as_str() == "firing" && a.labels["alertname"] == "prod1-errors"));
    assert_eq!(cw.requests(), 2, "one ListMetrics, one GetMetricData");

    // Within the TTL the expansion is reused: a new function is not seen yet.
    seed.lambda("Errors", "prd2011-prod1-us-east-1-cmp-new-worker", t, 70.0)
        .await;
    let report = engine
        .run_cycle_at(at + chrono::Duration::seconds(10), None)
        .await
        .unwrap();
    assert_eq!(cw.requests(), 3, "cached discovery: GetMetricData only");
    assert_eq!(report.alerts.len(), 2);
    // After it, ListMetrics runs again and the new function is watched too.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = engine
        .run_cycle_at(at + chrono::Duration::seconds(20), None)
        .await
        .unwrap();
    assert_eq!(cw.requests(), 5);
    let mut functions: Vec<&str> = report
        .alerts
        .iter()
        .map(|a| a.labels["function"].as_str())
        .collect();
    functions.sort();
    assert_eq!(
        functions,
        [
            "prd2011-prod1-us-east-1-cmp-mv-mrgd",
            "prd2011-prod1-us-east-1-cmp-new-worker",
            "prd2011-prod1-us-east-1-cmp-save-data"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_answers_series_with_dimensions_as_labels_and_aligned_windows() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    for back in 0..3 {
        seed.lambda(
            "Duration",
            "f",
            in_period(at, 60, back),
            1000.0 * (back + 1) as f64,
        )
        .await;
    }
    // Inside the unfinished minute: never evaluated.
    seed.lambda(
        "Duration",
        "f",
        at - chrono::Duration::seconds(at.timestamp() % 60) + chrono::Duration::seconds(1),
        9e9,
    )
    .await;
    let cw = CloudWatchSource::new(&aws_config(&moto), CloudWatchSettings::default()).unwrap();
    let spec = |stat: &str| {
        tripline::rule::QuerySpec::new(
            "cloudwatch",
            serde_json::json!({"namespace": "AWS/Lambda", "metric": "Duration", "stat": stat, "dimensions": {"FunctionName": "f"}, "period": "1m", "range": "5m", "missing": "breaching"}),
        )
    };
    // A second datapoint in the last minute, so the statistics differ.
    seed.lambda(
        "Duration",
        "f",
        in_period(at, 60, 0) + chrono::Duration::seconds(5),
        400.0,
    )
    .await;
    let specs = [
        spec("Maximum"),
        spec("SampleCount"),
        spec("p99.9x"),
        spec("Sum"),
        spec("Average"),
        spec("Minimum"),
    ];
    let ctx = tripline::source::FetchContext {
        at,
        deadline: std::time::Instant::now() + Duration::from_secs(20),
    };
    let out = cw.fetch(&specs, &ctx).await;
    let tripline::data::QueryData::Series(s) = out[0].clone().unwrap() else {
        panic!("a series")
    };
    assert_eq!(s.labels.get("FunctionName").map(String::as_str), Some("f"));
    assert_eq!(s.period_secs, 60);
    assert_eq!(s.missing, tripline::data::MissingData::Breaching);
    let end = at.timestamp() - at.timestamp() % 60;
    assert_eq!(s.end.unwrap().timestamp(), end);
    let points: Vec<(i64, f64)> = s
        .points
        .iter()
        .map(|p| (end - p.ts.timestamp(), p.value))
        .collect();
    assert_eq!(
        points,
        vec![(180, 3000.0), (120, 2000.0), (60, 1000.0)],
        "oldest first, one per minute, each at its minute's start"
    );
    let tripline::data::QueryData::Series(c) = out[1].clone().unwrap() else {
        panic!("a series")
    };
    assert_eq!(
        c.points.iter().map(|p| p.value).collect::<Vec<_>>(),
        [1.0, 1.0, 2.0]
    );
    let e = out[2].clone().unwrap_err();
    assert!(e.message.contains("unknown statistic"), "{e}");
    assert_eq!(cw.requests(), 1, "the bad spec fails alone, without a call");
    let last = |i: usize| match out[i].clone().unwrap() {
        tripline::data::QueryData::Series(s) => s.last().unwrap(),
        other => panic!("a series, got {other:?}"),
    };
    assert_eq!(
        (last(3), last(4), last(5)),
        (1400.0, 700.0, 400.0),
        "Sum, Average, Minimum of the last minute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stock_aws_rule_asks_for_queries_the_aws_sources_accept() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    // The function's log group exists (a missing group is an error, not an empty answer).
    Seeder::new(&moto)
        .await
        .log_lines(
            "/aws/lambda/prd2011-prod1-us-east-1-cmp-save-data",
            &[(now(), "INFO started")],
        )
        .await;
    // Every stock rule (a built engine compiles only those its instances use).
    let (stock, errors) = tripline::rule::RuleSet::load(
        &tripline::rule::RuleEngine::new(Default::default(), &[]),
        &[],
        true,
    );
    assert!(errors.is_empty(), "{errors:?}");
    let aws = aws_config(&moto);
    let logs = Arc::new(
        tripline::source::logs::LogsSource::new(
            &aws,
            tripline::source::logs::LogsSettings {
                first_poll: Duration::from_millis(50),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let mut b = Tripline::builder()
        .source(
            "cloudwatch",
            Arc::new(CloudWatchSource::new(&aws, CloudWatchSettings::default()).unwrap()),
        )
        .source("logs_insights", logs.clone())
        .source("filter_logs", logs)
        .fetch_timeout(Duration::from_secs(20));
    let mut ids = Vec::new();
    for (id, rule) in stock.rules.iter().filter(|(id, _)| id.starts_with("aws/")) {
        let mut i = InstanceSpec::new(id.replace('/', "-"), id.as_str());
        for (name, p) in &rule.meta.params {
            if p.default.is_none() {
                // Required parameters of the AWS rules name a function, queue or log group.
                let v = if name.contains("prefix") {
                    "/aws/lambda/prd2011-prod1-"
                } else {
                    "prd2011-prod1-us-east-1-cmp-save-data"
                };
                i = i.param(name.as_str(), v);
            }
        }
        ids.push(id.clone());
        b = b.instance(i);
    }
    assert!(ids.len() >= 8, "{ids:?}");
    let engine = b.build().unwrap();
    let report = engine.run_cycle_at(now(), None).await.unwrap();
    assert!(
        report.source_failures.is_empty(),
        "{:#?}",
        report.source_failures
    );
    assert!(
        report.rule_failures.is_empty(),
        "{:#?}",
        report.rule_failures
    );
}

/// A fleet rule (`crate::fleet`) over 600 functions: the stock aws/lambda-errors with a glob.
/// Discovery costs ⌈600 / 500⌉ = 2 ListMetrics pages per TTL, the 600 per-function queries
/// ⌈600 / 500⌉ = 2 GetMetricData calls per cycle; another environment's functions are listed by
/// ListMetrics (it filters by dimension name only) but never queried nor alerted on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_600_functions_costs_two_list_metrics_pages_and_two_get_metric_data_calls() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    let t = aws_smithy_types::DateTime::from_secs(in_period(at, 300, 0).timestamp());
    let datum = |f: &str, v: f64| {
        aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name("Errors")
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("FunctionName")
                    .value(f)
                    .build(),
            )
            .timestamp(t)
            .value(v)
            .build()
    };
    // Every 100th prod1 function fails; every dev1 function fails harder.
    let mut data: Vec<_> = (0..600)
        .map(|i| datum(&function(i), if i % 100 == 7 { 50.0 } else { 0.0 }))
        .collect();
    data.extend((0..20).map(|i| datum(&format!("prd2011-dev1-fn-{i:03}"), 999.0)));
    for chunk in data.chunks(500) {
        seed.cw
            .put_metric_data()
            .namespace("AWS/Lambda")
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .expect("PutMetricData");
    }
    let cw =
        Arc::new(CloudWatchSource::new(&aws_config(&moto), CloudWatchSettings::default()).unwrap());
    let engine = Tripline::builder()
        .source("cloudwatch", cw.clone())
        .instance(
            InstanceSpec::new("prod1-errors", "aws/lambda-errors")
                .param("function", "prd2011-prod1-fn-*"),
        )
        .fetch_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let report = engine.run_cycle_at(at, None).await.unwrap();
    assert!(
        report.source_failures.is_empty() && report.rule_failures.is_empty(),
        "{:?} {:?}",
        report.source_failures,
        report.rule_failures
    );
    let mut fired: Vec<&str> = report
        .alerts
        .iter()
        .map(|a| a.labels["function"].as_str())
        .collect();
    fired.sort();
    let want: Vec<String> = (0..6).map(|k| function(k * 100 + 7)).collect();
    assert_eq!(fired, want);
    assert_eq!(report.queries, 600);
    let ops = |op: &str| cw.requests_by_operation().get(op).copied().unwrap_or(0);
    // 620 FunctionName metrics listed at 500 a page.
    assert_eq!(ops("ListMetrics"), 620u64.div_ceil(500));
    assert_eq!(ops("GetMetricData"), 600u64.div_ceil(500));
    // The next cycle, within the TTL: GetMetricData only.
    engine
        .run_cycle_at(at + chrono::Duration::seconds(10), None)
        .await
        .unwrap();
    assert_eq!(ops("ListMetrics"), 2);
    assert_eq!(ops("GetMetricData"), 4);
}

/// A fleet picks up a function deployed after it started, at the first discovery after the cache
/// expires (`discovery_ttl = 0`: every cycle), without a restart or a config change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_picks_up_a_new_function_when_discovery_runs_again() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    let t = in_period(at, 300, 0);
    seed.lambda("Errors", &function(1), t, 30.0).await;
    let settings = CloudWatchSettings {
        discovery_ttl: Duration::ZERO,
        ..Default::default()
    };
    let cw = Arc::new(CloudWatchSource::new(&aws_config(&moto), settings).unwrap());
    let engine = Tripline::builder()
        .source("cloudwatch", cw.clone())
        .instance(
            InstanceSpec::new("prod1-errors", "aws/lambda-errors")
                .param("function", "prd2011-prod1-fn-*"),
        )
        .build()
        .unwrap();
    let fired = |r: &tripline::CycleReport| {
        let mut v: Vec<String> = r
            .alerts
            .iter()
            .map(|a| a.labels["function"].clone())
            .collect();
        v.sort();
        v
    };
    let r = engine.run_cycle_at(at, None).await.unwrap();
    assert_eq!(fired(&r), [function(1)]);
    seed.lambda("Errors", &function(2), t, 40.0).await;
    let r = engine
        .run_cycle_at(at + chrono::Duration::seconds(10), None)
        .await
        .unwrap();
    assert_eq!(fired(&r), [function(1), function(2)]);
    let ops = cw.requests_by_operation();
    assert_eq!(ops.get("ListMetrics"), Some(&2));
    assert_eq!(ops.get("GetMetricData"), Some(&2));
}

/// Sliding windows against moto: evaluated at an instant whose minute is not a period boundary,
/// a 5-minute period over 10 minutes is asked as `StartTime` = the minute − 10 min, `EndTime` =
/// the minute, `Period` = 300, and the two buckets that come back are counted back from the
/// minute, not from a 5-minute clock boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_metric_data_buckets_count_back_from_the_evaluation_minute() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let mut end = now().timestamp() - now().timestamp() % 60;
    if (end / 60) % 5 == 0 {
        // Off the 5-minute clock, so a period-aligned window would differ.
        end -= 120;
    }
    let ts = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
    // Seconds before the window end → value: two in each bucket, one before the window.
    for (back, v) in [(1, 1.0), (299, 2.0), (301, 4.0), (599, 8.0), (601, 16.0)] {
        seed.lambda("Invocations", "sliding", ts(end - back), v)
            .await;
    }
    let cw = CloudWatchSource::new(&aws_config(&moto), CloudWatchSettings::default()).unwrap();
    let spec = tripline::rule::QuerySpec::new(
        "cloudwatch",
        serde_json::json!({"namespace": "AWS/Lambda", "metric": "Invocations", "stat": "Sum", "dimensions": {"FunctionName": "sliding"}, "period": "5m", "range": "10m"}),
    );
    let ctx = tripline::source::FetchContext {
        at: ts(end + 42),
        deadline: std::time::Instant::now() + Duration::from_secs(20),
    };
    let out = cw.fetch(&[spec], &ctx).await;
    let tripline::data::QueryData::Series(s) = out[0].clone().unwrap() else {
        panic!("a series")
    };
    assert_eq!(s.end.unwrap().timestamp(), end);
    let points: Vec<(i64, f64)> = s
        .points
        .iter()
        .map(|p| (end - p.ts.timestamp(), p.value))
        .collect();
    assert_eq!(
        points,
        vec![(600, 12.0), (300, 3.0)],
        "buckets [end - 10m, end - 5m) and [end - 5m, end)"
    );
    assert_eq!(s.slots(2), vec![Some(12.0), Some(3.0)]);
}
