//! Microsoft Teams through a Workflows (Power Automate) webhook: the flow "When a Teams webhook
//! request is received" posts the Adaptive Card of [`payload`] into a channel or chat. The URL
//! carries the flow's signature (`sig=`), so it is a secret: read from the environment, never
//! shown. Answers: 2xx (Workflows answer 202 Accepted) delivered; 429 paced with `Retry-After`;
//! 5xx and timeouts retried; other 4xx permanent.

#[cfg(test)]
mod delivery_tests;
pub mod payload;
#[cfg(test)]
mod tests;

use super::http;
use super::kind::{BuildContext, Preview, ReceiverKind};
use super::redact::Secret;
use super::{Notification, Notifier, NotifyError};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;

/// A Microsoft Teams channel or chat, through a Workflows webhook (Adaptive Cards).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    pub name: String,
    /// Environment variable holding the Workflows webhook URL (a secret: it carries the flow's
    /// `sig=` signature).
    pub url_env: String,
    /// Announce resolved alerts (default true).
    #[serde(default = "http::yes")]
    pub send_resolved: bool,
    /// Pace, `"4/s"` with bursts of 1 by default (Teams throttles a webhook sent more than four
    /// requests a second).
    pub rate_limit: Option<String>,
    pub burst: Option<u32>,
    /// Per-request timeout (default 10s).
    pub timeout: Option<String>,
}

impl ReceiverKind for TeamsConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn secret_env_vars(&self) -> Vec<&str> {
        vec![&self.url_env]
    }

    fn build(&self, _: &BuildContext) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(TeamsNotifier::new(
            &self.name,
            http::url_from_env(&self.url_env)?,
            http::timeout(self.timeout.as_deref())?,
            http::pace(self.rate_limit.as_deref(), self.burst, Some(DEFAULT_RATE))?,
        )?))
    }

    /// The card as sent; the URL (the only secret) is not part of the body.
    fn preview(&self, n: &Notification) -> Preview {
        Preview::Json(payload::render(n))
    }
}

/// Teams throttles a webhook that gets "more than four requests … in a second": at most 4 a
/// second, one at a time (a full burst of 4 could meet 4 more in the same second).
pub const DEFAULT_RATE: (f64, u32) = (4.0, 1);

pub struct TeamsNotifier {
    endpoint: http::Endpoint,
    rate: (f64, u32),
}

impl TeamsNotifier {
    pub fn new(
        name: impl Into<String>,
        url: Secret,
        timeout: Option<std::time::Duration>,
        rate: Option<(f64, u32)>,
    ) -> Result<Self, String> {
        Ok(TeamsNotifier {
            endpoint: http::Endpoint::new(name, url, timeout)?,
            rate: rate.unwrap_or(DEFAULT_RATE),
        })
    }
}

#[async_trait]
impl Notifier for TeamsNotifier {
    fn name(&self) -> &str {
        self.endpoint.name()
    }

    fn request_timeout(&self) -> Option<std::time::Duration> {
        Some(self.endpoint.timeout())
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.endpoint.post(n, &payload::render(n)).await
    }

    fn rate_limit(&self) -> Option<(f64, u32)> {
        Some(self.rate)
    }
}
