//! A week of CloudWatch history on moto: 100 functions, each an `aws/lambda-errors` instance with
//! 1-minute periods replayed every 5 minutes over 7 days. The backtest must fetch it in the fewest
//! `GetMetricData` calls the API's limits allow — ⌈datapoints / 100,800⌉ + ⌈queries / 500⌉ with
//! 100 × 10,080 one-minute datapoints asked — counted on the wire as the API-cost benchmark does
//! (a loopback proxy reading each request's form `Action`), and report the seeded incidents.
//!
//! Seeded are the incidents' own 1-minute datapoints (Lambda publishes no `Errors` datapoint for a
//! minute without errors). A full week of datapoints for every function is not seeded: moto's
//! GetMetricData scans every stored datapoint once per query and period (a million datapoints
//! would take it hours per call); the calls asked for cover the whole 1,008,000-datapoint range
//! either way, which is what the call count depends on.

use crate::aws::{test_credentials_in_env, Seeder};
use crate::support::counting_proxy::CountingProxy;
use crate::support::{bin, moto::Moto, moto::REGION};
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::fmt::Write as _;

const FUNCTIONS: usize = 100;
const DATAPOINTS_PER_CALL: usize = 100_800;
const QUERIES_PER_CALL: usize = 500;

fn function(i: usize) -> String {
    format!("week-fn-{i:03}")
}

/// (function, start, minutes, errors per minute): above the threshold of 10 for `minutes`.
fn incidents(from: DateTime<Utc>) -> Vec<(usize, DateTime<Utc>, i64, f64)> {
    vec![
        // Day 1, 10:00: ten minutes of 30 errors a minute.
        (7, from + Duration::hours(34), 10, 30.0),
        // Day 3: twenty minutes of 12 a minute.
        (42, from + Duration::days(3) + Duration::hours(2), 20, 12.0),
        // Day 6: five minutes of 50, and below the threshold (5 a minute) on another function.
        (
            77,
            from + Duration::days(6) + Duration::minutes(15),
            5,
            50.0,
        ),
        (78, from + Duration::days(6) + Duration::minutes(15), 5, 5.0),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_one_minute_data_for_100_functions_takes_the_fewest_get_metric_data_calls() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    // The range: the last 7 days, in whole 5-minute steps.
    let now = Utc::now().timestamp();
    let to = DateTime::from_timestamp(now - now.rem_euclid(300) - 300, 0).unwrap();
    let from = to - Duration::days(7);

    let mut data = vec![];
    for (f, start, minutes, v) in incidents(from) {
        for m in 0..minutes {
            let ts = start + Duration::minutes(m) + Duration::seconds(20);
            data.push(
                MetricDatum::builder()
                    .metric_name("Errors")
                    .dimensions(
                        Dimension::builder()
                            .name("FunctionName")
                            .value(function(f))
                            .build(),
                    )
                    .timestamp(aws_smithy_types::DateTime::from_secs(ts.timestamp()))
                    .value(v)
                    .build(),
            );
        }
    }
    for chunk in data.chunks(1000) {
        seed.cw
            .put_metric_data()
            .namespace("AWS/Lambda")
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .expect("PutMetricData");
    }

    let proxy = CountingProxy::start(moto.endpoint().trim_start_matches("http://").to_string())
        .await
        .expect("proxy");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = format!(
        "[aws]\nregion = \"{REGION}\"\nendpoint_url = \"{}\"\n\n[store]\ntype = \"memory\"\n\n\
         [sources.cloudwatch]\ntype = \"cloudwatch\"\n\n\
         [[receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"http://127.0.0.1:9/never\"\n\n\
         [route]\nreceiver = \"hook\"\ngroup_wait = \"0s\"\n",
        proxy.url()
    );
    for i in 0..FUNCTIONS {
        let _ = write!(
            cfg,
            "\n[[rule]]\nuse = \"aws/lambda-errors\"\nname = \"errors-{i:03}\"\nevery = \"0 */5 * * * *\"\n\
             params = {{ function = \"{}\", period = \"1m\" }}\n",
            function(i)
        );
    }
    std::fs::write(dir.path().join("tripline.toml"), cfg).unwrap();
    let (from_s, to_s) = (from.to_rfc3339(), to.to_rfc3339());
    let dir_path = dir.path().to_path_buf();
    let envs = moto.env();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin::tripline_bin())
            .args([
                "backtest",
                "--config",
                "tripline.toml",
                "--from",
                &from_s,
                "--to",
                &to_s,
                "--format",
                "json",
                "--no-progress",
            ])
            .current_dir(&dir_path)
            .env_remove("RUST_LOG")
            .env_remove("AWS_PROFILE")
            .envs(envs)
            .output()
            .expect("start tripline")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", bin::stderr(&out));
    let r: Value = serde_json::from_str(&bin::stdout(&out)).expect("JSON report");

    // On the wire: GetMetricData calls, nothing else but what discovery needs (none here).
    let counts = proxy.counts();
    let calls = counts.get("GetMetricData").copied().unwrap_or(0) as usize;
    let datapoints = FUNCTIONS * 7 * 24 * 60;
    let bound = datapoints.div_ceil(DATAPOINTS_PER_CALL) + FUNCTIONS.div_ceil(QUERIES_PER_CALL);
    eprintln!(
        "moto week: {datapoints} datapoints asked for {FUNCTIONS} queries: {calls} GetMetricData \
         calls on the wire (bound {bound}); engine's count {}; all requests {counts:?}; {}",
        r["requests"],
        bin::stderr(&out).lines().last().unwrap_or("")
    );
    assert!(
        calls >= 1 && calls <= bound,
        "{calls} calls > {bound}: {counts:?}"
    );
    assert_eq!(
        r["requests"]["cloudwatch"].as_u64(),
        Some(calls as u64),
        "the engine counts what the wire saw"
    );
    assert_eq!(
        r["evaluations"],
        2017 * FUNCTIONS as u64,
        "{}",
        r["evaluations"]
    );

    // The seeded incidents, each on its function, and nothing else.
    let mut got: Vec<(String, String, String)> = vec![];
    for inst in r["instances"].as_array().unwrap() {
        for s in inst["subjects"].as_array().unwrap() {
            for i in s["intervals"].as_array().unwrap() {
                got.push((
                    inst["name"].as_str().unwrap().to_string(),
                    i["start"].as_str().unwrap().to_string(),
                    i["end"].as_str().unwrap_or("-").to_string(),
                ));
            }
        }
    }
    got.sort();
    // Replayed every 5 minutes over the minute before: an incident of M minutes starting on a
    // 5-minute mark T fires at T+5m … (the instants whose minute before is inside it) and
    // resolves at the first instant whose minute before has no datapoint.
    let t = |d: DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let norm = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|d| t(d.with_timezone(&Utc)))
            .unwrap_or_else(|_| s.to_string())
    };
    let got: Vec<(String, String, String)> = got
        .into_iter()
        .map(|(n, a, b)| (n, norm(&a), norm(&b)))
        .collect();
    let want: Vec<(String, String, String)> = incidents(from)
        .into_iter()
        .filter(|(_, _, _, v)| *v > 10.0)
        .map(|(f, start, minutes, _)| {
            (
                format!("errors-{f:03}"),
                t(start + Duration::minutes(5)),
                t(start + Duration::minutes(minutes + 5)),
            )
        })
        .collect();
    assert_eq!(got, want);
}
