//! Redaction: label and detail values whose key looks secret (`password`, `token`, `api_key`, …)
//! are replaced before any payload or log line is built from an alert. Also the scrubbing of
//! known secret strings (webhook URLs, routing keys) out of error texts.

use crate::alert::Alert;
use regex::Regex;
use std::borrow::Cow;

pub const REDACTED: &str = "[REDACTED]";

/// The redaction pattern when `[notify] redact` is not set.
pub const DEFAULT_REDACT: &str = "password|secret|token|authorization|key";

#[derive(Debug, Clone)]
pub struct Redactor {
    keys: Regex,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(DEFAULT_REDACT).expect("default redaction pattern")
    }
}

impl Redactor {
    /// `pattern` is matched case-insensitively anywhere in a key.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let keys = Regex::new(&format!("(?i){pattern}")).map_err(|e| {
            format!(
                "invalid redaction pattern {pattern:?}: {}",
                crate::pipeline::matcher::regex_error(&e)
            )
        })?;
        Ok(Redactor { keys })
    }

    pub fn is_secret_key(&self, key: &str) -> bool {
        self.keys.is_match(key)
    }

    /// `a` as receivers may see it: borrowed when it carries nothing to redact (most alerts), a
    /// redacted copy otherwise.
    pub fn redacted<'a>(&self, a: &'a Alert) -> Cow<'a, Alert> {
        if self.needs(a) {
            let mut copy = a.clone();
            self.alert(&mut copy);
            Cow::Owned(copy)
        } else {
            Cow::Borrowed(a)
        }
    }

    /// Whether `alert` would change anything in `a`: a secret-looking label or detail key,
    /// however deep in the details.
    pub fn needs(&self, a: &Alert) -> bool {
        a.labels.keys().any(|k| self.is_secret_key(k))
            || a.details
                .iter()
                .any(|(k, v)| self.is_secret_key(k) || self.value_needs(v))
    }

    fn value_needs(&self, v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .any(|(k, v)| self.is_secret_key(k) || self.value_needs(v)),
            serde_json::Value::Array(items) => items.iter().any(|i| self.value_needs(i)),
            _ => false,
        }
    }

    pub fn alert(&self, a: &mut Alert) {
        for (k, v) in a.labels.iter_mut() {
            if self.is_secret_key(k) {
                *v = REDACTED.into();
            }
        }
        for (k, v) in a.details.iter_mut() {
            if self.is_secret_key(k) {
                *v = REDACTED.into();
            } else {
                self.value(v);
            }
        }
    }

    fn value(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    if self.is_secret_key(k) {
                        *v = REDACTED.into();
                    } else {
                        self.value(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            _ => {}
        }
    }
}

/// A secret value (webhook URL, routing key) read from the environment. It prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// Reads `var`; the error names the variable, never a value.
    pub fn from_env(var: &str) -> Result<Self, String> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            _ => Err(format!("environment variable {var} is not set")),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret (and of its URL path, which holds the token in
    /// webhook URLs) replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, "***");
        if let Some(path) = url_path(&self.0) {
            if path.len() > 1 {
                out = out.replace(path, "/***");
            }
        }
        out
    }
}

fn url_path(s: &str) -> Option<&str> {
    let rest = s.split_once("://")?.1;
    rest.find('/').map(|i| &rest[i..])
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_replaced_deeply() {
        let r = Redactor::default();
        let mut a: Alert = serde_json::from_value(serde_json::json!({
            "fingerprint": "f", "rule": "r", "instance": "i",
            "labels": {"function": "f1", "api_key": "k1"},
            "state": "firing", "severity": "warning", "summary": "s",
            "details": {"Authorization": "Bearer x", "req": {"password": "p", "ok": 1}, "list": [{"token": "t"}]},
            "active_since": "2026-11-01T00:00:00Z", "last_active": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z"
        }))
        .unwrap();
        assert!(r.needs(&a));
        let copy = r.redacted(&a).into_owned();
        r.alert(&mut a);
        assert_eq!(copy, a, "redacted() redacts as alert() does");
        assert_eq!(a.labels["api_key"], REDACTED);
        assert_eq!(a.labels["function"], "f1");
        assert_eq!(a.details["Authorization"], REDACTED);
        assert_eq!(a.details["req"]["password"], REDACTED);
        assert_eq!(a.details["req"]["ok"], 1);
        assert_eq!(a.details["list"][0]["token"], REDACTED);
    }

    #[test]
    fn an_alert_with_nothing_secret_is_borrowed() {
        let r = Redactor::default();
        let a: Alert = serde_json::from_value(serde_json::json!({
            "fingerprint": "f", "rule": "r", "instance": "i",
            "labels": {"function": "f1"},
            "state": "firing", "severity": "warning", "summary": "s",
            "details": {"req": {"ok": 1}, "list": [{"path": "/x"}]},
            "active_since": "2026-11-01T00:00:00Z", "last_active": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z"
        }))
        .unwrap();
        assert!(!r.needs(&a));
        assert!(matches!(r.redacted(&a), Cow::Borrowed(_)));
        let mut deep = a.clone();
        deep.details["list"][0]["path"] = serde_json::json!({"token": "t"});
        assert!(r.needs(&deep));
        assert_eq!(
            r.redacted(&deep).details["list"][0]["path"]["token"],
            REDACTED
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("https://hooks.slack.com/services/T1/B2/XYZ");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(
            s.scrub("POST https://hooks.slack.com/services/T1/B2/XYZ failed"),
            "POST *** failed"
        );
        assert_eq!(s.scrub("path /services/T1/B2/XYZ"), "path /***");
    }
}
