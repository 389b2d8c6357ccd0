//! PagerDuty Events API v2: one event per alert — `trigger` while firing, `resolve` once
//! resolved, `acknowledge` after `tripline ack` — with `dedup_key` = the alert's fingerprint, so
//! PagerDuty ties them to one incident. Severities map critical→critical, high→error,
//! warning→warning, info→info; the runbook is a link; summary ≤ 1024, dedup_key ≤ 255.

use super::http::{self, truncate};
use super::kind::{BuildContext, Preview, ReceiverKind};
use super::redact::Secret;
use super::{Notification, NotificationStatus, Notifier, NotifyError};
use crate::alert::{Alert, AlertState, Severity};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty Events API v2: one event per alert, `dedup_key` = the alert's fingerprint.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    pub name: String,
    /// Environment variable holding the integration's routing key (a secret).
    pub routing_key_env: String,
    /// Events endpoint (default `https://events.pagerduty.com/v2/enqueue`).
    pub url: Option<String>,
    #[serde(default = "http::yes")]
    pub send_resolved: bool,
    /// Pace, `"120/m"` by default (PagerDuty's documented limit per routing key).
    pub rate_limit: Option<String>,
    pub burst: Option<u32>,
    pub timeout: Option<String>,
}

impl ReceiverKind for PagerdutyConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn secret_env_vars(&self) -> Vec<&str> {
        vec![&self.routing_key_env]
    }

    fn build(&self, _: &BuildContext) -> Result<Arc<dyn Notifier>, String> {
        let url = match &self.url {
            Some(u) => Some(http::url_option(u)?.expose().to_string()),
            None => None,
        };
        Ok(Arc::new(PagerdutyNotifier::new(
            &self.name,
            Secret::from_env(&self.routing_key_env)?,
            url,
            http::timeout(self.timeout.as_deref())?,
            http::pace(self.rate_limit.as_deref(), self.burst, Some((2.0, 10)))?,
        )?))
    }

    fn preview(&self, n: &Notification) -> Preview {
        Preview::Json(Value::Array(render(n, "***")))
    }
}

pub struct PagerdutyNotifier {
    timeout: std::time::Duration,
    name: String,
    routing_key: Secret,
    url: String,
    client: reqwest::Client,
    rate: (f64, u32),
}

impl PagerdutyNotifier {
    pub fn new(
        name: impl Into<String>,
        routing_key: Secret,
        url: Option<String>,
        timeout: Option<std::time::Duration>,
        rate: Option<(f64, u32)>,
    ) -> Result<Self, String> {
        Ok(PagerdutyNotifier {
            timeout: timeout.unwrap_or(http::DEFAULT_TIMEOUT),
            name: name.into(),
            routing_key,
            url: url.unwrap_or_else(|| DEFAULT_URL.into()),
            client: http::client(timeout)?,
            rate: rate.unwrap_or((2.0, 10)),
        })
    }
}

pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn first_label<'a>(a: &'a Alert, names: &[&str]) -> Option<&'a String> {
    names.iter().find_map(|n| a.labels.get(*n))
}

/// The events one notification sends, in order. `routing_key` is passed in so that previews can
/// show `***`.
pub fn render(n: &Notification, routing_key: &str) -> Vec<Value> {
    n.alerts
        .iter()
        // Only an open incident can be acknowledged.
        .filter(|a| n.status != NotificationStatus::Acknowledged || a.is_active())
        .map(|a| {
            let dedup_key = truncate(&a.fingerprint, 255);
            let action = match (n.status, a.state) {
                (NotificationStatus::Acknowledged, _) => "acknowledge",
                (_, AlertState::Resolved) => "resolve",
                _ => "trigger",
            };
            if action != "trigger" {
                return json!({ "routing_key": routing_key, "event_action": action, "dedup_key": dedup_key });
            }
            let mut details = serde_json::Map::new();
            details.insert("labels".into(), json!(a.labels));
            if let Some(v) = a.value {
                details.insert("value".into(), json!(v));
            }
            for (k, v) in a.shown_details() {
                details.insert(k.clone(), v.clone());
            }
            details.insert("rule".into(), json!(a.rule));
            let mut payload = json!({
                "summary": truncate(&a.summary, 1024),
                "source": first_label(a, &["source", "host", "function", "queue", "service", "instance"]).cloned().unwrap_or_else(|| a.instance.clone()),
                "severity": severity(a.severity),
                "custom_details": details,
            });
            if let Some(t) = a.starts_at {
                payload["timestamp"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            if let Some(c) = first_label(a, &["component", "function", "service", "queue"]) {
                payload["component"] = json!(c);
            }
            if let Some(g) = first_label(a, &["team", "group", "system"]) {
                payload["group"] = json!(g);
            }
            if let Some(c) = a.labels.get("alertname") {
                payload["class"] = json!(c);
            }
            let mut event = json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": dedup_key,
                "payload": payload,
                "client": "Tripline",
            });
            if let Some(r) = &a.runbook {
                event["links"] = json!([{ "href": r, "text": "Runbook" }]);
            }
            event
        })
        .collect()
}

#[async_trait]
impl Notifier for PagerdutyNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn request_timeout(&self) -> Option<std::time::Duration> {
        Some(self.timeout)
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        // Every event carries its own dedup_key, so resending the ones that already went through
        // (after a failure part-way) is harmless.
        for event in render(n, self.routing_key.expose()) {
            http::post_json(
                &self.client,
                &self.name,
                &self.url,
                &event,
                &[],
                &[&self.routing_key],
            )
            .await?;
        }
        Ok(())
    }

    fn cost(&self, n: &Notification) -> u32 {
        n.alerts.len().max(1) as u32
    }

    fn rate_limit(&self) -> Option<(f64, u32)> {
        Some(self.rate)
    }
}
