//! `api-cost`: how many `GetMetricData` calls one cycle of N CloudWatch rule instances makes,
//! counted on the wire.
//!
//! N instances of the stock rule `aws/lambda-errors` (one `Errors`/`Sum`/5 m query each, on its own
//! function `bench-fn-00000` …) run one cycle against an AWS endpoint (moto). The metrics are
//! seeded first with `PutMetricData` (1,000 datums per call, straight to the endpoint): one
//! datapoint per function in the last complete five-minute period, 25 errors for every tenth
//! function and 1 for the others, so a tenth of the instances must fire (threshold 10) — proof the
//! rules saw the data.
//!
//! The engine talks to the endpoint through a loopback proxy in this process that reads each HTTP
//! request's form body and counts it by its `Action` (the query protocol of the pinned
//! aws-sdk-cloudwatch 1.99.0). That count, not the planner's arithmetic, is
//! `get_metric_data_calls`; the engine's own interceptor count (`Source::requests`) is printed
//! beside it as a cross-check.

use crate::counting_proxy::CountingProxy;
use anyhow::{bail, Context};
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tripline::aws::{AwsConfig, Service};
use tripline::source::cloudwatch::{CloudWatchSettings, CloudWatchSource};
use tripline::source::Source;
use tripline::{InstanceSpec, Tripline};

/// The stock rule every instance uses.
const RULE: &str = "aws/lambda-errors";
/// `aws/lambda-errors`'s default threshold; every `BREACH_EVERY`-th function is seeded above it.
const BREACHING: f64 = 25.0;
const QUIET: f64 = 1.0;
const BREACH_EVERY: usize = 10;
/// `GetMetricData` takes at most this many metric queries per call.
const QUERIES_PER_CALL: usize = 500;

#[derive(clap::Args)]
pub struct Args {
    /// AWS endpoint to seed and query, e.g. a local moto server `http://127.0.0.1:5000`.
    #[arg(long)]
    endpoint: String,
    /// Rule instances (one metric query each).
    #[arg(long)]
    instances: usize,
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

fn function(i: usize) -> String {
    format!("bench-fn-{i:05}")
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.instances == 0 {
        bail!("--instances must be at least 1");
    }
    // Test credentials through the default chain, as the `tripline` binary would get them; no
    // profile files or instance metadata lookups. Set before any thread exists.
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
    ] {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_PROFILE");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(measure(a))
}

async fn measure(a: Args) -> anyhow::Result<()> {
    let upstream = a
        .endpoint
        .strip_prefix("http://")
        .context("--endpoint must be http://host:port")?
        .trim_end_matches('/')
        .to_string();
    let at = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");

    // Seed, straight to the endpoint (not counted).
    // moto answers big calls slowly (a 500-query GetMetricData over 10,000 metrics takes tens of
    // seconds; so can a 1,000-datum PutMetricData under load); real AWS does not.
    let timeouts = tripline::aws::AwsTimeouts {
        cloudwatch: Some("300s".into()),
        ..Default::default()
    };
    let direct = AwsConfig {
        region: Some(a.region.clone()),
        endpoint_url: Some(a.endpoint.clone()),
        timeouts: timeouts.clone(),
        ..Default::default()
    };
    let seeding = Instant::now();
    let seeder = aws_sdk_cloudwatch::Client::new(
        &direct
            .sdk_config(Service::CloudWatch)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    seed(&seeder, at, a.instances).await?;
    let seed_secs = seeding.elapsed().as_secs_f64();

    // The engine, through the counting proxy.
    let proxy = CountingProxy::start(upstream).await?;
    let aws = AwsConfig {
        region: Some(a.region.clone()),
        endpoint_url: Some(proxy.url()),
        timeouts,
        ..Default::default()
    };
    let cw = Arc::new(
        CloudWatchSource::new(&aws, CloudWatchSettings::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let mut b = Tripline::builder()
        .source("cloudwatch", cw.clone())
        .fetch_timeout(Duration::from_secs(1800));
    for i in 0..a.instances {
        b = b.instance(
            InstanceSpec::new(format!("errors-{i:05}"), RULE).param("function", function(i)),
        );
    }
    let engine = b.build()?;
    let started = Instant::now();
    let report = engine.run_cycle_at(at, None).await?;
    let cycle_secs = started.elapsed().as_secs_f64();

    if let Some((inst, f)) = report.source_failures.first() {
        bail!(
            "{} source failures, e.g. {inst}: {}",
            report.source_failures.len(),
            f.message
        );
    }
    if let Some((inst, f)) = report.rule_failures.first() {
        bail!(
            "{} rule failures, e.g. {inst}: {f:?}",
            report.rule_failures.len()
        );
    }
    let firing = report
        .alerts
        .iter()
        .filter(|x| x.state.as_str() == "firing")
        .count();
    let expected = a.instances.div_ceil(BREACH_EVERY);
    if firing != expected {
        bail!("{firing} alerts fired, expected {expected}: the rules did not see the seeded data");
    }
    let actions = proxy.counts();
    let calls = actions.get("GetMetricData").copied().unwrap_or(0);
    let out = serde_json::json!({
        "rule": RULE,
        "instances": a.instances,
        "distinct_queries": report.queries,
        "get_metric_data_calls": calls,
        "limit": report.queries.div_ceil(QUERIES_PER_CALL),
        "alerts_fired": firing,
        "alerts_expected": expected,
        "requests_by_action": actions,
        "engine_counted_requests": cw.requests(),
        "cycle_seconds": cycle_secs,
        "seed_seconds": seed_secs,
    });
    println!("{out}");
    Ok(())
}

/// One datapoint per function in the middle of the last complete five-minute period before `at`
/// (the window `aws/lambda-errors` evaluates at `at`), 1,000 datums per `PutMetricData`.
async fn seed(cw: &aws_sdk_cloudwatch::Client, at: DateTime<Utc>, n: usize) -> anyhow::Result<()> {
    let t = at.timestamp();
    let ts = t - t.rem_euclid(300) - 150;
    let datums: Vec<MetricDatum> = (0..n)
        .map(|i| {
            MetricDatum::builder()
                .metric_name("Errors")
                .dimensions(
                    Dimension::builder()
                        .name("FunctionName")
                        .value(function(i))
                        .build(),
                )
                .timestamp(AwsDateTime::from_secs(ts))
                .value(if i % BREACH_EVERY == 0 {
                    BREACHING
                } else {
                    QUIET
                })
                .build()
        })
        .collect();
    for batch in datums.chunks(1000) {
        cw.put_metric_data()
            .namespace("AWS/Lambda")
            .set_metric_data(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutMetricData: {}", tripline::aws::error_chain(&e)))?;
    }
    Ok(())
}
