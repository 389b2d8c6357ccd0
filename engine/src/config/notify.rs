//! The notification half of the config file: `[route]` (the routing tree), `[[inhibit]]`,
//! `[[escalation]]`, `[silences]` and `[notify]`.
//! Parsed here, checked as a whole by `crate::pipeline::PipelineConfig::from_config`.

use serde::Deserialize;
use toml::Spanned;

/// One node of the routing tree. The root matches every alert; children are tried in order and
/// the first that matches takes the alert, unless it says `continue = true`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `name=value`, `name!=value`, `name=~regex`, `name!~regex`; all must match.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub matchers: Vec<Spanned<String>>,
    /// Receiver name; inherited from the parent when absent.
    #[schemars(with = "Option<String>")]
    pub receiver: Option<Spanned<String>>,
    /// Escalation policy name; its steps name the receivers instead of `receiver`.
    #[schemars(with = "Option<String>")]
    pub escalation: Option<Spanned<String>>,
    /// Labels whose values form a group; `["..."]` (Alertmanager's spelling) or `"all"` groups
    /// by every label. Inherited.
    #[serde(default, deserialize_with = "group_by")]
    #[schemars(with = "Option<GroupBySchema>")]
    pub group_by: Option<Vec<String>>,
    /// Wait before a new group's first notification (default 30s). Inherited.
    #[schemars(with = "Option<String>")]
    pub group_wait: Option<Spanned<String>>,
    /// Wait before notifying about alerts added to a group (default 5m). Inherited.
    #[schemars(with = "Option<String>")]
    pub group_interval: Option<Spanned<String>>,
    /// Wait before repeating an unchanged notification (default 4h). Inherited.
    #[schemars(with = "Option<String>")]
    pub repeat_interval: Option<Spanned<String>>,
    /// Keep looking at later siblings after this route matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    #[serde(default)]
    #[schemars(with = "Vec<RouteConfig>")]
    pub routes: Vec<Spanned<RouteConfig>>,
}

/// What `group_by` accepts, for the JSON Schema: a list of labels, or `"all"` / `"..."`.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum GroupBySchema {
    List(Vec<String>),
    Word(String),
}

/// `group_by`: a list of labels, or the string `"all"` (or `"..."`), which is `["..."]`.
fn group_by<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum GroupBy {
        List(Vec<String>),
        Word(String),
    }
    match GroupBy::deserialize(d)? {
        GroupBy::List(l) => Ok(Some(l)),
        GroupBy::Word(w) if w == "all" || w == "..." => Ok(Some(vec!["...".into()])),
        GroupBy::Word(w) => Err(serde::de::Error::custom(format!(
            "group_by = {w:?}: give a list of labels, e.g. [\"alertname\"], or \"all\" \
             (every label, Alertmanager's [\"...\"])"
        ))),
    }
}

/// Mutes target alerts while a source alert with the same `equal` labels fires.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InhibitConfig {
    #[schemars(with = "Vec<String>")]
    pub source_matchers: Vec<Spanned<String>>,
    #[schemars(with = "Vec<String>")]
    pub target_matchers: Vec<Spanned<String>>,
    #[serde(default)]
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "Vec<EscalationStepConfig>")]
    pub steps: Vec<Spanned<EscalationStepConfig>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationStepConfig {
    /// How long after the alert started firing this step is reached (`0s`, `15m`).
    #[schemars(with = "String")]
    pub after: Spanned<String>,
    #[schemars(with = "String")]
    pub receiver: Spanned<String>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilencesConfig {
    /// Still announce the resolve of an alert a silence mutes (default false).
    #[serde(default)]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Label and detail keys matching this regex (case-insensitive) have their values replaced
    /// before any payload or log line is built.
    #[serde(default = "default_redact")]
    #[schemars(with = "String")]
    pub redact: Spanned<String>,
    /// Opt-in cap on failed delivery attempts (5xx, timeouts; never 429s) before a
    /// notification is dead-lettered. Unset (the default), transient failures are retried until
    /// `max_age`: a receiver that is down for an hour loses nothing.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// A notification that still fails (429s included) when older than this is dead-lettered.
    #[serde(default = "default_max_age")]
    #[schemars(with = "String")]
    pub max_age: Spanned<String>,
    /// A receiver that has taken nothing for this long while entries wait raises a
    /// `ReceiverHeldBack` meta-alert.
    #[serde(default = "default_held_back_after")]
    #[schemars(with = "String")]
    pub held_back_after: Spanned<String>,
    /// How long a one-shot run (`tripline eval`, the Lambda handler) goes on delivering what
    /// comes due after its cycle (paced messages, retries), in real time. A Lambda also stops
    /// before its invocation's deadline.
    #[serde(default = "default_deliver_budget")]
    #[schemars(with = "String")]
    pub deliver_budget: Spanned<String>,
    /// First retry delay after a 5xx or a timeout; doubled each time.
    #[serde(default = "default_backoff")]
    #[schemars(with = "String")]
    pub backoff: Spanned<String>,
    /// The longest wait between tries; also caps a receiver's `Retry-After`.
    #[serde(default = "default_max_backoff")]
    #[schemars(with = "String")]
    pub max_backoff: Spanned<String>,
}

pub use crate::pipeline::redact::DEFAULT_REDACT;

fn default_redact() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_REDACT.into())
}
fn default_backoff() -> Spanned<String> {
    Spanned::new(0..0, "1s".into())
}
fn default_max_backoff() -> Spanned<String> {
    Spanned::new(0..0, "5m".into())
}
fn default_max_age() -> Spanned<String> {
    Spanned::new(0..0, "6h".into())
}
fn default_held_back_after() -> Spanned<String> {
    Spanned::new(0..0, "10m".into())
}
fn default_deliver_budget() -> Spanned<String> {
    Spanned::new(0..0, "30s".into())
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            redact: default_redact(),
            max_attempts: None,
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
            max_age: default_max_age(),
            held_back_after: default_held_back_after(),
            deliver_budget: default_deliver_budget(),
        }
    }
}
