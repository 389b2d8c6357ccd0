//! Notifications and the one `Notifier` trait every receiver implements (console, SNS, Slack,
//! PagerDuty, webhook, a host program's own). A receiver's error says whether a retry can help;
//! retry policy lives once, in the outbox, not in each receiver. Each receiver kind is a folder
//! here whose config struct implements `kind::ReceiverKind`; `kind::receiver_kinds!` lists them.

pub mod http;
pub mod kind;
pub mod nflog;
pub mod outbox;
pub mod redact;

/// `pub mod <folder>;` for each receiver kind of `kind::receiver_kinds!`.
macro_rules! receiver_modules {
    ($($module:ident::$config:ident => $variant:ident,)+) => {
        $(pub mod $module;)+
    };
}
kind::receiver_kinds!(receiver_modules);

pub use kind::{BuildContext, Preview, ReceiverKind};

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
