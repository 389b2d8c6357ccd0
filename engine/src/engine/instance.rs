//! Rule instances: a rule with its parameters, labels, schedule and timing, resolved from an
//! `InstanceSpec` (the config file's `[[rule]]`, or code) against the rule's declared params.

use crate::alert::{Labels, Severity, Timing};
use crate::error::{Error, Result};
use crate::rule::{QuerySpec, Rule, RuleSet};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One configured use of a rule.
#[derive(Debug, Clone)]
pub struct RuleInstance {
    /// Unique name; the `alertname` label of its alerts.
    pub name: String,
    /// Shared by every instance of the rule.
    pub rule: Arc<Rule>,
    pub params: rhai::Map,
    /// `params` as a shared script value: handing it to a rule costs a reference count.
    pub(super) params_shared: rhai::Dynamic,
    /// The query specs of a rule whose `query` does not depend on time, computed once.
    pub(super) specs: Arc<std::sync::OnceLock<Arc<BTreeMap<String, QuerySpec>>>>,
    pub labels: Labels,
    pub schedule: cron::Schedule,
    pub timing: Timing,
    pub severity: Option<Severity>,
    pub runbook: Option<String>,
    /// A glob or list of subjects in a parameter: evaluated once per subject (`crate::fleet`).
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
}

/// A rule instance described by a host program (the config file's `[[rule]]`, in code).
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    pub name: String,
    pub rule: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub labels: Labels,
    pub every: Option<String>,
    pub for_: Option<chrono::Duration>,
    pub keep_firing_for: Option<chrono::Duration>,
    pub severity: Option<Severity>,
    pub runbook: Option<String>,
    /// Subjects a fleet instance leaves out: names or globs (`crate::fleet`).
    pub exclude: Vec<String>,
    /// Where the instance was declared, for error messages.
    pub location: Option<crate::error::Location>,
    /// Where each parameter's value was written, for errors about it (the config's
    /// `params = { threshold = "10" }` points at `"10"`).
    pub param_locations: BTreeMap<String, crate::error::Location>,
}

impl InstanceSpec {
    pub fn new(name: impl Into<String>, rule: impl Into<String>) -> Self {
        InstanceSpec {
            name: name.into(),
            rule: rule.into(),
            ..Default::default()
        }
    }

    pub fn param(mut self, k: impl Into<String>, v: impl Into<serde_json::Value>) -> Self {
        self.params.insert(k.into(), v.into());
        self
    }

    pub fn label(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    /// Leaves a fleet subject out (a name or a glob), as `[[rule]] exclude`.
    pub fn exclude(mut self, name: impl Into<String>) -> Self {
        self.exclude.push(name.into());
        self
    }
}

/// Merges a rule's parameter defaults with the given ones; unknown or missing ones, and values
/// of the wrong type (docs/rules.md, "Parameter types"), are errors.
pub fn resolve_params(
    rule: &Rule,
    given: &serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<rhai::Map, String> {
    resolve_params_at(rule, given).map_err(|(_, m)| m)
}

/// `resolve_params`, the error paired with the parameter it is about (none for a missing one).
fn resolve_params_at(
    rule: &Rule,
    given: &serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<rhai::Map, (Option<String>, String)> {
    let mut out = rhai::Map::new();
    // Unknown names first: a misspelt name explains a "wrong" value better than its type does.
    if let Some(k) = given.keys().find(|k| !rule.meta.params.contains_key(*k)) {
        let known: Vec<&str> = rule.meta.params.keys().map(|s| s.as_str()).collect();
        return Err((
            Some(k.clone()),
            format!(
                "rule {} has no parameter {k:?} (it takes: {}){}",
                rule.meta.id,
                known.join(", "),
                crate::suggest::did_you_mean(k, known.iter().copied())
            ),
        ));
    }
    for (k, v) in given {
        let Some(spec) = rule.meta.params.get(k) else {
            continue;
        };
        spec.check(k, v).map_err(|m| {
            (
                Some(k.clone()),
                format!("parameter {k:?} of rule {}: {m}", rule.meta.id),
            )
        })?;
    }
    let resolve = |k: &String, spec: &crate::rule::ParamSpec| {
        let v = match (given.get(k), &spec.default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => {
                return Err((None, format!("rule {} needs parameter {k:?}", rule.meta.id)))
            }
        };
        rhai::serde::to_dynamic(&v).map_err(|e| (Some(k.clone()), format!("parameter {k:?}: {e}")))
    };
    for (k, spec) in &rule.meta.params {
        out.insert(k.as_str().into(), resolve(k, spec)?);
    }
    Ok(out)
}

pub(super) fn instantiate<'r>(
    rules: &'r RuleSet,
    shared: &mut HashMap<&'r str, Arc<Rule>>,
    spec: &InstanceSpec,
) -> Result<RuleInstance> {
    let (id, found) = rules.rules.get_key_value(&spec.rule).ok_or_else(|| {
        Error::Config(format!(
            "instance {:?}: no rule with id {:?}{}",
            spec.name,
            spec.rule,
            crate::suggest::did_you_mean(&spec.rule, rules.rules.keys().map(String::as_str))
        ))
    })?;
    let rule = shared
        .entry(id.as_str())
        .or_insert_with(|| Arc::new(found.clone()))
        .clone();
    let params = resolve_params_at(&rule, &spec.params).map_err(|(k, m)| {
        let message = format!("instance {:?}: {m}", spec.name);
        match k.and_then(|k| spec.param_locations.get(&k)) {
            Some(l) => Error::Invalid {
                location: l.clone(),
                message,
            },
            None => Error::Config(message),
        }
    })?;
    let schedule = match &spec.every {
        Some(e) => crate::rule::parse_schedule(e)
            .map_err(|m| Error::Config(format!("instance {:?}: {m}", spec.name)))?,
        None => rule.meta.schedule.clone(),
    };
    let mut labels = rule.meta.labels.clone();
    labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let fleet = crate::fleet::Fleet::of(&rule, &spec.params, &spec.exclude)
        .map_err(|m| Error::Config(format!("instance {:?}: {m}", spec.name)))?;
    Ok(RuleInstance {
        fleet: fleet.map(Arc::new),
        timing: Timing {
            for_: spec.for_.unwrap_or(rule.meta.for_),
            keep_firing_for: spec.keep_firing_for.unwrap_or(rule.meta.keep_firing_for),
        },
        name: spec.name.clone(),
        params_shared: rhai::Dynamic::from_map(params.clone()).into_shared(),
        specs: Arc::default(),
        params,
        labels,
        schedule,
        severity: spec.severity,
        runbook: spec.runbook.clone(),
        rule,
    })
}

impl RuleInstance {
    /// One subject of a fleet instance: this instance with `param` set to `subject`.
    pub(crate) fn for_subject(&self, param: &str, subject: &str) -> RuleInstance {
        let mut out = self.clone();
        out.params.insert(param.into(), subject.into());
        out.params_shared = rhai::Dynamic::from_map(out.params.clone()).into_shared();
        out.specs = Arc::default();
        out.fleet = None;
        out
    }

    /// The parameters as the rule sees them.
    pub(crate) fn params_dynamic(&self) -> rhai::Dynamic {
        self.params_shared.clone()
    }

    /// This instance with one setting changed, for `tripline backtest --set`: a rule parameter,
    /// or `for`, `keep_firing_for`, `every`, `severity`. The value is checked as the config
    /// file's would be.
    pub(crate) fn with_setting(
        &self,
        key: &str,
        value: serde_json::Value,
    ) -> std::result::Result<RuleInstance, String> {
        let mut out = self.clone();
        let text = || {
            value
                .as_str()
                .map(String::from)
                .unwrap_or(value.to_string())
        };
        match key {
            "for" | "keep_firing_for" => {
                let d = crate::clock::parse_duration(&text()).map_err(|e| format!("{key}: {e}"))?;
                if key == "for" {
                    out.timing.for_ = d;
                } else {
                    out.timing.keep_firing_for = d;
                }
            }
            "every" => out.schedule = crate::rule::parse_schedule(&text())?,
            "severity" => out.severity = Some(text().parse()?),
            param => {
                let mut given: serde_json::Map<String, serde_json::Value> = out
                    .params
                    .iter()
                    .filter_map(|(k, v)| {
                        rhai::serde::from_dynamic(v)
                            .ok()
                            .map(|v| (k.to_string(), v))
                    })
                    .collect();
                given.insert(param.to_string(), value);
                out.params = resolve_params(&self.rule, &given)?;
                let exclude = self
                    .fleet
                    .as_ref()
                    .map(|f| f.exclude.clone())
                    .unwrap_or_default();
                out.fleet = crate::fleet::Fleet::of(&self.rule, &given, &exclude)?.map(Arc::new);
                out.params_shared = rhai::Dynamic::from_map(out.params.clone()).into_shared();
                out.specs = Arc::default();
            }
        }
        Ok(out)
    }
}
