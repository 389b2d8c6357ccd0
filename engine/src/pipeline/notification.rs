//! The pipeline's output: one `Notification` to one receiver, a group of alerts and its status.

use crate::alert::{Alert, Labels};
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

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
}
