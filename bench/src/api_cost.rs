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

use anyhow::{bail, Context};
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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

/// A loopback TCP proxy to `upstream` that forwards bytes untouched and, on the way in, parses
/// HTTP/1.1 requests (headers + `Content-Length` body) to count them by their form `Action`.
struct CountingProxy {
    port: u16,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CountingProxy {
    async fn start(upstream: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let c = counts.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let c = c.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = relay(client, server, c).await;
                    }
                });
            }
        });
        Ok(CountingProxy { port, counts })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().expect("counts").clone()
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    });
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        for action in parser.feed(&buf[..n]) {
            *counts.lock().expect("counts").entry(action).or_default() += 1;
        }
        sw.write_all(&buf[..n]).await?;
    }
    let _ = sw.shutdown().await;
    let _ = down.await;
    Ok(())
}

/// Splits a client's byte stream into HTTP/1.1 requests and names each by its `Action`.
#[derive(Default)]
struct RequestParser {
    buf: Vec<u8>,
}

impl RequestParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            if self.buf.len() < total {
                break;
            }
            let body = String::from_utf8_lossy(&self.buf[end + 4..total]);
            let action = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("(no Action)")
                .to_string();
            out.push(action);
            self.buf.drain(..total);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::RequestParser;

    #[test]
    fn parser_counts_pipelined_and_split_requests() {
        let r1 =
            "POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nAction=GetMetricData&Version=2010-08-01";
        let r1 = format!("{r1}&");
        let r2 = "POST / HTTP/1.1\r\ncontent-length: 20\r\n\r\nAction=ListMetrics&x";
        let all = format!("{r1}{r2}");
        let mut p = RequestParser::default();
        let (a, b) = all.as_bytes().split_at(50);
        assert!(p.feed(a).is_empty());
        assert_eq!(p.feed(b), ["GetMetricData", "ListMetrics"]);
    }
}
