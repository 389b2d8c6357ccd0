//! The Microsoft Teams message for a notification: what a Teams Workflows webhook ("When a Teams
//! webhook request is received" → "Post card in a chat or channel") takes, a `message` whose one
//! attachment is an Adaptive Card of schema 1.4 (Teams renders up to 1.5; the card uses nothing
//! past 1.2). Pure: Notification in, JSON out, nothing sent.
//!
//! The card: a header container styled by the worst firing severity (critical/high `attention`,
//! warning `warning`, info `accent`; resolved `good`, acknowledged `emphasis`) with the group
//! headline, the group labels and, when acknowledged, who acknowledged; then one container per
//! alert (its summary, a severity/value/time line, its labels beyond the group's as a FactSet, a
//! few details, Runbook and Source `Action.OpenUrl` buttons). Teams refuses messages over 28 KB,
//! so alerts are added while the whole message stays within [`BUDGET_BYTES`] and the rest are
//! counted ("…and N more").

use crate::alert::{Alert, AlertState, Labels, Severity};
use crate::ingest::GENERATOR_URL;
use crate::notify::http::truncate;
use crate::notify::{Notification, NotificationStatus};
use serde_json::{json, Value};

/// Teams' documented message size limit ("The message size limit is 28 KB").
pub const MAX_MESSAGE_BYTES: usize = 28 * 1024;
/// What a rendered message is kept within: under the documented limit with room for the
/// envelope Power Automate adds around the card before posting it.
pub const BUDGET_BYTES: usize = 24 * 1024;
/// The Adaptive Card schema version the card declares (Teams renders cards up to 1.5).
pub const CARD_VERSION: &str = "1.4";
pub const CARD_SCHEMA: &str = "http://adaptivecards.io/schemas/adaptive-card.json";
pub const CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// Alerts shown in one card at most, even when more would fit.
pub const MAX_ALERTS_SHOWN: usize = 20;
const TITLE_MAX: usize = 200;
const SUMMARY_MAX: usize = 1000;
const GROUP_MAX: usize = 1000;
const FACT_MAX: usize = 300;
const MAX_FACTS: usize = 30;
const MAX_DETAILS: usize = 5;
/// Longer links are dropped rather than cut (a cut URL leads nowhere).
const URL_MAX: usize = 2048;

/// The Container style for a notification's header.
pub fn header_style(n: &Notification) -> &'static str {
    match n.status {
        NotificationStatus::Resolved => "good",
        NotificationStatus::Acknowledged => "emphasis",
        NotificationStatus::Firing => match n.firing().map(|a| a.severity).max() {
            Some(Severity::Critical | Severity::High) => "attention",
            Some(Severity::Warning) => "warning",
            _ => "accent",
        },
    }
}

/// The Container style for one alert: `good` once resolved, else by its severity.
pub fn alert_style(a: &Alert) -> &'static str {
    if !a.is_active() {
        return "good";
    }
    match a.severity {
        Severity::Critical | Severity::High => "attention",
        Severity::Warning => "warning",
        Severity::Info => "default",
    }
}

fn text(s: impl Into<String>) -> Value {
    json!({ "type": "TextBlock", "text": s.into(), "wrap": true })
}

fn subtle(s: impl Into<String>) -> Value {
    json!({ "type": "TextBlock", "text": s.into(), "wrap": true, "isSubtle": true, "spacing": "none" })
}

fn link(url: Option<&str>) -> Option<&str> {
    url.filter(|u| u.len() <= URL_MAX && (u.starts_with("https://") || u.starts_with("http://")))
}

fn value_text(v: &Value) -> String {
    v.as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}

fn state_line(a: &Alert) -> String {
    let mut parts = vec![format!("Severity: {}", a.severity)];
    if let Some(v) = a.value {
        parts.push(format!("Value: {v}"));
    }
    match (a.state, a.starts_at, a.ends_at) {
        (AlertState::Resolved, _, Some(end)) => {
            parts.push(format!("Resolved: {}", end.format("%Y-%m-%d %H:%M UTC")))
        }
        (_, Some(start), _) => parts.push(format!("Since: {}", start.format("%Y-%m-%d %H:%M UTC"))),
        _ => {}
    }
    parts.join(" · ")
}

/// One alert's container: its labels as facts but the group's (the header shows those);
/// `compact` (summary and state only, shorter) when the full one alone would not fit.
fn alert_container(a: &Alert, group: &Labels, compact: bool) -> Value {
    let mark = if a.is_active() { "" } else { "✅ " };
    let summary_max = if compact { FACT_MAX } else { SUMMARY_MAX };
    let mut items = vec![
        json!({ "type": "TextBlock", "text": truncate(&format!("{mark}{}", a.summary), summary_max),
                "wrap": true, "weight": "bolder" }),
        subtle(state_line(a)),
    ];
    if compact {
        return json!({ "type": "Container", "style": alert_style(a), "separator": true, "items": items });
    }
    let facts: Vec<Value> = a
        .labels
        .iter()
        .filter(|(k, _)| !group.contains_key(*k))
        .take(MAX_FACTS)
        .map(|(k, v)| json!({ "title": truncate(k, FACT_MAX), "value": truncate(v, FACT_MAX) }))
        .collect();
    if !facts.is_empty() {
        items.push(json!({ "type": "FactSet", "facts": facts }));
    }
    for (k, v) in a
        .shown_details()
        .filter(|(k, _)| *k != GENERATOR_URL)
        .take(MAX_DETAILS)
    {
        items.push(text(format!(
            "{}: {}",
            truncate(k, FACT_MAX),
            truncate(&value_text(v), FACT_MAX)
        )));
    }
    let source = a.details.get(GENERATOR_URL).and_then(|v| v.as_str());
    let actions: Vec<Value> = [("Runbook", a.runbook.as_deref()), ("Source", source)]
        .into_iter()
        .filter_map(|(title, url)| {
            link(url).map(|u| json!({ "type": "Action.OpenUrl", "title": title, "url": u }))
        })
        .collect();
    if !actions.is_empty() {
        items.push(json!({ "type": "ActionSet", "actions": actions }));
    }
    json!({ "type": "Container", "style": alert_style(a), "separator": true, "items": items })
}

fn more_line(hidden: &[std::sync::Arc<Alert>]) -> Value {
    let firing = hidden.iter().filter(|a| a.is_active()).count();
    let resolved = hidden.len() - firing;
    subtle(format!(
        "…and {} more alert(s) not shown ({firing} firing, {resolved} resolved)",
        hidden.len()
    ))
}

fn header(n: &Notification) -> Value {
    let mut items = vec![
        json!({ "type": "TextBlock", "text": truncate(&n.headline(), TITLE_MAX),
                                 "wrap": true, "size": "large", "weight": "bolder" }),
    ];
    if !n.group_labels.is_empty() {
        let group: Vec<String> = n
            .group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        items.push(subtle(truncate(
            &format!("Group: {}", group.join(", ")),
            GROUP_MAX,
        )));
    }
    if n.status == NotificationStatus::Acknowledged {
        items.push(text(truncate(
            &format!(
                "Acknowledged by {}",
                n.acknowledged_by.as_deref().unwrap_or("someone")
            ),
            TITLE_MAX,
        )));
    }
    json!({ "type": "Container", "style": header_style(n), "bleed": true, "items": items })
}

/// A plain-text line for clients that cannot render the card (and for notification toasts).
fn fallback(n: &Notification) -> String {
    let mut s = n.headline();
    if let Some(first) = n.alerts.first() {
        s.push_str(": ");
        s.push_str(&first.summary);
        if n.alerts.len() > 1 {
            s.push_str(&format!(" (+{} more)", n.alerts.len() - 1));
        }
    }
    truncate(&s, SUMMARY_MAX)
}

fn message(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{ "contentType": CONTENT_TYPE, "contentUrl": null, "content": card }]
    })
}

fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// The webhook body for a notification, never over [`BUDGET_BYTES`] serialised.
pub fn render(n: &Notification) -> Value {
    let mut body = vec![header(n)];
    let mut card = json!({
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": fallback(n),
        "msteams": { "width": "Full" },
        "body": body.clone(),
    });
    // What the "…and N more" line can cost at most, so it always fits after the last alert.
    let reserve = size(&more_line(&n.alerts)) + 1;
    let mut used = size(&message(card.clone()));
    for (i, a) in n.alerts.iter().take(MAX_ALERTS_SHOWN).enumerate() {
        let room =
            BUDGET_BYTES.saturating_sub(used + if i + 1 == n.alerts.len() { 0 } else { reserve });
        let mut c = alert_container(a, &n.group_labels, false);
        if size(&c) + 1 > room && i == 0 {
            // The first alert is always shown, in short if need be.
            c = alert_container(a, &n.group_labels, true);
        }
        let cost = size(&c) + 1;
        if cost > room {
            break;
        }
        used += cost;
        body.push(c);
    }
    let shown = body.len() - 1;
    if shown < n.alerts.len() {
        body.push(more_line(&n.alerts[shown..]));
    }
    card["body"] = Value::Array(body);
    message(card)
}
