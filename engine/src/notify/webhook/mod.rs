//! A generic webhook speaking Alertmanager's JSON (version "4"), so anything that consumes
//! Alertmanager webhooks consumes Tripline's. Acknowledgements have no place in that format and
//! are not sent.

use super::http;
use super::kind::{BuildContext, Preview, ReceiverKind};
use super::redact::Secret;
use super::{Notification, NotificationStatus, Notifier, NotifyError};
use crate::alert::{Alert, AlertState, Labels};
use crate::ingest::GENERATOR_URL;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Alertmanager-compatible webhook JSON (version 4).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    /// The URL, when it holds no secret.
    pub url: Option<String>,
    /// Environment variable holding the URL, when it does.
    pub url_env: Option<String>,
    #[serde(default = "http::yes")]
    pub send_resolved: bool,
    /// Unpaced unless set.
    pub rate_limit: Option<String>,
    pub burst: Option<u32>,
    pub timeout: Option<String>,
    /// Alerts per message; the rest are counted in `truncatedAlerts` (0 = all).
    #[serde(default)]
    pub max_alerts: usize,
}

impl ReceiverKind for WebhookConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn secret_env_vars(&self) -> Vec<&str> {
        self.url_env.iter().map(|v| v.as_str()).collect()
    }

    fn build(&self, _: &BuildContext) -> Result<Arc<dyn Notifier>, String> {
        let url = match (&self.url, &self.url_env) {
            (_, Some(var)) => http::url_from_env(var)?,
            (Some(u), None) => http::url_option(u)?,
            (None, None) => return Err("a webhook receiver needs `url` or `url_env`".into()),
        };
        Ok(Arc::new(WebhookNotifier::new(
            &self.name,
            url,
            http::timeout(self.timeout.as_deref())?,
            self.max_alerts,
            http::pace(self.rate_limit.as_deref(), self.burst, None)?,
        )?))
    }

    fn preview(&self, n: &Notification) -> Preview {
        Preview::Json(render(n, self.max_alerts))
    }
}

pub struct WebhookNotifier {
    endpoint: http::Endpoint,
    max_alerts: usize,
    rate: Option<(f64, u32)>,
}

impl WebhookNotifier {
    pub fn new(
        name: impl Into<String>,
        url: Secret,
        timeout: Option<std::time::Duration>,
        max_alerts: usize,
        rate: Option<(f64, u32)>,
    ) -> Result<Self, String> {
        Ok(WebhookNotifier {
            endpoint: http::Endpoint::new(name, url, timeout)?,
            max_alerts,
            rate,
        })
    }
}

fn ts(t: Option<crate::clock::Timestamp>) -> String {
    // Alertmanager's zero time for "not ended".
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn annotations(a: &Alert) -> Labels {
    let mut m = Labels::new();
    m.insert("summary".into(), a.summary.clone());
    if let Some(r) = &a.runbook {
        m.insert("runbook_url".into(), r.clone());
    }
    if let Some(v) = a.value {
        m.insert("value".into(), v.to_string());
    }
    for (k, v) in a.shown_details().filter(|(k, _)| *k != GENERATOR_URL) {
        m.insert(
            k.clone(),
            v.as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string()),
        );
    }
    m
}

fn common(maps: &[Labels]) -> Labels {
    let Some(first) = maps.first() else {
        return Labels::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The JSON body for a notification.
pub fn render(n: &Notification, max_alerts: usize) -> Value {
    let shown = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    let alerts: Vec<Value> = n.alerts[..shown]
        .iter()
        .map(|a| {
            json!({
                "status": if a.state == AlertState::Resolved { "resolved" } else { "firing" },
                "labels": a.labels,
                "annotations": annotations(a),
                "startsAt": ts(a.starts_at.or(Some(a.active_since))),
                "endsAt": ts(a.ends_at),
                "generatorURL": a.details.get(GENERATOR_URL).and_then(|v| v.as_str()).unwrap_or_default(),
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    let labels: Vec<Labels> = n.alerts.iter().map(|a| a.labels.clone()).collect();
    let ann: Vec<Labels> = n.alerts.iter().map(annotations).collect();
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len() - shown,
        "status": if n.status == NotificationStatus::Resolved { "resolved" } else { "firing" },
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": common(&labels),
        "commonAnnotations": common(&ann),
        "externalURL": "",
        "alerts": alerts,
    })
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        self.endpoint.name()
    }

    fn request_timeout(&self) -> Option<std::time::Duration> {
        Some(self.endpoint.timeout())
    }

    fn tells_acks(&self) -> bool {
        false
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        if n.status == NotificationStatus::Acknowledged {
            return Ok(());
        }
        self.endpoint.post(n, &render(n, self.max_alerts)).await
    }

    fn rate_limit(&self) -> Option<(f64, u32)> {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testutil::{alert, t};

    #[test]
    fn long_groups_are_truncated_and_counted() {
        let alerts: Vec<Alert> = (0..5)
            .map(|i| {
                alert(
                    "Q",
                    &[("queue", &format!("q{i}")), ("team", "db")],
                    AlertState::Firing,
                )
            })
            .collect();
        let n = Notification {
            id: "n".into(),
            receiver: "hook".into(),
            status: NotificationStatus::Firing,
            group_key: "{}:{}".into(),
            group_labels: Labels::new(),
            alerts,
            created_at: t(0),
            acknowledged_by: None,
        };
        let body = render(&n, 2);
        assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(body["truncatedAlerts"], 3);
        assert_eq!(body["commonLabels"]["team"], "db");
        assert!(body["commonLabels"].get("queue").is_none());
    }
}
