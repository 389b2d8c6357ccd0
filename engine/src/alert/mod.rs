//! Alerts: their identity (fingerprint), severity, and the state machine that moves each one
//! through pending → firing → resolved.

mod fingerprint;
mod notification;
mod state;
mod store;

pub use fingerprint::fingerprint;
pub use notification::{Notification, NotificationStatus};
pub use state::{advance, AlertCandidate, Reported, Timing, Transition, TransitionKind};
pub use store::AlertStore;

use crate::clock::rfc3339::{opt_ts, ts};
use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// Reserved detail keys: details the engine writes itself, read again below it.
/// Detail key holding when an ingested alert expires unless posted again.
pub const ENDS_AT: &str = "ingest_ends_at";
/// Detail key holding the `generatorURL` an alert was posted with (the webhook's field of that name).
pub const GENERATOR_URL: &str = "generator_url";

/// Rule id of the meta-alerts Tripline raises about its own rules (broken files, failed
/// evaluations).
pub const RULE_ERROR: &str = "tripline/rule-error";
/// Rule id of the meta-alerts raised when a rule's data could not be fetched.
pub const SOURCE_ERROR: &str = "tripline/source-error";
/// Rule id of the meta-alerts about delivery (`NotificationFailed`, `ReceiverHeldBack`).
pub const NOTIFY_ERROR: &str = "tripline/notify-error";

pub type Labels = BTreeMap<String, String>;

/// Ordered from least to most urgent, so `max` picks the worst.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "info" => Self::Info,
            "warning" => Self::Warning,
            "high" | "error" => Self::High,
            "critical" | "page" => Self::Critical,
            other => {
                return Err(format!(
                    "unknown severity {other:?} (use info, warning, high or critical)"
                ))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Condition holds, `for` not yet elapsed.
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl std::fmt::Display for AlertState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    /// The rule this alert comes from (`aws/lambda-errors`, or `tripline/rule-error`).
    pub rule: String,
    /// The config's rule instance that produced it.
    pub instance: String,
    pub labels: Labels,
    pub state: AlertState,
    pub severity: Severity,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Free-form details from the rule and its triage hook; redacted before leaving the engine.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
    /// When the condition was first seen (start of pending).
    #[serde(serialize_with = "ts")]
    pub active_since: Timestamp,
    /// When it started firing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_ts"
    )]
    pub starts_at: Option<Timestamp>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_ts"
    )]
    pub ends_at: Option<Timestamp>,
    /// Last instant the rule reported the condition.
    #[serde(serialize_with = "ts")]
    pub last_active: Timestamp,
    /// The first evaluation at which a firing alert's condition no longer held, while
    /// `keep_firing_for` holds it (Prometheus' `KeepFiringSince`): the hold is measured from here.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_ts"
    )]
    pub keep_firing_since: Option<Timestamp>,
    #[serde(serialize_with = "ts")]
    pub updated_at: Timestamp,
    /// When the severity last changed while firing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_ts"
    )]
    pub severity_changed_at: Option<Timestamp>,
}

impl Alert {
    pub fn is_active(&self) -> bool {
        matches!(self.state, AlertState::Pending | AlertState::Firing)
    }

    /// The details receivers show: all but the engine's own bookkeeping (an ingested alert's
    /// expiry).
    pub fn shown_details(&self) -> impl Iterator<Item = (&String, &serde_json::Value)> {
        self.details.iter().filter(|(k, _)| k.as_str() != ENDS_AT)
    }
}
