//! Publishes notifications to an SNS topic: one `Publish` per notification, with a readable
//! `default` text and a JSON document for program subscribers (see `payload`), and message
//! attributes `status`, `severity`, `fingerprint`, `rule` and `runbook` for subscription filter
//! policies. FIFO topics (`.fifo`) get the group key as message group and the notification id
//! as deduplication id. 5xx and connection failures are retryable; throttling is rate limiting
//! (like an HTTP 429, it never counts toward `max_attempts`); the outbox decides when to try
//! again.

pub mod payload;

use super::kind::{BuildContext, Preview, ReceiverKind};
use super::{Notification, Notifier, NotifyError};
use crate::aws::{classify, AwsConfig, lazy_client, LazyClient, Service};
use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use serde::Deserialize;
use std::sync::Arc;

/// Publishes to an SNS topic: readable text for email/SMS, a JSON document for SQS, Lambda
/// and HTTP(S) subscribers, and filterable message attributes (see docs/aws.md).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// The receiver's name, used by routes.
    pub name: String,
    /// The topic, e.g. `arn:aws:sns:us-east-1:123456789012:ops-alerts` (`.fifo` topics work).
    pub topic_arn: String,
}

impl ReceiverKind for SnsConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn uses_aws(&self) -> bool {
        true
    }

    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(SnsNotifier::new(
            self.name.clone(),
            self.topic_arn.clone(),
            ctx.aws,
        )?))
    }

    fn preview(&self, n: &Notification) -> Preview {
        let p = payload::build(n, payload::MAX_MESSAGE_BYTES);
        // The message is the JSON document `payload` wrote; shown as a string should it not be.
        let message = serde_json::from_str::<serde_json::Value>(&p.message)
            .unwrap_or(serde_json::Value::String(p.message));
        Preview::Json(
            serde_json::json!({ "subject": p.subject, "message": message, "attributes": p.attributes }),
        )
    }
}

pub struct SnsNotifier {
    name: String,
    topic_arn: String,
    client: LazyClient<aws_sdk_sns::Client>,
    max_bytes: usize,
}

impl std::fmt::Debug for SnsNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsNotifier")
            .field("name", &self.name)
            .field("topic_arn", &self.topic_arn)
            .finish()
    }
}

/// Checks a topic ARN's shape: `arn:<partition>:sns:<region>:<account>:<name>`.
pub fn validate_topic_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty() {
        Ok(())
    } else {
        Err(format!(
            "topic_arn {arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
        ))
    }
}

/// SNS's deduplication ids are at most 128 characters.
fn dedup_id(id: &str) -> String {
    if id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()) {
        return id.to_string();
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl SnsNotifier {
    /// A receiver publishing to `topic_arn` as the `[aws]` table says, with credentials from the
    /// default chain (resolved at the first delivery).
    pub fn new(
        name: impl Into<String>,
        topic_arn: impl Into<String>,
        aws: &AwsConfig,
    ) -> Result<Self, String> {
        let topic_arn = topic_arn.into();
        validate_topic_arn(&topic_arn)?;
        let client = lazy_client!(aws, Service::Sns, aws_sdk_sns)?;
        Ok(SnsNotifier {
            name: name.into(),
            topic_arn,
            client,
            max_bytes: payload::MAX_MESSAGE_BYTES,
        })
    }

    /// `Publish` requests sent so far (every attempt).
    pub fn requests(&self) -> u64 {
        self.client.requests()
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let client = self
            .client
            .get()
            .await
            .map_err(|e| NotifyError::retryable(format!("sns {}: {e}", self.name)))?;
        let p = payload::build(n, self.max_bytes);
        let mut req = client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&p.subject)
            .message(&p.message)
            .message_structure("json");
        for (k, v) in &p.attributes {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| {
                    NotifyError::permanent(format!("sns {}: attribute {k}: {e}", self.name))
                })?;
            req = req.message_attributes(k, attr);
        }
        if self.topic_arn.ends_with(".fifo") {
            req = req
                .message_group_id(dedup_id(&n.group_key))
                .message_deduplication_id(dedup_id(&n.id));
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let c = classify("Publish", &e);
                let message = format!("sns {}: {}", self.name, c.message);
                // SNS pacing us (account or topic throughput): like an HTTP 429, not a failure.
                let throttled = e.as_service_error().is_some_and(|se| {
                    matches!(
                        se.meta().code(),
                        Some("Throttling" | "ThrottlingException" | "ThrottledException")
                    )
                }) || e.raw_response().is_some_and(|r| r.status().as_u16() == 429);
                Err(if throttled {
                    NotifyError::rate_limited(message, None)
                } else if c.retryable {
                    NotifyError::retryable(message)
                } else {
                    NotifyError::permanent(message)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
