//! Slack incoming webhooks, with Block Kit messages: one message per group, coloured and marked
//! by the worst severity, one section per alert (summary, severity, value, labels) with a
//! "Runbook" button, firing / resolved / acknowledged variants, long groups cut with a count.
//! Block Kit limits are respected (≤ 50 blocks, header ≤ 150, section ≤ 3000, button text ≤ 75,
//! url ≤ 3000) and a plain `text` fallback is always given.

use super::http::{self, truncate};
use super::kind::{BuildContext, Preview, ReceiverKind};
use super::redact::Secret;
use super::{Notification, NotificationStatus, Notifier, NotifyError};
use crate::alert::{Alert, AlertState, Severity};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// A Slack incoming webhook (Block Kit messages).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub name: String,
    /// Environment variable holding the webhook URL (a secret).
    pub url_env: String,
    /// Announce resolved alerts (default true).
    #[serde(default = "http::yes")]
    pub send_resolved: bool,
    /// Pace, `"1/s"` by default (Slack's documented limit).
    pub rate_limit: Option<String>,
    pub burst: Option<u32>,
    /// Per-request timeout (default 10s).
    pub timeout: Option<String>,
}

impl ReceiverKind for SlackConfig {
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
        Ok(Arc::new(SlackNotifier::new(
            &self.name,
            http::url_from_env(&self.url_env)?,
            http::timeout(self.timeout.as_deref())?,
            http::pace(self.rate_limit.as_deref(), self.burst, Some((1.0, 1)))?,
        )?))
    }

    fn preview(&self, n: &Notification) -> Preview {
        Preview::Json(render(n))
    }
}

/// Alerts shown in one message; the rest are counted.
pub const MAX_ALERTS_SHOWN: usize = 20;
const MAX_BLOCKS: usize = 50;
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const URL_MAX: usize = 3000;

pub struct SlackNotifier {
    endpoint: http::Endpoint,
    rate: (f64, u32),
}

impl SlackNotifier {
    pub fn new(
        name: impl Into<String>,
        url: Secret,
        timeout: Option<std::time::Duration>,
        rate: Option<(f64, u32)>,
    ) -> Result<Self, String> {
        Ok(SlackNotifier {
            endpoint: http::Endpoint::new(name, url, timeout)?,
            rate: rate.unwrap_or((1.0, 1)),
        })
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        self.endpoint.name()
    }

    fn request_timeout(&self) -> Option<std::time::Duration> {
        Some(self.endpoint.timeout())
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.endpoint.post(n, &render(n)).await
    }

    fn rate_limit(&self) -> Option<(f64, u32)> {
        Some(self.rate)
    }
}

fn colour(n: &Notification, worst: Option<Severity>) -> &'static str {
    match (n.status, worst) {
        (NotificationStatus::Resolved, _) => "#2EB67D",
        (NotificationStatus::Acknowledged, _) => "#4A154B",
        (_, Some(Severity::Critical)) => "#E01E5A",
        (_, Some(Severity::High)) => "#E8912D",
        (_, Some(Severity::Warning)) => "#ECB22E",
        _ => "#36C5F0",
    }
}

fn emoji(state: AlertState, sev: Severity) -> &'static str {
    match (state, sev) {
        (AlertState::Resolved, _) => ":white_check_mark:",
        (_, Severity::Critical) => ":rotating_light:",
        (_, Severity::High) => ":red_circle:",
        (_, Severity::Warning) => ":warning:",
        (_, Severity::Info) => ":information_source:",
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn alert_section(a: &Alert) -> Value {
    let mut text = format!("{} *{}*\n", emoji(a.state, a.severity), esc(&a.summary));
    let mut facts = vec![format!("*Severity:* {}", a.severity)];
    if let Some(v) = a.value {
        facts.push(format!("*Value:* {v}"));
    }
    match (a.state, a.starts_at, a.ends_at) {
        (AlertState::Resolved, _, Some(end)) => {
            facts.push(format!("*Resolved:* {}", end.format("%Y-%m-%d %H:%M UTC")))
        }
        (_, Some(start), _) => {
            facts.push(format!("*Since:* {}", start.format("%Y-%m-%d %H:%M UTC")))
        }
        _ => {}
    }
    text.push_str(&facts.join("  ·  "));
    let labels: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("`{}={}`", esc(k), esc(v)))
        .collect();
    if !labels.is_empty() {
        text.push('\n');
        text.push_str(&labels.join(" "));
    }
    for (k, v) in a.shown_details().take(5) {
        let v = v
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| v.to_string());
        text.push_str(&format!("\n*{}:* {}", esc(k), esc(&truncate(&v, 300))));
    }
    let mut section = json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(&text, SECTION_MAX) } });
    if let Some(url) = a
        .runbook
        .as_deref()
        .filter(|u| u.len() <= URL_MAX && (u.starts_with("https://") || u.starts_with("http://")))
    {
        section["accessory"] = json!({ "type": "button", "text": { "type": "plain_text", "text": "Runbook" }, "url": url });
    }
    section
}

/// The webhook payload for a notification.
pub fn render(n: &Notification) -> Value {
    let worst = n.firing().map(|a| a.severity).max();
    let head_emoji = match n.status {
        NotificationStatus::Resolved => ":white_check_mark:",
        NotificationStatus::Acknowledged => ":eyes:",
        NotificationStatus::Firing => emoji(AlertState::Firing, worst.unwrap_or(Severity::Info)),
    };
    let title = n.headline();
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&format!("{head_emoji} {title}"), HEADER_MAX), "emoji": true }
    })];
    let group: Vec<String> = n
        .group_labels
        .iter()
        .map(|(k, v)| format!("`{}={}`", esc(k), esc(v)))
        .collect();
    if !group.is_empty() {
        blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": truncate(&format!("Group: {}", group.join(" ")), SECTION_MAX) }] }));
    }
    // Header, group context, the alerts, the "more" line: always within MAX_BLOCKS.
    let room = MAX_ALERTS_SHOWN.min(MAX_BLOCKS - blocks.len() - 1);
    for a in n.alerts.iter().take(room) {
        blocks.push(alert_section(a));
    }
    if n.alerts.len() > room {
        let hidden = &n.alerts[room..];
        let f = hidden.iter().filter(|a| a.is_active()).count();
        let r = hidden.len() - f;
        blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn",
            "text": format!("…and {} more alert(s) not shown ({f} firing, {r} resolved)", hidden.len()) }] }));
    }
    // Slack reads `<…>` in `text` as links and mentions: escaped like the blocks.
    let mut fallback = esc(&title);
    if let Some(first) = n.alerts.first() {
        fallback.push_str(&format!(": {}", esc(&first.summary)));
        if n.alerts.len() > 1 {
            fallback.push_str(&format!(" (+{} more)", n.alerts.len() - 1));
        }
    }
    json!({
        "text": truncate(&fallback, SECTION_MAX),
        "attachments": [{ "color": colour(n, worst), "fallback": truncate(&fallback, SECTION_MAX), "blocks": blocks }]
    })
}
