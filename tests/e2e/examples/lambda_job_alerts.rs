//! Runbook 002: the scheduled `admin-directory-lambda-dev` job in moto, the example config with
//! only `[aws] endpoint_url` rewritten, and what reaches its two SNS topics: a clean day is an
//! info summary on the quiet topic, a failed day is JOB FAILED and a day without a run is JOB NOT
//! RUN (insufficient data breaching) on the alerts topic.

use super::*;
use crate::aws::{now, Seeder};
use crate::support::moto::Moto;

const FUNCTION: &str = "admin-directory-lambda-dev";
const ALERTS: &str = "admin-directory-lambda-dev-alerts";
const SUMMARIES: &str = "admin-directory-lambda-dev-job-summaries";
const RUNBOOK: &str = "https://runbooks.example.com/lambda-job-alerts#cloudwatch-alerts-and-sns-notifications-for-lambda-jobs";

/// `(subject, severity attribute, runbook attribute)` of each message published to `topic`.
fn published(moto: &Moto, topic: &str) -> Vec<(String, String, String)> {
    moto.sns_messages(topic)
        .iter()
        .map(|m| {
            let attr = |k: &str| m[3][k]["Value"].as_str().unwrap_or_default().to_string();
            (
                m[2].as_str().unwrap_or_default().to_string(),
                attr("severity"),
                attr("runbook"),
            )
        })
        .collect()
}

/// Resets moto, creates the topics and the function's log group, seeds `day` (metric, value)
/// pairs at the end of the previous UTC day and evaluates the example: the alerts it reports.
async fn day(moto: &Moto, day: &[(&str, f64)]) -> Vec<Value> {
    moto.reset();
    let seed = Seeder::new(moto).await;
    seed.topic(ALERTS).await;
    seed.topic(SUMMARIES).await;
    let _ = seed
        .logs
        .create_log_group()
        .log_group_name(format!("/aws/lambda/{FUNCTION}"))
        .send()
        .await;
    let at = now();
    // 23:59 yesterday (UTC): inside the last 24 hours that job-not-run and job-failed look at
    // (their windows slide) and inside the previous UTC day that job-succeeded summarises.
    let midnight = at.timestamp() - at.timestamp().rem_euclid(86_400);
    let run = chrono::DateTime::from_timestamp(midnight - 60, 0).expect("an instant");
    for (metric, v) in day {
        seed.lambda(metric, FUNCTION, run, *v).await;
    }
    let config = rewrite(
        LAMBDA_JOB_ALERTS,
        "# endpoint_url = \"http://127.0.0.1:5000\"",
        &format!("endpoint_url = \"{}\"", moto.endpoint()),
    );
    let dir = dir_with(&config);
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    eval(dir.path(), &env, Some(&at.to_rfc3339()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_job_summaries_go_to_the_quiet_topic_and_failures_to_the_alerts_topic() {
    let Some(moto) = Moto::start() else { return };

    // JOB SUCCEEDED: one invocation yesterday, no errors. Nothing on the alerts topic; one info
    // summary with the day's statistics on the quiet one.
    let alerts = day(
        &moto,
        &[
            ("Invocations", 1.0),
            ("Errors", 0.0),
            ("Duration", 120_000.0),
        ],
    )
    .await;
    assert_eq!(
        summary(&alerts),
        triples(&[("admin-directory-job-succeeded", "firing", "info")]),
        "{alerts:#?}"
    );
    assert_eq!(published(&moto, ALERTS), vec![]);
    let summaries = published(&moto, SUMMARIES);
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(summaries[0].1, "info");
    assert_eq!(summaries[0].2, RUNBOOK);
    assert!(summaries[0].0.contains(FUNCTION), "{summaries:?}");

    // JOB FAILED (Admin-directory-lambda-dev-cw-alarm-error): it ran and raised an error.
    let alerts = day(&moto, &[("Invocations", 1.0), ("Errors", 1.0)]).await;
    assert_eq!(
        summary(&alerts),
        triples(&[("admin-directory-job-failed", "firing", "high")]),
        "{alerts:#?}"
    );
    let failed = published(&moto, ALERTS);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (failed[0].1.as_str(), failed[0].2.as_str()),
        ("high", RUNBOOK)
    );
    assert_eq!(published(&moto, SUMMARIES), vec![]);

    // JOB NOT RUN (admin-directory-lambda-dev-cw-alarm-invoc-02): no datapoint at all, which is
    // breaching; JOB FAILED (also breaching on no data) is inhibited by it.
    let alerts = day(&moto, &[]).await;
    assert_eq!(
        summary(&alerts),
        triples(&[
            ("admin-directory-job-failed", "firing", "high"),
            ("admin-directory-job-not-run", "firing", "critical"),
        ]),
        "{alerts:#?}"
    );
    let not_run = published(&moto, ALERTS);
    assert_eq!(not_run.len(), 1, "only JOB NOT RUN is told: {not_run:?}");
    assert_eq!(
        (not_run[0].1.as_str(), not_run[0].2.as_str()),
        ("critical", RUNBOOK)
    );
    assert!(not_run[0].0.contains(FUNCTION), "{not_run:?}");
    assert_eq!(published(&moto, SUMMARIES), vec![]);
}
