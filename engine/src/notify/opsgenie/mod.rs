//! Opsgenie Alert API v2: one request per alert. A firing alert creates an Opsgenie alert
//! (`POST /v2/alerts`) whose `alias` is the alert's fingerprint, so Opsgenie deduplicates repeats
//! into one alert; a resolved one closes it (`POST /v2/alerts/{alias}/close?identifierType=alias`)
//! and `tripline ack` acknowledges it (`…/acknowledge`). Authentication is `Authorization:
//! GenieKey <key>`, the key read from an environment variable. Endpoints: `https://api.opsgenie.com`
//! (`region = "us"`, the default) or `https://api.eu.opsgenie.com` (`"eu"`), or `url`.
//!
//! Priority from severity: critical → P1, high (`error`) → P2, warning → P3, info → P5 (P4 is
//! left for people to lower an alert to). The fields keep Opsgenie's documented limits: message
//! ≤ 130 characters, alias ≤ 512, description ≤ 15,000, entity ≤ 512, source ≤ 100, user ≤ 100,
//! note ≤ 25,000, at most 20 tags of ≤ 50 characters, details string-valued and ≤ 8,000
//! characters in all (keys and values). Opsgenie answers accepted requests with 202; 429 is rate
//! limiting (its `Retry-After` honoured when sent, otherwise the outbox's backoff); 5xx and
//! timeouts are retried; other 4xx are permanent.

use super::http::{self, truncate};
use super::kind::{BuildContext, Preview, ReceiverKind};
use super::redact::Secret;
use super::{Notification, NotificationStatus, Notifier, NotifyError};
use crate::alert::{Alert, AlertState, Severity};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub const US_URL: &str = "https://api.opsgenie.com";
pub const EU_URL: &str = "https://api.eu.opsgenie.com";

/// The `source` of every alert and action (≤ `SOURCE_MAX`).
pub const SOURCE: &str = "tripline";

pub const MESSAGE_MAX: usize = 130;
pub const ALIAS_MAX: usize = 512;
pub const DESCRIPTION_MAX: usize = 15_000;
pub const ENTITY_MAX: usize = 512;
pub const SOURCE_MAX: usize = 100;
pub const USER_MAX: usize = 100;
pub const NOTE_MAX: usize = 25_000;
pub const TAGS_MAX: usize = 20;
pub const TAG_MAX: usize = 50;
/// All `details` keys and values together.
pub const DETAILS_MAX: usize = 8_000;
/// One detail value, so that one long detail cannot crowd out the others.
const DETAIL_VALUE_MAX: usize = 1_000;

/// The pace when `rate_limit` is unset: 60 requests a minute, bursts of 10. Opsgenie publishes
/// no single figure: its rate-limiting page (docs.opsgenie.com/docs/api-rate-limiting) says the
/// Alert API's limits are a token bucket per account, checked per minute and per second, sized
/// by plan. This is a conservative pace for a receiver sharing the account with other tools;
/// set `rate_limit` to your account's figure to go faster.
pub const DEFAULT_RATE: (f64, u32) = (1.0, 10);

/// Opsgenie Alert API v2: one request per alert, `alias` = the alert's fingerprint.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieConfig {
    pub name: String,
    /// Environment variable holding the API integration's key (a secret).
    pub api_key_env: String,
    /// Where the Opsgenie account lives: `"us"` (default, `https://api.opsgenie.com`) or
    /// `"eu"` (`https://api.eu.opsgenie.com`).
    #[serde(default)]
    pub region: OpsgenieRegion,
    /// API base URL instead of the region's (a proxy, tests); `/v2/alerts` is appended.
    pub url: Option<String>,
    /// Close resolved alerts (default true).
    #[serde(default = "http::yes")]
    pub send_resolved: bool,
    /// Pace, `"60/m"` with bursts of 10 by default (see docs/notifications.md).
    pub rate_limit: Option<String>,
    pub burst: Option<u32>,
    /// Per-request timeout (default 10s).
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OpsgenieRegion {
    #[default]
    Us,
    Eu,
}

impl OpsgenieRegion {
    pub fn url(self) -> &'static str {
        match self {
            OpsgenieRegion::Us => US_URL,
            OpsgenieRegion::Eu => EU_URL,
        }
    }
}

impl ReceiverKind for OpsgenieConfig {
    fn name(&self) -> &str {
        &self.name
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn secret_env_vars(&self) -> Vec<&str> {
        vec![&self.api_key_env]
    }

    fn build(&self, _: &BuildContext) -> Result<Arc<dyn Notifier>, String> {
        let base = match &self.url {
            Some(u) => http::url_option(u)?.expose().to_string(),
            None => self.region.url().to_string(),
        };
        Ok(Arc::new(OpsgenieNotifier::new(
            &self.name,
            Secret::from_env(&self.api_key_env)?,
            &base,
            http::timeout(self.timeout.as_deref())?,
            http::pace(self.rate_limit.as_deref(), self.burst, Some(DEFAULT_RATE))?,
        )?))
    }

    fn preview(&self, n: &Notification) -> Preview {
        Preview::Json(Value::Array(
            requests(n)
                .into_iter()
                .map(|r| {
                    json!({
                        "request": format!("POST {}", r.path_and_query()),
                        "authorization": "GenieKey ***",
                        "body": r.body,
                    })
                })
                .collect(),
        ))
    }
}

pub struct OpsgenieNotifier {
    name: String,
    api_key: Secret,
    base: reqwest::Url,
    client: reqwest::Client,
    timeout: std::time::Duration,
    rate: (f64, u32),
}

impl OpsgenieNotifier {
    /// `base` is the API's root (`https://api.opsgenie.com`, or a test receiver's URL).
    pub fn new(
        name: impl Into<String>,
        api_key: Secret,
        base: &str,
        timeout: Option<std::time::Duration>,
        rate: Option<(f64, u32)>,
    ) -> Result<Self, String> {
        let base = reqwest::Url::parse(base).map_err(|_| "`url` is not a URL".to_string())?;
        if base.cannot_be_a_base() {
            return Err("`url` is not an http(s) URL".into());
        }
        Ok(OpsgenieNotifier {
            name: name.into(),
            api_key,
            base,
            client: http::client(timeout)?,
            timeout: timeout.unwrap_or(http::DEFAULT_TIMEOUT),
            rate: rate.unwrap_or(DEFAULT_RATE),
        })
    }

    fn url(&self, r: &Request) -> String {
        let mut u = self.base.clone();
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty().extend(r.segments());
        }
        u.set_query(r.query());
        u.to_string()
    }
}

/// What is done to one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Close,
    Acknowledge,
}

/// One Alert API request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub action: Action,
    /// The alert's alias (its fingerprint, cut to `ALIAS_MAX`).
    pub alias: String,
    pub body: Value,
}

impl Request {
    /// Path segments below the API root, not yet percent-encoded.
    fn segments(&self) -> Vec<&str> {
        match self.action {
            Action::Create => vec!["v2", "alerts"],
            Action::Close => vec!["v2", "alerts", &self.alias, "close"],
            Action::Acknowledge => vec!["v2", "alerts", &self.alias, "acknowledge"],
        }
    }

    fn query(&self) -> Option<&'static str> {
        (self.action != Action::Create).then_some("identifierType=alias")
    }

    /// `/v2/alerts/{alias}/close?identifierType=alias`, as sent to the API root.
    pub fn path_and_query(&self) -> String {
        let mut u = reqwest::Url::parse("http://api.invalid/").expect("a constant URL");
        if let Ok(mut path) = u.path_segments_mut() {
            path.clear().extend(self.segments());
        }
        match self.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }
}

/// Opsgenie's priority for a severity.
pub fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "P1",
        Severity::High => "P2",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    }
}

fn first_label<'a>(a: &'a Alert, names: &[&str]) -> Option<&'a String> {
    names.iter().find_map(|n| a.labels.get(*n))
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}

fn description(a: &Alert) -> String {
    let mut s = a.summary.clone();
    s.push_str(&format!("\n\nSeverity: {}", a.severity));
    if let Some(v) = a.value {
        s.push_str(&format!("\nValue: {v}"));
    }
    if let Some(t) = a.starts_at {
        s.push_str(&format!("\nSince: {}", t.format("%Y-%m-%d %H:%M UTC")));
    }
    s.push_str(&format!("\nRule: {}", a.rule));
    if !a.labels.is_empty() {
        s.push_str("\n\nLabels:");
        for (k, v) in &a.labels {
            s.push_str(&format!("\n  {k} = {v}"));
        }
    }
    let details: Vec<_> = a.shown_details().collect();
    if !details.is_empty() {
        s.push_str("\n\nDetails:");
        for (k, v) in details {
            s.push_str(&format!("\n  {k}: {}", truncate(&text(v), 2_000)));
        }
    }
    // Last, and kept whole when the rest is cut: Opsgenie shows the URL as a link.
    let runbook = a
        .runbook
        .as_deref()
        .map(|r| format!("\n\nRunbook: {r}"))
        .unwrap_or_default();
    let room = DESCRIPTION_MAX.saturating_sub(runbook.chars().count());
    let mut out = truncate(&s, room);
    out.push_str(&runbook);
    truncate(&out, DESCRIPTION_MAX)
}

/// A tag as Opsgenie takes it: no commas or white space (the UI splits on them), ≤ 50 chars.
fn tag(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c == ',' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    truncate(&clean, TAG_MAX)
}

fn tags(a: &Alert) -> Vec<String> {
    let mut out = vec![
        "tripline".to_string(),
        tag(&format!("severity:{}", a.severity)),
        tag(&format!("rule:{}", a.rule)),
    ];
    for (k, v) in &a.labels {
        if out.len() >= TAGS_MAX {
            break;
        }
        let t = tag(&format!("{k}:{v}"));
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Custom properties: the runbook, rule, value and fingerprint first, then the labels, then the
/// rule's shown details; string values, ≤ `DETAILS_MAX` characters in all, the rest counted.
fn details(a: &Alert) -> Map<String, Value> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    if let Some(r) = &a.runbook {
        wanted.push(("runbook_url".into(), r.clone()));
    }
    wanted.push(("rule".into(), a.rule.clone()));
    if let Some(v) = a.value {
        wanted.push(("value".into(), v.to_string()));
    }
    wanted.push(("fingerprint".into(), a.fingerprint.clone()));
    for (k, v) in &a.labels {
        wanted.push((k.clone(), v.clone()));
    }
    for (k, v) in a.shown_details() {
        wanted.push((k.clone(), text(v)));
    }
    // Room kept for the count of what did not fit.
    const LEFT_OUT: &str = "details_not_shown";
    let budget = DETAILS_MAX - LEFT_OUT.len() - 6;
    let (mut out, mut used, mut dropped) = (Map::new(), 0, 0usize);
    for (k, v) in wanted {
        if out.contains_key(&k) {
            continue;
        }
        let k = truncate(&k, 100);
        let v = truncate(&v, DETAIL_VALUE_MAX);
        let size = k.chars().count() + v.chars().count();
        if used + size > budget {
            dropped += 1;
            continue;
        }
        used += size;
        out.insert(k, Value::String(v));
    }
    if dropped > 0 {
        out.insert(LEFT_OUT.into(), Value::String(dropped.to_string()));
    }
    out
}

fn create(a: &Alert) -> Value {
    let entity = first_label(
        a,
        &["source", "host", "function", "queue", "service", "instance"],
    )
    .cloned()
    .unwrap_or_else(|| a.instance.clone());
    // Opsgenie requires a message: a rule that left its summary blank gets its alert's name.
    let message = match a.summary.trim() {
        "" => a.labels.get("alertname").unwrap_or(&a.rule).as_str(),
        summary => summary,
    };
    json!({
        "message": truncate(message, MESSAGE_MAX),
        "alias": truncate(&a.fingerprint, ALIAS_MAX),
        "description": description(a),
        "priority": priority(a.severity),
        "tags": tags(a),
        "details": details(a),
        "entity": truncate(&entity, ENTITY_MAX),
        "source": SOURCE,
    })
}

/// The requests one notification makes, in order: one per alert (only open alerts can be
/// acknowledged).
pub fn requests(n: &Notification) -> Vec<Request> {
    n.alerts
        .iter()
        .filter(|a| n.status != NotificationStatus::Acknowledged || a.is_active())
        .map(|a| {
            let alias = truncate(&a.fingerprint, ALIAS_MAX);
            let (action, body) = match (n.status, a.state) {
                (NotificationStatus::Acknowledged, _) => {
                    let who = n.acknowledged_by.as_deref().unwrap_or("someone");
                    (
                        Action::Acknowledge,
                        json!({
                            "user": truncate(who, USER_MAX),
                            "source": SOURCE,
                            "note": truncate(&format!("Acknowledged in Tripline by {who}"), NOTE_MAX),
                        }),
                    )
                }
                (_, AlertState::Resolved) => {
                    let at = a
                        .ends_at
                        .map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M UTC")))
                        .unwrap_or_default();
                    (
                        Action::Close,
                        json!({
                            "user": "Tripline",
                            "source": SOURCE,
                            "note": truncate(&format!("Resolved{at}: {}", a.summary), NOTE_MAX),
                        }),
                    )
                }
                _ => (Action::Create, create(a)),
            };
            Request {
                action,
                alias,
                body,
            }
        })
        .collect()
}

#[async_trait]
impl Notifier for OpsgenieNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn request_timeout(&self) -> Option<std::time::Duration> {
        Some(self.timeout)
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let auth = format!("GenieKey {}", self.api_key.expose());
        // Creating is deduplicated on the alias and closing an alert twice is harmless, so
        // resending the requests that went through before a failure part-way does no harm.
        for r in requests(n) {
            http::post_json(
                &self.client,
                &self.name,
                &self.url(&r),
                &r.body,
                &[("authorization", &auth)],
                &[&self.api_key],
            )
            .await?;
        }
        Ok(())
    }

    /// One request per alert (acknowledgements: per open alert).
    fn cost(&self, n: &Notification) -> u32 {
        let count = if n.status == NotificationStatus::Acknowledged {
            n.alerts.iter().filter(|a| a.is_active()).count()
        } else {
            n.alerts.len()
        };
        count.max(1) as u32
    }

    fn rate_limit(&self) -> Option<(f64, u32)> {
        Some(self.rate)
    }
}

#[cfg(test)]
mod tests;
