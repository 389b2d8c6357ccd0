//! Serves series and tables from JSON or TOML files, matching them to whatever query specs the
//! rules ask for. It stands in for any kind (cloudwatch, prometheus, logs, …) so the same stock
//! rules run on recorded data: the demo, rule tests and backtests.
//!
//! An entry matches a spec when every key in its `match` equals the spec's value (nested maps
//! are compared the same way, so `dimensions = { FunctionName = "f" }` matches a spec with those
//! dimensions and perhaps more keys elsewhere). Point times are RFC 3339 instants or offsets
//! from the evaluation instant such as `-10m`.

use super::{missing_of, shape_of_spec, FetchContext, Shape, Source, Window};
use crate::clock::{parse_duration, Timestamp};
use crate::data::QuerySpec;
use crate::data::{Point, QueryData, QueryOutcome, Series, SourceFailure, Table};
use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixtureData {
    #[serde(default)]
    pub series: Vec<FixtureSeries>,
    #[serde(default, alias = "tables")]
    pub table: Vec<FixtureTable>,
    /// Specs that fail, to rehearse source outages.
    #[serde(default, alias = "errors")]
    pub error: Vec<FixtureError>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixtureSeries {
    #[serde(rename = "match", default)]
    pub matches: serde_json::Map<String, Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `[time, value]` pairs.
    #[serde(default, deserialize_with = "checked_points")]
    pub points: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixtureTable {
    #[serde(rename = "match", default)]
    pub matches: serde_json::Map<String, Value>,
    #[serde(default)]
    pub rows: Vec<BTreeMap<String, Value>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixtureError {
    #[serde(rename = "match", default)]
    pub matches: serde_json::Map<String, Value>,
    pub message: String,
}

impl FixtureData {
    /// Parses JSON or TOML by the file's extension.
    pub fn parse(path: &Path, text: &str) -> Result<FixtureData> {
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text).map_err(|e| {
                // The location is given once, as path:line:col, not again in serde_json's words.
                let message = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let message = message.strip_suffix(&suffix).unwrap_or(&message);
                Error::invalid(path, e.line(), e.column(), message)
            })
        } else {
            toml::from_str(text).map_err(|e| {
                let (l, c) = e
                    .span()
                    .map(|s| crate::error::line_col(text, s.start))
                    .unwrap_or((1, 1));
                Error::invalid(path, l, c, e.message().to_string())
            })
        }
    }

    pub fn load(path: &Path) -> Result<FixtureData> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn merge(&mut self, other: FixtureData) {
        self.series.extend(other.series);
        self.table.extend(other.table);
        self.error.extend(other.error);
    }
}

/// Is `want` a subset of `have`? Strings compare case-sensitively; numbers by value.
fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv))),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

fn matches(m: &serde_json::Map<String, Value>, spec: &QuerySpec) -> bool {
    m.iter().all(|(k, v)| match k.as_str() {
        "kind" => v.as_str() == Some(spec.kind.as_str()),
        _ => spec.params.get(k).is_some_and(|have| subset(v, have)),
    })
}

pub fn parse_time(s: &str, at: Timestamp) -> std::result::Result<Timestamp, String> {
    let out_of_range = || format!("time {s:?} is out of range");
    if let Some(rest) = s.strip_prefix('-') {
        return parse_duration(rest)
            .and_then(|d| at.checked_sub_signed(d).ok_or_else(out_of_range));
    }
    if let Some(rest) = s.strip_prefix('+') {
        return parse_duration(rest)
            .and_then(|d| at.checked_add_signed(d).ok_or_else(out_of_range));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("bad time {s:?}: {e} (use RFC 3339 or an offset like -5m)"))
}

/// A time as written in a fixture or test file, checked while the file is read so that a bad one
/// (`+5000000000000000000ms`) is reported at its place in the file rather than when a query
/// first asks for it. Offsets are checked against the epoch: any instant the engine evaluates at,
/// plus or minus the longest duration, is still a valid time.
pub(crate) fn check_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<String, D::Error> {
    let s = String::deserialize(d)?;
    parse_time(&s, chrono::DateTime::UNIX_EPOCH).map_err(serde::de::Error::custom)?;
    Ok(s)
}

/// [`check_time`] for an optional time.
pub(crate) fn check_opt_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Checked(#[serde(deserialize_with = "check_time")] String);
    Ok(Option::<Checked>::deserialize(d)?.map(|c| c.0))
}

fn checked_points<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<(String, f64)>, D::Error> {
    #[derive(Deserialize)]
    struct Checked(#[serde(deserialize_with = "check_time")] String);
    Ok(Vec::<(Checked, f64)>::deserialize(d)?
        .into_iter()
        .map(|(t, v)| (t.0, v))
        .collect())
}

/// The string leaves of a `match` (or of a spec's params) as (path, value) pairs; the path joins
/// object keys with NUL. A match's top-level `kind` is the spec's kind, not a parameter: skipped.
fn string_leaves(
    m: &serde_json::Map<String, Value>,
    prefix: &str,
    skip_kind: bool,
    out: &mut Vec<(String, String)>,
) {
    for (k, v) in m {
        if skip_kind && prefix.is_empty() && k == "kind" {
            continue;
        }
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}\0{k}")
        };
        match v {
            Value::String(s) => out.push((path, s.clone())),
            Value::Object(o) => string_leaves(o, &path, false, out),
            _ => {}
        }
    }
}

/// Which fixture entries can match a spec, without comparing every entry with every spec (a
/// fixture of 1,000 series answering 1,000 specs was a million comparisons, most of `eval`'s
/// time). Each entry is filed under one string leaf of its `match` (the rarest), which a spec must
/// have, equal, to match it; entries without a string leaf are candidates for every spec. The
/// candidates are then checked with `matches` as before, in file order.
#[derive(Debug, Default)]
struct MatchIndex {
    by_leaf: std::collections::HashMap<(String, String), Vec<usize>>,
    always: Vec<usize>,
}

impl MatchIndex {
    fn new<'a>(matches: impl Iterator<Item = &'a serde_json::Map<String, Value>>) -> Self {
        let leaves: Vec<Vec<(String, String)>> = matches
            .map(|m| {
                let mut out = Vec::new();
                string_leaves(m, "", true, &mut out);
                out
            })
            .collect();
        let mut counts: std::collections::HashMap<&(String, String), usize> = Default::default();
        for l in leaves.iter().flatten() {
            *counts.entry(l).or_default() += 1;
        }
        let mut idx = MatchIndex::default();
        for (i, ls) in leaves.iter().enumerate() {
            match ls.iter().min_by_key(|l| counts[l]) {
                Some(l) => idx.by_leaf.entry(l.clone()).or_default().push(i),
                None => idx.always.push(i),
            }
        }
        idx
    }

    /// Indices of the entries that may match `spec`, ascending.
    fn candidates(&self, spec: &QuerySpec) -> Vec<usize> {
        let mut out = self.always.clone();
        if !self.by_leaf.is_empty() {
            if let Value::Object(params) = &spec.params {
                let mut leaves = Vec::new();
                string_leaves(params, "", false, &mut leaves);
                for l in &leaves {
                    if let Some(v) = self.by_leaf.get(l) {
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[derive(Debug, Default)]
pub struct FixtureSource {
    data: FixtureData,
    series_index: MatchIndex,
    table_index: MatchIndex,
    error_index: MatchIndex,
}

impl FixtureSource {
    pub fn new(data: FixtureData) -> Self {
        FixtureSource {
            series_index: MatchIndex::new(data.series.iter().map(|f| &f.matches)),
            table_index: MatchIndex::new(data.table.iter().map(|t| &t.matches)),
            error_index: MatchIndex::new(data.error.iter().map(|e| &e.matches)),
            data,
        }
    }

    fn series_for(
        &self,
        f: &FixtureSeries,
        spec: &QuerySpec,
        w: &Window,
        at: Timestamp,
    ) -> std::result::Result<Series, String> {
        let stat = spec.str("stat").unwrap_or("Sum");
        let mut slots: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for (t, v) in &f.points {
            let ts = parse_time(t, at)?.timestamp();
            if ts < w.start.timestamp() || ts >= w.end.timestamp() {
                continue;
            }
            let slot = ts - (ts - w.start.timestamp()).rem_euclid(w.period_secs);
            slots.entry(slot).or_default().push(*v);
        }
        let points = slots
            .into_iter()
            .map(|(ts, vs)| {
                let value = match stat {
                    "Maximum" => vs.iter().cloned().fold(f64::MIN, f64::max),
                    "Minimum" => vs.iter().cloned().fold(f64::MAX, f64::min),
                    "Average" => vs.iter().sum::<f64>() / vs.len() as f64,
                    "SampleCount" => vs.len() as f64,
                    _ if vs.len() == 1 => vs[0],
                    _ => vs.iter().sum(),
                };
                Point {
                    ts: chrono::DateTime::from_timestamp(ts, 0).unwrap_or(at),
                    value,
                }
            })
            .collect();
        let mut labels = dimension_labels(spec);
        labels.extend(f.labels.clone());
        Ok(Series {
            name: f
                .name
                .clone()
                .or_else(|| spec.str("metric").map(String::from))
                .unwrap_or_else(|| spec.kind.clone()),
            labels,
            period_secs: w.period_secs,
            points,
            end: Some(w.end),
            missing: missing_of(spec)?,
        })
    }

    fn answer(&self, spec: &QuerySpec, at: Timestamp) -> QueryOutcome {
        let fail = |message: String| SourceFailure {
            source: format!("fixture/{}", spec.kind),
            message,
        };
        if let Some(e) = self
            .error_index
            .candidates(spec)
            .into_iter()
            .map(|i| &self.data.error[i])
            .find(|e| matches(&e.matches, spec))
        {
            return Err(fail(e.message.clone()));
        }
        match shape_of_spec(spec) {
            Shape::Table => {
                let rows = self
                    .table_index
                    .candidates(spec)
                    .into_iter()
                    .map(|i| &self.data.table[i])
                    .filter(|t| matches(&t.matches, spec))
                    .flat_map(|t| t.rows.clone())
                    .collect();
                Ok(QueryData::Table(Table::new(spec.kind.clone(), rows)))
            }
            shape => {
                let w = Window::of(spec, at).map_err(fail)?;
                let mut found = Vec::new();
                for f in self
                    .series_index
                    .candidates(spec)
                    .into_iter()
                    .map(|i| &self.data.series[i])
                    .filter(|f| matches(&f.matches, spec))
                {
                    found.push(self.series_for(f, spec, &w, at).map_err(fail)?);
                }
                // A host pushes series with labels as a set under one name (the bindings).
                let pushed_set =
                    spec.kind == "pushed" && found.iter().any(|s| !s.labels.is_empty());
                if shape == Shape::SeriesSet || pushed_set {
                    return Ok(QueryData::SeriesSet(found));
                }
                match found.len() {
                    // No matching entry: the metric exists but has no datapoints (missing data).
                    0 => self
                        .series_for(
                            &FixtureSeries {
                                matches: Default::default(),
                                name: None,
                                labels: Default::default(),
                                points: vec![],
                            },
                            spec,
                            &w,
                            at,
                        )
                        .map(QueryData::Series)
                        .map_err(fail),
                    1 => Ok(QueryData::Series(found.remove(0))),
                    n => Err(fail(format!(
                        "{n} fixture series match one {} query; make their `match` more specific",
                        spec.kind
                    ))),
                }
            }
        }
    }
}

/// A CloudWatch spec's dimensions become the series' labels.
fn dimension_labels(spec: &QuerySpec) -> BTreeMap<String, String> {
    spec.params
        .get("dimensions")
        .and_then(|d| d.as_object())
        .map(|d| {
            d.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Source for FixtureSource {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        specs.iter().map(|s| self.answer(s, ctx.at)).collect()
    }

    fn history(&self) -> super::HistorySupport {
        super::HistorySupport::AnyInstant
    }

    /// Fleet discovery over the fixture, for the kinds whose real source discovers (CloudWatch
    /// metrics and logs): every series or table entry whose `match` fits the spec with the
    /// pattern's strings read as globs names a subject (the part of its value standing where the
    /// pattern stands), as `ListMetrics` or `DescribeLogGroups` would.
    async fn subjects(
        &self,
        spec: &QuerySpec,
        pattern: &str,
        _ctx: &FetchContext,
    ) -> Option<Result<Vec<String>, SourceFailure>> {
        // Only where the real source discovers, so a fixture test means what production does.
        if !matches!(
            spec.kind.as_str(),
            "cloudwatch" | "logs_insights" | "filter_logs"
        ) {
            return None;
        }
        let Value::Object(params) = &spec.params else {
            return Some(Ok(vec![]));
        };
        let mut out = std::collections::BTreeSet::new();
        let entries = (self.data.series.iter().map(|f| &f.matches))
            .chain(self.data.table.iter().map(|t| &t.matches));
        for m in entries {
            let mut caught = None;
            if m.get("kind")
                .is_none_or(|k| k.as_str() == Some(spec.kind.as_str()))
                && capture_match(m, params, pattern, &mut caught, true)
            {
                out.extend(caught);
            }
        }
        Some(Ok(out.into_iter().collect()))
    }
}

/// `matches`, with the spec's strings that carry `pattern` read as templates: the entry's value
/// there must fit, and the part standing for the pattern is the subject (one per entry).
fn capture_match(
    want: &serde_json::Map<String, Value>,
    have: &serde_json::Map<String, Value>,
    pattern: &str,
    caught: &mut Option<String>,
    top: bool,
) -> bool {
    want.iter().all(|(k, w)| {
        if top && k == "kind" {
            return true;
        }
        let Some(h) = have.get(k) else { return false };
        match (w, h) {
            (Value::Object(w), Value::Object(h)) => capture_match(w, h, pattern, caught, false),
            (Value::String(w), Value::String(h)) if h.contains(pattern) => {
                match crate::source::capture(h, pattern, w) {
                    Some(s) if caught.as_ref().is_none_or(|c| *c == s) => {
                        *caught = Some(s);
                        true
                    }
                    _ => false,
                }
            }
            (w, h) => subset(w, h),
        }
    })
}

/// Serve this kind's queries from fixture files (JSON or TOML), relative to the config.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixtureConfig {
    /// Fixture files (JSON or TOML), relative to the config.
    pub files: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_finds_exactly_what_comparing_every_entry_finds() {
        let m = |v: Value| v.as_object().unwrap().clone();
        let entries = [
            m(
                serde_json::json!({"kind": "cloudwatch", "metric": "Errors", "dimensions": {"FunctionName": "a"}}),
            ),
            m(serde_json::json!({"metric": "Errors"})),
            m(serde_json::json!({"kind": "cloudwatch"})),
            m(serde_json::json!({"period": 300})),
            m(serde_json::json!({"dimensions": {"FunctionName": "b"}, "metric": "Errors"})),
            m(serde_json::json!({"metric": "Throttles", "dimensions": {"FunctionName": "a"}})),
            m(serde_json::json!({"kind": "prometheus", "query": "up"})),
            m(serde_json::json!({})),
        ];
        let idx = MatchIndex::new(entries.iter());
        let specs = [
            QuerySpec::new(
                "cloudwatch",
                serde_json::json!({"metric": "Errors", "dimensions": {"FunctionName": "a"}, "period": 300}),
            ),
            QuerySpec::new(
                "cloudwatch",
                serde_json::json!({"metric": "Errors", "dimensions": {"FunctionName": "b"}, "period": 60}),
            ),
            QuerySpec::new(
                "cloudwatch",
                serde_json::json!({"metric": "Throttles", "dimensions": {"FunctionName": "a", "Resource": "x"}}),
            ),
            QuerySpec::new("prometheus", serde_json::json!({"query": "up"})),
            QuerySpec::new("cloudwatch", serde_json::json!({"metric": "kind"})),
        ];
        for spec in &specs {
            let brute: Vec<usize> = (0..entries.len())
                .filter(|&i| matches(&entries[i], spec))
                .collect();
            let indexed: Vec<usize> = idx
                .candidates(spec)
                .into_iter()
                .filter(|&i| matches(&entries[i], spec))
                .collect();
            assert_eq!(indexed, brute, "{}", spec.key);
        }
    }
}
