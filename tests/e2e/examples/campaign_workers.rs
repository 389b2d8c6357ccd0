//! Runbook 000: the campaign-workers Lambdas, Kinesis consumer and SQS queue in moto, the
//! example config with only `[aws] endpoint_url` and the PagerDuty URL rewritten.

use super::*;
use crate::aws::{in_period, now, test_credentials_in_env, Seeder};
use crate::support::moto::Moto;
use std::sync::Arc;

const SAVE_DATA: &str = "prd2011-prod1-us-east-1-cmp-save-data";
const PRCSS_SCHEDULED: &str = "prd2011-prod1-us-east-1-cmp-prcss-scheduled";
const MRG_AVRO: &str = "prd2011-prod1-us-east-1-cmp-mrg-avro";
const MV_MRGD: &str = "prd2011-prod1-us-east-1-cmp-mv-mrgd";
const MV_MRGD_SQS: &str = "prd2011-prod1-us-east-1-cmp-mv-mrgd-sqs";
const RUNBOOK: &str = "https://runbooks.example.com/campaign-workers";
/// Another environment's function, which the prod1 fleet glob must not match.
const DEV_SAVE_DATA: &str = "prd2011-dev1-us-east-1-cmp-save-data";
/// The same alarms one `[[rule]]` per function, as the example had them before fleet rules.
const PER_FUNCTION_RULES: &str =
    include_str!("../../fixtures/campaign-workers/per-function-rules.toml");

/// `(instance, function or queue, state, severity)` of each alert, sorted.
fn by_subject(alerts: &[Value]) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            let l = &a["labels"];
            let subject = l["function"].as_str().or(l["queue"].as_str());
            (
                a["instance"].as_str().unwrap_or_default().to_string(),
                subject.unwrap_or_default().to_string(),
                a["state"].as_str().unwrap_or_default().to_string(),
                a["severity"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn quads(v: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = v
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    v.sort();
    v
}

/// The runbook's incident: healthy workers first (`incident = false`), then saveCampaignData
/// failing (25 errors in 5 minutes), 2.5 minutes behind its stream and near its timeout,
/// mergeAvroFiles throttled, the moveMergedAvroFiles queue backed up. Another environment's
/// copy of saveCampaignData fails loudly all along: nothing of prod1 may notice.
async fn seed_incident(seed: &Seeder, at: chrono::DateTime<chrono::Utc>, incident: bool) {
    let five = in_period(at, 300, 0);
    let minute = in_period(at, 60, 0);
    let depth = |v| {
        seed.metric(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            &[("QueueName", MV_MRGD_SQS)],
            five,
            v,
        )
    };
    if !incident {
        // The memory rule reads each function's log group (Logs Insights).
        let _ = seed
            .logs
            .create_log_group()
            .log_group_name(format!("/aws/lambda/{SAVE_DATA}"))
            .send()
            .await;
        for f in [SAVE_DATA, PRCSS_SCHEDULED, MRG_AVRO, MV_MRGD] {
            seed.lambda("Invocations", f, five, 200.0).await;
            seed.lambda("Errors", f, five, 0.0).await;
            seed.lambda("Throttles", f, five, 0.0).await;
            seed.lambda("Duration", f, five, 3_000.0).await;
        }
        seed.lambda("IteratorAge", SAVE_DATA, minute, 400.0).await;
        depth(3.0).await;
        seed.lambda("Errors", DEV_SAVE_DATA, five, 500.0).await;
        seed.lambda("Throttles", DEV_SAVE_DATA, five, 9.0).await;
        seed.lambda("Duration", DEV_SAVE_DATA, five, 59_000.0).await;
        return;
    }
    seed.lambda("Errors", SAVE_DATA, five, 25.0).await;
    seed.lambda("Duration", SAVE_DATA, five, 55_000.0).await;
    seed.lambda("IteratorAge", SAVE_DATA, minute, 150_000.0)
        .await;
    seed.lambda("Throttles", MRG_AVRO, five, 2.0).await;
    seed.lambda("Errors", MRG_AVRO, five, 3.0).await;
    depth(5_200.0).await;
}

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
    seed_incident(&seed, at, false).await;
    let dir = dir_with(&with_moto(CAMPAIGN_WORKERS, &moto, &rx));
    let alerts = eval(dir.path(), &env, Some(&at.to_rfc3339()));
    assert_eq!(summary(&alerts), vec![], "{alerts:#?}");
    assert_eq!(rx.counts(), BTreeMap::new());

    // The incident, in the same periods.
    seed_incident(&seed, at, true).await;
    let dir = dir_with(&with_moto(CAMPAIGN_WORKERS, &moto, &rx));
    let alerts = eval(dir.path(), &env, Some(&at.to_rfc3339()));
    // One alert per function of the fleet rules; nothing for the dev1 function.
    assert_eq!(
        by_subject(&alerts),
        quads(&[
            ("lambda-duration", SAVE_DATA, "firing", "warning"),
            ("lambda-errors", SAVE_DATA, "firing", "critical"),
            ("lambda-throttles", MRG_AVRO, "firing", "critical"),
            ("mv-mrgd-queue-depth", MV_MRGD_SQS, "firing", "critical"),
            ("save-data-iterator-age", SAVE_DATA, "firing", "critical"),
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
        vec![page("lambda-errors"), page("lambda-throttles")]
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

/// An engine for `rules` (a config's `[[rule]]` tables) reading moto, with the example's sources.
fn engine_for(moto: &Moto, rules: &str) -> tripline::Tripline {
    let text = format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[sources.cloudwatch]\ntype = \"cloudwatch\"\ndiscovery_ttl = \"5m\"\n\n[sources.logs_insights]\ntype = \"logs\"\n\n{rules}",
        moto.endpoint()
    );
    let cfg = tripline::config::Config::parse(std::path::Path::new("tripline.toml"), text)
        .expect("config");
    let opts = tripline::assembly::WireOptions {
        tolerate_rule_errors: false,
        store: Some(Arc::new(tripline::store::SqliteStore::in_memory().unwrap())),
        ..Default::default()
    };
    tripline::assembly::build(&cfg, opts).expect("engine")
}

/// The example's `[[rule]]` tables, from its first rule section on.
fn rules_of(config: &str) -> &str {
    &config[config.find("# --- Critical alarms").expect("rules section")..]
}

/// What an alert says, whichever instance raised it: `(rule, function or queue, state,
/// severity, value, summary, labels but alertname)`.
type Said = (String, String, String, String, String, String, String);

fn alert_set(alerts: &[tripline::alert::Alert]) -> Vec<Said> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            let subject = a.labels.get("function").or(a.labels.get("queue"));
            let mut labels = a.labels.clone();
            labels.remove("alertname");
            (
                a.rule.clone(),
                subject.cloned().unwrap_or_default(),
                a.state.as_str().to_string(),
                a.severity.to_string(),
                format!("{:?}", a.value),
                a.summary.clone(),
                format!("{labels:?}"),
            )
        })
        .collect();
    v.sort();
    v
}

fn calls(engine: &tripline::Tripline, op: &str) -> u64 {
    engine
        .source_requests_by_operation()
        .iter()
        .filter(|(kind, o, _)| kind == "cloudwatch" && o == op)
        .map(|(_, _, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_rules_raise_the_per_function_alerts_at_one_call_per_500_queries() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let at = now();
    seed_incident(&seed, at, false).await;
    seed_incident(&seed, at, true).await;

    let fleet = engine_for(&moto, rules_of(CAMPAIGN_WORKERS));
    let per_function = engine_for(&moto, PER_FUNCTION_RULES);
    assert!(fleet.instances().len() < per_function.instances().len());
    let f = fleet.run_cycle_at(at, None).await.unwrap();
    let p = per_function.run_cycle_at(at, None).await.unwrap();
    for r in [&f, &p] {
        assert!(r.source_failures.is_empty(), "{:?}", r.source_failures);
        assert!(r.rule_failures.is_empty(), "{:?}", r.rule_failures);
    }
    assert_eq!(alert_set(&f.alerts), alert_set(&p.alerts));
    assert_eq!(
        alert_set(&f.alerts)
            .iter()
            .map(|(rule, subject, ..)| (rule.as_str(), subject.as_str()))
            .collect::<Vec<_>>(),
        [
            ("aws/kinesis-iterator-age", SAVE_DATA),
            ("aws/lambda-duration-near-timeout", SAVE_DATA),
            ("aws/lambda-errors", SAVE_DATA),
            ("aws/lambda-throttles", MRG_AVRO),
            ("aws/sqs-queue-depth", MV_MRGD_SQS),
        ]
    );
    assert!(!format!("{:?}", f.alerts).contains("dev1"));

    // The cost. A GetMetricData call has one StartTime/EndTime, so the planner packs queries by
    // window: the 13 five-minute queries (4 workers × errors, throttles, duration; the queue
    // depth) and the one one-minute query (the iterator age) are ⌈13 / 500⌉ + ⌈1 / 500⌉ = 2
    // calls, exactly the per-function config's. Each of the three globbed metrics (Errors,
    // Throttles, Duration) is listed once: ⌈5 functions / 500⌉ = 1 ListMetrics page each (the
    // dev1 function is listed, then left out by the glob).
    let cw_queries = f.queries - 1; // the Logs Insights memory query of the one log group
    assert_eq!(cw_queries, 14);
    assert_eq!(cw_queries, p.queries - 1);
    assert_eq!(
        calls(&fleet, "GetMetricData"),
        13usize.div_ceil(500) as u64 + 1
    );
    assert_eq!(calls(&fleet, "ListMetrics"), 3);
    assert_eq!(
        calls(&per_function, "GetMetricData"),
        calls(&fleet, "GetMetricData"),
        "the per-function config makes the same calls"
    );
    assert_eq!(calls(&per_function, "ListMetrics"), 0);
    // A minute later, within the discovery TTL: GetMetricData only, and the same alerts.
    let f2 = fleet
        .run_cycle_at(at + chrono::Duration::minutes(1), None)
        .await
        .unwrap();
    assert_eq!(calls(&fleet, "GetMetricData"), 4);
    assert_eq!(calls(&fleet, "ListMetrics"), 3);
    assert_eq!(f2.alerts.len(), 5, "{:#?}", f2.alerts);
}
