//! AWS failing under the engine: the server gone between cycles, a Logs Insights query still
//! running at the deadline.

use super::{aws_config, in_period, now, test_credentials_in_env, Seeder};
use crate::support::moto::Moto;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tripline::alert::{AlertState, TransitionKind};
use tripline::source::cloudwatch::{CloudWatchSettings, CloudWatchSource};
use tripline::source::logs::{LogsSettings, LogsSource};
use tripline::source::{FetchContext, Source};
use tripline::{InstanceSpec, Tripline, SOURCE_ERROR};

const SAVE_DATA: &str = "prd2011-prod1-us-east-1-cmp-save-data";

async fn seed_errors(moto: &Moto, at: chrono::DateTime<chrono::Utc>) {
    let seed = Seeder::new(moto).await;
    seed.lambda("Errors", SAVE_DATA, in_period(at, 300, 0), 25.0)
        .await;
    seed.lambda("Throttles", SAVE_DATA, in_period(at, 300, 0), 0.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_down_is_a_source_error_that_keeps_firing_alerts_firing_until_it_recovers() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    test_credentials_in_env();
    // Three cycles a minute apart inside one five-minute period: all see the same window.
    let t = now().timestamp();
    let base = chrono::DateTime::from_timestamp(t - t % 300 + 30, 0).unwrap();
    seed_errors(&moto, base).await;
    let cw = Arc::new(
        CloudWatchSource::new(
            &aws_config(&moto),
            CloudWatchSettings {
                max_attempts: 10,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let engine = Tripline::builder()
        .source("cloudwatch", cw.clone())
        .instance(
            InstanceSpec::new("errors-save-data", "aws/lambda-errors").param("function", SAVE_DATA),
        )
        .instance(
            InstanceSpec::new("throttles-save-data", "aws/lambda-throttles")
                .param("function", SAVE_DATA),
        )
        .fetch_timeout(Duration::from_secs(3))
        .build()
        .unwrap();

    let r1 = engine.run_cycle_at(base, None).await.unwrap();
    assert!(r1.source_failures.is_empty(), "{:?}", r1.source_failures);
    let firing: Vec<&str> = r1
        .alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| a.instance.as_str())
        .collect();
    assert_eq!(firing, ["errors-save-data"]);

    // The server dies: every request of the next cycle is refused.
    moto.kill();
    let started = Instant::now();
    let r2 = engine
        .run_cycle_at(base + chrono::Duration::seconds(60), None)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "retries stay within the fetch timeout: {:?}",
        started.elapsed()
    );
    let mut failed: Vec<&str> = r2.source_failures.iter().map(|(i, _)| i.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["errors-save-data", "throttles-save-data"]);
    let msg = &r2.source_failures[0].1.message;
    assert!(msg.contains("GetMetricData"), "{msg}");
    assert!(
        r2.transitions
            .iter()
            .all(|t| t.kind != TransitionKind::Resolved),
        "nothing resolves because data is missing: {:?}",
        r2.transitions
    );
    let errors = r2
        .alerts
        .iter()
        .find(|a| a.instance == "errors-save-data")
        .expect("still there");
    assert_eq!(errors.state, AlertState::Firing);
    let mut source_errors: Vec<&str> = r2
        .alerts
        .iter()
        .filter(|a| a.rule == SOURCE_ERROR && a.state == AlertState::Firing)
        .map(|a| a.labels["instance"].as_str())
        .collect();
    source_errors.sort();
    assert_eq!(source_errors, ["errors-save-data", "throttles-save-data"]);

    // It comes back (empty, as a fresh moto is) and the data with it.
    moto.restart();
    seed_errors(&moto, base).await;
    let r3 = engine
        .run_cycle_at(base + chrono::Duration::seconds(120), None)
        .await
        .unwrap();
    assert!(r3.source_failures.is_empty(), "{:?}", r3.source_failures);
    let errors = r3
        .alerts
        .iter()
        .find(|a| a.instance == "errors-save-data")
        .unwrap();
    assert_eq!(errors.state, AlertState::Firing);
    assert_eq!(
        errors.starts_at,
        Some(base),
        "the same alert, firing since the first cycle"
    );
    let resolved: Vec<&str> = r3
        .transitions
        .iter()
        .filter(|t| t.kind == TransitionKind::Resolved)
        .map(|t| t.alert.rule.as_str())
        .collect();
    assert_eq!(
        resolved,
        [SOURCE_ERROR, SOURCE_ERROR],
        "only the source errors resolve"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logs_insights_query_running_at_the_deadline_is_stopped_and_reported() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    seed.log_lines(
        "/aws/lambda/f",
        &[(at - chrono::Duration::minutes(5), "ERROR boom")],
    )
    .await;
    // moto completes queries at once; a first poll later than the deadline stands in for a
    // query Logs Insights is still running when the cycle's time is up.
    let settings = LogsSettings {
        first_poll: Duration::from_secs(3),
        ..Default::default()
    };
    let logs = LogsSource::new(&aws_config(&moto), settings).unwrap();
    let spec = tripline::rule::QuerySpec::new(
        "logs_insights",
        serde_json::json!({"log_group": "/aws/lambda/f", "query": "fields @message | limit 10"}),
    );
    let started = Instant::now();
    let ctx = FetchContext {
        at,
        deadline: started + Duration::from_millis(1500),
    };
    let out = logs.fetch(std::slice::from_ref(&spec), &ctx).await;
    let e = out[0].clone().unwrap_err();
    assert!(e.message.contains("stopped at deadline"), "{e}");
    assert_eq!(e.source, "logs_insights");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        logs.requests(),
        2,
        "StartQuery, then StopQuery; no result poll after the deadline"
    );

    // The same query with time to finish completes.
    let logs = LogsSource::new(
        &aws_config(&moto),
        LogsSettings {
            first_poll: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .unwrap();
    let ctx = FetchContext {
        at,
        deadline: Instant::now() + Duration::from_secs(10),
    };
    let out = logs.fetch(&[spec], &ctx).await;
    let tripline::data::QueryData::Table(t) = out[0].clone().unwrap() else {
        panic!("a table")
    };
    let messages: Vec<&str> = t
        .rows
        .iter()
        .filter_map(|r| r.get("@message")?.as_str())
        .collect();
    assert_eq!(messages, ["ERROR boom"]);
}

/// Fires while its log group has lines in the last hour (moto answers Logs Insights with the raw
/// lines).
const LOG_LINES: &str = r#"
const RULE = #{ id: "test/log-lines", severity: "high", params: #{ group: () } };
fn query(p) { #{ lines: logs_insights(#{ log_group: p.group, query: "fields @message", range: "1h" }) } }
fn evaluate(d, p) {
    if d.lines.len() > 0 { fire(#{ summary: `${d.lines.len()} lines in ${p.group}`, labels: #{ group: p.group }, value: d.lines.len() }); }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_dying_mid_cycle_fails_only_the_queries_in_flight() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    test_credentials_in_env();
    let t = now().timestamp();
    let base = chrono::DateTime::from_timestamp(t - t % 300 + 30, 0).unwrap();
    let seed = Seeder::new(&moto).await;
    seed.lambda("Errors", SAVE_DATA, in_period(base, 300, 0), 25.0)
        .await;
    seed.log_lines(
        "/aws/lambda/worker",
        &[(base - chrono::Duration::minutes(5), "ERROR boom")],
    )
    .await;
    let aws = aws_config(&moto);
    // Logs Insights queries are polled two seconds after they start: the window to pull the plug.
    let logs = Arc::new(
        LogsSource::new(
            &aws,
            LogsSettings {
                first_poll: Duration::from_secs(2),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let engine = Arc::new(
        Tripline::builder()
            .rule_source("log-lines.rhai", LOG_LINES)
            .source(
                "cloudwatch",
                Arc::new(CloudWatchSource::new(&aws, CloudWatchSettings::default()).unwrap()),
            )
            .source("logs_insights", logs)
            .instance(
                InstanceSpec::new("errors-save-data", "aws/lambda-errors")
                    .param("function", SAVE_DATA),
            )
            .instance(
                InstanceSpec::new("worker-lines", "test/log-lines")
                    .param("group", "/aws/lambda/worker"),
            )
            .fetch_timeout(Duration::from_secs(4))
            .build()
            .unwrap(),
    );
    let r1 = engine.run_cycle_at(base, None).await.unwrap();
    let mut firing: Vec<&str> = r1
        .alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .map(|a| a.instance.as_str())
        .collect();
    firing.sort();
    assert_eq!(
        firing,
        ["errors-save-data", "worker-lines"],
        "{:?}",
        r1.source_failures
    );

    // Cycle 2: the metrics come back at once, the Logs Insights query is started, then moto dies
    // before its results are read.
    let e = engine.clone();
    let cycle = tokio::spawn(async move {
        e.run_cycle_at(base + chrono::Duration::seconds(60), None)
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    moto.kill();
    let r2 = cycle.await.unwrap();
    let failed: Vec<&str> = r2.source_failures.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        failed,
        ["worker-lines"],
        "only the rule whose query was in flight fails: {:?}",
        r2.source_failures
    );
    assert!(
        r2.source_failures[0]
            .1
            .message
            .contains("stopped at deadline"),
        "{:?}",
        r2.source_failures
    );
    assert!(
        r2.transitions
            .iter()
            .all(|t| t.kind != TransitionKind::Resolved),
        "{:?}",
        r2.transitions
    );
    for i in ["errors-save-data", "worker-lines"] {
        assert_eq!(
            r2.alerts.iter().find(|a| a.instance == i).map(|a| a.state),
            Some(AlertState::Firing),
            "{i} keeps firing"
        );
    }
    let source_errors: Vec<&str> = r2
        .alerts
        .iter()
        .filter(|a| a.rule == SOURCE_ERROR)
        .map(|a| a.labels["instance"].as_str())
        .collect();
    assert_eq!(source_errors, ["worker-lines"]);

    // Cycle 3: back, with its data.
    moto.restart();
    let seed = Seeder::new(&moto).await;
    seed.lambda("Errors", SAVE_DATA, in_period(base, 300, 0), 25.0)
        .await;
    seed.log_lines(
        "/aws/lambda/worker",
        &[(base - chrono::Duration::minutes(5), "ERROR boom")],
    )
    .await;
    let r3 = engine
        .run_cycle_at(base + chrono::Duration::seconds(120), None)
        .await
        .unwrap();
    assert!(r3.source_failures.is_empty(), "{:?}", r3.source_failures);
    let resolved: Vec<&str> = r3
        .transitions
        .iter()
        .filter(|t| t.kind == TransitionKind::Resolved)
        .map(|t| t.alert.rule.as_str())
        .collect();
    assert_eq!(resolved, [SOURCE_ERROR]);
    let w = r3
        .alerts
        .iter()
        .find(|a| a.instance == "worker-lines")
        .unwrap();
    assert_eq!((w.state, w.starts_at), (AlertState::Firing, Some(base)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_retried_with_backoff_then_reported_for_its_queries() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    // moto answers percentile statistics over data with HTTP 500: a real 5xx to retry.
    let at = now();
    Seeder::new(&moto)
        .await
        .lambda("Duration", "f", in_period(at, 300, 0), 1200.0)
        .await;
    let cw = CloudWatchSource::new(
        &aws_config(&moto),
        CloudWatchSettings {
            max_attempts: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let spec = tripline::rule::QuerySpec::new(
        "cloudwatch",
        serde_json::json!({"namespace": "AWS/Lambda", "metric": "Duration", "stat": "p99", "dimensions": {"FunctionName": "f"}}),
    );
    let started = Instant::now();
    let out = cw
        .fetch(
            &[spec],
            &FetchContext {
                at: now(),
                deadline: Instant::now() + Duration::from_secs(20),
            },
        )
        .await;
    let e = out[0].clone().unwrap_err();
    assert!(
        e.message.starts_with("GetMetricData: HTTP 500")
            && e.message.ends_with("(after 3 attempts)"),
        "{e}"
    );
    assert_eq!(cw.requests(), 3);
    // Two waits of 100–200 ms and 200–400 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

pub(super) fn notification() -> tripline::notify::Notification {
    let t = now();
    let mut labels = tripline::alert::Labels::new();
    labels.insert("alertname".into(), "errors-save-data".into());
    let alert = tripline::alert::Alert {
        fingerprint: "0123456789abcdef".into(),
        rule: "aws/lambda-errors".into(),
        instance: "errors-save-data".into(),
        labels: labels.clone(),
        state: AlertState::Firing,
        severity: tripline::alert::Severity::Critical,
        summary: "25 errors".into(),
        runbook: Some("https://runbooks.example.com/aws/lambda-errors".into()),
        value: Some(25.0),
        details: Default::default(),
        active_since: t,
        starts_at: Some(t),
        ends_at: None,
        last_active: t,
        updated_at: t,
        severity_changed_at: None,
        keep_firing_since: None,
    };
    tripline::notify::Notification {
        id: "n1".into(),
        receiver: "ops".into(),
        status: tripline::notify::NotificationStatus::Firing,
        group_key: "g".into(),
        group_labels: labels,
        alerts: vec![std::sync::Arc::new(alert)],
        created_at: t,
        acknowledged_by: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_errors_say_whether_a_retry_can_help() {
    use tripline::notify::Notifier;
    let Some(mut moto) = Moto::start() else {
        return;
    };
    test_credentials_in_env();
    let arn = Seeder::new(&moto).await.topic("ops").await;
    let ok = tripline::notify::sns::SnsNotifier::new("ops", arn, &aws_config(&moto)).unwrap();
    ok.notify(&notification()).await.unwrap();
    assert_eq!(moto.sns_messages("ops").len(), 1);
    let missing = tripline::notify::sns::SnsNotifier::new(
        "ops",
        super::topic_arn("no-such-topic"),
        &aws_config(&moto),
    )
    .unwrap();
    let e = missing.notify(&notification()).await.unwrap_err();
    assert!(
        !e.retryable,
        "a missing topic will not appear by retrying: {e:?}"
    );
    assert!(
        e.message.starts_with("sns ops: Publish: HTTP 404 NotFound"),
        "{e:?}"
    );
    moto.kill();
    let e = ok.notify(&notification()).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(e.message.contains("could not send the request"), "{e:?}");
    assert_eq!(ok.requests(), 2);
}
