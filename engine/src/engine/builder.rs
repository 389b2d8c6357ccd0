//! `TriplineBuilder`: rules, instances, sources, store, clock, receivers and pipeline settings in,
//! a checked `Tripline` out.

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::notify::outbox::{Outbox, RetryPolicy};
use crate::notify::Notifier;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::rule::{Limits, Rule, RuleEngine, RuleSet};
use crate::source::{PushedSource, Source, Sources};
use crate::store::{SqliteStore, Store};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::instance::instantiate;
use super::{InstanceSpec, Tripline};

/// Builds a `Tripline` in code. `Tripline::from_config` uses it too.
pub struct TriplineBuilder {
    limits: Limits,
    rule_dirs: Vec<PathBuf>,
    stock_rules: bool,
    rule_sources: Vec<(PathBuf, String)>,
    instances: Vec<InstanceSpec>,
    sources: Sources,
    store: Option<Arc<dyn Store>>,
    clock: Arc<dyn Clock>,
    notifiers: Vec<Arc<dyn Notifier>>,
    pipeline: Option<PipelineConfig>,
    retry: RetryPolicy,
    fetch_timeout: Duration,
    retention: chrono::Duration,
    tolerate_rule_errors: bool,
}

impl Default for TriplineBuilder {
    fn default() -> Self {
        TriplineBuilder {
            limits: Limits::default(),
            rule_dirs: vec![],
            stock_rules: true,
            rule_sources: vec![],
            instances: vec![],
            sources: Sources::default(),
            store: None,
            clock: Arc::new(SystemClock),
            notifiers: vec![],
            pipeline: None,
            retry: RetryPolicy::default(),
            fetch_timeout: Duration::from_secs(30),
            retention: chrono::Duration::hours(24),
            tolerate_rule_errors: false,
        }
    }
}

impl TriplineBuilder {
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
    pub fn rules_dir(mut self, d: impl Into<PathBuf>) -> Self {
        self.rule_dirs.push(d.into());
        self
    }
    pub fn stock_rules(mut self, yes: bool) -> Self {
        self.stock_rules = yes;
        self
    }
    /// Adds a rule from source text (`origin` names it in errors).
    pub fn rule_source(mut self, origin: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.rule_sources.push((origin.into(), text.into()));
        self
    }
    pub fn instance(mut self, i: InstanceSpec) -> Self {
        self.instances.push(i);
        self
    }
    pub fn source(mut self, kind: impl Into<String>, s: Arc<dyn Source>) -> Self {
        self.sources.insert(kind, s);
        self
    }
    pub fn store(mut self, s: Arc<dyn Store>) -> Self {
        self.store = Some(s);
        self
    }
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = c;
        self
    }
    pub fn notifier(mut self, n: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(n);
        self
    }
    /// Routing, grouping, inhibition, escalation; without it every alert goes to every notifier.
    pub fn pipeline(mut self, p: PipelineConfig) -> Self {
        self.pipeline = Some(p);
        self
    }
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }
    pub fn fetch_timeout(mut self, d: Duration) -> Self {
        self.fetch_timeout = d;
        self
    }
    pub fn resolved_retention(mut self, d: chrono::Duration) -> Self {
        self.retention = d;
        self
    }
    /// Keep going when a rule file fails to load (it is reported as a rule-error alert each
    /// cycle) instead of failing the build. `eval` and the daemon run this way.
    pub fn tolerate_rule_errors(mut self, yes: bool) -> Self {
        self.tolerate_rule_errors = yes;
        self
    }

    pub fn build(self) -> Result<Tripline> {
        let rule_engine = Arc::new(RuleEngine::new(self.limits, &self.rule_dirs));
        // Of the stock rules, only those the instances use are compiled (at most once each).
        let wanted: std::collections::BTreeSet<&str> =
            self.instances.iter().map(|i| i.rule.as_str()).collect();
        let (mut rules, mut errors) = RuleSet::load_for(
            &rule_engine,
            &self.rule_dirs,
            self.stock_rules,
            Some(&wanted),
        );
        for (origin, text) in &self.rule_sources {
            match crate::rule::load_rule_source(&rule_engine, origin.clone(), text) {
                Ok(Some(r)) => {
                    rules.rules.insert(r.meta.id.clone(), r);
                }
                Ok(None) => errors.push(Error::invalid(
                    origin,
                    1,
                    1,
                    "not a rule: no `fn evaluate(data, params)`",
                )),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() && !self.tolerate_rule_errors {
            return Err(Error::Many(errors));
        }
        let mut instances = Vec::new();
        let mut problems = Vec::new();
        let broken_files = !errors.is_empty();
        let mut seen = std::collections::HashSet::new();
        // One shared copy of each rule for all its instances.
        let mut shared: HashMap<&str, Arc<Rule>> = HashMap::new();
        for spec in &self.instances {
            let located = |message: String| match &spec.location {
                Some(l) => Error::Invalid {
                    location: l.clone(),
                    message,
                },
                None => Error::Config(message),
            };
            if !seen.insert(spec.name.as_str()) {
                problems.push(located(format!(
                    "rule instance name {:?} is used twice; give each [[rule]] a distinct `name`",
                    spec.name
                )));
                continue;
            }
            match instantiate(&rules, &mut shared, spec) {
                Ok(i) => instances.push(i),
                // Its rule file is probably one of the broken ones: report it with them and keep
                // every other instance running.
                Err(Error::Config(m))
                    if self.tolerate_rule_errors
                        && broken_files
                        && !rules.rules.contains_key(&spec.rule) =>
                {
                    errors.push(located(m));
                }
                Err(Error::Config(m)) => problems.push(located(m)),
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Many(problems));
        }
        let pushed = Arc::new(PushedSource::default());
        let mut sources = self.sources;
        if sources.get("pushed").is_none() {
            sources.insert("pushed", pushed.clone());
        }
        let store = match self.store {
            Some(s) => s,
            None => Arc::new(SqliteStore::in_memory()?),
        };
        let pipeline = Pipeline::new(self.pipeline.unwrap_or_else(|| {
            PipelineConfig::fan_out(
                &self
                    .notifiers
                    .iter()
                    .map(|n| n.name().to_string())
                    .collect::<Vec<_>>(),
            )
        }));
        let outbox = Arc::new(Outbox::new(store.clone(), &self.notifiers, self.retry));
        Ok(Tripline {
            rule_engine,
            rules,
            instances,
            sources,
            pushed,
            store,
            clock: self.clock,
            notifiers: self.notifiers,
            pipeline,
            outbox,
            notify_lock: tokio::sync::Mutex::new(()),
            ingest_next_expiry: std::sync::Mutex::new(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            fetch_timeout: self.fetch_timeout,
            retention: self.retention,
            load_errors: errors.into_iter().map(|e| e.to_string()).collect(),
            eval_memo: None,
        })
    }
}
