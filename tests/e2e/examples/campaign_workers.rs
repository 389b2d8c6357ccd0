//! Runbook 000: the campaign-workers Lambdas, Kinesis consumer and SQS queue in moto, the
//! example config with only `[aws] endpoint_url` and the PagerDuty URL rewritten.

use super::*;
use crate::aws::{in_period, now, Seeder};
use crate::support::moto::Moto;

const SAVE_DATA: &str = "prd2011-prod1-us-east-1-cmp-save-data";
const PRCSS_SCHEDULED: &str = "prd2011-prod1-us-east-1-cmp-prcss-scheduled";
const MRG_AVRO: &str = "prd2011-prod1-us-east-1-cmp-mrg-avro";
const MV_MRGD: &str = "prd2011-prod1-us-east-1-cmp-mv-mrgd";
const MV_MRGD_SQS: &str = "prd2011-prod1-us-east-1-cmp-mv-mrgd-sqs";
const RUNBOOK: &str = "https://runbooks.example.com/campaign-workers";

fn with_moto(config: &str, moto: &Moto, rx: &Receivers) -> String {
    let c = rewrite(
        config,
        "# endpoint_url = \"http://127.0.0.1:5000\"",
        &format!("endpoint_url = \"{}\"", moto.endpoint()),
    );
    rewrite(&c, PAGERDUTY_URL, &rx.url("oncall-pagerduty"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_workers_incident_pages_on_call_and_alerts_the_team() {
    let Some(moto) = Moto::start() else { return };
    let seed = Seeder::new(&moto).await;
    let rx = Receivers::start(&[
        ("team-slack", "SLACK_WEBHOOK_URL"),
        ("oncall-pagerduty", "PAGERDUTY_ROUTING_KEY"),
        ("team-lead", "TEAM_LEAD_WEBHOOK_URL"),
        ("engineering-manager", "MANAGER_WEBHOOK_URL"),
        ("devops", "DEVOPS_WEBHOOK_URL"),
    ]);
    let mut env = rx.env.clone();
    env.extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    let at = now();
    let five = in_period(at, 300, 0);
    let minute = in_period(at, 60, 0);
    // The memory rule reads each function's log group (Logs Insights).
    let _ = seed
        .logs
        .create_log_group()
        .log_group_name(format!("/aws/lambda/{SAVE_DATA}"))
        .send()
        .await;

    // Healthy: every worker invoked, no errors or throttles, the stream consumer current, the
    // queue nearly empty, executions far from the 60 s timeout.
    for f in [SAVE_DATA, PRCSS_SCHEDULED, MRG_AVRO, MV_MRGD] {
        seed.lambda("Invocations", f, five, 200.0).await;
        seed.lambda("Errors", f, five, 0.0).await;
        seed.lambda("Throttles", f, five, 0.0).await;
        seed.lambda("Duration", f, five, 3_000.0).await;
    }
    seed.lambda("IteratorAge", SAVE_DATA, minute, 400.0).await;
    let depth = |v| {
        seed.metric(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            &[("QueueName", MV_MRGD_SQS)],
            five,
            v,
        )
    };
    depth(3.0).await;
    let dir = dir_with(&with_moto(CAMPAIGN_WORKERS, &moto, &rx));
    let alerts = eval(dir.path(), &env, Some(&at.to_rfc3339()));
    assert_eq!(summary(&alerts), vec![], "{alerts:#?}");
    assert_eq!(rx.counts(), BTreeMap::new());

    // The incident, in the same periods: saveCampaignData failing (25 errors in 5 minutes) and
    // falling 2.5 minutes behind its stream, its executions near the timeout; mergeAvroFiles
    // throttled; the moveMergedAvroFiles queue backed up.
    seed.lambda("Errors", SAVE_DATA, five, 25.0).await;
    seed.lambda("Duration", SAVE_DATA, five, 55_000.0).await;
    seed.lambda("IteratorAge", SAVE_DATA, minute, 150_000.0)
        .await;
    seed.lambda("Throttles", MRG_AVRO, five, 2.0).await;
    seed.lambda("Errors", MRG_AVRO, five, 3.0).await;
    depth(5_200.0).await;
    let dir = dir_with(&with_moto(CAMPAIGN_WORKERS, &moto, &rx));
    let alerts = eval(dir.path(), &env, Some(&at.to_rfc3339()));
    assert_eq!(
        summary(&alerts),
        triples(&[
            ("mrg-avro-throttles", "firing", "critical"),
            ("mv-mrgd-queue-depth", "firing", "critical"),
            ("save-data-duration", "firing", "warning"),
            ("save-data-errors", "firing", "critical"),
            ("save-data-iterator-age", "firing", "critical"),
        ]),
        "{alerts:#?}"
    );

    // Lambda Errors and Throttles: "page on-call".
    let page = |n: &str| {
        (
            n.to_string(),
            "critical".to_string(),
            format!("{RUNBOOK}#critical-alarms"),
        )
    };
    assert_eq!(
        pagerduty_triggers(&rx.bodies("oncall-pagerduty")),
        vec![page("mrg-avro-throttles"), page("save-data-errors")]
    );
    // Iterator age and queue depth: "alert team". The duration warning of the failing function
    // is inhibited by its errors.
    let slack = serde_json::to_string(&rx.bodies("team-slack")).unwrap();
    assert!(
        slack.contains(&format!("{RUNBOOK}#issue-kinesis-iterator-age-increasing")),
        "{slack}"
    );
    assert!(
        slack.contains(&format!("{RUNBOOK}#issue-sqs-messages-not-being-processed")),
        "{slack}"
    );
    assert!(!slack.contains("#issue-lambda-timing-out"), "{slack}");
    assert_eq!(
        rx.counts(),
        BTreeMap::from([("oncall-pagerduty", 2), ("team-slack", 2)])
    );
}
