//! A rule's metadata: the `RULE` constant at the top of its file.

use crate::alert::{Labels, Severity};
use crate::clock::parse_duration;
use rhai::{Dynamic, Map};
use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub id: String,
    pub description: String,
    /// Cron expression with seconds, e.g. `0 */5 * * * *`.
    pub every: String,
    pub schedule: cron::Schedule,
    pub severity: Severity,
    pub runbook: Option<String>,
    pub labels: Labels,
    pub params: BTreeMap<String, ParamSpec>,
    pub for_: chrono::Duration,
    pub keep_firing_for: chrono::Duration,
    /// `RULE.fleet` (default `true`): a required parameter given a glob or a list of names is
    /// expanded by the engine into one evaluation per subject (`crate::fleet`). `false`: the rule
    /// takes globs and lists itself (it loops over the array of series a glob answers).
    pub fleet: bool,
}

/// A parameter and its default; `None` means the config must give it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub default: Option<serde_json::Value>,
}

const KEYS: &[&str] = &[
    "id",
    "description",
    "every",
    "severity",
    "runbook",
    "labels",
    "params",
    "for",
    "keep_firing_for",
    "fleet",
];

/// Parses a cron expression, accepting the classic 5-field form by adding a seconds field.
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}

fn string(m: &Map, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) if v.is_string() => Ok(Some(v.clone().into_string().unwrap_or_default())),
        Some(v) => Err(format!(
            "RULE.{key} must be a string, got {}",
            v.type_name()
        )),
    }
}

fn duration(m: &Map, key: &str) -> Result<chrono::Duration, String> {
    match string(m, key)? {
        None => Ok(chrono::Duration::zero()),
        Some(s) => parse_duration(&s).map_err(|e| format!("RULE.{key}: {e}")),
    }
}

impl RuleMeta {
    pub fn from_map(m: &Map) -> Result<RuleMeta, String> {
        for k in m.keys() {
            if !KEYS.contains(&k.as_str()) {
                return Err(format!(
                    "RULE has unknown key {k:?} (known: {})",
                    KEYS.join(", ")
                ));
            }
        }
        let id = string(m, "id")?.ok_or("RULE.id is required")?;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
        {
            return Err(format!(
                "RULE.id {id:?} may only hold letters, digits and / - _ ."
            ));
        }
        let every = string(m, "every")?.unwrap_or_else(|| "0 * * * * *".into());
        let schedule = parse_schedule(&every).map_err(|e| format!("RULE.every: {e}"))?;
        let severity = match string(m, "severity")? {
            Some(s) => s.parse().map_err(|e| format!("RULE.severity: {e}"))?,
            None => Severity::Warning,
        };
        let labels = match m.get("labels") {
            None => Labels::new(),
            Some(v) => v
                .clone()
                .try_cast::<Map>()
                .ok_or("RULE.labels must be a map")?
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let params = match m.get("params") {
            None => BTreeMap::new(),
            Some(v) => {
                let pm = v
                    .clone()
                    .try_cast::<Map>()
                    .ok_or("RULE.params must be a map")?;
                pm.into_iter()
                    .map(|(k, v): (_, Dynamic)| {
                        let default = if v.is_unit() {
                            None
                        } else {
                            Some(
                                rhai::serde::from_dynamic::<serde_json::Value>(&v)
                                    .map_err(|e| format!("RULE.params.{k}: {e}"))?,
                            )
                        };
                        Ok((k.to_string(), ParamSpec { default }))
                    })
                    .collect::<Result<_, String>>()?
            }
        };
        Ok(RuleMeta {
            id,
            description: string(m, "description")?.unwrap_or_default(),
            every,
            schedule,
            severity,
            runbook: string(m, "runbook")?,
            labels,
            params,
            for_: duration(m, "for")?,
            keep_firing_for: duration(m, "keep_firing_for")?,
            fleet: match m.get("fleet") {
                None => true,
                Some(v) => v
                    .as_bool()
                    .map_err(|t| format!("RULE.fleet must be true or false, got {t}"))?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_field_cron() {
        assert!(parse_schedule("*/5 * * * *").is_ok());
        assert!(parse_schedule("0 */5 * * * *").is_ok());
        assert!(parse_schedule("every minute")
            .unwrap_err()
            .contains("invalid cron"));
    }
}
