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

    /// `redacted` over a run of alerts, where most carry the same label and detail keys as the
    /// last one found clean (`clean`, kept by the caller across the run): those need only their
    /// nested detail values looked at, not the pattern run on every key again (a plan over
    /// 100,000 alerts of a handful of shapes). Same answer as `redacted` for every alert.
    pub fn redacted_after<'a>(
        &self,
        a: &'a Alert,
        clean: &mut Option<&'a Alert>,
    ) -> Cow<'a, Alert> {
        let like_clean = clean.is_some_and(|c| {
            a.labels.keys().eq(c.labels.keys()) && a.details.keys().eq(c.details.keys())
        });
        if like_clean && !a.details.values().any(|v| self.value_needs(v)) {
            return Cow::Borrowed(a);
        }
        let r = self.redacted(a);
        if matches!(r, Cow::Borrowed(_)) {
            *clean = Some(a);
        }
        r
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
    fn redacting_a_run_answers_as_redacting_each_alert() {
        // Alerts whose keys repeat in runs (the shortcut answers) and change, in case and in
        // depth; each must come out exactly as `redacted` makes it.
        let keys = ["function", "Token", "region", "x_password_y", "queue"];
        let alerts: Vec<Alert> = (0..300)
            .map(|i: usize| {
                let shape = i / 7;
                let mut labels = serde_json::Map::new();
                let mut details = serde_json::Map::new();
                for (j, k) in keys.iter().enumerate() {
                    if (shape >> j) & 1 == 1 {
                        labels.insert(k.to_string(), format!("v{i}").into());
                    }
                }
                details.insert("summary_of".into(), format!("d{i}").into());
                if i.is_multiple_of(5) {
                    // Same top-level keys as its neighbours, a secret nested below.
                    details.insert("summary_of".into(), serde_json::json!({"inner": {"token": i}}));
                }
                serde_json::from_value(serde_json::json!({
                    "fingerprint": format!("f{i}"), "rule": "r", "instance": "i",
                    "labels": labels, "state": "firing", "severity": "warning", "summary": "s",
                    "details": details,
                    "active_since": "2026-11-01T00:00:00Z", "last_active": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z"
                }))
                .unwrap()
            })
            .collect();
        let r = Redactor::default();
        let mut clean = None;
        let (mut copied, mut shortcut) = (0, 0);
        for a in &alerts {
            let before = clean.map(std::ptr::from_ref);
            let got = r.redacted_after(a, &mut clean);
            assert_eq!(got, r.redacted(a), "alert {}", a.fingerprint);
            assert_eq!(
                matches!(got, Cow::Owned(_)),
                r.needs(a),
                "alert {}",
                a.fingerprint
            );
            copied += usize::from(matches!(got, Cow::Owned(_)));
            shortcut += usize::from(
                matches!(got, Cow::Borrowed(_)) && before == clean.map(std::ptr::from_ref),
            );
        }
        assert!(
            copied > 0 && copied < alerts.len(),
            "{copied} of {} copied",
            alerts.len()
        );
        assert!(
            shortcut >= alerts.len() / 10,
            "the shortcut answered {shortcut} times"
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
