//! The campaign-workers runbook (seed 000) end to end: its Lambda, Kinesis and SQS metrics in
//! moto, a config of stock rules, `tripline eval`, and the alerts read back from the SNS topic.

use super::{aws_table, in_period, now, topic_arn, tripline, Seeder};
use crate::support::bin::{stderr, stdout};
use crate::support::moto::Moto;
use serde_json::Value;
use std::collections::BTreeMap;

const SAVE_DATA: &str = "prd2011-prod1-us-east-1-cmp-save-data";
const MERGE_AVRO: &str = "prd2011-prod1-us-east-1-cmp-mrg-avro";
const MOVE_MERGED: &str = "prd2011-prod1-us-east-1-cmp-mv-mrgd";
const MOVE_QUEUE: &str = "prd2011-prod1-us-east-1-cmp-mv-mrgd-sqs";
const SCORING_QUEUE: &str = "prd2011-prod1-us-east-1-cmp-scoring-sqs";
const TOPIC: &str = "campaign-workers-alerts";

fn config(moto: &Moto, extra: &str) -> String {
    let mut c = format!(
        r#"stock_rules = true

[engine]
fetch_timeout = "20s"
rule_deadline = "10s"

[store]
type = "memory"

{aws}
[sources.cloudwatch]
type = "cloudwatch"

[sources.filter_logs]
type = "logs"

[sources.logs_insights]
type = "logs"
max_concurrent_queries = 5

[[receiver]]
type = "sns"
name = "ops"
topic_arn = "{arn}"
"#,
        aws = aws_table(moto),
        arn = topic_arn(TOPIC)
    );
    for f in [SAVE_DATA, MERGE_AVRO, MOVE_MERGED] {
        let short = f.rsplit("cmp-").next().unwrap();
        c.push_str(&format!("\n[[rule]]\nname = \"errors-{short}\"\nuse = \"aws/lambda-errors\"\nparams = {{ function = \"{f}\" }}\n"));
        c.push_str(&format!("\n[[rule]]\nname = \"throttles-{short}\"\nuse = \"aws/lambda-throttles\"\nparams = {{ function = \"{f}\" }}\n"));
    }
    c.push_str(&format!("\n[[rule]]\nname = \"iterator-age-save-data\"\nuse = \"aws/kinesis-iterator-age\"\nparams = {{ function = \"{SAVE_DATA}\" }}\n"));
    for q in [MOVE_QUEUE, SCORING_QUEUE] {
        let short = q.rsplit("cmp-").next().unwrap();
        c.push_str(&format!("\n[[rule]]\nname = \"depth-{short}\"\nuse = \"aws/sqs-queue-depth\"\nparams = {{ queue = \"{q}\" }}\n"));
    }
    c.push_str(extra);
    c
}

/// moto's record of one published message, by field.
struct Published {
    subject: String,
    message: Value,
    attributes: BTreeMap<String, String>,
}

fn published(moto: &Moto) -> Vec<Published> {
    moto.sns_messages(TOPIC)
        .into_iter()
        .map(|m| Published {
            message: serde_json::from_str(m[1].as_str().expect("message text"))
                .expect("MessageStructure=json message"),
            subject: m[2].as_str().unwrap_or_default().to_string(),
            attributes: m[3]
                .as_object()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v["Value"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_workers_fire_exactly_the_expected_alerts_and_publish_them_to_sns() {
    let Some(moto) = Moto::start() else { return };
    let seed = Seeder::new(&moto).await;
    seed.topic(TOPIC).await;
    let at = now();
    let five = |back| in_period(at, 300, back);
    // save-data: 25 errors in the last full 5 minutes (> 10), 2.5 minutes behind its stream.
    seed.lambda("Invocations", SAVE_DATA, five(0), 400.0).await;
    seed.lambda("Errors", SAVE_DATA, five(0), 25.0).await;
    seed.lambda("Throttles", SAVE_DATA, five(0), 0.0).await;
    seed.lambda("IteratorAge", SAVE_DATA, in_period(at, 60, 0), 150_000.0)
        .await;
    // mrg-avro: a few errors (under the threshold), but throttled.
    seed.lambda("Invocations", MERGE_AVRO, five(0), 40.0).await;
    seed.lambda("Errors", MERGE_AVRO, five(0), 3.0).await;
    seed.lambda("Throttles", MERGE_AVRO, five(0), 2.0).await;
    // mv-mrgd: healthy; an old error burst outside the window must not count.
    seed.lambda("Invocations", MOVE_MERGED, five(0), 90.0).await;
    seed.lambda("Errors", MOVE_MERGED, five(0), 0.0).await;
    seed.lambda("Errors", MOVE_MERGED, five(3), 500.0).await;
    // Queues: one backed up, one fine.
    seed.metric(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        &[("QueueName", MOVE_QUEUE)],
        five(0),
        5_200.0,
    )
    .await;
    seed.metric(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        &[("QueueName", SCORING_QUEUE)],
        five(0),
        12.0,
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tripline.toml"), config(&moto, "")).unwrap();
    let at_s = at.to_rfc3339();
    let out = tripline(&moto, dir.path(), &["check", "--config", "tripline.toml"]);
    assert!(
        out.status.success(),
        "check: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = tripline(
        &moto,
        dir.path(),
        &[
            "eval",
            "--config",
            "tripline.toml",
            "--at",
            &at_s,
            "--notify",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "eval: {}", stderr(&out));
    let alerts: Vec<Value> =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let mut firing: Vec<String> = alerts
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| a["instance"].as_str().unwrap().to_string())
        .collect();
    firing.sort();
    assert_eq!(
        firing,
        [
            "depth-mv-mrgd-sqs",
            "errors-save-data",
            "iterator-age-save-data",
            "throttles-mrg-avro"
        ],
        "{alerts:#?}"
    );
    assert_eq!(
        alerts.len(),
        4,
        "no other alert (no source or rule errors): {alerts:#?}"
    );

    let msgs = published(&moto);
    assert_eq!(msgs.len(), 4, "one SNS message per firing alert");
    let by_rule: BTreeMap<&str, &Published> = msgs
        .iter()
        .map(|m| (m.attributes["rule"].as_str(), m))
        .collect();
    let errors = by_rule["aws/lambda-errors"];
    assert_eq!(
        errors.subject,
        format!("[FIRING] {SAVE_DATA}: 25 errors in 5m (threshold 10)")
    );
    assert_eq!(errors.attributes["severity"], "critical");
    assert_eq!(errors.attributes["status"], "firing");
    assert_eq!(
        errors.attributes["runbook"],
        "https://runbooks.example.com/aws/lambda-errors"
    );
    let fp = alerts
        .iter()
        .find(|a| a["instance"] == "errors-save-data")
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap();
    assert_eq!(errors.attributes["fingerprint"], fp);
    let text = errors.message["default"].as_str().unwrap();
    assert!(
        text.contains("Runbook: https://runbooks.example.com/aws/lambda-errors\n"),
        "{text}"
    );
    let body: Value = serde_json::from_str(errors.message["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(body["alerts"][0]["labels"]["function"], SAVE_DATA);
    assert_eq!(body["alerts"][0]["value"], 25.0);
    assert_eq!(errors.message["lambda"], errors.message["sqs"]);
    assert_eq!(errors.message["https"], errors.message["sqs"]);

    let throttles = by_rule["aws/lambda-throttles"];
    assert!(
        throttles
            .subject
            .starts_with(&format!("[FIRING] {MERGE_AVRO} throttled 2")),
        "{}",
        throttles.subject
    );
    assert_eq!(
        by_rule["aws/kinesis-iterator-age"].attributes["severity"],
        "high"
    );
    assert_eq!(
        by_rule["aws/sqs-queue-depth"].attributes["runbook"],
        "https://runbooks.example.com/aws/sqs-queue-depth"
    );
    for m in &msgs {
        assert!(m.subject.chars().count() <= 100);
        assert!(m.message["default"]
            .as_str()
            .unwrap()
            .contains(&format!("Runbook: {}", m.attributes["runbook"])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_not_run_fires_for_a_function_without_invocations_and_not_for_one_that_ran() {
    let Some(moto) = Moto::start() else { return };
    moto.reset();
    let seed = Seeder::new(&moto).await;
    seed.topic(TOPIC).await;
    let at = now();
    const RAN: &str = "prd2011-prod1-us-east-1-cmp-prcss-scheduled";
    const NEVER: &str = "prd2011-prod1-us-east-1-cmp-nightly-export";
    // RAN ran once in the rule's last complete day; NEVER has no Invocations datapoint at all
    // (Lambda publishes none when a function is not invoked).
    seed.lambda("Invocations", RAN, in_period(at, 86_400, 0), 1.0)
        .await;
    let extra = format!(
        "\n[[rule]]\nname = \"job-ran\"\nuse = \"aws/lambda-job-not-run\"\nparams = {{ function = \"{RAN}\" }}\n\n[[rule]]\nname = \"job-never-ran\"\nuse = \"aws/lambda-job-not-run\"\nparams = {{ function = \"{NEVER}\" }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    // Only the two job rules: drop the campaign ones.
    let base = config(&moto, "");
    let base = &base[..base.find("\n[[rule]]").unwrap()];
    std::fs::write(dir.path().join("tripline.toml"), format!("{base}\n{extra}")).unwrap();
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
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["instance"], "job-never-ran");
    assert_eq!(alerts[0]["state"], "firing");
    assert_eq!(alerts[0]["severity"], "critical");
    let msgs = published(&moto);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].attributes["rule"], "aws/lambda-job-not-run");
    assert!(msgs[0].subject.contains(NEVER), "{}", msgs[0].subject);
}
