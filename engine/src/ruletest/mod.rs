//! `tripline test`: rule fixture cases, like `promtool test rules`. A case file
//! `NAME.test.toml` sits beside `NAME.rhai` and walks the rule through instants with fixture data,
//! checking the exact set of alerts after each step.
//!
//! ```toml
//! [[case]]
//! name = "fires above the threshold"
//! params = { function = "f" }
//! at = "2026-11-01T10:00:00Z"
//! [[case.series]]
//! match = { metric = "Errors" }
//! points = [["-4m", 12.0]]
//! [[case.expect]]
//! state = "firing"
//! severity = "critical"
//! labels = { function = "f" }
//! ```
//!
//! A case either has `at` + `expect`, or several `[[case.step]]` tables (each with `at`, and
//! `expect`) that reuse one store, so `for`, `keep_firing_for` and severity changes can be
//! walked. Expected alerts are matched against every pending or firing alert after the step plus
//! those resolved in it: counts must agree and each expectation must find its own alert.

use crate::alert::Alert;
use crate::clock::{ManualClock, Timestamp};
use crate::error::{Error, Result};
use crate::source::{
    fixture::{check_opt_time, check_time, parse_time},
    FixtureData, FixtureError, FixtureSeries, FixtureSource, FixtureTable,
};
use crate::store::SqliteStore;
use crate::{InstanceSpec, Tripline};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// The rule under test; defaults to the `.rhai` file beside this one.
    rule: Option<String>,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// A fleet case's subjects to leave out, as `[[rule]] exclude`.
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(rename = "for", default, deserialize_with = "check_opt_duration")]
    for_: Option<String>,
    #[serde(default, deserialize_with = "check_opt_duration")]
    keep_firing_for: Option<String>,
    #[serde(default, deserialize_with = "check_opt_time")]
    at: Option<String>,
    #[serde(default)]
    expect: Vec<Expected>,
    #[serde(default, rename = "step")]
    steps: Vec<Step>,
    #[serde(default)]
    series: Vec<FixtureSeries>,
    #[serde(default)]
    table: Vec<FixtureTable>,
    #[serde(default)]
    error: Vec<FixtureError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(deserialize_with = "check_time")]
    at: String,
    #[serde(default)]
    expect: Vec<Expected>,
}

/// A duration checked while the file is read, so a bad one is reported at its place in the file.
fn check_opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    if let Some(s) = &s {
        crate::clock::parse_duration(s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    state: String,
    severity: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// A substring the summary must contain.
    summary: Option<String>,
    value: Option<f64>,
    /// Keys that must be present in the alert's details (e.g. triage attachments).
    #[serde(default)]
    details: Vec<String>,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.state)?;
        if let Some(s) = &self.severity {
            write!(f, " {s}")?;
        }
        write!(f, " {:?}", self.labels)?;
        if let Some(s) = &self.summary {
            write!(f, " summary~{s:?}")?;
        }
        if let Some(v) = self.value {
            write!(f, " value={v}")?;
        }
        Ok(())
    }
}

fn show(a: &Alert) -> String {
    let labels: BTreeMap<&String, &String> = a
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname" || a.rule.starts_with("tripline/"))
        .collect();
    format!(
        "{} {} {:?} summary={:?} value={:?}",
        a.state, a.severity, labels, a.summary, a.value
    )
}

impl Expected {
    fn matches(&self, a: &Alert) -> bool {
        a.state.as_str() == self.state
            && self
                .severity
                .as_ref()
                .is_none_or(|s| s == a.severity.as_str())
            && self.labels.iter().all(|(k, v)| a.labels.get(k) == Some(v))
            && self
                .summary
                .as_ref()
                .is_none_or(|s| a.summary.contains(s.as_str()))
            && self
                .value
                .is_none_or(|v| a.value.is_some_and(|x| (x - v).abs() < 1e-9))
            && self.details.iter().all(|k| a.details.contains_key(k))
    }
}

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub file: PathBuf,
    pub rule: String,
    pub name: String,
    /// `None` when it passed; otherwise what went wrong (expected vs got).
    pub failure: Option<String>,
}

/// Finds every `*.test.toml` under the given paths (files or directories).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::result::Result<_, _>>()?;
            entries.sort();
            for e in entries {
                walk(&e, out)?;
            }
        } else if p.to_string_lossy().ends_with(".test.toml") {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    for p in paths {
        if !p.exists() {
            return Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        }
        walk(p, &mut out).map_err(|e| Error::io(p, e))?;
    }
    Ok(out)
}

/// The id a rule file declares (its file name if it does not load: the case will say why).
fn rule_id_of(path: &Path, text: &str) -> String {
    let engine = crate::rule::RuleEngine::new(Default::default(), &[]);
    match crate::rule::load_rule_source(&engine, path.to_path_buf(), text) {
        Ok(Some(r)) => r.meta.id,
        _ => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

fn rule_file_for(test_file: &Path) -> PathBuf {
    let name = test_file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .replace(".test.toml", ".rhai");
    test_file.with_file_name(name)
}

/// Runs every case of one test file. A file that cannot be read or parsed is one failed case.
pub async fn run_file(file: &Path, rules_root: Option<&Path>) -> Vec<CaseResult> {
    let fail_all = |rule: &str, msg: String| {
        vec![CaseResult {
            file: file.to_path_buf(),
            rule: rule.to_string(),
            name: "(file)".into(),
            failure: Some(msg),
        }]
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail_all("?", format!("{}: {e}", file.display())),
    };
    let cf: CaseFile = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            let (l, c) = e
                .span()
                .map(|s| crate::config::line_col(&text, s.start))
                .unwrap_or((1, 1));
            return fail_all(
                "?",
                format!("{}:{l}:{c}: {}", file.display(), e.message().trim()),
            );
        }
    };
    let rule_path = rule_file_for(file);
    let rule_text = match std::fs::read_to_string(&rule_path) {
        Ok(t) => t,
        Err(e) if cf.rule.is_none() => {
            return fail_all("?", format!("{}: {e}", rule_path.display()))
        }
        Err(_) => String::new(),
    };
    let mut results = Vec::new();
    for case in cf.cases {
        let rule_id = cf.rule.clone().unwrap_or_default();
        let failure = run_case(
            &case,
            &cf.params,
            &rule_path,
            &rule_text,
            cf.rule.as_deref(),
            rules_root,
        )
        .await
        .err();
        let rule = if rule_id.is_empty() {
            rule_id_of(&rule_path, &rule_text)
        } else {
            rule_id
        };
        results.push(CaseResult {
            file: file.to_path_buf(),
            rule,
            name: case.name.clone(),
            failure,
        });
    }
    results
}

async fn run_case(
    case: &Case,
    file_params: &serde_json::Map<String, serde_json::Value>,
    rule_path: &Path,
    rule_text: &str,
    rule_id: Option<&str>,
    rules_root: Option<&Path>,
) -> std::result::Result<(), String> {
    let steps: Vec<(String, Vec<Expected>)> = match (&case.at, case.steps.is_empty()) {
        (Some(at), true) => vec![(at.clone(), case.expect.clone())],
        (None, false) if case.expect.is_empty() => case
            .steps
            .iter()
            .map(|s| (s.at.clone(), s.expect.clone()))
            .collect(),
        _ => {
            return Err(
                "a case needs either `at` with `expect`, or `[[case.step]]` tables (not both)"
                    .into(),
            )
        }
    };
    let first_at = parse_time(&steps[0].0, chrono::Utc::now())?;
    let clock = Arc::new(ManualClock::new(first_at));
    let data = FixtureData {
        series: case.series.clone(),
        table: case.table.clone(),
        error: case.error.clone(),
    };
    let fixture = Arc::new(FixtureSource::new(data));
    let mut b = Tripline::builder().clock(clock.clone()).store(Arc::new(
        SqliteStore::in_memory().map_err(|e| e.to_string())?,
    ));
    if let Some(root) = rules_root {
        b = b.rules_dir(root);
    }
    let id = match rule_id {
        Some(id) => id.to_string(),
        None => {
            // Test the file itself, not an embedded copy of it.
            let rule = crate::rule::load_rule_source(
                &crate::rule::RuleEngine::new(Default::default(), &[]),
                rule_path.to_path_buf(),
                rule_text,
            )
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: not a rule", rule_path.display()))?;
            b = b.rule_source(rule_path, rule_text);
            rule.meta.id
        }
    };
    // Every kind of the source registry, `pushed` too: a case's series stand for what a host
    // program would push.
    for kind in crate::source::kinds() {
        b = b.source(kind, fixture.clone());
    }
    let mut params = file_params.clone();
    params.extend(case.params.clone());
    let dur = |s: &Option<String>| {
        s.as_ref()
            .map(|s| crate::clock::parse_duration(s))
            .transpose()
    };
    let spec = InstanceSpec {
        name: "test".into(),
        rule: id,
        params,
        labels: case.labels.clone(),
        for_: dur(&case.for_)?,
        keep_firing_for: dur(&case.keep_firing_for)?,
        exclude: case.exclude.clone(),
        ..Default::default()
    };
    let engine = b.instance(spec).build().map_err(|e| e.to_string())?;
    for (i, (at, expect)) in steps.iter().enumerate() {
        let at: Timestamp = parse_time(at, first_at)?;
        clock.set(at);
        let report = engine
            .run_cycle_at(at, None)
            .await
            .map_err(|e| e.to_string())?;
        let got: Vec<&Alert> = report.alerts.iter().collect();
        check(expect, &got).map_err(|m| format!("step {} at {}: {m}", i + 1, at.to_rfc3339()))?;
    }
    Ok(())
}

fn check(expect: &[Expected], got: &[&Alert]) -> std::result::Result<(), String> {
    let mut used = vec![false; got.len()];
    let mut missing = Vec::new();
    for e in expect {
        match got
            .iter()
            .enumerate()
            .find(|(i, a)| !used[*i] && e.matches(a))
        {
            Some((i, _)) => used[i] = true,
            None => missing.push(e),
        }
    }
    let extra: Vec<&&Alert> = got
        .iter()
        .enumerate()
        .filter(|(i, _)| !used[*i])
        .map(|(_, a)| a)
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let mut msg = String::from("alerts differ\n    expected:\n");
    for e in expect {
        msg.push_str(&format!("      {e}\n"));
    }
    if expect.is_empty() {
        msg.push_str("      (none)\n");
    }
    msg.push_str("    got:\n");
    for a in got {
        msg.push_str(&format!("      {}\n", show(a)));
    }
    if got.is_empty() {
        msg.push_str("      (none)\n");
    }
    Err(msg)
}

/// Runs every case under `paths` and prints a line per case and the closing count.
/// Returns (passed, failed).
pub async fn run(paths: &[PathBuf], out: &mut dyn std::io::Write) -> Result<(usize, usize)> {
    let files = discover(paths)?;
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        // Rules in the test file's tree can be imported and referenced by id.
        let root = paths
            .iter()
            .find(|p| p.is_dir() && f.starts_with(p))
            .map(|p| p.as_path());
        for r in run_file(f, root).await {
            match &r.failure {
                None => {
                    passed += 1;
                    let _ = writeln!(out, "ok   {} :: {}", r.rule, r.name);
                }
                Some(m) => {
                    failed += 1;
                    let _ = writeln!(
                        out,
                        "FAIL {} :: {} ({})\n  {m}",
                        r.rule,
                        r.name,
                        r.file.display()
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    Ok((passed, failed))
}
