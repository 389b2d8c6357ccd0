//! A generic webhook speaking Alertmanager's JSON (version "4"), so anything that consumes
//! Alertmanager webhooks consumes Tripline's. Acknowledgements have no place in that format and
//! are not sent.

use super::http;
use super::kind::{BuildContext, Preview, ReceiverKind};
use super::redact::Secret;
use super::{Notification, NotificationStatus, Notifier, NotifyError};
use crate::alert::{Alert, AlertState, Labels};
use crate::clock::rfc3339::Rfc3339;
use crate::ingest::GENERATOR_URL;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
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

/// An instant as Alertmanager writes it; `None` is Alertmanager's zero time for "not ended".
fn ts(t: Option<crate::clock::Timestamp>) -> Rfc3339 {
    t.map_or(Rfc3339::literal("0001-01-01T00:00:00Z"), |t| {
        Rfc3339::of(&t, chrono::SecondsFormat::Millis)
    })
}

/// An alert's annotations as Alertmanager carries them, borrowed from the alert: a map on the
/// wire, held as pairs sorted by name, one per name (a map node per alert cost more to build
/// than the rest of its JSON).
#[derive(Default)]
struct Annotations<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl Annotations<'_> {
    fn get(&self, name: &str) -> Option<&Cow<'_, str>> {
        self.0
            .binary_search_by(|(k, _)| (*k).cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }
}

impl Serialize for Annotations<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

fn annotations(a: &Alert) -> Annotations<'_> {
    let mut m: Vec<(&str, Cow<str>)> = vec![("summary", Cow::Borrowed(&a.summary))];
    if let Some(r) = &a.runbook {
        m.push(("runbook_url", Cow::Borrowed(r)));
    }
    if let Some(v) = a.value {
        m.push(("value", Cow::Owned(v.to_string())));
    }
    for (k, v) in a.shown_details().filter(|(k, _)| *k != GENERATOR_URL) {
        m.push((
            k,
            v.as_str()
                .map_or_else(|| Cow::Owned(v.to_string()), Cow::Borrowed),
        ));
    }
    // A detail named like an annotation before it replaces it: the last one of a name wins.
    m.reverse();
    m.sort_by(|a, b| a.0.cmp(b.0));
    m.dedup_by(|later, first| later.0 == first.0);
    Annotations(m)
}

/// The annotations every alert has alike.
fn common_annotations<'a>(all: &[Annotations<'a>]) -> Annotations<'a> {
    let Some((first, rest)) = all.split_first() else {
        return Annotations::default();
    };
    let mut shared = first.0.clone();
    for m in rest {
        if shared.is_empty() {
            break;
        }
        shared.retain(|(k, v)| m.get(k) == Some(v));
    }
    Annotations(shared)
}

/// The labels every alert has alike.
fn common<'m>(mut maps: impl Iterator<Item = &'m Labels>) -> Labels {
    let Some(first) = maps.next() else {
        return Labels::new();
    };
    let mut shared: Vec<(&String, &String)> = first.iter().collect();
    for m in maps {
        if shared.is_empty() {
            break;
        }
        shared.retain(|(k, v)| m.get(*k) == Some(*v));
    }
    shared
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The JSON body for a notification (for previews and tests; delivery serializes `Body`
/// straight to the request, without building a `Value` of every alert).
pub fn render(n: &Notification, max_alerts: usize) -> Value {
    serde_json::to_value(Body::of(n, max_alerts)).unwrap_or(Value::Null)
}

/// The body as delivery sends it (benches and tests).
pub fn encode(n: &Notification, max_alerts: usize) -> Vec<u8> {
    serde_json::to_vec(&Body::of(n, max_alerts)).unwrap_or_default()
}

/// Alertmanager's webhook body, borrowing the notification. Fields in Alertmanager's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: usize,
    status: &'static str,
    receiver: &'a str,
    group_labels: &'a Labels,
    common_labels: Labels,
    common_annotations: Annotations<'a>,
    #[serde(rename = "externalURL")]
    external_url: &'static str,
    alerts: Vec<WireAlert<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireAlert<'a> {
    status: &'static str,
    labels: &'a Labels,
    annotations: Annotations<'a>,
    starts_at: Rfc3339,
    ends_at: Rfc3339,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

impl<'a> Body<'a> {
    fn of(n: &'a Notification, max_alerts: usize) -> Self {
        let shown = if max_alerts == 0 {
            n.alerts.len()
        } else {
            max_alerts.min(n.alerts.len())
        };
        let mut anns: Vec<Annotations> = n.alerts.iter().map(|a| annotations(a)).collect();
        let common_annotations = common_annotations(&anns);
        let common_labels = common(n.alerts.iter().map(|a| &a.labels));
        anns.truncate(shown);
        let alerts = n.alerts[..shown]
            .iter()
            .zip(anns)
            .map(|(a, annotations)| WireAlert {
                status: if a.state == AlertState::Resolved {
                    "resolved"
                } else {
                    "firing"
                },
                labels: &a.labels,
                annotations,
                starts_at: ts(a.starts_at.or(Some(a.active_since))),
                ends_at: ts(a.ends_at),
                generator_url: a
                    .details
                    .get(GENERATOR_URL)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default(),
                fingerprint: &a.fingerprint,
            })
            .collect();
        Body {
            version: "4",
            group_key: &n.group_key,
            truncated_alerts: n.alerts.len() - shown,
            status: if n.status == NotificationStatus::Resolved {
                "resolved"
            } else {
                "firing"
            },
            receiver: &n.receiver,
            group_labels: &n.group_labels,
            common_labels,
            common_annotations,
            external_url: "",
            alerts,
        }
    }
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
        self.endpoint.post(n, &Body::of(n, self.max_alerts)).await
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
            alerts: alerts.into_iter().map(std::sync::Arc::new).collect(),
            created_at: t(0),
            acknowledged_by: None,
        };
        let body = render(&n, 2);
        assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(body["truncatedAlerts"], 3);
        assert_eq!(body["commonLabels"]["team"], "db");
        assert!(body["commonLabels"].get("queue").is_none());
    }

    /// Annotations are a map by name on the wire: sorted, one per name, a detail replacing an
    /// annotation of its name; the ones all alerts share are the common ones. The body's bytes
    /// are serde_json's of the expected `Value` (the order of `preserve_order` maps included).
    #[test]
    fn annotations_are_sorted_one_per_name_and_shared_ones_are_common() {
        let mut a = alert("Q", &[("queue", "q1")], AlertState::Firing);
        a.summary = "deep".into();
        a.runbook = Some("https://run/book".into());
        a.value = Some(2.5);
        a.details.insert("zone".into(), "b".into());
        a.details.insert("value".into(), "from detail".into());
        a.details.insert("count".into(), serde_json::json!(3));
        a.details.insert(GENERATOR_URL.into(), "http://gen".into());
        a.details
            .insert(crate::alert::ENDS_AT.into(), "2026-01-01T00:00:00+00:00".into());
        let mut b = alert("Q", &[("queue", "q2")], AlertState::Resolved);
        b.summary = "deep".into();
        b.details.insert("zone".into(), "c".into());
        b.ends_at = Some(t(90));
        let n = Notification {
            id: "n".into(),
            receiver: "hook".into(),
            status: NotificationStatus::Firing,
            group_key: "{}:{}".into(),
            group_labels: Labels::new(),
            alerts: vec![std::sync::Arc::new(a), std::sync::Arc::new(b)],
            created_at: t(0),
            acknowledged_by: None,
        };
        let body: Value = serde_json::from_slice(&encode(&n, 0)).unwrap();
        assert_eq!(
            body["alerts"][0]["annotations"],
            serde_json::json!({"count": "3", "runbook_url": "https://run/book", "summary": "deep", "value": "from detail", "zone": "b"})
        );
        let keys: Vec<&String> = body["alerts"][0]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["count", "runbook_url", "summary", "value", "zone"]);
        assert_eq!(body["alerts"][0]["generatorURL"], "http://gen");
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(
            body["alerts"][1]["endsAt"],
            Rfc3339::of(&t(90), chrono::SecondsFormat::Millis).as_str()
        );
        assert!(body["alerts"][1]["endsAt"]
            .as_str()
            .unwrap()
            .ends_with(".000Z"));
        assert_eq!(
            body["commonAnnotations"],
            serde_json::json!({"summary": "deep"})
        );
        assert_eq!(body["commonLabels"], serde_json::json!({"alertname": "Q"}));
        assert_eq!(
            serde_json::to_vec(&body).unwrap(),
            encode(&n, 0),
            "the body is written in the order it is read back"
        );
    }
}
