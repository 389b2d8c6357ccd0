//! Fleet rules: one `[[rule]]` watching many subjects.
//!
//! A rule parameter without a default (`function: ()`, `queue: ()`, …) given a glob
//! (`"prd2011-prod1-us-east-1-cmp-*"`) or a list of names and globs makes the instance a fleet.
//! Each cycle the engine
//!
//! 1. runs the rule's `query(p)` once per glob, with `p.<param>` = the glob, and asks the source
//!    of every query that carries it which subjects it stands for (`Source::subjects`:
//!    CloudWatch `ListMetrics`, Logs `DescribeLogGroups`, fixtures' series), cached by the source;
//! 2. adds the list's exact names, drops the `exclude`d ones, and keeps every subject that has a
//!    pending or firing alert of this instance even when discovery no longer lists it, so a subject
//!    that falls out of discovery resolves on its own data, never by disappearing;
//! 3. evaluates the rule once per subject with `p.<param>` = the subject's name, exactly as a
//!    per-subject `[[rule]]` would be: its own queries (merged with everyone's into the same
//!    packed calls), its own alerts, `for`, `keep_firing_for` and severity ladder.
//!
//! A rule that takes globs itself (loops over the array of series a glob answers, docs/aws.md
//! "Discovery") says `fleet: false` in its `RULE` and is left alone.

use crate::alert::{Alert, Labels};
use crate::data::SourceFailure;
use crate::engine::RuleInstance;
use crate::rule::{QuerySpec, RuleEngine, RuleFailure};
use crate::source::cloudwatch::spec::{glob_match, is_glob};
use crate::source::{FetchContext, Sources};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// What makes an instance a fleet: the parameter that names its subjects, the names and globs it
/// was given, and the names and globs to leave out.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub param: String,
    pub names: Vec<String>,
    pub exclude: Vec<String>,
    /// Given as a list (not one glob string).
    pub listed: bool,
    /// Each current subject's instance, kept across cycles so a rule whose `query` does not use
    /// time plans each subject once (its specs cache lives in the instance).
    subjects: Arc<Mutex<HashMap<String, RuleInstance>>>,
}

impl Fleet {
    /// The fleet an instance's parameters describe, if any. Only parameters the rule declares
    /// without a default (`()`) can name a fleet, and only one of them per instance.
    pub fn of(
        rule: &crate::rule::Rule,
        given: &serde_json::Map<String, serde_json::Value>,
        exclude: &[String],
    ) -> Result<Option<Fleet>, String> {
        let mut found: Option<Fleet> = None;
        if rule.meta.fleet {
            for (k, spec) in &rule.meta.params {
                if spec.default.is_some() {
                    continue;
                }
                let names = match given.get(k) {
                    Some(serde_json::Value::String(s)) if is_glob(s) => vec![s.clone()],
                    Some(serde_json::Value::Array(items)) => {
                        let mut names = Vec::with_capacity(items.len());
                        for v in items {
                            match v.as_str() {
                                Some(s) if !s.is_empty() => names.push(s.to_string()),
                                _ => {
                                    return Err(format!(
                                        "parameter {k:?}: a list of subjects holds names or globs (non-empty strings), got {v}"
                                    ))
                                }
                            }
                        }
                        if names.is_empty() {
                            return Err(format!("parameter {k:?}: the list of subjects is empty"));
                        }
                        names
                    }
                    _ => continue,
                };
                if let Some(f) = &found {
                    return Err(format!(
                        "parameters {:?} and {k:?} both name a fleet (a glob or a list); one instance watches one fleet",
                        f.param
                    ));
                }
                found = Some(Fleet {
                    param: k.clone(),
                    listed: given.get(k).is_some_and(|v| v.is_array()),
                    names,
                    ..Default::default()
                });
            }
        }
        for e in exclude {
            if e.is_empty() {
                return Err("exclude: names and globs are non-empty strings".into());
            }
        }
        match found {
            Some(mut f) => {
                f.exclude = exclude.to_vec();
                Ok(Some(f))
            }
            None if !exclude.is_empty() => Err(format!(
                "`exclude` needs a fleet: give one of the rule's required parameters ({}) a glob or a list",
                required(rule).join(", ")
            )),
            None => Ok(None),
        }
    }

    /// Does the fleet take this subject: one of its names or globs matches and no `exclude` does?
    pub fn selects(&self, subject: &str) -> bool {
        self.names.iter().any(|n| glob_match(n, subject))
            && !self.exclude.iter().any(|e| glob_match(e, subject))
    }

    /// The subject an alert of this fleet belongs to: the label named like the parameter when the
    /// rule sets one (stock rules label `function`, `queue`, …), else the first label value the
    /// fleet selects.
    pub fn subject_of(&self, labels: &Labels) -> Option<String> {
        if let Some(v) = labels.get(&self.param) {
            return self.selects(v).then(|| v.clone());
        }
        labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(_, v)| v)
            .find(|v| self.selects(v))
            .cloned()
    }
}

/// Makes sure an alert of a fleet subject names it: stock rules label the subject themselves
/// (`function`, `queue`); otherwise the engine adds `<param> = <subject>`, so two subjects never
/// share one alert.
pub fn name_subject(labels: &mut Labels, param: &str, subject: &str) {
    if !labels.values().any(|v| v == subject) {
        labels.insert(param.to_string(), subject.to_string());
    }
}

fn required(rule: &crate::rule::Rule) -> Vec<String> {
    rule.meta
        .params
        .iter()
        .filter(|(_, s)| s.default.is_none())
        .map(|(k, _)| k.clone())
        .collect()
}

pub use crate::source::capture;

/// Does any string in `v` contain `pattern`?
pub fn carries(v: &serde_json::Value, pattern: &str) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains(pattern),
        serde_json::Value::Array(a) => a.iter().any(|x| carries(x, pattern)),
        serde_json::Value::Object(o) => o.values().any(|x| carries(x, pattern)),
        _ => false,
    }
}

/// Why a unit was not evaluated.
pub(crate) enum Failure {
    Rule(RuleFailure),
    Source(SourceFailure),
}

/// One evaluation in a cycle: a plain instance, or one subject of a fleet instance.
pub(crate) struct Unit<'a> {
    /// Index of the instance in the cycle's due list.
    pub parent: usize,
    pub inst: Cow<'a, RuleInstance>,
    /// The fleet subject, for fleet instances.
    pub subject: Option<String>,
    /// Discovery failed: nothing to evaluate; the whole instance keeps its alerts.
    pub failed: Option<Failure>,
}

/// The cycle's evaluations: each plain instance as it is, each fleet instance once per subject.
pub(crate) async fn units<'a>(
    rules: &RuleEngine,
    sources: &Sources,
    due: &[&'a RuleInstance],
    stored: &[Alert],
    ctx: &FetchContext,
) -> Vec<Unit<'a>> {
    let mut out = Vec::with_capacity(due.len());
    for (parent, inst) in due.iter().enumerate() {
        let plain = Unit {
            parent,
            inst: Cow::Borrowed(*inst),
            subject: None,
            failed: None,
        };
        let Some(fleet) = inst.fleet.as_deref() else {
            out.push(plain);
            continue;
        };
        match subjects(rules, sources, inst, fleet, stored, ctx).await {
            // One glob string no source can expand: the value goes to the rule as it is, as
            // before fleets (an HTTP probe's URL with a `?`).
            Ok(None) => out.push(plain),
            Err(f) => out.push(Unit {
                parent,
                inst: Cow::Borrowed(*inst),
                subject: None,
                failed: Some(f),
            }),
            Ok(Some(subjects)) => {
                let mut cache = fleet.subjects.lock().unwrap_or_else(|e| e.into_inner());
                cache.retain(|s, _| subjects.contains(s));
                for s in subjects {
                    let one = cache
                        .entry(s.clone())
                        .or_insert_with(|| inst.for_subject(&fleet.param, &s))
                        .clone();
                    out.push(Unit {
                        parent,
                        inst: Cow::Owned(one),
                        subject: Some(s),
                        failed: None,
                    });
                }
            }
        }
    }
    out
}

/// A fleet instance's subjects this cycle: discovered ∪ listed, minus excluded, plus those with a
/// pending or firing alert. `None`: a single glob string that none of its queries' sources can
/// discover, so not a fleet at all.
async fn subjects(
    rules: &RuleEngine,
    sources: &Sources,
    inst: &RuleInstance,
    fleet: &Fleet,
    stored: &[Alert],
    ctx: &FetchContext,
) -> Result<Option<BTreeSet<String>>, Failure> {
    let mut found = BTreeSet::new();
    for name in &fleet.names {
        if !is_glob(name) {
            found.insert(name.clone());
            continue;
        }
        let probe = inst.for_subject(&fleet.param, name);
        let specs = rules
            .query(&probe.rule, &probe.params_dynamic(), ctx.at)
            .map_err(Failure::Rule)?;
        let carrying: Vec<&QuerySpec> = specs
            .values()
            .filter(|s| carries(&s.params, name))
            .collect();
        if carrying.is_empty() {
            return Err(Failure::Rule(RuleFailure {
                stage: "query",
                message: format!(
                    "parameter {:?} = {name:?}: the glob reaches none of the rule's queries, so its subjects cannot be discovered",
                    fleet.param
                ),
                limit: None,
            }));
        }
        let mut discovered = false;
        for spec in &carrying {
            match sources.subjects(spec, name, ctx).await {
                None => {}
                Some(r) => {
                    found.extend(r.map_err(Failure::Source)?);
                    discovered = true;
                }
            }
        }
        if !discovered {
            if !fleet.listed {
                return Ok(None);
            }
            return Err(Failure::Source(SourceFailure {
                source: carrying[0].kind.clone(),
                message: format!(
                    "the {} source cannot discover the subjects of the glob {name:?}; list their names instead",
                    carrying[0].kind
                ),
            }));
        }
    }
    found.retain(|s| fleet.selects(s));
    found.extend(
        stored
            .iter()
            .filter(|a| a.instance == inst.name && a.is_active())
            .filter_map(|a| fleet.subject_of(&a.labels)),
    );
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_the_part_the_glob_stands_for() {
        assert_eq!(
            capture("/aws/lambda/p-*", "p-*", "/aws/lambda/p-a").as_deref(),
            Some("p-a")
        );
        assert_eq!(capture("p-*", "p-*", "p-a-b").as_deref(), Some("p-a-b"));
        assert_eq!(capture("p-*-dlq", "p-*", "p-a-dlq").as_deref(), Some("p-a"));
        assert_eq!(capture("p-*-dlq", "p-*", "p-a-sqs"), None);
        assert_eq!(capture("/aws/lambda/p-*", "p-*", "/aws/ecs/p-a"), None);
        assert_eq!(capture("p-*", "q-*", "p-a"), None);
    }

    #[test]
    fn selects_names_and_globs_minus_exclusions() {
        let f = Fleet {
            param: "function".into(),
            names: vec!["prd-*".into(), "legacy-job".into()],
            exclude: vec!["prd-*-canary".into(), "prd-old".into()],
            listed: true,
            ..Default::default()
        };
        assert!(f.selects("prd-a"));
        assert!(f.selects("legacy-job"));
        assert!(!f.selects("prd-a-canary"));
        assert!(!f.selects("prd-old"));
        assert!(!f.selects("dev-a"));
        let labels = |kv: &[(&str, &str)]| -> Labels {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            f.subject_of(&labels(&[("alertname", "prd-x"), ("function", "prd-a")]))
                .as_deref(),
            Some("prd-a")
        );
        assert_eq!(f.subject_of(&labels(&[("function", "dev-a")])), None);
        assert_eq!(
            f.subject_of(&labels(&[("alertname", "errs"), ("fn", "legacy-job")]))
                .as_deref(),
            Some("legacy-job")
        );
    }
}
