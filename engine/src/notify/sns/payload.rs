//! What an SNS message says: subject, a `MessageStructure=json` message and message attributes.
//! Pure, so the exact payload is tested without AWS.
//!
//! The message is a JSON object of per-protocol strings:
//! - `default` (email, SMS, anything not listed): readable text, one block per alert, runbook
//!   link on its own line;
//! - `sqs`, `lambda`, `http`, `https`: the same JSON document (see `Body`) for programs.
//!
//! SNS takes at most 256 KB per message (attributes and subject included). When a notification
//! is bigger, alert details are cut (largest first, then dropped), then summaries, then whole
//! alerts beyond the first; the runbook link, labels, severity and status are never cut, and
//! `truncated: true` says it happened.

use crate::alert::{Alert, Severity};
use crate::notify::{Notification, NotificationStatus};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// SNS's limit on a whole message, attributes and subject included.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// SNS's limit on a subject.
pub const MAX_SUBJECT_CHARS: usize = 100;
const CUT_MARK: &str = "… [truncated]";

/// The JSON document sent to `sqs`, `lambda`, `http` and `https` subscribers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Body {
    /// Format version of this document.
    pub version: &'static str,
    pub source: &'static str,
    pub id: String,
    pub receiver: String,
    /// `firing` or `resolved`.
    pub status: NotificationStatus,
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    pub created_at: String,
    pub alerts: Vec<BodyAlert>,
    /// Alerts left out to fit the size limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted_alerts: usize,
    /// Something was cut to fit SNS's 256 KB limit.
    pub truncated: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyAlert {
    pub status: String,
    pub fingerprint: String,
    pub rule: String,
    pub instance: String,
    pub severity: Severity,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub details: serde_json::Map<String, Value>,
}

/// Everything handed to `Publish`.
#[derive(Debug, Clone, PartialEq)]
pub struct SnsPayload {
    pub subject: String,
    /// The `MessageStructure=json` message.
    pub message: String,
    /// Message attributes (all `String`), in name order.
    pub attributes: BTreeMap<String, String>,
}

impl SnsPayload {
    /// Bytes SNS counts against its limit.
    pub fn size(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>()
    }
}

fn rfc3339(t: crate::clock::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn body_alert(a: &Alert) -> BodyAlert {
    BodyAlert {
        status: if a.is_active() {
            "firing".into()
        } else {
            "resolved".into()
        },
        fingerprint: a.fingerprint.clone(),
        rule: a.rule.clone(),
        instance: a.instance.clone(),
        severity: a.severity,
        summary: a.summary.clone(),
        labels: a.labels.clone(),
        runbook: a.runbook.clone(),
        value: a.value,
        starts_at: a.starts_at.map(rfc3339),
        ends_at: a.ends_at.map(rfc3339),
        details: a.details.clone(),
    }
}

/// One line without control characters, at most `max` characters, cut with `...`.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

fn status_word(s: NotificationStatus) -> &'static str {
    match s {
        NotificationStatus::Firing => "FIRING",
        NotificationStatus::Resolved => "RESOLVED",
        NotificationStatus::Acknowledged => "ACKNOWLEDGED",
    }
}

/// `[FIRING] summary` for one alert, `[FIRING:3] alertname: first summary` for a group; ≤ 100
/// characters, one line.
pub fn subject(n: &Notification) -> String {
    let head = status_word(n.status);
    let s = match n.alerts.as_slice() {
        [a] => format!("[{head}] {}", a.summary),
        alerts => {
            let name = n
                .group_labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| "alerts".into());
            let first = alerts
                .first()
                .map(|a| a.summary.as_str())
                .unwrap_or_default();
            format!("[{head}:{}] {name}: {first}", alerts.len())
        }
    };
    one_line(&s, MAX_SUBJECT_CHARS)
}

fn detail_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => format!("\n    - {s}"),
                Value::Object(m) => format!(
                    "\n    - {}",
                    m.iter()
                        .map(|(k, v)| format!(
                            "{k}: {}",
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string())
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                other => format!("\n    - {other}"),
            })
            .collect(),
        other => other.to_string(),
    }
}

/// The readable `default` text.
fn default_text(body: &Body) -> String {
    let mut s = String::new();
    let head = status_word(body.status);
    s.push_str(&format!(
        "[{head}] {} alert(s) from Tripline\n",
        body.alerts.len() + body.omitted_alerts
    ));
    for a in &body.alerts {
        s.push('\n');
        s.push_str(&format!(
            "{} {}: {}\n",
            a.status.to_uppercase(),
            a.severity,
            a.summary
        ));
        if let Some(r) = &a.runbook {
            s.push_str(&format!("Runbook: {r}\n"));
        }
        s.push_str(&format!("Rule: {} (instance {})\n", a.rule, a.instance));
        if let Some(v) = a.value {
            s.push_str(&format!("Value: {v}\n"));
        }
        if let Some(t) = &a.starts_at {
            s.push_str(&format!("Since: {t}\n"));
        }
        if let Some(t) = &a.ends_at {
            s.push_str(&format!("Resolved at: {t}\n"));
        }
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!("Labels: {}\n", labels.join(" ")));
        for (k, v) in &a.details {
            s.push_str(&format!("{k}: {}\n", detail_text(v)));
        }
        s.push_str(&format!("Fingerprint: {}\n", a.fingerprint));
    }
    if body.omitted_alerts > 0 {
        s.push_str(&format!(
            "\n… and {} more alert(s) left out to fit SNS's size limit\n",
            body.omitted_alerts
        ));
    }
    if body.truncated {
        s.push_str("\n(Some details were cut to fit SNS's 256 KB message limit.)\n");
    }
    s
}

fn attributes(n: &Notification) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("status".into(), status_word(n.status).to_lowercase());
    if let Some(sev) = n.alerts.iter().map(|a| a.severity).max() {
        m.insert("severity".into(), sev.to_string());
    }
    let fingerprint = match n.alerts.as_slice() {
        [a] => a.fingerprint.clone(),
        _ => n.group_key.clone(),
    };
    m.insert("fingerprint".into(), fingerprint);
    let mut rules: Vec<&str> = n.alerts.iter().map(|a| a.rule.as_str()).collect();
    rules.sort();
    rules.dedup();
    m.insert("rule".into(), rules.join(","));
    if let Some(r) = n.alerts.iter().find_map(|a| a.runbook.as_deref()) {
        m.insert("runbook".into(), r.to_string());
    }
    // SNS rejects empty attribute values.
    m.retain(|_, v| !v.is_empty());
    m
}

fn render(body: &Body, subject: &str, attributes: &BTreeMap<String, String>) -> SnsPayload {
    let json = serde_json::to_string(body).expect("body serializes");
    let mut message = serde_json::Map::new();
    message.insert("default".into(), Value::String(default_text(body)));
    for proto in ["sqs", "lambda", "http", "https"] {
        message.insert(proto.into(), Value::String(json.clone()));
    }
    SnsPayload {
        subject: subject.to_string(),
        message: Value::Object(message).to_string(),
        attributes: attributes.clone(),
    }
}

fn cut_string(s: &str, keep_chars: usize) -> String {
    let mut out: String = s.chars().take(keep_chars).collect();
    out.push_str(CUT_MARK);
    out
}

fn detail_chars(v: &Value) -> usize {
    match v {
        Value::String(s) => s.chars().count(),
        other => other.to_string().chars().count(),
    }
}

/// Cuts every detail longer than `cap` characters down to `cap` (a non-string detail becomes its
/// JSON text, cut); below 200 characters a cut detail is dropped instead.
fn cap_details(original: &[serde_json::Map<String, Value>], body: &mut Body, cap: usize) {
    for (a, details) in body.alerts.iter_mut().zip(original) {
        a.details = details
            .iter()
            .filter_map(|(k, v)| {
                if detail_chars(v) <= cap {
                    return Some((k.clone(), v.clone()));
                }
                if cap < 200 {
                    return None;
                }
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some((k.clone(), Value::String(cut_string(&text, cap))))
            })
            .collect();
    }
}

/// Builds the payload for `n`, cut to `max_bytes` as described in the module docs.
///
/// Cutting is geometric so a huge notification costs a few dozen renders, not thousands: the
/// cap on a detail's length shrinks by a quarter per round (no detail loses much more than it
/// must), then summaries are capped the same way, then alerts are dropped a tenth at a time.
pub fn build(n: &Notification, max_bytes: usize) -> SnsPayload {
    let subject = subject(n);
    let attributes = attributes(n);
    let mut body = Body {
        version: "1",
        source: "tripline",
        id: n.id.clone(),
        receiver: n.receiver.clone(),
        status: n.status,
        group_key: n.group_key.clone(),
        group_labels: n.group_labels.clone(),
        created_at: rfc3339(n.created_at),
        alerts: n.alerts.iter().map(|a| body_alert(a)).collect(),
        omitted_alerts: 0,
        truncated: false,
    };
    let mut payload = render(&body, &subject, &attributes);
    if payload.size() <= max_bytes {
        return payload;
    }
    body.truncated = true;
    // Details first: they are the bulk (log lines, request ids) and the least essential.
    let original: Vec<_> = body.alerts.iter().map(|a| a.details.clone()).collect();
    let mut cap = original
        .iter()
        .flat_map(|d| d.values().map(detail_chars))
        .max()
        .unwrap_or(0);
    while payload.size() > max_bytes && cap > 0 {
        cap = if cap < 200 { 0 } else { cap * 3 / 4 };
        cap_details(&original, &mut body, cap);
        payload = render(&body, &subject, &attributes);
    }
    // Then summaries.
    let summaries: Vec<String> = body.alerts.iter().map(|a| a.summary.clone()).collect();
    let mut cap = summaries
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    while payload.size() > max_bytes && cap > 200 {
        cap = (cap * 3 / 4).max(200);
        for (a, s) in body.alerts.iter_mut().zip(&summaries) {
            if s.chars().count() > cap {
                a.summary = cut_string(s, cap);
            }
        }
        payload = render(&body, &subject, &attributes);
    }
    // Then whole alerts beyond the first.
    while payload.size() > max_bytes && body.alerts.len() > 1 {
        let drop = (body.alerts.len() / 10).max(1).min(body.alerts.len() - 1);
        body.alerts.truncate(body.alerts.len() - drop);
        body.omitted_alerts += drop;
        payload = render(&body, &subject, &attributes);
    }
    payload
}
