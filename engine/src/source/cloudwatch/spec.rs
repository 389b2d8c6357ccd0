//! A `cloudwatch(#{...})` spec read into a typed metric query, with everything CloudWatch would
//! reject checked here so one bad spec fails alone instead of failing its whole call.

use crate::clock::Timestamp;
use crate::data::MissingData;
use crate::data::QuerySpec;
use crate::source::{missing_of, Window};
use std::collections::BTreeMap;

/// A dimension's value in a spec: one exact value, or a glob (`*`, `?`) expanded by discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimValue {
    Exact(String),
    Glob(String),
}

/// A parsed `cloudwatch` spec.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub namespace: String,
    pub metric: String,
    pub stat: String,
    pub dimensions: BTreeMap<String, DimValue>,
    pub window: Window,
    pub missing: MissingData,
}

impl MetricSpec {
    /// Does any dimension need discovery?
    pub fn is_discovery(&self) -> bool {
        self.dimensions
            .values()
            .any(|v| matches!(v, DimValue::Glob(_)))
    }

    /// The dimensions when none is a glob.
    pub fn exact_dimensions(&self) -> BTreeMap<String, String> {
        self.dimensions
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    DimValue::Exact(s) | DimValue::Glob(s) => s.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

const KEYS: &[&str] = &[
    "namespace",
    "metric",
    "stat",
    "dimensions",
    "period",
    "range",
    "offset",
    "missing",
    "label",
];

/// CloudWatch's standard statistics and its extended ones (`p99`, `p99.9`, `tm90`, `TM(10%:90%)`,
/// `IQM`, …).
pub fn valid_stat(s: &str) -> bool {
    const STANDARD: &[&str] = &["Sum", "Average", "Minimum", "Maximum", "SampleCount", "IQM"];
    if STANDARD.contains(&s) {
        return true;
    }
    let re =
        regex::Regex::new(r"^(p|tm|wm|tc|ts)(\d{1,2}(\.\d+)?|100)$|^(TM|WM|TC|TS|PR)\([^)]*\)$")
            .expect("valid regex");
    re.is_match(s)
}

/// Periods CloudWatch accepts: 1, 5, 10, 20, 30 s (high resolution) or any multiple of 60 s.
pub fn valid_period(p: i64) -> bool {
    matches!(p, 1 | 5 | 10 | 20 | 30) || (p >= 60 && p % 60 == 0)
}

pub fn is_glob(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// Shell-style match: `*` any run of characters, `?` one character; everything else literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub fn parse(spec: &QuerySpec, at: Timestamp) -> Result<MetricSpec, String> {
    let obj = spec
        .params
        .as_object()
        .ok_or("a cloudwatch spec must be a map")?;
    for k in obj.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(format!(
                "cloudwatch spec has unknown key {k:?} (known: {})",
                KEYS.join(", ")
            ));
        }
    }
    let req = |k: &str| -> Result<String, String> {
        match spec.str(k) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(format!("cloudwatch spec needs `{k}` (a string)")),
        }
    };
    let namespace = req("namespace")?;
    let metric = req("metric")?;
    // CloudWatch rejects the whole GetMetricData call for one over-long name, so check here.
    for (what, v, max) in [("namespace", &namespace, 255), ("metric", &metric, 255)] {
        if v.chars().count() > max {
            return Err(format!(
                "{what} is longer than CloudWatch's {max} characters"
            ));
        }
    }
    let stat = spec.str("stat").unwrap_or("Average").to_string();
    if !valid_stat(&stat) {
        return Err(format!("unknown statistic {stat:?} (use Sum, Average, Minimum, Maximum, SampleCount or a percentile like p99)"));
    }
    let window = Window::of(spec, at)?;
    if !valid_period(window.period_secs) {
        return Err(format!(
            "period {}s is not one CloudWatch accepts (1, 5, 10, 20, 30 s or a multiple of 60 s)",
            window.period_secs
        ));
    }
    let mut dimensions = BTreeMap::new();
    match spec.params.get("dimensions") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(m)) => {
            if m.len() > 30 {
                return Err("a metric has at most 30 dimensions".into());
            }
            for (k, v) in m {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    other => return Err(format!("dimension {k:?} must be a string, got {other}")),
                };
                if k.chars().count() > 255 || v.chars().count() > 1024 || v.is_empty() {
                    return Err(format!(
                        "dimension {k:?}: names are 1-255 characters and values 1-1024"
                    ));
                }
                let v = if is_glob(&v) {
                    DimValue::Glob(v)
                } else {
                    DimValue::Exact(v)
                };
                dimensions.insert(k.clone(), v);
            }
        }
        Some(other) => {
            return Err(format!(
                "dimensions must be a map of name → value, got {other}"
            ))
        }
    }
    Ok(MetricSpec {
        namespace,
        metric,
        stat,
        dimensions,
        window,
        missing: missing_of(spec)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob_match(
            "prd2011-prod1-*",
            "prd2011-prod1-us-east-1-cmp-save-data"
        ));
        assert!(!glob_match(
            "prd2011-prod1-*",
            "prd2011-dev1-us-east-1-cmp-save-data"
        ));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(glob_match("*-data", "x-y-data"));
        assert!(!glob_match("*-data", "x-y-datas"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn stats_and_periods() {
        for s in [
            "Sum",
            "Average",
            "Minimum",
            "Maximum",
            "SampleCount",
            "p99",
            "p99.9",
            "p50",
            "tm90",
            "TM(10%:90%)",
        ] {
            assert!(valid_stat(s), "{s}");
        }
        for s in ["sum", "p", "p999", "Median"] {
            assert!(!valid_stat(s), "{s}");
        }
        assert!(valid_period(60) && valid_period(300) && valid_period(1) && valid_period(86400));
        assert!(!valid_period(90) && !valid_period(7));
    }

    #[test]
    fn parses_and_rejects() {
        let at = chrono::Utc::now();
        let s = QuerySpec::new(
            "cloudwatch",
            json!({"namespace": "AWS/Lambda", "metric": "Errors", "stat": "Sum", "dimensions": {"FunctionName": "prd2011-prod1-*"}, "missing": "breaching"}),
        );
        let m = parse(&s, at).unwrap();
        assert!(m.is_discovery());
        assert_eq!(m.missing, MissingData::Breaching);
        let bad = QuerySpec::new(
            "cloudwatch",
            json!({"namespace": "AWS/Lambda", "metric": "Errors", "period": "90s"}),
        );
        assert!(parse(&bad, at).unwrap_err().contains("period 90s"));
        let bad = QuerySpec::new(
            "cloudwatch",
            json!({"namespace": "AWS/Lambda", "metric": "Errors", "stat": "Median"}),
        );
        assert!(parse(&bad, at).unwrap_err().contains("unknown statistic"));
        let bad = QuerySpec::new("cloudwatch", json!({"metric": "Errors"}));
        assert!(parse(&bad, at).unwrap_err().contains("`namespace`"));
        let bad = QuerySpec::new(
            "cloudwatch",
            json!({"namespace": "n", "metric": "Errors", "dimensions": {"FunctionName": "x".repeat(1025)}}),
        );
        assert!(parse(&bad, at).unwrap_err().contains("values 1-1024"));
        let bad = QuerySpec::new(
            "cloudwatch",
            json!({"namespace": "n", "metric": "E".repeat(256)}),
        );
        assert!(parse(&bad, at).unwrap_err().contains("metric is longer"));
        let bad = QuerySpec::new(
            "cloudwatch",
            json!({"namespace": "n", "metric": "Errors", "dimension": {}}),
        );
        assert!(parse(&bad, at)
            .unwrap_err()
            .contains("unknown key \"dimension\""));
    }
}
