//! Every stock rule that takes a `missing` parameter honours CloudWatch's four treatments when its
//! data goes away (#17 point 6). Generated, not hand-listed: each `rules/**/*.rhai` whose
//! parameters include `missing` is walked through data-then-no-data under every treatment, with
//! the data taken from the first case of its own `.test.toml` that fires on real data. After the
//! data is gone (two evaluations, one minute apart), the outcome must be CloudWatch's:
//!
//! - `breaching`: still firing: every subject that fired is covered by a firing alert (its own,
//!   or a rule-wide "no data" alert whose labels are a subset of its labels);
//! - `notBreaching`: resolved, nothing pending or firing;
//! - `ignore`: every alert keeps its state (the same alerts, the same states);
//! - `missing`: INSUFFICIENT_DATA, which is not firing: nothing pending or firing.
//!
//! A rule with a `missing` parameter but no usable case fails the test, so a new rule cannot slip
//! past it.

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tripline::alert::{Alert, AlertState};
use tripline::clock::{ManualClock, Timestamp};
use tripline::data::QueryOutcome;
use tripline::rule::{QuerySpec, QUERY_KINDS};
use tripline::source::fixture::parse_time;
use tripline::source::{FetchContext, FixtureData, FixtureSource, Source};
use tripline::store::SqliteStore;
use tripline::{InstanceSpec, Tripline};

const TREATMENTS: [&str; 4] = ["breaching", "notBreaching", "ignore", "missing"];

/// The fixture the engine reads, swapped from "the case's data" to "nothing" between phases.
struct Swap(Mutex<Arc<FixtureSource>>);

impl Swap {
    fn set(&self, data: FixtureData) {
        *self.0.lock().expect("swap") = Arc::new(FixtureSource::new(data));
    }
}

#[async_trait]
impl Source for Swap {
    async fn fetch(&self, specs: &[QuerySpec], ctx: &FetchContext) -> Vec<QueryOutcome> {
        let current = self.0.lock().expect("swap").clone();
        current.fetch(specs, ctx).await
    }
}

fn rules_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("rules dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rule_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rhai") {
            out.push(p);
        }
    }
}

/// A case of a rule's test file, reduced to what this test needs.
struct DataCase {
    name: String,
    params: Map<String, Value>,
    labels: BTreeMap<String, String>,
    for_: Option<chrono::Duration>,
    data: FixtureData,
    steps: Vec<String>,
}

fn obj(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(|v| v.as_object()).cloned().unwrap_or_default()
}

fn fires(expect: Option<&Value>) -> bool {
    expect
        .and_then(|e| e.as_array())
        .is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
}

/// The cases of `test_file` that fire on real data: they have series or tables, no source
/// errors, no `keep_firing_for`, and their last step expects a firing alert.
fn data_cases(test_file: &Path) -> Vec<DataCase> {
    let text = std::fs::read_to_string(test_file).unwrap_or_default();
    let file: toml::Value = match toml::from_str(&text) {
        Ok(v) => v,
        Err(_) => return vec![],
    };
    let cases_toml = file
        .get("case")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let file: Value = serde_json::to_value(file).expect("toml as json");
    let file_params = obj(file.get("params"));
    let mut out = Vec::new();
    for (c, ct) in file["case"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .zip(cases_toml)
    {
        let has_data = ["series", "table"].iter().any(|k| {
            c.get(*k)
                .and_then(|v| v.as_array())
                .is_some_and(|a| !a.is_empty())
        });
        if !has_data || c.get("error").is_some() || c.get("keep_firing_for").is_some() {
            continue;
        }
        let (steps, last_expect) = match (c.get("at"), c.get("step").and_then(|s| s.as_array())) {
            (Some(at), None) => (
                vec![at.as_str().unwrap_or_default().to_string()],
                c.get("expect"),
            ),
            (None, Some(steps)) if !steps.is_empty() => (
                steps
                    .iter()
                    .map(|s| s["at"].as_str().unwrap_or_default().to_string())
                    .collect(),
                steps.last().and_then(|s| s.get("expect")),
            ),
            _ => continue,
        };
        if !fires(last_expect) {
            continue;
        }
        let mut params = file_params.clone();
        params.extend(obj(c.get("params")));
        // From the TOML itself: JSON has no NaN, which some cases feed.
        let part = |k: &str| ct.get(k).cloned().unwrap_or(toml::Value::Array(vec![]));
        let data = FixtureData {
            series: part("series").try_into().expect("fixture series"),
            table: part("table").try_into().expect("fixture tables"),
            error: vec![],
        };
        out.push(DataCase {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            params,
            labels: serde_json::from_value(c.get("labels").cloned().unwrap_or(Value::Null))
                .unwrap_or_default(),
            for_: c
                .get("for")
                .and_then(|f| f.as_str())
                .map(|f| tripline::clock::parse_duration(f).expect("case `for`")),
            data,
            steps,
        });
    }
    out
}

fn active(alerts: &[Alert]) -> BTreeMap<String, (AlertState, BTreeMap<String, String>)> {
    alerts
        .iter()
        .filter(|a| matches!(a.state, AlertState::Firing | AlertState::Pending))
        .map(|a| {
            let labels = a
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (a.fingerprint.clone(), (a.state, labels))
        })
        .collect()
}

type Active = BTreeMap<String, (AlertState, BTreeMap<String, String>)>;

/// Runs `case` under `treatment`: the data phase, then two evaluations without data. Returns the
/// active alerts after the data phase and after each no-data evaluation, or why it could not run.
async fn walk(
    path: &Path,
    text: &str,
    rule_id: &str,
    case: &DataCase,
    treatment: &str,
) -> Result<(Active, Vec<Active>), String> {
    let first = parse_time(&case.steps[0], chrono::Utc::now())?;
    let clock = Arc::new(ManualClock::new(first));
    let swap = Arc::new(Swap(Mutex::new(Arc::new(FixtureSource::new(
        case.data.clone(),
    )))));
    let mut b = Tripline::builder()
        .clock(clock.clone())
        .store(Arc::new(
            SqliteStore::in_memory().map_err(|e| e.to_string())?,
        ))
        .stock_rules(false)
        .rule_source(path, text);
    for kind in QUERY_KINDS.iter().chain(&["pushed"]) {
        b = b.source(*kind, swap.clone());
    }
    let mut params = case.params.clone();
    params.insert("missing".into(), treatment.into());
    let spec = InstanceSpec {
        name: "test".into(),
        rule: rule_id.into(),
        params,
        labels: case.labels.clone().into_iter().collect(),
        for_: case.for_,
        ..Default::default()
    };
    let engine = b.instance(spec).build().map_err(|e| e.to_string())?;
    let mut last: Timestamp = first;
    let mut before = Active::new();
    for at in &case.steps {
        last = parse_time(at, first)?;
        clock.set(last);
        let r = engine
            .run_cycle_at(last, None)
            .await
            .map_err(|e| e.to_string())?;
        if !r.rule_failures.is_empty() || !r.source_failures.is_empty() {
            return Err(format!(
                "data phase failed: {:?} {:?}",
                r.rule_failures, r.source_failures
            ));
        }
        before = active(&r.alerts);
    }
    if !before.values().any(|(s, _)| *s == AlertState::Firing) {
        return Err(format!(
            "nothing fires on the case's data under {treatment}"
        ));
    }
    swap.set(FixtureData::default());
    let mut after = Vec::new();
    for minutes in [1, 2] {
        let at = last + chrono::Duration::minutes(minutes);
        clock.set(at);
        let r = engine
            .run_cycle_at(at, None)
            .await
            .map_err(|e| e.to_string())?;
        if !r.rule_failures.is_empty() || !r.source_failures.is_empty() {
            return Err(format!(
                "no-data phase failed: {:?} {:?}",
                r.rule_failures, r.source_failures
            ));
        }
        after.push(active(&r.alerts));
    }
    Ok((before, after))
}

/// What CloudWatch's treatment says about `after`, given `before`; `Err` says what is wrong.
fn judge(treatment: &str, before: &Active, after: &Active) -> Result<(), String> {
    let firing = |a: &Active| -> Vec<BTreeMap<String, String>> {
        a.values()
            .filter(|(s, _)| *s == AlertState::Firing)
            .map(|(_, l)| l.clone())
            .collect()
    };
    match treatment {
        "breaching" => {
            let now = firing(after);
            for b in firing(before) {
                let covered = now
                    .iter()
                    .any(|a| a.iter().all(|(k, v)| b.get(k) == Some(v)));
                if !covered {
                    return Err(format!(
                        "{b:?} fired on data but nothing covering it fires without data"
                    ));
                }
            }
            Ok(())
        }
        "ignore" if before == after => Ok(()),
        "ignore" => Err(format!(
            "states changed: before {before:?}, after {after:?}"
        )),
        _ if after.is_empty() => Ok(()),
        _ => Err(format!("still active without data: {after:?}")),
    }
}

#[tokio::test]
async fn every_stock_rule_with_a_missing_parameter_follows_cloudwatchs_four_treatments() {
    let mut files = Vec::new();
    rule_files(&rules_root(), &mut files);
    let engine = tripline::rule::RuleEngine::new(Default::default(), &[]);
    let mut covered = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("rule file");
        let Some(rule) = tripline::rule::load_rule_source(&engine, path.clone(), &text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        else {
            continue;
        };
        if !rule.meta.params.contains_key("missing") {
            continue;
        }
        let id = rule.meta.id.clone();
        let test_file = path.with_file_name(
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .replace(".rhai", ".test.toml"),
        );
        let mut why_not = Vec::new();
        let mut done = false;
        'cases: for case in data_cases(&test_file) {
            let mut outcomes = Vec::new();
            for t in TREATMENTS {
                match walk(&path, &text, &id, &case, t).await {
                    Ok(o) => outcomes.push((t, o)),
                    Err(e) => {
                        why_not.push(format!("case {:?}: {e}", case.name));
                        continue 'cases;
                    }
                }
            }
            for (t, (before, after)) in &outcomes {
                for (i, a) in after.iter().enumerate() {
                    if let Err(e) = judge(t, before, a) {
                        problems.push(format!(
                            "{id} (case {:?}), missing = {t}, {} min without data: {e}",
                            case.name,
                            i + 1
                        ));
                    }
                }
            }
            covered.push(format!("{id} ({:?})", case.name));
            done = true;
            break;
        }
        if !done {
            problems.push(format!(
                "{id}: no case of {} fires on real data under all four treatments: {why_not:?}",
                test_file.display()
            ));
        }
    }
    println!(
        "{} rules with a `missing` parameter, each walked under {} treatments:",
        covered.len(),
        TREATMENTS.len()
    );
    for c in &covered {
        println!("  {c}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(covered.len() >= 25, "only {} rules covered", covered.len());
}
