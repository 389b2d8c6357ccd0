//! CloudWatch metrics, CloudWatch Logs and SNS against a real moto server: the `tripline` binary
//! with stock rules, and the library's AWS sources where a test needs to count requests or
//! stop the server between cycles. Data is seeded with the AWS SDK at instants relative to now.

mod campaign;
mod check;
mod faults;
mod logs;
mod planning;
mod sns;

use crate::support::moto::{Moto, ACCOUNT, REGION};
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::process::{Command, Output};

/// Seeds moto through the AWS SDK, as a real account would be filled by AWS itself.
pub struct Seeder {
    pub cw: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sns: aws_sdk_sns::Client,
}

impl Seeder {
    pub async fn new(moto: &Moto) -> Seeder {
        let conf = moto.sdk_config().await;
        Seeder {
            cw: aws_sdk_cloudwatch::Client::new(&conf),
            logs: aws_sdk_cloudwatchlogs::Client::new(&conf),
            sns: aws_sdk_sns::Client::new(&conf),
        }
    }

    /// One datapoint of `namespace`/`metric` with `dims` at `ts`.
    pub async fn metric(
        &self,
        namespace: &str,
        metric: &str,
        dims: &[(&str, &str)],
        ts: DateTime<Utc>,
        value: f64,
    ) {
        let dims = dims
            .iter()
            .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
            .collect();
        let datum = MetricDatum::builder()
            .metric_name(metric)
            .set_dimensions(Some(dims))
            .timestamp(aws_smithy_types::DateTime::from_secs(ts.timestamp()))
            .value(value)
            .build();
        self.cw
            .put_metric_data()
            .namespace(namespace)
            .metric_data(datum)
            .send()
            .await
            .expect("PutMetricData");
    }

    /// A Lambda metric for one function.
    pub async fn lambda(&self, metric: &str, function: &str, ts: DateTime<Utc>, value: f64) {
        self.metric(
            "AWS/Lambda",
            metric,
            &[("FunctionName", function)],
            ts,
            value,
        )
        .await;
    }

    pub async fn topic(&self, name: &str) -> String {
        self.sns
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn()
            .expect("topic arn")
            .to_string()
    }

    /// Log lines (`(instant, message)`) in a new group and stream.
    pub async fn log_lines(&self, group: &str, lines: &[(DateTime<Utc>, &str)]) {
        let _ = self
            .logs
            .create_log_group()
            .log_group_name(group)
            .send()
            .await;
        let _ = self
            .logs
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name("2026/11/01/[$LATEST]0123")
            .send()
            .await;
        let events = lines
            .iter()
            .map(|(t, m)| {
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(t.timestamp_millis())
                    .message(*m)
                    .build()
                    .expect("log event")
            })
            .collect();
        self.logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name("2026/11/01/[$LATEST]0123")
            .set_log_events(Some(events))
            .send()
            .await
            .expect("PutLogEvents");
    }
}

/// The middle of a bucket of the sliding window a rule evaluated at `at` sees (it ends at `at`'s
/// minute, its buckets count back from there): `back = 0` is the last one, 1 the one before, …
pub fn in_period(at: DateTime<Utc>, period_secs: i64, back: i64) -> DateTime<Utc> {
    // Windows slide: they end at the minute and their buckets count back from there.
    let t = at.timestamp();
    let end = t - t.rem_euclid(60);
    DateTime::from_timestamp(end - (back + 1) * period_secs + period_secs / 2, 0)
        .expect("valid instant")
}

/// Now, to the second.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now")
}

pub fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
}

/// The `[aws]` table pointing at moto.
pub fn aws_table(moto: &Moto) -> String {
    format!(
        "[aws]\nregion = \"{REGION}\"\nendpoint_url = \"{}\"\n",
        moto.endpoint()
    )
}

/// The `[aws]` settings for library-level tests.
pub fn aws_config(moto: &Moto) -> tripline::aws::AwsConfig {
    tripline::aws::AwsConfig {
        region: Some(REGION.into()),
        endpoint_url: Some(moto.endpoint()),
        ..Default::default()
    }
}

/// Runs `tripline ARGS` in `dir` with moto's test credentials in the environment.
pub fn tripline(moto: &Moto, dir: &Path, args: &[&str]) -> Output {
    Command::new(crate::support::bin::tripline_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("AWS_PROFILE")
        .envs(moto.env())
        .output()
        .expect("start tripline")
}

/// Library tests resolve credentials through the default chain like the binary does; moto
/// accepts any, so the process environment gets test ones (identical in every test).
pub fn test_credentials_in_env() {
    // SAFETY-free in edition 2021: every test writes the same values.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}
