//! The pipeline's output, part of the shared model: one `Notification` to one receiver, a group
//! of alerts and its status. The pipeline makes them; the outbox, the stores and the receivers
//! read them.

use super::{Alert, Labels};
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
    /// Shared with the store's alerts and every other notification that holds them: queueing
    /// a notification of 1,000 alerts copies 1,000 pointers, not 1,000 alerts.
    pub alerts: Vec<Arc<Alert>>,
    #[serde(serialize_with = "crate::clock::rfc3339::ts")]
    pub created_at: Timestamp,
    /// Who acknowledged, for `Acknowledged` notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
}

impl Notification {
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().map(|a| &**a).filter(|a| a.is_active())
    }

    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().map(|a| &**a).filter(|a| !a.is_active())
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
