//! The functions and types rules call. Everything a script can touch is registered here; there is
//! deliberately no filesystem, network, process or environment access.

use super::meta::RuleMeta;
use super::sandbox::now_secs;
use crate::alert::{Alert, AlertCandidate, Labels, Severity};
use crate::data::{Comparison, QueryData, QueryOutcome, QuerySpec, Series, Table};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, INT};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Query kinds a rule can ask for; each maps to a source configured in the config file.
pub const QUERY_KINDS: &[&str] = &[
    "cloudwatch",
    "logs_insights",
    "filter_logs",
    "prometheus",
    "sql",
    "http_probe",
    "redis",
];

pub(super) fn query_specs(out: Dynamic) -> Result<BTreeMap<String, QuerySpec>, String> {
    let map = out
        .try_cast::<Map>()
        .ok_or("query() must return a map of name → query spec")?;
    let mut specs = BTreeMap::new();
    for (name, spec) in map {
        let spec_map = spec.try_cast::<Map>().ok_or_else(|| format!("query {name:?} is not a query spec (build it with cloudwatch(#{{...}}), prometheus(#{{...}}), …)"))?;
        let json: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(spec_map))
            .map_err(|e| format!("query {name:?}: {e}"))?;
        let kind = json
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| {
                format!("query {name:?} has no kind (build it with cloudwatch(#{{...}}), …)")
            })?
            .to_string();
        let mut params = json;
        if let Some(o) = params.as_object_mut() {
            o.remove("kind");
        }
        specs.insert(name.to_string(), QuerySpec::new(kind, params));
    }
    Ok(specs)
}

pub(super) fn data_map(data: &[(&str, &QueryOutcome)]) -> Map {
    data.iter()
        .map(|(name, outcome)| {
            let v = match outcome {
                Ok(QueryData::Series(s)) => Dynamic::from(s.clone()),
                Ok(QueryData::SeriesSet(v)) => {
                    Dynamic::from_array(v.iter().cloned().map(Dynamic::from).collect())
                }
                Ok(QueryData::Table(t)) => Dynamic::from(t.clone()),
                // The engine never calls evaluate with a failed query; unit keeps this total.
                Err(_) => Dynamic::UNIT,
            };
            ((*name).into(), v)
        })
        .collect()
}

pub(super) fn alert_map(a: &Alert) -> Map {
    let mut m = Map::new();
    m.insert("fingerprint".into(), a.fingerprint.clone().into());
    m.insert("rule".into(), a.rule.clone().into());
    m.insert("instance".into(), a.instance.clone().into());
    m.insert(
        "labels".into(),
        Dynamic::from_map(
            a.labels
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.clone().into()))
                .collect(),
        ),
    );
    m.insert("severity".into(), a.severity.as_str().into());
    m.insert("summary".into(), a.summary.clone().into());
    m.insert(
        "value".into(),
        a.value.map(Dynamic::from).unwrap_or(Dynamic::UNIT),
    );
    m.insert("active_since".into(), a.active_since.timestamp().into());
    m
}

// ---------------------------------------------------------------------------------------------
// fire() / retain(): collected per evaluate call on the evaluating thread.

/// What one `evaluate` call reported, with the rule's defaults to fill in.
#[derive(Debug)]
pub(super) struct Collector {
    default_severity: Severity,
    default_runbook: Option<String>,
    fired: Vec<AlertCandidate>,
    retained: Vec<Labels>,
    retain_all: bool,
    error: Option<String>,
    max_alerts: usize,
    /// Set when `fire()` was called beyond `max_alerts`: the evaluation fails whatever the
    /// script did next (it may have caught the error).
    pub(super) capped: bool,
}

impl Collector {
    pub(super) fn new(meta: &RuleMeta, max_alerts: usize) -> Self {
        Collector {
            default_severity: meta.severity,
            default_runbook: meta.runbook.clone(),
            fired: vec![],
            retained: vec![],
            retain_all: false,
            error: None,
            max_alerts,
            capped: false,
        }
    }

    /// What a call beyond the cap is told.
    pub(super) fn cap_message(max_alerts: usize) -> String {
        format!(
            "fire() was called more than {max_alerts} times in one evaluate \
             (engine.max_alerts_per_instance); none of this cycle's alerts were kept"
        )
    }

    pub(super) fn finish(self) -> Result<super::Evaluation, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(super::Evaluation {
            fired: self.fired,
            retained: self.retained,
            retain_all: self.retain_all,
        })
    }
}

thread_local! {
    static COLLECTOR: RefCell<Option<Collector>> = const { RefCell::new(None) };
}

pub(super) fn install_collector(c: Collector) {
    COLLECTOR.with(|cell| *cell.borrow_mut() = Some(c));
}

pub(super) fn take_collector() -> Option<Collector> {
    COLLECTOR.with(|cell| cell.borrow_mut().take())
}

fn with_collector<T>(f: impl FnOnce(&mut Collector) -> RhaiResult<T>) -> RhaiResult<T> {
    COLLECTOR.with(|cell| match cell.borrow_mut().as_mut() {
        Some(c) => f(c),
        None => Err("fire() and retain() can only be called from evaluate()".into()),
    })
}

fn labels_of(d: &Dynamic) -> RhaiResult<Labels> {
    let m = d.clone().try_cast::<Map>().ok_or("labels must be a map")?;
    Ok(m.into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                if v.is_string() {
                    v.into_string().unwrap_or_default()
                } else {
                    v.to_string()
                },
            )
        })
        .collect())
}

fn number(d: &Dynamic, what: &str) -> RhaiResult<f64> {
    if let Some(f) = d.clone().try_cast::<f64>() {
        return Ok(f);
    }
    if let Some(i) = d.clone().try_cast::<INT>() {
        return Ok(i as f64);
    }
    Err(format!("{what} must be a number, got {}", d.type_name()).into())
}

fn fire(m: Map) -> RhaiResult<()> {
    with_collector(|c| {
        if c.capped || c.fired.len() >= c.max_alerts {
            c.capped = true;
            c.fired.clear();
            return Err(Collector::cap_message(c.max_alerts).into());
        }
        let mut cand = AlertCandidate {
            labels: Labels::new(),
            severity: c.default_severity,
            summary: String::new(),
            runbook: c.default_runbook.clone(),
            value: None,
            details: Default::default(),
        };
        for (k, v) in m {
            match k.as_str() {
                "summary" => cand.summary = v.to_string(),
                "labels" => cand.labels = labels_of(&v)?,
                "severity" => cand.severity = v.to_string().parse().map_err(|e: String| -> Box<EvalAltResult> { e.into() })?,
                "value" => cand.value = if v.is_unit() { None } else { Some(number(&v, "value")?) },
                "runbook" => cand.runbook = Some(v.to_string()),
                "details" => {
                    let json: serde_json::Value = rhai::serde::from_dynamic(&v)?;
                    cand.details = json.as_object().cloned().ok_or("details must be a map")?;
                }
                other => return Err(format!("fire(): unknown key {other:?} (use summary, labels, severity, value, runbook, details)").into()),
            }
        }
        if cand.summary.is_empty() {
            return Err("fire(): summary is required".into());
        }
        c.fired.push(cand);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Triage: follow-up queries from inside the triage hook.

type QueryRunner = dyn Fn(QuerySpec) -> QueryOutcome + Send + Sync;

/// `ctx` in `triage(alert, ctx)`: the instance's params and a way to run follow-up queries.
#[derive(Clone)]
pub struct TriageContext {
    pub params: Map,
    runner: Arc<QueryRunner>,
}

impl TriageContext {
    pub fn new(params: Map, runner: Arc<QueryRunner>) -> Self {
        TriageContext { params, runner }
    }
}

fn outcome_to_dynamic(o: QueryOutcome) -> RhaiResult<Dynamic> {
    match o {
        Ok(QueryData::Series(s)) => Ok(Dynamic::from(s)),
        Ok(QueryData::SeriesSet(v)) => Ok(Dynamic::from_array(
            v.into_iter().map(Dynamic::from).collect(),
        )),
        Ok(QueryData::Table(t)) => Ok(Dynamic::from(t)),
        Err(f) => Err(format!("follow-up query failed: {f}").into()),
    }
}

// ---------------------------------------------------------------------------------------------

/// Up to two decimals, trailing zeros dropped: 36 → "36", 0.8333 → "0.83".
pub fn fmt_number(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> Dynamic {
    v.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

fn cmp(op: &str) -> RhaiResult<Comparison> {
    op.parse().map_err(|e: String| e.into())
}

fn json_to_dynamic(v: &serde_json::Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

pub(super) fn register(engine: &mut Engine) {
    // Query specs.
    for kind in QUERY_KINDS {
        engine.register_fn(*kind, move |mut m: Map| -> Map {
            m.insert("kind".into(), (*kind).into());
            m
        });
    }
    engine.register_fn("pushed", |name: &str| -> Map {
        let mut m = Map::new();
        m.insert("kind".into(), "pushed".into());
        m.insert("name".into(), name.into());
        m
    });

    // Reporting.
    engine.register_fn("fire", fire);
    engine.register_fn("retain", |labels: Map| {
        with_collector(|c| {
            c.retained.push(labels_of(&Dynamic::from_map(labels))?);
            Ok(())
        })
    });
    engine.register_fn("retain_all", || {
        with_collector(|c| {
            c.retain_all = true;
            Ok(())
        })
    });

    // Time.
    engine.register_fn("now", || -> INT { now_secs() });
    engine.register_fn("duration", |s: &str| -> RhaiResult<INT> {
        crate::clock::parse_duration(s)
            .map(|d| d.num_seconds())
            .map_err(|e| e.into())
    });
    engine.register_fn("fmt_time", |secs: INT| -> String {
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    });
    engine.register_fn("fmt_number", |x: f64| fmt_number(x));
    engine.register_fn("fmt_number", |x: INT| x.to_string());
    engine.register_fn("fmt_duration", |secs: INT| {
        // Out of chrono's range (beyond about 292 million years): the number itself, not a panic.
        chrono::Duration::try_seconds(secs)
            .map(crate::clock::format_duration)
            .unwrap_or_else(|| format!("{secs}s"))
    });

    // Series.
    engine.register_type_with_name::<Series>("Series");
    engine.register_get("name", |s: &mut Series| s.name.clone());
    engine.register_get("labels", |s: &mut Series| -> Map {
        s.labels
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone().into()))
            .collect()
    });
    engine.register_get("period", |s: &mut Series| -> INT { s.period_secs });
    engine.register_get("missing", |s: &mut Series| s.missing.as_str().to_string());
    engine.register_get("points", |s: &mut Series| -> Array {
        s.points
            .iter()
            .map(|p| {
                let mut m = Map::new();
                m.insert("ts".into(), p.ts.timestamp().into());
                m.insert("value".into(), p.value.into());
                Dynamic::from_map(m)
            })
            .collect()
    });
    engine.register_fn("values", |s: &mut Series| -> Array {
        s.points.iter().map(|p| Dynamic::from(p.value)).collect()
    });
    engine.register_fn("len", |s: &mut Series| -> INT { s.points.len() as INT });
    engine.register_fn("is_empty", |s: &mut Series| s.is_empty());
    engine.register_fn("count", |s: &mut Series| -> INT { s.count() as INT });
    engine.register_fn("sum", |s: &mut Series| s.sum());
    engine.register_fn("avg", |s: &mut Series| opt(s.avg()));
    engine.register_fn("min", |s: &mut Series| opt(s.min()));
    engine.register_fn("max", |s: &mut Series| opt(s.max()));
    engine.register_fn("last", |s: &mut Series| opt(s.last()));
    engine.register_fn("first", |s: &mut Series| opt(s.first()));
    engine.register_fn("delta", |s: &mut Series| opt(s.delta()));
    engine.register_fn("rate", |s: &mut Series| opt(s.rate()));
    engine.register_fn(
        "percentile",
        |s: &mut Series, p: Dynamic| -> RhaiResult<Dynamic> {
            Ok(opt(s.percentile(number(&p, "percentile")?)))
        },
    );
    engine.register_fn("ratio", |s: &mut Series, other: Series| s.ratio(&other));
    engine.register_fn("latest", |s: &mut Series, n: INT| {
        s.latest(n.clamp(0, i64::from(u32::MAX)) as usize)
    });
    engine.register_fn(
        "verdict",
        |s: &mut Series, op: &str, threshold: Dynamic, m: INT, n: INT| -> RhaiResult<String> {
            Ok(s.verdict(
                cmp(op)?,
                number(&threshold, "threshold")?,
                m.max(1) as usize,
                n.max(1) as usize,
            )
            .as_str()
            .to_string())
        },
    );
    // How many periods CloudWatch looks back for an alarm of `n` evaluation periods: what a rule
    // asks its query's `range` to cover for `verdict(op, threshold, m, n)`.
    engine.register_fn("evaluation_range", |n: INT| -> INT {
        crate::data::evaluation_range(n.clamp(1, 1_000_000) as usize) as INT
    });
    engine.register_fn(
        "breaching",
        |s: &mut Series, op: &str, threshold: Dynamic, m: INT, n: INT| -> RhaiResult<bool> {
            Ok(s.verdict(
                cmp(op)?,
                number(&threshold, "threshold")?,
                m.max(1) as usize,
                n.max(1) as usize,
            ) == crate::data::Verdict::Alarm)
        },
    );
    engine.register_fn(
        "breaching_count",
        |s: &mut Series, op: &str, threshold: Dynamic, n: INT| -> RhaiResult<INT> {
            Ok(s.breaching_count(
                cmp(op)?,
                number(&threshold, "threshold")?,
                n.max(1) as usize,
            ) as INT)
        },
    );
    engine.register_fn("to_string", |s: &mut Series| {
        format!(
            "Series({} {:?}, {} points)",
            s.name,
            s.labels,
            s.points.len()
        )
    });

    // Table.
    engine.register_type_with_name::<Table>("Table");
    engine.register_fn("len", |t: &mut Table| -> INT { t.len() as INT });
    engine.register_fn("is_empty", |t: &mut Table| t.is_empty());
    engine.register_get("rows", |t: &mut Table| -> Array {
        t.rows
            .iter()
            .map(|r| {
                Dynamic::from_map(
                    r.iter()
                        .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                        .collect(),
                )
            })
            .collect()
    });
    engine.register_fn("column", |t: &mut Table, c: &str| -> Array {
        t.rows
            .iter()
            .filter_map(|r| r.get(c))
            .map(json_to_dynamic)
            .collect()
    });
    engine.register_fn("numbers", |t: &mut Table, c: &str| -> Array {
        t.numbers(c).into_iter().map(Dynamic::from).collect()
    });
    engine.register_fn("sum", |t: &mut Table, c: &str| t.sum(c));
    engine.register_fn("top", |t: &mut Table, c: &str, n: INT| -> Array {
        t.top(c, n.max(0) as usize)
            .into_iter()
            .map(|(v, count)| {
                let mut m = Map::new();
                m.insert("value".into(), v.into());
                m.insert("count".into(), (count as INT).into());
                Dynamic::from_map(m)
            })
            .collect()
    });
    engine.register_fn("to_string", |t: &mut Table| {
        format!("Table({}, {} rows)", t.name, t.len())
    });

    // Triage context.
    engine.register_type_with_name::<TriageContext>("TriageContext");
    engine.register_get("params", |c: &mut TriageContext| c.params.clone());
    // Named `fetch`, not `query`: Rhai resolves a script's own functions first, and every rule
    // defines `fn query(p)`, which would shadow a native `ctx.query(spec)`.
    engine.register_fn(
        "fetch",
        |c: &mut TriageContext, spec: Map| -> RhaiResult<Dynamic> {
            let mut specs = Map::new();
            specs.insert("q".into(), Dynamic::from_map(spec));
            let spec = query_specs(Dynamic::from_map(specs))
                .map_err(|e| -> Box<EvalAltResult> { e.into() })?
                .remove("q")
                .ok_or("empty spec")?;
            // Waiting on the source is not the script's time: the deadline moves by as much.
            let started = std::time::Instant::now();
            let outcome = (c.runner)(spec);
            super::sandbox::extend_deadline(started.elapsed());
            outcome_to_dynamic(outcome)
        },
    );
}
