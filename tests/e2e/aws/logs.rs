//! CloudWatch Logs: Logs Insights over a log-group prefix, FilterLogEvents under its rate
//! limit, and the stock log rules whose triage attaches what the logs say to the notification.

use super::{aws_config, aws_table, now, test_credentials_in_env, topic_arn, tripline, Seeder};
use crate::support::bin::{stderr, stdout};
use crate::support::moto::Moto;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tripline::data::QueryData;
use tripline::rule::QuerySpec;
use tripline::source::logs::{LogsSettings, LogsSource};
use tripline::source::{FetchContext, Source};

fn messages(d: &QueryData) -> Vec<String> {
    let QueryData::Table(t) = d else {
        panic!("a table, got {d:?}")
    };
    let mut m: Vec<String> = t
        .rows
        .iter()
        .filter_map(|r| r.get("@message")?.as_str().map(String::from))
        .collect();
    m.sort();
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_over_a_prefix_and_filter_events_under_the_rate_limit() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    let t = at - chrono::Duration::minutes(10);
    for f in ["a", "b", "c"] {
        seed.log_lines(
            &format!("/aws/lambda/prd2011-prod1-{f}"),
            &[
                (t, &format!("ERROR in {f}")),
                (t, &format!("INFO from {f}")),
            ],
        )
        .await;
    }
    seed.log_lines("/aws/lambda/prd2011-dev1-a", &[(t, "ERROR in dev")])
        .await;
    // Older than the window.
    seed.log_lines(
        "/aws/lambda/prd2011-prod1-old",
        &[(at - chrono::Duration::hours(3), "ERROR long ago")],
    )
    .await;

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
        deadline: Instant::now() + Duration::from_secs(20),
    };
    let specs = [
        QuerySpec::new(
            "logs_insights",
            json!({"log_group_prefix": "/aws/lambda/prd2011-prod1-", "query": "fields @timestamp, @message", "range": "1h"}),
        ),
        QuerySpec::new(
            "filter_logs",
            json!({"log_group": "/aws/lambda/prd2011-prod1-a", "pattern": "ERROR", "range": "1h"}),
        ),
        QuerySpec::new(
            "logs_insights",
            json!({"log_group_prefix": "/aws/lambda/nothing-", "query": "fields @message"}),
        ),
        QuerySpec::new(
            "filter_logs",
            json!({"log_group": "/aws/lambda/missing", "pattern": "ERROR"}),
        ),
    ];
    let out = logs.fetch(&specs, &ctx).await;
    assert_eq!(
        messages(out[0].as_ref().unwrap()),
        [
            "ERROR in a",
            "ERROR in b",
            "ERROR in c",
            "INFO from a",
            "INFO from b",
            "INFO from c"
        ]
    );
    assert_eq!(messages(out[1].as_ref().unwrap()), ["ERROR in a"]);
    assert!(
        messages(out[2].as_ref().unwrap()).is_empty(),
        "no group under the prefix: an empty answer"
    );
    let e = out[3].as_ref().unwrap_err();
    assert!(
        e.message.contains("FilterLogEvents") && e.message.contains("ResourceNotFound"),
        "{e}"
    );

    // Twelve FilterLogEvents calls at 5 per second take over two seconds.
    let specs: Vec<QuerySpec> = (0..12)
        .map(|i| {
            QuerySpec::new(
                "filter_logs",
                json!({"log_group": "/aws/lambda/prd2011-prod1-b", "pattern": format!("ERROR{i}")}),
            )
        })
        .collect();
    let before = logs.requests();
    let started = Instant::now();
    let out = logs.fetch(&specs, &ctx).await;
    assert!(out.iter().all(|o| o.is_ok()), "{out:?}");
    assert_eq!(logs.requests() - before, 12);
    assert!(
        started.elapsed() >= Duration::from_millis(2100),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rules_triage_attaches_top_errors_and_timed_out_request_ids_to_the_sns_message() {
    let Some(moto) = Moto::start() else { return };
    let seed = Seeder::new(&moto).await;
    seed.topic("logs-alerts").await;
    let at = now();
    let t = |m: i64| at - chrono::Duration::minutes(m);
    const SAVE_DATA: &str = "prd2011-prod1-us-east-1-cmp-save-data";
    const SCHEDULED: &str = "prd2011-prod1-us-east-1-cmp-prcss-scheduled";
    seed.log_lines(
        &format!("/aws/lambda/{SAVE_DATA}"),
        &[
            (
                t(20),
                "ERROR DynamoDB ProvisionedThroughputExceededException",
            ),
            (
                t(15),
                "ERROR DynamoDB ProvisionedThroughputExceededException",
            ),
            (t(12), "INFO batch of 1000 saved"),
            (
                t(10),
                "ERROR DynamoDB ProvisionedThroughputExceededException",
            ),
            (
                t(5),
                "ERROR TypeError: Cannot read properties of undefined (reading 'id')",
            ),
        ],
    )
    .await;
    seed.log_lines(
        &format!("/aws/lambda/{SCHEDULED}"),
        &[
            (t(9), "START RequestId: 5f1c9a2e-0001 Version: $LATEST"),
            (
                t(8),
                "2026-11-01T09:58:00.000Z 5f1c9a2e-0001 Task timed out after 60.00 seconds",
            ),
            (t(4), "START RequestId: 7d3b0c11-0002 Version: $LATEST"),
            (
                t(3),
                "2026-11-01T10:03:00.000Z 7d3b0c11-0002 Task timed out after 60.00 seconds",
            ),
            (t(2), "END RequestId: 7d3b0c11-0002"),
        ],
    )
    .await;
    // A function whose logs are clean.
    seed.log_lines(
        "/aws/lambda/prd2011-prod1-us-east-1-cmp-mv-mrgd",
        &[(t(3), "INFO all good")],
    )
    .await;
    let config = format!(
        r#"[engine]
rule_deadline = "10s"
fetch_timeout = "20s"

[store]
type = "memory"

{aws}
[sources.filter_logs]
type = "logs"

[sources.logs_insights]
type = "logs"

[[receiver]]
type = "sns"
name = "ops"
topic_arn = "{arn}"

[[rule]]
name = "log-errors-save-data"
use = "aws/log-errors"
params = {{ function = "{SAVE_DATA}" }}

[[rule]]
name = "log-errors-mv-mrgd"
use = "aws/log-errors"
params = {{ function = "prd2011-prod1-us-east-1-cmp-mv-mrgd" }}

[[rule]]
name = "timeouts-scheduled"
use = "aws/lambda-timeouts"
params = {{ function = "{SCHEDULED}" }}
"#,
        aws = aws_table(&moto),
        arn = topic_arn("logs-alerts")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    let out = tripline(
        &moto,
        dir.path(),
        &[
            "eval",
            "--config",
            "tripline.toml",
            "--at",
            &at.to_rfc3339(),
            "--notify",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "eval: {}", stderr(&out));
    let alerts: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let mut instances: Vec<&str> = alerts
        .iter()
        .map(|a| a["instance"].as_str().unwrap())
        .collect();
    instances.sort();
    assert_eq!(
        instances,
        ["log-errors-save-data", "timeouts-scheduled"],
        "{alerts:#?}"
    );

    let errors = alerts
        .iter()
        .find(|a| a["instance"] == "log-errors-save-data")
        .unwrap();
    assert_eq!(
        errors["summary"],
        format!("{SAVE_DATA}: 4 ERROR log lines in 1h (threshold 0)")
    );
    assert_eq!(
        errors["details"]["top_errors"],
        json!([
            "3× ERROR DynamoDB ProvisionedThroughputExceededException",
            "1× ERROR TypeError: Cannot read properties of undefined (reading 'id')"
        ])
    );
    let timeouts = alerts
        .iter()
        .find(|a| a["instance"] == "timeouts-scheduled")
        .unwrap();
    assert_eq!(
        timeouts["summary"],
        format!("{SCHEDULED}: 2 invocation(s) timed out in 15m")
    );
    let mut ids: Vec<&str> = timeouts["details"]["timed_out_request_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["5f1c9a2e-0001", "7d3b0c11-0002"]);

    // The attachments travel in the notification.
    let msgs = moto.sns_messages("logs-alerts");
    assert_eq!(msgs.len(), 2);
    let all: String = msgs
        .iter()
        .map(|m| m[1].as_str().unwrap().to_string())
        .collect();
    assert!(
        all.contains("3× ERROR DynamoDB ProvisionedThroughputExceededException"),
        "{all}"
    );
    assert!(all.contains("7d3b0c11-0002"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_insights_queries_are_capped() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    seed.log_lines(
        "/aws/lambda/g",
        &[(at - chrono::Duration::minutes(1), "ERROR x")],
    )
    .await;
    let specs: Vec<QuerySpec> = (0..3).map(|i| QuerySpec::new("logs_insights", json!({"log_group": "/aws/lambda/g", "query": format!("fields @message | limit {}", i + 1)}))).collect();
    let ctx = FetchContext {
        at,
        deadline: Instant::now() + Duration::from_secs(20),
    };
    let run = |max: usize| {
        let logs = LogsSource::new(
            &aws_config(&moto),
            LogsSettings {
                max_concurrent_queries: max,
                first_poll: Duration::from_millis(600),
                ..Default::default()
            },
        )
        .unwrap();
        let specs = specs.clone();
        async move {
            let started = Instant::now();
            let out = logs.fetch(&specs, &ctx).await;
            assert!(out.iter().all(|o| o.is_ok()), "{out:?}");
            started.elapsed()
        }
    };
    let parallel = run(30).await;
    let serial = run(1).await;
    assert!(
        parallel < Duration::from_millis(1500),
        "three queries at once: {parallel:?}"
    );
    assert!(
        serial >= Duration::from_millis(1800),
        "one at a time: {serial:?}"
    );
}
