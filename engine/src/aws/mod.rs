//! What the AWS sources (CloudWatch metrics, CloudWatch Logs) and the SNS receiver share: the
//! `[aws]` config table, building an SDK config from it through the default credential chain,
//! checking that region and credentials resolve before the first cycle, counting the HTTP
//! requests actually sent, and telling a retryable SDK error from a permanent one.
//!
//! It holds no service logic; each service lives in its own folder (`source/cloudwatch`,
//! `source/logs`, `notify/sns`).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use rand::Rng;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The `[aws]` table: where and as whom Tripline calls AWS. Credentials always come from the
/// default provider chain (environment, profile, SSO, web identity, container or instance role),
/// never from this file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// AWS region, e.g. `"us-east-1"`. When absent, the default chain decides (`AWS_REGION`,
    /// the profile's region, instance metadata); `tripline check` fails if none resolves.
    pub region: Option<String>,
    /// Send every AWS request here instead of the service's public endpoint, e.g. a local moto
    /// server (`"http://127.0.0.1:5000"`) or a VPC endpoint.
    pub endpoint_url: Option<String>,
    /// Named profile from `~/.aws/config` to take region and credentials from.
    pub profile: Option<String>,
    /// How long to wait for a TCP/TLS connection to an AWS endpoint (default `"3s"`).
    pub connect_timeout: Option<String>,
    /// Time limit of one HTTP attempt, per service.
    #[serde(default)]
    pub timeouts: AwsTimeouts,
}

/// Per-service time limit of one HTTP attempt (retries are counted separately and bounded by
/// the cycle's `engine.fetch_timeout`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsTimeouts {
    /// CloudWatch `GetMetricData` / `ListMetrics` attempts (default `"10s"`).
    pub cloudwatch: Option<String>,
    /// CloudWatch Logs calls (default `"10s"`).
    pub logs: Option<String>,
    /// SNS `Publish` attempts (default `"5s"`).
    pub sns: Option<String>,
    /// DynamoDB store calls (default `"5s"`).
    pub dynamodb: Option<String>,
}

/// Which service a client is built for; picks the attempt timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    CloudWatch,
    Logs,
    Sns,
    DynamoDb,
}

fn dur(s: Option<&String>, default: Duration, what: &str) -> Result<Duration, String> {
    match s {
        None => Ok(default),
        Some(s) => crate::clock::parse_duration(s)
            .map(|d| d.to_std().unwrap_or(default))
            .map_err(|e| format!("aws.{what}: {e}")),
    }
}

impl AwsConfig {
    /// The attempt timeout for `service`.
    pub fn attempt_timeout(&self, service: Service) -> Result<Duration, String> {
        match service {
            Service::CloudWatch => dur(
                self.timeouts.cloudwatch.as_ref(),
                Duration::from_secs(10),
                "timeouts.cloudwatch",
            ),
            Service::Logs => dur(
                self.timeouts.logs.as_ref(),
                Duration::from_secs(10),
                "timeouts.logs",
            ),
            Service::Sns => dur(
                self.timeouts.sns.as_ref(),
                Duration::from_secs(5),
                "timeouts.sns",
            ),
            Service::DynamoDb => dur(
                self.timeouts.dynamodb.as_ref(),
                Duration::from_secs(5),
                "timeouts.dynamodb",
            ),
        }
    }

    /// Checks the settings that can be checked without calling AWS.
    pub fn validate(&self) -> Result<(), String> {
        dur(
            self.connect_timeout.as_ref(),
            Duration::from_secs(3),
            "connect_timeout",
        )?;
        for s in [
            Service::CloudWatch,
            Service::Logs,
            Service::Sns,
            Service::DynamoDb,
        ] {
            self.attempt_timeout(s)?;
        }
        if let Some(u) = &self.endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "aws.endpoint_url {u:?} must start with http:// or https://"
                ));
            }
        }
        Ok(())
    }

    /// Builds the shared SDK config for `service`. SDK-level retries are off: the sources retry
    /// within the cycle's deadline and the outbox retries deliveries, so every attempt is visible
    /// (and counted) here.
    pub async fn sdk_config(&self, service: Service) -> Result<SdkConfig, String> {
        self.validate()?;
        let connect = dur(
            self.connect_timeout.as_ref(),
            Duration::from_secs(3),
            "connect_timeout",
        )?;
        let attempt = self.attempt_timeout(service)?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(connect)
                    .operation_attempt_timeout(attempt)
                    .build(),
            );
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(u) = &self.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        Ok(loader.load().await)
    }

    /// What `tripline check` runs when the config uses AWS: the region and credentials must
    /// resolve now, not fail at the first cycle. Makes no call to an AWS service.
    pub async fn check(&self) -> Result<(), String> {
        let conf = self.sdk_config(Service::CloudWatch).await?;
        if conf.region().is_none() {
            return Err("aws: no region: set `region` in the [aws] table, AWS_REGION in the environment, or a region in the AWS profile".into());
        }
        let Some(provider) = conf.credentials_provider() else {
            return Err("aws: no credentials provider could be built".into());
        };
        match tokio::time::timeout(Duration::from_secs(10), provider.provide_credentials()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "aws: no credentials found by the default chain (environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile{}, SSO, web identity, container or instance role): {}",
                self.profile.as_ref().map(|p| format!(" {p:?}")).unwrap_or_default(),
                error_chain(&e)
            )),
            Err(_) => Err("aws: timed out after 10s looking for credentials in the default chain".into()),
        }
    }
}

/// `LazyClient::new(aws, service, …)` for the SDK crate `$sdk`: its client, built from the shared
/// SDK config with the request counter as an interceptor. One place for what every AWS component
/// (CloudWatch, Logs, SNS) writes the same way; a macro because each SDK crate has its own
/// `config::Builder` type and no trait joins them.
macro_rules! lazy_client {
    ($aws:expr, $service:expr, $sdk:ident) => {
        $crate::aws::LazyClient::new($aws, $service, |sdk, requests| {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(sdk)
                    .interceptor(requests)
                    .build(),
            )
        })
    };
}
pub(crate) use lazy_client;

/// An SDK client built on first use, so that wiring a config stays synchronous and a process
/// that never fetches never resolves credentials.
pub struct LazyClient<C> {
    aws: AwsConfig,
    service: Service,
    make: fn(&SdkConfig, RequestCounter) -> C,
    cell: tokio::sync::OnceCell<C>,
    requests: RequestCounter,
}

impl<C: Clone> LazyClient<C> {
    /// Checks `aws` now; builds the client with `make` at the first `get`.
    pub fn new(
        aws: &AwsConfig,
        service: Service,
        make: fn(&SdkConfig, RequestCounter) -> C,
    ) -> Result<Self, String> {
        aws.validate()?;
        Ok(LazyClient {
            aws: aws.clone(),
            service,
            make,
            cell: tokio::sync::OnceCell::new(),
            requests: RequestCounter::default(),
        })
    }

    pub async fn get(&self) -> Result<C, String> {
        self.cell
            .get_or_try_init(|| async {
                let sdk = self.aws.sdk_config(self.service).await?;
                Ok::<C, String>((self.make)(&sdk, self.requests.clone()))
            })
            .await
            .cloned()
    }

    /// HTTP requests the client has transmitted (every attempt).
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// [`Self::requests`] by operation.
    pub fn requests_by_operation(&self) -> BTreeMap<String, u64> {
        self.requests.by_operation()
    }
}

/// `e` and its sources, joined, without anything a credential provider might put in a value.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !parts.contains(&m) {
            parts.push(m);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Counts the HTTP requests an SDK client actually transmits (every attempt), so cost reports
/// and tests see real calls, not planned ones.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<AtomicU64>, Arc<std::sync::Mutex<BTreeMap<String, u64>>>);

impl RequestCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Requests by operation (`GetMetricData`, `ListMetrics`, …).
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.1.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "tripline.RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_default();
        if let Ok(mut m) = self.1.lock() {
            *m.entry(op).or_default() += 1;
        }
        Ok(())
    }
}

/// An SDK failure reduced to what callers act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub message: String,
    /// Throttling, a 5xx, a timeout or a connection failure: trying again may help.
    pub retryable: bool,
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "KMSThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "InternalServiceFault",
];

/// Classifies an SDK error. `LimitExceededException` from Logs Insights means "too many
/// concurrent queries" and is retryable like throttling.
pub fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    err: &SdkError<E, HttpResponse>,
) -> CallError {
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("");
            let msg = se.err().message().unwrap_or("");
            let retryable = status >= 500 || status == 429 || THROTTLING_CODES.contains(&code);
            let code = if code.is_empty() { "error" } else { code };
            CallError {
                message: format!(
                    "{op}: HTTP {status} {code}{}",
                    if msg.is_empty() {
                        String::new()
                    } else {
                        format!(": {msg}")
                    }
                ),
                retryable,
            }
        }
        SdkError::TimeoutError(_) => CallError {
            message: format!("{op}: timed out"),
            retryable: true,
        },
        SdkError::DispatchFailure(d) => CallError {
            message: format!(
                "{op}: could not send the request: {}",
                error_chain(err).trim_start_matches("dispatch failure: ")
            ),
            retryable: !d.is_user(),
        },
        SdkError::ResponseError(_) => CallError {
            message: format!("{op}: bad response: {}", error_chain(err)),
            retryable: true,
        },
        SdkError::ConstructionFailure(_) => CallError {
            message: format!("{op}: {}", error_chain(err)),
            retryable: false,
        },
        _ => CallError {
            message: format!("{op}: {}", error_chain(err)),
            retryable: false,
        },
    }
}

/// Exponential backoff with jitter: attempt 0 waits about `base`, each next attempt doubles,
/// capped at `cap`; the actual wait is uniformly drawn from [half, full] of that.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let full = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let half = full / 2;
    let jitter = rand::thread_rng().gen_range(0..=(full - half).as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// Runs `call` until it succeeds, fails permanently, runs out of `max_attempts`, or the next
/// wait would pass `deadline`. Each attempt is itself cut off at the deadline.
pub async fn with_retries<T, F, Fut>(
    op: &str,
    max_attempts: u32,
    deadline: std::time::Instant,
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let mut attempt = 0;
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return Err(CallError {
                message: format!("{op}: deadline reached before the request could be sent"),
                retryable: true,
            });
        }
        let result = match tokio::time::timeout(remaining, call()).await {
            Ok(r) => r,
            Err(_) => Err(CallError {
                message: format!("{op}: no answer before the cycle's deadline"),
                retryable: true,
            }),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if !e.retryable => return Err(e),
            Err(e) => {
                attempt += 1;
                let wait = backoff(
                    attempt - 1,
                    Duration::from_millis(200),
                    Duration::from_secs(5),
                );
                let after_attempts = if attempt > 1 {
                    format!(" (after {attempt} attempts)")
                } else {
                    String::new()
                };
                if attempt >= max_attempts.max(1) || std::time::Instant::now() + wait >= deadline {
                    return Err(CallError {
                        message: format!("{}{after_attempts}", e.message),
                        retryable: true,
                    });
                }
                tracing::debug!(op, attempt, ?wait, "retrying: {}", e.message);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt, Duration::from_millis(100), Duration::from_secs(2));
            let full = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(16))
                .min(Duration::from_secs(2));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }

    #[tokio::test]
    async fn retries_stop_at_the_deadline_and_on_permanent_errors() {
        let deadline = std::time::Instant::now() + Duration::from_millis(700);
        let mut calls = 0;
        let r: Result<(), _> = with_retries("Op", 100, deadline, || {
            calls += 1;
            async {
                Err(CallError {
                    message: "Op: HTTP 503".into(),
                    retryable: true,
                })
            }
        })
        .await;
        assert!(r.unwrap_err().message.starts_with("Op: HTTP 503"));
        assert!((2..10).contains(&calls), "{calls}");
        assert!(std::time::Instant::now() <= deadline + Duration::from_millis(50));

        let mut calls = 0;
        let r: Result<(), _> = with_retries(
            "Op",
            5,
            std::time::Instant::now() + Duration::from_secs(5),
            || {
                calls += 1;
                async {
                    Err(CallError {
                        message: "Op: HTTP 400 ValidationError".into(),
                        retryable: false,
                    })
                }
            },
        )
        .await;
        assert_eq!(calls, 1);
        assert!(!r.unwrap_err().retryable);
    }

    fn service_error(
        status: u16,
        code: &str,
    ) -> SdkError<aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError, HttpResponse>
    {
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message("m")
            .build();
        let raw = HttpResponse::new(
            status.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(
            aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError::generic(meta),
            raw,
        )
    }

    #[test]
    fn throttling_5xx_and_connection_failures_are_retryable() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let c = classify("GetMetricData", &service_error(400, "Throttling"));
        assert_eq!(
            c,
            CallError {
                message: "GetMetricData: HTTP 400 Throttling: m".into(),
                retryable: true
            }
        );
        assert!(classify("GetMetricData", &service_error(429, "TooManyRequests")).retryable);
        assert!(classify("GetMetricData", &service_error(503, "ServiceUnavailable")).retryable);
        assert!(classify("GetMetricData", &service_error(500, "")).retryable);
        assert!(classify("StartQuery", &service_error(400, "LimitExceededException")).retryable);
        let c = classify(
            "GetMetricData",
            &service_error(400, "InvalidParameterValue"),
        );
        assert!(!c.retryable && c.message.contains("InvalidParameterValue"));
        assert!(!classify("Publish", &service_error(404, "NotFound")).retryable);
        assert!(!classify("Publish", &service_error(403, "AuthorizationError")).retryable);
        type E = aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
        let refused: SdkError<E, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let c = classify("GetMetricData", &refused);
        assert!(
            c.retryable && c.message.contains("connection refused"),
            "{c:?}"
        );
        let timeout: SdkError<E, HttpResponse> = SdkError::timeout_error("slow");
        assert!(classify("GetMetricData", &timeout).retryable);
        let built: SdkError<E, HttpResponse> = SdkError::construction_failure("bad input");
        assert!(!classify("GetMetricData", &built).retryable);
    }

    #[test]
    fn aws_config_rejects_bad_values() {
        let c = AwsConfig {
            endpoint_url: Some("localhost:5000".into()),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("http://"));
        let c = AwsConfig {
            timeouts: AwsTimeouts {
                sns: Some("soon".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().starts_with("aws.timeouts.sns"));
    }
}
