//! Notifications and the one `Notifier` trait every receiver implements (console, SNS, Slack,
//! PagerDuty, webhook, a host program's own). A receiver's error says whether a retry can help;
//! retry policy lives once, in the outbox, not in each receiver.

pub mod console;
pub mod sns;

use crate::alert::{Alert, Labels};
use crate::clock::Timestamp;
use async_trait::async_trait;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// At least one alert in the group fires.
    Firing,
    /// Every alert in the group resolved.
    Resolved,
}

/// One message to one receiver: a group of alerts sharing its group labels.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// Unique and stable: the outbox and receivers deduplicate on it.
    pub id: String,
    pub receiver: String,
    pub status: NotificationStatus,
    pub group_key: String,
    pub group_labels: Labels,
    pub alerts: Vec<Alert>,
    pub created_at: Timestamp,
}

impl Notification {
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.is_active())
    }

    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| !a.is_active())
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
}

impl NotifyError {
    pub fn retryable(message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    fn name(&self) -> &str;
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError>;
}
