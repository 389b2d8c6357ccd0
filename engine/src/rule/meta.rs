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

/// The type of a parameter, derived from its default (docs/rules.md, "Parameter types").
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    /// An integer or float default: any number.
    Number,
    /// A string default that reads as a duration (`"5m"`): a duration string.
    Duration,
    String,
    Bool,
    /// An array default; its first element, if any, types the elements.
    Array(Option<Box<ParamKind>>),
    /// A map default: a table.
    Table,
    /// No default (`()`, required): a string, an array of strings (a dimension written as a glob
    /// or a list), or a table.
    Required,
}

fn kind_of(v: &serde_json::Value) -> ParamKind {
    use serde_json::Value as V;
    match v {
        V::Number(_) => ParamKind::Number,
        V::String(s) if !s.is_empty() && parse_duration(s).is_ok() => ParamKind::Duration,
        V::String(_) => ParamKind::String,
        V::Bool(_) => ParamKind::Bool,
        V::Array(a) => ParamKind::Array(a.first().map(|e| Box::new(kind_of(e)))),
        V::Object(_) => ParamKind::Table,
        V::Null => ParamKind::Required,
    }
}

/// `a string "10"`, `the number 10`, …: a value as the config file wrote it.
fn describe(v: &serde_json::Value) -> String {
    use serde_json::Value as V;
    match v {
        V::Number(n) => format!("the number {n}"),
        V::String(s) => format!("the string {s:?}"),
        V::Bool(b) => format!("the boolean {b}"),
        V::Array(_) => "an array".into(),
        V::Object(_) => "a table".into(),
        V::Null => "nothing".into(),
    }
}

/// `v` written as a TOML value, for suggestions.
fn toml_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        v => v.to_string(),
    }
}

impl ParamSpec {
    pub fn kind(&self) -> ParamKind {
        self.default.as_ref().map_or(ParamKind::Required, kind_of)
    }

    /// Checks a value given for parameter `name` against the type its default implies. The
    /// error says what was expected and, when the intent is evident, the correction:
    /// `expected a number (default 10), got the string "10"; did you mean `threshold = 10`?`.
    pub fn check(&self, name: &str, v: &serde_json::Value) -> Result<(), String> {
        check_kind(&self.kind(), self.default.as_ref(), name, v)
    }
}

fn check_kind(
    kind: &ParamKind,
    default: Option<&serde_json::Value>,
    name: &str,
    v: &serde_json::Value,
) -> Result<(), String> {
    use serde_json::Value as V;
    let default_note = default
        .map(|d| format!(" (its default is {})", toml_text(d)))
        .unwrap_or_default();
    let wrong = |expected: &str, fix: Option<String>| {
        let mut m = format!("expected {expected}{default_note}, got {}", describe(v));
        if let Some(f) = fix {
            m.push_str(&format!("; did you mean `{name} = {f}`?"));
        }
        Err(m)
    };
    match (kind, v) {
        (ParamKind::Number, V::Number(_))
        | (ParamKind::String, V::String(_))
        | (ParamKind::Bool, V::Bool(_))
        | (ParamKind::Table, V::Object(_)) => Ok(()),
        (ParamKind::Number, V::String(s)) => {
            let fix = s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|_| s.trim().to_string());
            wrong("a number", fix)
        }
        (ParamKind::Number, _) => wrong("a number", None),
        (ParamKind::Duration, V::String(s)) => match parse_duration(s) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "expected a duration such as \"30s\", \"5m\", \"1h\" or \"1d\"{default_note}, got {}: {e}",
                describe(v)
            )),
        },
        (ParamKind::Duration, V::Number(n)) => wrong(
            "a duration string such as \"30s\", \"5m\", \"1h\" or \"1d\"",
            Some(format!("\"{n}s\"")),
        ),
        (ParamKind::Duration, _) => wrong(
            "a duration string such as \"30s\", \"5m\", \"1h\" or \"1d\"",
            None,
        ),
        (ParamKind::String, V::Number(_) | V::Bool(_)) => {
            wrong("a string", Some(format!("\"{v}\"")))
        }
        (ParamKind::String, _) => wrong("a string", None),
        (ParamKind::Bool, V::String(s)) if s == "true" || s == "false" => {
            wrong("a boolean (true or false)", Some(s.clone()))
        }
        (ParamKind::Bool, _) => wrong("a boolean (true or false)", None),
        (ParamKind::Array(elem), V::Array(items)) => {
            if let Some(elem) = elem {
                for (i, item) in items.iter().enumerate() {
                    check_kind(elem, None, &format!("{name}[{i}]"), item)
                        .map_err(|m| format!("element {i}: {m}"))?;
                }
            }
            Ok(())
        }
        (ParamKind::Array(_), V::String(_) | V::Number(_) | V::Bool(_)) => {
            wrong("an array", Some(format!("[{}]", toml_text(v))))
        }
        (ParamKind::Array(_), _) => wrong("an array", None),
        (ParamKind::Table, _) => wrong("a table", None),
        (ParamKind::Required, V::String(_) | V::Object(_)) => Ok(()),
        (ParamKind::Required, V::Array(items)) => {
            match items.iter().position(|i| !i.is_string()) {
                None => Ok(()),
                Some(i) => Err(format!(
                    "expected a string, an array of strings or a table, got an array whose element {i} is {}",
                    describe(&items[i])
                )),
            }
        }
        (ParamKind::Required, V::Number(_) | V::Bool(_)) => wrong(
            "a string, an array of strings or a table",
            Some(format!("\"{v}\"")),
        ),
        (ParamKind::Required, _) => wrong("a string, an array of strings or a table", None),
    }
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

/// What a schedule looks like, in every cron error.
pub const CRON_FORM: &str =
    "expected 6 fields `sec min hour day month weekday` (e.g. \"0 */5 * * * *\"), \
     or standard 5-field cron `min hour day month weekday` (e.g. \"*/5 * * * *\", run at second 0)";

/// Parses a cron expression: 6 fields with seconds (`0 */5 * * * *`), an optional 7th for the
/// year, or standard 5-field cron (`*/5 * * * *`), which runs at second 0.
pub fn parse_schedule(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_string(),
        n => {
            return Err(format!(
                "invalid cron expression {expr:?}: {n} field{}; {CRON_FORM}",
                if n == 1 { "" } else { "s" }
            ))
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| {
        let why = e.to_string();
        let why = why.lines().next().unwrap_or_default().trim();
        format!("invalid cron expression {expr:?}: {why}; {CRON_FORM}")
    })
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
    use serde_json::json;

    fn spec(default: serde_json::Value) -> ParamSpec {
        ParamSpec {
            default: (!default.is_null()).then_some(default),
        }
    }

    #[test]
    fn param_types_follow_the_defaults() {
        let ok = [
            (json!(10), json!(2.5)),
            (json!(0.8), json!(1)),
            (json!("5m"), json!("1h")),
            (json!("ignore"), json!("breaching")),
            (json!(true), json!(false)),
            (json!([]), json!(["a", 1])),
            (json!(["queue"]), json!(["a", "b"])),
            (json!({}), json!({"a": "b"})),
            (json!(null), json!("prd-*")),
            (json!(null), json!(["f1", "f2"])),
            (json!(null), json!({"w": "http://x"})),
        ];
        for (d, v) in ok {
            assert_eq!(spec(d.clone()).check("p", &v), Ok(()), "{d} {v}");
        }
        let bad = [
            (json!(10), json!("10"), "expected a number (its default is 10), got the string \"10\"; did you mean `p = 10`?"),
            (json!(10), json!(true), "expected a number (its default is 10), got the boolean true"),
            (json!("5m"), json!("5 minutes"), "expected a duration such as \"30s\", \"5m\", \"1h\" or \"1d\" (its default is \"5m\"), got the string \"5 minutes\""),
            (json!("5m"), json!(300), "expected a duration string such as \"30s\", \"5m\", \"1h\" or \"1d\" (its default is \"5m\"), got the number 300; did you mean `p = \"300s\"`?"),
            (json!("ignore"), json!(1), "expected a string (its default is \"ignore\"), got the number 1; did you mean `p = \"1\"`?"),
            (json!(false), json!("true"), "expected a boolean (true or false) (its default is false), got the string \"true\"; did you mean `p = true`?"),
            (json!(["queue"]), json!("queue"), "expected an array (its default is [\"queue\"]), got the string \"queue\"; did you mean `p = [\"queue\"]`?"),
            (json!(["queue"]), json!([1]), "element 0: expected a string, got the number 1; did you mean `p[0] = \"1\"`?"),
            (json!(null), json!(5), "expected a string, an array of strings or a table, got the number 5; did you mean `p = \"5\"`?"),
            (json!(null), json!(["a", 5]), "expected a string, an array of strings or a table, got an array whose element 1 is the number 5"),
        ];
        for (d, v, m) in bad {
            let e = spec(d.clone()).check("p", &v).unwrap_err();
            assert!(e.starts_with(m), "{d} {v}: {e}");
        }
    }

    #[test]
    fn five_and_six_field_cron() {
        assert!(parse_schedule("*/5 * * * *").is_ok());
        assert!(parse_schedule("0 */5 * * * *").is_ok());
        assert!(parse_schedule("every minute")
            .unwrap_err()
            .contains("invalid cron"));
    }

    #[test]
    fn cron_errors_say_what_is_expected() {
        let e = parse_schedule("*/5 * * *").unwrap_err();
        assert_eq!(
            e,
            format!("invalid cron expression \"*/5 * * *\": 4 fields; {CRON_FORM}")
        );
        let e = parse_schedule("0 */5 * * * blursday").unwrap_err();
        assert!(e.contains("sec min hour day month weekday"), "{e}");
        // Standard cron runs at second 0 of each matching minute.
        let s = parse_schedule("*/5 * * * *").unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:01:30Z").unwrap();
        let next = s.after(&t.with_timezone(&chrono::Utc)).next().unwrap();
        assert_eq!(next.to_rfc3339(), "2026-01-01T00:05:00+00:00");
    }
}
