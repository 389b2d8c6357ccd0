//! The whole cycle through the library, with a manual clock: missing-data treatments walked
//! through instants, M of N, identical queries fetched once, and failures that never resolve.

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tripline::alert::AlertState;
use tripline::data::{QueryOutcome, SourceFailure};
use tripline::rule::QuerySpec;
use tripline::source::{FetchContext, FixtureData, FixtureSeries, FixtureSource, Source};
use tripline::{InstanceSpec, Tripline};

const RULE: &str = r#"
const RULE = #{
    id: "t/threshold",
    severity: "warning",
    params: #{ metric: "m", threshold: 10, m: 1, n: 1, missing: "missing", range: "1m" },
};
fn query(p) {
    #{ s: cloudwatch(#{ namespace: "T", metric: p.metric, stat: "Maximum", period: "1m", range: p.range, missing: p.missing }) }
}
fn evaluate(d, p) {
    let v = d.s.verdict(">", p.threshold, p.m, p.n);
    if v == "alarm" { fire(#{ summary: `over`, labels: #{ metric: p.metric } }); }
    else if v == "retain" { retain(#{ metric: p.metric }); }
}
"#;

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 30).unwrap() + Duration::minutes(min)
}

/// Points one minute apart; `None` is a gap. The value at index i is in minute [i-1, i) of `t`.
fn series(values: &[Option<f64>]) -> FixtureData {
    let points = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v| {
                (
                    (Utc.with_ymd_and_hms(2026, 11, 1, 9, 59, 10).unwrap()
                        + Duration::minutes(i as i64))
                    .to_rfc3339(),
                    v,
                )
            })
        })
        .collect();
    FixtureData {
        series: vec![FixtureSeries {
            matches: Default::default(),
            name: None,
            labels: Default::default(),
            points,
        }],
        ..Default::default()
    }
}

async fn states(missing: &str, m: i64, n: i64, values: &[Option<f64>]) -> Vec<Option<AlertState>> {
    let src = Arc::new(FixtureSource::new(series(values)));
    let range = format!("{n}m");
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("t.rhai", RULE)
        .source("cloudwatch", src)
        .instance(
            InstanceSpec::new("x", "t/threshold")
                .param("missing", missing)
                .param("m", m)
                .param("n", n)
                .param("range", range),
        )
        .build()
        .unwrap();
    let mut out = Vec::new();
    for i in 0..values.len() as i64 {
        let r = engine.run_cycle_at(t(i), None).await.unwrap();
        out.push(r.alerts.first().map(|a| a.state));
    }
    out
}

use AlertState::{Firing as F, Resolved as R};

#[tokio::test]
async fn missing_data_treatments_walked_through_a_gap() {
    // Breach, then two minutes without data, then a healthy point.
    let values = [Some(50.0), None, None, Some(1.0)];
    assert_eq!(
        states("breaching", 1, 1, &values).await,
        vec![Some(F), Some(F), Some(F), Some(R)]
    );
    assert_eq!(
        states("notBreaching", 1, 1, &values).await,
        vec![Some(F), Some(R), None, None]
    );
    assert_eq!(
        states("ignore", 1, 1, &values).await,
        vec![Some(F), Some(F), Some(F), Some(R)]
    );
    // `missing`: insufficient data is not firing. (Resolved alerts appear in the cycle that resolved them.)
    assert_eq!(
        states("missing", 1, 1, &values).await,
        vec![Some(F), Some(R), None, None]
    );
}

#[tokio::test]
async fn no_data_at_all_fires_only_when_breaching() {
    let values = [None, None];
    assert_eq!(
        states("breaching", 1, 1, &values).await,
        vec![Some(F), Some(F)]
    );
    for missing in ["notBreaching", "ignore", "missing"] {
        assert_eq!(
            states(missing, 1, 1, &values).await,
            vec![None, None],
            "{missing}"
        );
    }
}

#[tokio::test]
async fn two_of_three_datapoints() {
    // Three-minute windows: [- - 50], [- 50 1], [50 1 50], [1 50 1], [50 1 1].
    let values = [Some(50.0), Some(1.0), Some(50.0), Some(1.0), Some(1.0)];
    assert_eq!(
        states("notBreaching", 2, 3, &values).await,
        vec![None, None, Some(F), Some(R), None]
    );
    // With `breaching`, CloudWatch fills missing datapoints "as few times as possible" to reach
    // N real-or-filled ones: [X X 50] and [X 50 1] both need fills that breach, so both alarm;
    // from the third minute three real datapoints exist and nothing is filled.
    assert_eq!(
        states("breaching", 2, 3, &values).await,
        vec![Some(F), Some(F), Some(F), Some(R), None]
    );
}

/// A source that counts the specs it is asked for.
struct Counting {
    specs: AtomicUsize,
    calls: AtomicUsize,
    fail: Mutex<bool>,
}

#[async_trait]
impl Source for Counting {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.specs.fetch_add(specs.len(), Ordering::SeqCst);
        let fail = *self.fail.lock().unwrap();
        let fixture = FixtureSource::new(series(&[Some(50.0)]));
        if fail {
            return specs
                .iter()
                .map(|_| {
                    Err(SourceFailure {
                        source: "counting".into(),
                        message: "ThrottlingException".into(),
                    })
                })
                .collect();
        }
        fixture.fetch(specs, ctx).await
    }
}

#[tokio::test]
async fn identical_queries_are_fetched_once_and_failures_never_resolve() {
    let src = Arc::new(Counting {
        specs: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
        fail: Mutex::new(false),
    });
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("t.rhai", RULE)
        .source("cloudwatch", src.clone())
        .instance(InstanceSpec::new("a", "t/threshold"))
        .instance(InstanceSpec::new("b", "t/threshold").label("team", "other"))
        .instance(InstanceSpec::new("c", "t/threshold").param("metric", "other"))
        .build()
        .unwrap();
    let r = engine.run_cycle_at(t(0), None).await.unwrap();
    assert_eq!(
        src.calls.load(Ordering::SeqCst),
        1,
        "one batch per source per cycle"
    );
    assert_eq!(
        src.specs.load(Ordering::SeqCst),
        2,
        "a and b ask the same query"
    );
    assert_eq!(r.queries, 2);
    assert_eq!(r.alerts.iter().filter(|a| a.state == F).count(), 3);

    // The source fails: the three alerts stay firing and a source-error alert per instance fires.
    *src.fail.lock().unwrap() = true;
    let r = engine.run_cycle_at(t(1), None).await.unwrap();
    assert!(
        r.transitions
            .iter()
            .all(|t| t.alert.rule == tripline::SOURCE_ERROR),
        "{:#?}",
        r.transitions
    );
    assert_eq!(
        r.alerts
            .iter()
            .filter(|a| a.rule == "t/threshold" && a.state == F)
            .count(),
        3
    );
    let errors: Vec<_> = r
        .alerts
        .iter()
        .filter(|a| a.rule == tripline::SOURCE_ERROR)
        .collect();
    assert_eq!(errors.len(), 3);
    assert!(errors[0].summary.contains("ThrottlingException"));

    // Healthy again: the source errors resolve, the alerts are evaluated normally.
    *src.fail.lock().unwrap() = false;
    let r = engine.run_cycle_at(t(2), None).await.unwrap();
    assert!(r
        .alerts
        .iter()
        .filter(|a| a.rule == tripline::SOURCE_ERROR)
        .all(|a| a.state == R));
}

#[tokio::test]
async fn a_failing_rule_does_not_stop_the_others() {
    let bad = r#"
        const RULE = #{ id: "t/bad" };
        fn query(p) { #{} }
        fn evaluate(d, p) { let x = 1 / 0; }
    "#;
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("t.rhai", RULE)
        .rule_source("bad.rhai", bad)
        .source(
            "cloudwatch",
            Arc::new(FixtureSource::new(series(&[Some(50.0)]))),
        )
        .instance(InstanceSpec::new("bad", "t/bad"))
        .instance(InstanceSpec::new("good", "t/threshold"))
        .build()
        .unwrap();
    let r = engine.run_cycle_at(t(0), None).await.unwrap();
    assert_eq!(r.rule_failures.len(), 1);
    assert!(
        r.rule_failures[0].1.message.starts_with("bad.rhai:4:"),
        "{}",
        r.rule_failures[0].1.message
    );
    assert!(r
        .alerts
        .iter()
        .any(|a| a.instance == "good" && a.state == F));
    assert!(r
        .alerts
        .iter()
        .any(|a| a.rule == tripline::RULE_ERROR && a.labels["instance"] == "bad"));
}
