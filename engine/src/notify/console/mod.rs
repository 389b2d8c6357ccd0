//! Prints notifications on standard output, for people (text) or for pipes (one JSON line each).

use super::kind::{BuildContext, Preview, ReceiverKind};
use super::{Notification, NotificationStatus, Notifier, NotifyError};
use async_trait::async_trait;
use serde::Deserialize;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Prints notifications on standard output.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub name: String,
    #[serde(default)]
    pub format: ConsoleFormat,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleFormat {
    #[default]
    Text,
    Json,
}

impl ReceiverKind for ConsoleConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, _: &BuildContext) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(ConsoleNotifier::stdout(
            self.name.clone(),
            self.format,
        )))
    }

    fn preview(&self, n: &Notification) -> Preview {
        Preview::Text(render_text(n))
    }
}

pub struct ConsoleNotifier {
    name: String,
    format: ConsoleFormat,
    out: Mutex<Box<dyn Write + Send>>,
}

impl ConsoleNotifier {
    pub fn stdout(name: impl Into<String>, format: ConsoleFormat) -> Self {
        Self::to_writer(name, format, Box::new(std::io::stdout()))
    }

    pub fn to_writer(
        name: impl Into<String>,
        format: ConsoleFormat,
        out: Box<dyn Write + Send>,
    ) -> Self {
        ConsoleNotifier {
            name: name.into(),
            format,
            out: Mutex::new(out),
        }
    }
}

/// The human-readable rendering: one block per notification.
pub fn render_text(n: &Notification) -> String {
    let mut s = String::new();
    let head = match n.status {
        NotificationStatus::Firing => "FIRING",
        NotificationStatus::Resolved => "RESOLVED",
        NotificationStatus::Acknowledged => "ACKNOWLEDGED",
    };
    s.push_str(&format!(
        "[{head}] {} alert(s) → {}\n",
        n.alerts.len(),
        n.receiver
    ));
    for a in &n.alerts {
        let value = a.value.map(|v| format!(" (value {v})")).unwrap_or_default();
        s.push_str(&format!(
            "  {} {:<8} {}{}\n",
            a.state.as_str().to_uppercase(),
            a.severity.as_str(),
            a.summary,
            value
        ));
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!("    labels:  {}\n", labels.join(" ")));
        if let Some(r) = &a.runbook {
            s.push_str(&format!("    runbook: {r}\n"));
        }
        for (k, v) in &a.details {
            s.push_str(&format!(
                "    {k}: {}\n",
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string())
            ));
        }
    }
    s
}

#[async_trait]
impl Notifier for ConsoleNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let text = match self.format {
            ConsoleFormat::Text => render_text(n),
            ConsoleFormat::Json => {
                serde_json::to_string(n).map_err(|e| NotifyError::permanent(e.to_string()))? + "\n"
            }
        };
        let mut out = self
            .out
            .lock()
            .map_err(|_| NotifyError::retryable("console lock poisoned"))?;
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| NotifyError::retryable(format!("console: {e}")))
    }
}
