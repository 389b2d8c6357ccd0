//! What a rule asks a source for: a `QuerySpec`, one named query with its canonical identity.

use std::collections::BTreeMap;

/// One named query a rule asked for. Two specs with the same `key` are the same query and are
/// fetched once per cycle, whichever rules asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// Which source answers it: `cloudwatch`, `logs_insights`, `prometheus`, `pushed`, …
    pub kind: String,
    /// The spec's parameters as canonical JSON (object keys sorted).
    pub params: serde_json::Value,
    /// Canonical text of kind + params: the identity used to merge identical queries.
    pub key: String,
}

impl QuerySpec {
    pub fn new(kind: impl Into<String>, params: serde_json::Value) -> Self {
        let kind = kind.into();
        let params = canonical(params);
        let key = format!("{kind}:{params}");
        QuerySpec { kind, params, key }
    }

    /// A string parameter, if present.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.params.get(name)?.as_str()
    }
}

fn canonical(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}
