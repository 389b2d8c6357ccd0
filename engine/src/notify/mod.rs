//! Notifications and the one `Notifier` trait every receiver implements (console, SNS, Slack,
//! PagerDuty, webhook, a host program's own). A receiver's error says whether a retry can help;
//! retry policy lives once, in the outbox, not in each receiver.

pub mod console;
pub mod http;
pub mod nflog;
pub mod outbox;
pub mod pagerduty;
pub mod redact;
pub mod slack;
pub mod sns;
pub mod webhook;

use crate::alert::{Alert, Labels};
use crate::clock::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// At least one alert in the group fires.
    Firing,
    /// Every alert in the group resolved.
    Resolved,
    /// Someone acknowledged the alert (`tripline ack`); receivers that track incidents are told.
    Acknowledged,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Acknowledged => "acknowledged",
        }
    }
}

/// One message to one receiver: a group of alerts sharing its group labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique and stable: the outbox and receivers deduplicate on it.
    pub id: String,
    pub receiver: String,
    pub status: NotificationStatus,
    pub group_key: String,
    pub group_labels: Labels,
    pub alerts: Vec<Alert>,
    pub created_at: Timestamp,
    /// Who acknowledged, for `Acknowledged` notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
}

impl Notification {
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.is_active())
    }

    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| !a.is_active())
    }

    /// The group's one-line title chat receivers show: `[FIRING:2, RESOLVED:1] alertname`,
    /// `[RESOLVED:3] alertname`, `[ACKNOWLEDGED] alertname by ann`. The name is the group's
    /// `alertname`, else the first alert's, else the group key.
    pub fn headline(&self) -> String {
        let firing = self.firing().count();
        let resolved = self.resolved().count();
        let name = self
            .group_labels
            .get("alertname")
            .or_else(|| self.alerts.first().and_then(|a| a.labels.get("alertname")))
            .cloned()
            .unwrap_or_else(|| self.group_key.clone());
        match self.status {
            NotificationStatus::Firing if resolved > 0 => {
                format!("[FIRING:{firing}, RESOLVED:{resolved}] {name}")
            }
            NotificationStatus::Firing => format!("[FIRING:{firing}] {name}"),
            NotificationStatus::Resolved => format!("[RESOLVED:{resolved}] {name}"),
            NotificationStatus::Acknowledged => format!(
                "[ACKNOWLEDGED] {name} by {}",
                self.acknowledged_by.as_deref().unwrap_or("someone")
            ),
        }
    }
}

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub message: String,
    pub retryable: bool,
    /// The receiver asked to wait this long (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The receiver is pacing us (HTTP 429, a throttling error): a retry will help, and this
    /// try does not count as a failed attempt.
    pub rate_limited: bool,
}

impl NotifyError {
    pub fn retryable(message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            retryable: true,
            retry_after: None,
            rate_limited: false,
        }
    }
    /// A rate-limit answer, with the wait the receiver asked for.
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        NotifyError {
            message: message.into(),
            retryable: true,
            retry_after,
            rate_limited: true,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            retryable: false,
            retry_after: None,
            rate_limited: false,
        }
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    fn name(&self) -> &str;
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError>;

    /// Requests one delivery of `n` makes, for pacing (PagerDuty sends one event per alert).
    fn cost(&self, _n: &Notification) -> u32 {
        1
    }

    /// The pace this receiver's service allows: (requests per second, burst). `None`: unpaced.
    fn rate_limit(&self) -> Option<(f64, u32)> {
        None
    }

    /// The longest one request may take (`timeout` of HTTP receivers); `None`: no requests.
    fn request_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether an `acknowledged` notification is sent at all; `false` for receivers whose format
    /// has no such state (the Alertmanager webhook), which accept it and send nothing.
    fn tells_acks(&self) -> bool {
        true
    }
}

/// Builds an HTTP or console receiver from its config. Secrets are read from the environment
/// here; errors name the variable, never a value.
pub fn build_receiver(
    cfg: &crate::config::ReceiverConfig,
) -> Result<std::sync::Arc<dyn Notifier>, String> {
    use crate::config::{parse_rate, ReceiverConfig};
    use redact::Secret;
    use std::sync::Arc;
    let rate = |r: &Option<String>,
                b: &Option<u32>,
                default: Option<(f64, u32)>|
     -> Result<Option<(f64, u32)>, String> {
        Ok(match (r, default) {
            (Some(r), _) => Some((parse_rate(r)?, b.unwrap_or(1))),
            (None, Some((rate, burst))) => Some((rate, b.unwrap_or(burst))),
            (None, None) => None,
        })
    };
    let name = cfg.name();
    let built: Arc<dyn Notifier> = match cfg {
        ReceiverConfig::Console { name, format } => {
            Arc::new(console::ConsoleNotifier::stdout(name.clone(), *format))
        }
        // SNS needs the `[aws]` settings: config::wire::build_notifier builds it.
        ReceiverConfig::Sns { .. } => {
            return Err("an SNS receiver is built from the [aws] config".into())
        }
        ReceiverConfig::Slack {
            url_env,
            rate_limit,
            burst,
            timeout,
            ..
        } => Arc::new(slack::SlackNotifier::new(
            name,
            checked_url(
                Secret::from_env(url_env)?,
                &format!("environment variable {url_env}"),
            )?,
            http::timeout(timeout.as_deref())?,
            rate(rate_limit, burst, Some((1.0, 1)))?,
        )?),
        ReceiverConfig::Pagerduty {
            routing_key_env,
            url,
            rate_limit,
            burst,
            timeout,
            ..
        } => Arc::new(pagerduty::PagerdutyNotifier::new(
            name,
            Secret::from_env(routing_key_env)?,
            match url {
                Some(u) => Some(
                    checked_url(Secret::new(u.clone()), "`url`")?
                        .expose()
                        .to_string(),
                ),
                None => None,
            },
            http::timeout(timeout.as_deref())?,
            rate(rate_limit, burst, Some((2.0, 10)))?,
        )?),
        ReceiverConfig::Webhook {
            url,
            url_env,
            rate_limit,
            burst,
            timeout,
            max_alerts,
            ..
        } => {
            let url = match (url, url_env) {
                (_, Some(var)) => checked_url(
                    Secret::from_env(var)?,
                    &format!("environment variable {var}"),
                )?,
                (Some(u), None) => checked_url(Secret::new(u.clone()), "`url`")?,
                (None, None) => return Err("a webhook receiver needs `url` or `url_env`".into()),
            };
            Arc::new(webhook::WebhookNotifier::new(
                name,
                url,
                http::timeout(timeout.as_deref())?,
                *max_alerts,
                rate(rate_limit, burst, None)?,
            )?)
        }
    };
    Ok(built)
}

/// An http(s) URL, or an error naming where it came from (never the value: it may be secret).
fn checked_url(url: redact::Secret, from: &str) -> Result<redact::Secret, String> {
    match reqwest::Url::parse(url.expose()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url),
        _ => Err(format!("{from} does not hold an http(s) URL")),
    }
}
