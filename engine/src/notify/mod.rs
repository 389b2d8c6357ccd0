//! Notifications and the one `Notifier` trait every receiver implements (console, SNS, Slack,
//! PagerDuty, webhook, a host program's own). A receiver's error says whether a retry can help;
//! retry policy lives once, in the outbox, not in each receiver. Each receiver kind is a folder
//! here whose config struct implements `kind::ReceiverKind`; `kind::receiver_kinds!` lists them.

pub mod http;
pub mod kind;
pub mod outbox;

/// `pub mod <folder>;` for each receiver kind of `kind::receiver_kinds!`.
macro_rules! receiver_modules {
    ($($module:ident::$config:ident => $variant:ident,)+) => {
        $(pub mod $module;)+
    };
}
kind::receiver_kinds!(receiver_modules);

pub use kind::{BuildContext, Preview, ReceiverKind};

// The pipeline's output and stages, at their old paths too.
pub use crate::pipeline::{nflog, redact, Notification, NotificationStatus};
use async_trait::async_trait;
use std::time::Duration;

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

    /// How many of this receiver's notifications, each of a different group, may be on their
    /// way at once (a group's own notifications always go one after another, in order).
    /// Receivers that make requests overlap four, so a storm's delivery is not one round trip
    /// after another; the console prints one at a time, in order.
    fn in_flight(&self) -> usize {
        if self.request_timeout().is_some() {
            4
        } else {
            1
        }
    }

    /// Whether an `acknowledged` notification is sent at all; `false` for receivers whose format
    /// has no such state (the Alertmanager webhook), which accept it and send nothing.
    fn tells_acks(&self) -> bool {
        true
    }
}
