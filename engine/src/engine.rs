//! The engine: rule instances, sources, store, clock and receivers, and one evaluation cycle
//! through them — plan → collect → evaluate → state → triage → notify.
//!
//! The library is the product: a host program builds a `Tripline` from a config file or
//! programmatically, pushes data it already has, runs a cycle at an instant it chooses and gets
//! notifications through a `Notifier` it implements.

use crate::alert::{
    self, Alert, AlertCandidate, Labels, Reported, Severity, Timing, Transition, TransitionKind,
};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::data::{QueryData, QueryOutcome, SourceFailure};
use crate::error::{Error, Result};
use crate::notify::outbox::{DeliveryReport, Outbox, RetryPolicy};
use crate::notify::{Notification, Notifier};
use crate::pipeline::{Flush, Pipeline, PipelineConfig};
use crate::rule::{Limits, QuerySpec, Rule, RuleEngine, RuleFailure, RuleSet, TriageContext};
use crate::source::{FetchContext, PushedSource, Source, Sources};
use crate::store::{SqliteStore, Store};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Rule id of the alerts Tripline raises about its own rules.
pub const RULE_ERROR: &str = "tripline/rule-error";
/// Rule id of the alerts raised when a rule's data could not be fetched.
pub const SOURCE_ERROR: &str = "tripline/source-error";
/// How often `notify_at` looks for expired ingested alerts when it knows of none due.
const INGEST_RESCAN: chrono::Duration = chrono::Duration::seconds(60);

/// One configured use of a rule.
#[derive(Debug, Clone)]
pub struct RuleInstance {
    /// Unique name; the `alertname` label of its alerts.
    pub name: String,
    /// Shared by every instance of the rule.
    pub rule: Arc<Rule>,
    pub params: rhai::Map,
    /// `params` as a shared script value: handing it to a rule costs a reference count.
    params_shared: rhai::Dynamic,
    /// The query specs of a rule whose `query` does not depend on time, computed once.
    specs: Arc<std::sync::OnceLock<Arc<BTreeMap<String, QuerySpec>>>>,
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

/// What a cycle does with what it found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CycleMode {
    /// Write the alerts' new state, queue notifications and make a delivery pass.
    #[default]
    Live,
    /// Evaluate against the stored state but write nothing and send nothing: the report's
    /// `notifications` are what a live cycle would have queued (`tripline eval --dry-run`, and
    /// replays of past instants).
    DryRun,
}

/// What one cycle did.
#[derive(Debug, Clone, Default)]
pub struct CycleReport {
    pub at: Option<Timestamp>,
    pub instances_evaluated: usize,
    /// Distinct queries fetched (after merging identical ones).
    pub queries: usize,
    pub transitions: Vec<Transition>,
    /// Pending and firing alerts after the cycle, plus the ones resolved in it.
    pub alerts: Vec<Alert>,
    pub rule_failures: Vec<(String, RuleFailure)>,
    pub source_failures: Vec<(String, SourceFailure)>,
    /// Notifications the pipeline put in the outbox this cycle.
    pub notifications: Vec<Notification>,
    /// (receiver, error) of deliveries that failed in this cycle's delivery pass.
    pub delivery_errors: Vec<(String, String)>,
    /// Outbox ids delivered in this cycle's delivery pass.
    pub delivered: Vec<String>,
    /// Pipeline notices for people (a silence expired while its alerts still fire).
    pub notices: Vec<String>,
    /// Another replica held the flush lease: this cycle's news is planned by it or later.
    pub flush_busy: bool,
    /// The delivery pass that ended the cycle.
    pub delivery: crate::notify::outbox::DeliveryReport,
    /// Wall-clock time each instance's `query` + `evaluate` took (fetching excluded).
    pub eval_durations: Vec<(String, Duration)>,
}

impl CycleReport {
    /// Folds a one-shot run's delivery (`Tripline::deliver_for`) into the cycle's report: what it
    /// queued, what it delivered, and the receivers' errors of what is retrying or dead.
    pub fn absorb_delivery(&mut self, queued: Vec<Notification>, more: &DeliveryReport) {
        self.notifications.extend(queued);
        self.delivered.extend(more.delivered.iter().cloned());
        self.delivery_errors.extend(
            more.retrying
                .iter()
                .chain(&more.dead)
                .map(|f| (f.receiver.clone(), f.message.clone())),
        );
    }
}

pub struct Tripline {
    rule_engine: Arc<RuleEngine>,
    rules: RuleSet,
    instances: Vec<RuleInstance>,
    sources: Sources,
    pushed: Arc<PushedSource>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    notifiers: Vec<Arc<dyn Notifier>>,
    pipeline: Pipeline,
    outbox: Arc<Outbox>,
    /// One flush-and-deliver at a time (cycle and daemon notify loop), so nothing is sent twice.
    notify_lock: tokio::sync::Mutex<()>,
    /// No ingested alert expires before this instant (so `notify_at` need not look): lowered by
    /// `ingest`, recomputed by each look, which happens at least every `INGEST_RESCAN`.
    ingest_next_expiry: std::sync::Mutex<Timestamp>,
    fetch_timeout: Duration,
    retention: chrono::Duration,
    /// Rule files that failed to load: raised as rule-error alerts every cycle until fixed.
    load_errors: Vec<String>,
    /// A backtest's twin reuses evaluations whose input did not change (`backtest::memo`).
    eval_memo: Option<Arc<crate::backtest::memo::EvalMemo>>,
}

impl std::fmt::Debug for Tripline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tripline")
            .field("instances", &self.instances.len())
            .field("sources", &self.sources)
            .finish()
    }
}

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

fn instantiate<'r>(
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

impl Tripline {
    /// A throw-away twin of this engine for a backtest: the same rules and pipeline, the given
    /// instances, sources and receivers, a fresh in-memory store and the given clock.
    pub(crate) fn replica(
        &self,
        instances: Vec<RuleInstance>,
        sources: Sources,
        notifiers: Vec<Arc<dyn Notifier>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Tripline> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory()?);
        let pushed = Arc::new(PushedSource::default());
        let outbox = Arc::new(Outbox::new(
            store.clone(),
            &notifiers,
            RetryPolicy::default(),
        ));
        Ok(Tripline {
            rule_engine: self.rule_engine.clone(),
            rules: self.rules.clone(),
            instances,
            sources,
            pushed,
            store,
            clock,
            notifiers,
            pipeline: Pipeline::new(self.pipeline.config().clone()),
            outbox,
            notify_lock: tokio::sync::Mutex::new(()),
            ingest_next_expiry: std::sync::Mutex::new(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            fetch_timeout: self.fetch_timeout,
            retention: self.retention,
            load_errors: vec![],
            eval_memo: None,
        })
    }

    /// Makes this (backtest twin) engine reuse evaluations whose input did not change.
    pub(crate) fn memoize_evaluations(&mut self, memo: Arc<crate::backtest::memo::EvalMemo>) {
        self.eval_memo = Some(memo);
    }

    /// One unit's `evaluate`, through the backtest memo when there is one.
    fn evaluate_unit(
        &self,
        inst: &RuleInstance,
        subject: Option<&str>,
        data: &[(&str, &QueryOutcome)],
        at: Timestamp,
    ) -> std::result::Result<crate::rule::Evaluation, RuleFailure> {
        match &self.eval_memo {
            Some(m) => m.evaluate(&self.rule_engine, inst, subject, data, at),
            None => self
                .rule_engine
                .evaluate(&inst.rule, data, &inst.params_shared, at),
        }
    }

    pub(crate) fn sources(&self) -> &Sources {
        &self.sources
    }

    /// An instance's query specs at `at`, as a cycle would plan them.
    pub(crate) fn plan_at(
        &self,
        inst: &RuleInstance,
        at: Timestamp,
    ) -> std::result::Result<Arc<BTreeMap<String, QuerySpec>>, RuleFailure> {
        self.plan(inst, at)
    }
}

/// What happened to one instance's evaluation.
enum Outcome {
    Evaluated(crate::rule::Evaluation),
    RuleFailed(RuleFailure),
    SourceFailed(SourceFailure),
}

impl Tripline {
    pub fn builder() -> TriplineBuilder {
        TriplineBuilder::default()
    }

    pub fn instances(&self) -> &[RuleInstance] {
        &self.instances
    }

    /// The rules this engine compiled: those of its rule directories and rule sources, and the
    /// stock rules its instances use (`RuleSet::load` compiles every stock rule).
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The notification half of a cycle on its own: flushes the pipeline at `at` (group timers,
    /// escalation steps, silences that ended, acks) and makes one delivery pass over the outbox.
    /// A daemon calls it every second or so between cycles, so group waits, escalations and
    /// paced or retried deliveries happen on time; `tripline deliver` and `tripline ack` use it too.
    ///
    /// Queued entries are delivered whatever happens to the flush: a failed flush (a store
    /// error) is returned after the delivery pass, and a busy one (another replica holds the
    /// DynamoDB flush lease) is no error at all.
    pub async fn notify_at(&self, at: Timestamp) -> Result<(Flush, DeliveryReport)> {
        let _one_at_a_time = self.notify_lock.lock().await;
        let flushed = match self.expire_ingested(at).await {
            Ok(()) => self.pipeline.flush(self.store.as_ref(), at).await,
            Err(e) => Err(e),
        };
        let delivery = self.outbox.deliver_due(at).await?;
        Ok((flushed?, delivery))
    }

    /// What a one-shot run (`tripline eval`, the Lambda handler) does after its cycle: goes on
    /// delivering what comes due — paced messages, retries — in real time from `from`, for at
    /// most `budget`. A flush that was busy (another replica's lease) is tried again every few
    /// seconds meanwhile. What it could not send stays in the outbox for the next run.
    pub async fn deliver_for(
        &self,
        from: Timestamp,
        budget: std::time::Duration,
        mut flush_busy: bool,
    ) -> Result<(Vec<Notification>, DeliveryReport)> {
        const FLUSH_RETRY: chrono::Duration = chrono::Duration::seconds(5);
        let clock = crate::clock::RunningClock::from(from);
        let deadline = from + chrono::Duration::from_std(budget).unwrap_or(chrono::Duration::MAX);
        let _one_at_a_time = self.notify_lock.lock().await;
        let mut queued = Vec::new();
        let mut report = DeliveryReport::default();
        let mut next_flush = from + FLUSH_RETRY;
        loop {
            if flush_busy && clock.now() >= next_flush {
                let f = self
                    .pipeline
                    .flush(self.store.as_ref(), clock.now())
                    .await?;
                flush_busy = f.busy;
                queued.extend(f.commit.notifications);
                next_flush = clock.now() + FLUSH_RETRY;
            }
            let pass = self.outbox.deliver_due(clock.now()).await?;
            let mut wake = pass.wake_at;
            report.absorb(pass);
            if flush_busy {
                wake = Some(wake.map_or(next_flush, |w| w.min(next_flush)));
            }
            let Some(next) = wake else { break };
            if next > deadline {
                break;
            }
            let now = clock.now();
            if next > now {
                let wait = (next - now)
                    .to_std()
                    .unwrap_or_default()
                    .min(std::time::Duration::from_secs(5));
                tokio::time::sleep(wait).await;
            }
        }
        Ok((queued, report))
    }

    /// Resolves ingested alerts whose `endsAt` passed. Reads the store only when one may have:
    /// `ingest` keeps the earliest expiry it wrote, and the store is looked at at least every
    /// `INGEST_RESCAN` anyway (another process sharing the store may have taken alerts in).
    async fn expire_ingested(&self, at: Timestamp) -> Result<()> {
        {
            let mut next = self.ingest_next_expiry.lock().expect("expiry lock");
            if at < *next {
                return Ok(());
            }
            // Ingests from now on lower this; the look below raises it no further than this.
            *next = at + INGEST_RESCAN;
        }
        let looked = async {
            let stored = self
                .store
                .load_alerts_of_instance(crate::ingest::INGESTED)
                .await?;
            let expired = crate::ingest::expired(&stored, at);
            if !expired.is_empty() {
                self.store.save_alerts(&expired, &[]).await?;
            }
            Ok::<_, Error>((stored, expired))
        };
        let (stored, expired) = match looked.await {
            Ok(x) => x,
            Err(e) => {
                // Look again on the next call.
                *self.ingest_next_expiry.lock().expect("expiry lock") = at;
                return Err(e);
            }
        };
        let gone: std::collections::HashSet<&str> =
            expired.iter().map(|a| a.fingerprint.as_str()).collect();
        let still: Vec<&Alert> = stored
            .iter()
            .filter(|a| !gone.contains(a.fingerprint.as_str()))
            .collect();
        if let Some(t) = crate::ingest::next_expiry(still) {
            let mut next = self.ingest_next_expiry.lock().expect("expiry lock");
            *next = (*next).min(t);
        }
        Ok(())
    }

    /// Takes alerts posted in Alertmanager's format (`POST /api/v2/alerts`) into the store, where
    /// the pipeline picks them up. Returns how many were new or changed.
    pub async fn ingest(
        &self,
        alerts: Vec<crate::ingest::PostableAlert>,
        at: Timestamp,
    ) -> Result<usize> {
        // Only the posted alerts' earlier selves matter: look those up, not the whole store.
        let fps: Vec<String> = alerts
            .iter()
            .map(|p| crate::alert::fingerprint(crate::ingest::INGESTED, &p.labels))
            .collect();
        let stored = self.store.load_alerts_by_fingerprint(&fps).await?;
        let changed = crate::ingest::merge(alerts, &stored, at).map_err(Error::Config)?;
        self.store.save_alerts(&changed, &[]).await?;
        if let Some(t) = crate::ingest::next_expiry(&changed) {
            let mut next = self.ingest_next_expiry.lock().expect("expiry lock");
            *next = (*next).min(t);
        }
        Ok(changed.len())
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    pub fn notifiers(&self) -> &[Arc<dyn Notifier>] {
        &self.notifiers
    }

    /// API requests each source has made since it was built, by query kind.
    pub fn source_requests(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .sources
            .kinds()
            .map(|k| {
                (
                    k.to_string(),
                    self.sources.get(k).map(|s| s.requests()).unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// [`Self::source_requests`] by API operation: `(kind, operation, requests)`, sorted, for
    /// the sources that know (CloudWatch: `GetMetricData` and `ListMetrics` side by side).
    pub fn source_requests_by_operation(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<(String, String, u64)> = self
            .sources
            .kinds()
            .filter_map(|k| Some((k, self.sources.get(k)?)))
            .flat_map(|(k, s)| {
                s.requests_by_operation()
                    .into_iter()
                    .map(move |(op, n)| (k.to_string(), op, n))
            })
            .collect();
        v.sort();
        v
    }

    pub fn load_errors(&self) -> &[String] {
        &self.load_errors
    }

    /// Push mode: data the host already has, read by rules through `pushed("name")`.
    pub fn push(&self, name: impl Into<String>, data: QueryData) {
        self.pushed.push(name, data);
    }

    /// Runs one cycle over every instance at the clock's current time.
    pub async fn run_cycle(&self) -> Result<CycleReport> {
        self.run_cycle_at(self.clock.now(), None).await
    }

    /// Runs one cycle at `at`, over the named instances (all when `None`).
    pub async fn run_cycle_at(
        &self,
        at: Timestamp,
        only: Option<&[String]>,
    ) -> Result<CycleReport> {
        self.run_cycle_with(at, only, CycleMode::Live).await
    }

    /// Runs one cycle at `at` in `mode`: live, or a dry run that leaves the store and the
    /// receivers untouched.
    pub async fn run_cycle_with(
        &self,
        at: Timestamp,
        only: Option<&[String]>,
        mode: CycleMode,
    ) -> Result<CycleReport> {
        let due: Vec<&RuleInstance> = self
            .instances
            .iter()
            .filter(|i| only.is_none_or(|o| o.contains(&i.name)))
            .collect();
        let mut report = CycleReport {
            at: Some(at),
            instances_evaluated: due.len(),
            ..Default::default()
        };

        let stored = self.store.load_alerts().await?;
        // Fleet discovery and the fetch share one deadline.
        let ctx = FetchContext {
            at,
            deadline: std::time::Instant::now() + self.fetch_timeout,
        };
        // Units: each plain instance as it is, each fleet instance once per subject.
        let units =
            crate::fleet::units(&self.rule_engine, &self.sources, &due, &stored, &ctx).await;

        // Plan: each unit's query specs (cached when the rule's query does not use time).
        let mut planned: Vec<std::result::Result<Arc<BTreeMap<String, QuerySpec>>, RuleFailure>> =
            Vec::with_capacity(units.len());
        let mut spent = Vec::with_capacity(units.len());
        for u in &units {
            let started = std::time::Instant::now();
            planned.push(match u.failed {
                Some(_) => Ok(Arc::default()),
                None => self.plan(&u.inst, at),
            });
            spent.push(started.elapsed());
        }

        // Collect: every distinct spec once.
        let mut distinct: HashMap<&str, &QuerySpec> = HashMap::new();
        for specs in planned.iter().filter_map(|p| p.as_ref().ok()) {
            for s in specs.values() {
                distinct.entry(s.key.as_str()).or_insert(s);
            }
        }
        let fetched: HashMap<String, QueryOutcome> = self
            .sources
            .fetch_all(distinct.into_values().cloned().collect::<Vec<_>>(), &ctx)
            .await;
        report.queries = fetched.len();

        // Evaluate.
        let mut outcomes = Vec::with_capacity(units.len());
        for ((u, plan), spent) in units.iter().zip(planned).zip(spent) {
            let started = std::time::Instant::now();
            let inst = &u.inst;
            let outcome = match (&u.failed, plan) {
                (Some(crate::fleet::Failure::Rule(f)), _) => Outcome::RuleFailed(f.clone()),
                (Some(crate::fleet::Failure::Source(f)), _) => Outcome::SourceFailed(f.clone()),
                (None, Err(f)) => Outcome::RuleFailed(f),
                (None, Ok(specs)) => {
                    let data: Vec<(&str, &QueryOutcome)> = specs
                        .iter()
                        .map(|(name, s)| (name.as_str(), &fetched[&s.key]))
                        .collect();
                    match data.iter().find_map(|(_, o)| o.as_ref().err()) {
                        Some(f) => Outcome::SourceFailed(f.clone()),
                        None => match self.evaluate_unit(inst, u.subject.as_deref(), &data, at) {
                            Ok(e) => Outcome::Evaluated(e),
                            Err(f) => Outcome::RuleFailed(f),
                        },
                    }
                }
            };
            report
                .eval_durations
                .push((inst.name.clone(), spent + started.elapsed()));
            outcomes.push(outcome);
        }

        // State: one advance per instance, over what all its units reported.
        let mut by_instance: HashMap<&str, Vec<Alert>> = HashMap::new();
        for a in &stored {
            by_instance
                .entry(a.instance.as_str())
                .or_default()
                .push(a.clone());
        }
        let mut reports: Vec<Reported> = vec![Reported::default(); due.len()];
        let mut transitions = Vec::new();
        let mut meta_fired: Vec<AlertCandidate> = Vec::new();
        for (u, outcome) in units.iter().zip(outcomes) {
            let inst = due[u.parent];
            let current = by_instance
                .get(inst.name.as_str())
                .map(|v| v.as_slice())
                .unwrap_or(&[]);
            let into = &mut reports[u.parent];
            let on = u
                .subject
                .as_ref()
                .map(|s| format!(" on {s}"))
                .unwrap_or_default();
            let failed = |into: &mut Reported| match (&u.subject, &inst.fleet) {
                // A failing subject keeps its own alerts; the fleet's others go on.
                (Some(s), Some(fleet)) => into.retained.extend(
                    current
                        .iter()
                        .filter(|a| fleet.subject_of(&a.labels).as_ref() == Some(s))
                        .map(|a| a.labels.clone()),
                ),
                _ => into.retain_all = true,
            };
            match outcome {
                Outcome::Evaluated(mut e) => {
                    if let (Some(s), Some(fleet)) = (&u.subject, &inst.fleet) {
                        let labels = e.fired.iter_mut().map(|c| &mut c.labels);
                        for l in labels.chain(e.retained.iter_mut()) {
                            crate::fleet::name_subject(l, &fleet.param, s);
                        }
                    }
                    into.fired
                        .extend(e.fired.into_iter().map(|c| self.decorate(inst, c)));
                    into.retained
                        .extend(e.retained.into_iter().map(|l| self.subject_labels(inst, l)));
                    into.retain_all |= e.retain_all;
                }
                Outcome::RuleFailed(f) => {
                    tracing::warn!(instance = %inst.name, subject = ?u.subject, "rule failed: {f}");
                    let mut c = meta_candidate(
                        inst,
                        RULE_ERROR,
                        Severity::Warning,
                        format!("rule {}{on} ({}) {f}", inst.name, inst.rule.meta.id),
                        &f.message,
                    );
                    if let Some(s) = &u.subject {
                        c.labels.insert("subject".into(), s.clone());
                    }
                    meta_fired.push(c);
                    report.rule_failures.push((inst.name.clone(), f));
                    failed(into);
                }
                Outcome::SourceFailed(f) => {
                    tracing::warn!(instance = %inst.name, subject = ?u.subject, "source failed: {f}");
                    let mut c = meta_candidate(
                        inst,
                        SOURCE_ERROR,
                        Severity::Warning,
                        format!("rule {}{on} cannot fetch its data: {f}", inst.name),
                        &f.message,
                    );
                    if let Some(s) = &u.subject {
                        c.labels.insert("subject".into(), s.clone());
                    }
                    meta_fired.push(c);
                    report.source_failures.push((inst.name.clone(), f));
                    failed(into);
                }
            }
        }
        for (inst, reported) in due.iter().zip(&reports) {
            let current = by_instance
                .get(inst.name.as_str())
                .map(|v| v.as_slice())
                .unwrap_or(&[]);
            transitions.extend(alert::advance(
                &inst.rule.meta.id,
                &inst.name,
                current,
                reported,
                inst.timing,
                at,
            ));
        }
        transitions.extend(self.meta_transitions(&stored, &due, meta_fired, at));

        // Triage the alerts that just started firing.
        self.triage(&mut transitions, at).await;

        let changed: Vec<Alert> = transitions
            .iter()
            .filter(|t| t.kind != TransitionKind::Dropped)
            .map(|t| t.alert.clone())
            .collect();
        let deleted: Vec<String> = transitions
            .iter()
            .filter(|t| t.kind == TransitionKind::Dropped)
            .map(|t| t.alert.fingerprint.clone())
            .collect();
        if mode == CycleMode::DryRun {
            return self
                .dry_run_notifications(report, stored, transitions, at)
                .await;
        }
        self.store.save_alerts(&changed, &deleted).await?;
        self.store.prune_resolved(at - self.retention).await?;

        // The alerts as they stand now.
        let mut now: BTreeMap<String, Alert> = stored
            .into_iter()
            .filter(|a| a.is_active())
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        for t in &transitions {
            match t.kind {
                TransitionKind::Dropped => {
                    now.remove(&t.alert.fingerprint);
                }
                _ => {
                    now.insert(t.alert.fingerprint.clone(), t.alert.clone());
                }
            }
        }
        report.alerts = now.into_values().collect();

        // Notify: silence → inhibit → route → group → escalate → dedup → outbox, then one delivery
        // pass (what is not delivered now stays in the outbox for the next pass or process).
        let (flush, delivery) = self.notify_at(at).await?;
        report.flush_busy = flush.busy;
        report.notices = flush.notices;
        report.notifications = flush.commit.notifications;
        report.delivered = delivery.delivered.clone();
        report.delivery_errors = delivery
            .retrying
            .iter()
            .chain(&delivery.dead)
            .map(|f| (f.receiver.clone(), f.message.clone()))
            .collect();
        report.delivery = delivery;
        report.transitions = transitions;
        Ok(report)
    }

    /// The end of a dry run: the alerts as a live cycle would have left them, and the
    /// notifications the pipeline would queue for them, planned without committing anything.
    async fn dry_run_notifications(
        &self,
        mut report: CycleReport,
        stored: Vec<Alert>,
        transitions: Vec<Transition>,
        at: Timestamp,
    ) -> Result<CycleReport> {
        let mut after: BTreeMap<String, Alert> = stored
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        for t in &transitions {
            match t.kind {
                TransitionKind::Dropped => {
                    after.remove(&t.alert.fingerprint);
                }
                _ => {
                    after.insert(t.alert.fingerprint.clone(), t.alert.clone());
                }
            }
        }
        let after: Vec<Alert> = after.into_values().collect();
        let resolved_now: std::collections::HashSet<&str> = transitions
            .iter()
            .filter(|t| t.kind != TransitionKind::Dropped)
            .map(|t| t.alert.fingerprint.as_str())
            .collect();
        report.alerts = after
            .iter()
            .filter(|a| a.is_active() || resolved_now.contains(a.fingerprint.as_str()))
            .cloned()
            .collect();
        let state = self.store.load_notify_state().await?;
        let flush = self.pipeline.plan(&after, &state, at);
        report.notices = flush.notices;
        report.notifications = flush.commit.notifications;
        report.transitions = transitions;
        Ok(report)
    }

    fn plan(
        &self,
        inst: &RuleInstance,
        at: Timestamp,
    ) -> std::result::Result<Arc<BTreeMap<String, QuerySpec>>, RuleFailure> {
        if let Some(specs) = inst.specs.get() {
            return Ok(specs.clone());
        }
        let specs = Arc::new(
            self.rule_engine
                .query(&inst.rule, &inst.params_shared, at)?,
        );
        if inst.rule.query_is_pure {
            let _ = inst.specs.set(specs.clone());
        }
        Ok(specs)
    }

    /// Adds the instance's labels and `alertname` to what the rule fired, and applies overrides.
    fn decorate(&self, inst: &RuleInstance, mut c: AlertCandidate) -> AlertCandidate {
        c.labels = self.subject_labels(inst, std::mem::take(&mut c.labels));
        if let Some(sev) = inst.severity {
            if c.severity == inst.rule.meta.severity {
                c.severity = sev;
            }
        }
        if inst.runbook.is_some() && c.runbook == inst.rule.meta.runbook {
            c.runbook = inst.runbook.clone();
        }
        c
    }

    fn subject_labels(&self, inst: &RuleInstance, own: Labels) -> Labels {
        let mut labels = inst.labels.clone();
        labels.extend(own);
        labels.insert("alertname".into(), inst.name.clone());
        labels
    }

    /// Rule-error and source-error alerts: one per failing instance (and per broken rule file);
    /// they resolve when the instance next evaluates cleanly.
    fn meta_transitions(
        &self,
        stored: &[Alert],
        due: &[&RuleInstance],
        mut fired: Vec<AlertCandidate>,
        at: Timestamp,
    ) -> Vec<Transition> {
        for e in &self.load_errors {
            let mut labels = Labels::new();
            labels.insert("alertname".into(), "RuleLoadError".into());
            labels.insert(
                "file".into(),
                e.split(':').next().unwrap_or_default().to_string(),
            );
            fired.push(AlertCandidate {
                labels,
                severity: Severity::Warning,
                summary: format!("rule file failed to load: {e}"),
                runbook: None,
                value: None,
                details: Default::default(),
            });
        }
        let mut out = Vec::new();
        for rule_id in [RULE_ERROR, SOURCE_ERROR] {
            let current: Vec<Alert> = stored
                .iter()
                .filter(|a| a.rule == rule_id)
                .cloned()
                .collect();
            // Instances not evaluated this cycle keep their error alerts as they are.
            let retained = current
                .iter()
                .filter(|a| {
                    a.labels
                        .get("instance")
                        .is_some_and(|i| !due.iter().any(|d| &d.name == i))
                })
                .map(|a| a.labels.clone())
                .collect();
            let reported = Reported {
                fired: fired
                    .iter()
                    .filter(|c| {
                        (c.labels.get("alertname").map(|s| s.as_str())
                            == Some(alertname_of(rule_id)))
                            || (rule_id == RULE_ERROR
                                && c.labels.get("alertname").map(|s| s.as_str())
                                    == Some("RuleLoadError"))
                    })
                    .cloned()
                    .collect(),
                retained,
                retain_all: false,
            };
            out.extend(alert::advance(
                rule_id,
                rule_id,
                &current,
                &reported,
                Timing::default(),
                at,
            ));
        }
        out
    }

    async fn triage(&self, transitions: &mut [Transition], at: Timestamp) {
        let handle = tokio::runtime::Handle::current();
        for t in transitions
            .iter_mut()
            .filter(|t| t.kind == TransitionKind::Firing)
        {
            let Some(inst) = self.instances.iter().find(|i| i.name == t.alert.instance) else {
                continue;
            };
            if !inst.rule.has_triage {
                continue;
            }
            let sources = self.sources.clone();
            let fetch_timeout = self.fetch_timeout;
            let h = handle.clone();
            let runner = Arc::new(move |spec: QuerySpec| -> QueryOutcome {
                let ctx = FetchContext {
                    at,
                    deadline: std::time::Instant::now() + fetch_timeout,
                };
                let key = spec.key.clone();
                let mut m = h.block_on(sources.fetch_all([spec], &ctx));
                m.remove(&key).unwrap_or_else(|| {
                    Err(SourceFailure {
                        source: "triage".into(),
                        message: "no result".into(),
                    })
                })
            });
            // A fleet's alert is triaged with its subject's parameters.
            let params = match inst.fleet.as_deref().and_then(|f| {
                f.subject_of(&t.alert.labels)
                    .map(|s| inst.for_subject(&f.param, &s))
            }) {
                Some(one) => one.params,
                None => inst.params.clone(),
            };
            let ctx = TriageContext::new(params, runner);
            let re = self.rule_engine.clone();
            let rule = inst.rule.clone();
            let alert = t.alert.clone();
            // Triage may block on follow-up queries, so it runs on a blocking thread.
            let result =
                tokio::task::spawn_blocking(move || re.triage(&rule, &alert, ctx, at)).await;
            match result {
                Ok(Ok(map)) => {
                    if let Ok(serde_json::Value::Object(o)) =
                        rhai::serde::from_dynamic::<serde_json::Value>(&rhai::Dynamic::from_map(
                            map,
                        ))
                    {
                        t.alert.details.extend(o);
                    }
                }
                Ok(Err(f)) => {
                    tracing::warn!(instance = %inst.name, "triage failed: {f}");
                    t.alert
                        .details
                        .insert("triage_error".into(), f.message.into());
                }
                Err(e) => tracing::error!("triage task: {e}"),
            }
        }
    }
}

fn alertname_of(rule_id: &str) -> &'static str {
    if rule_id == RULE_ERROR {
        "RuleError"
    } else {
        "SourceError"
    }
}

fn meta_candidate(
    inst: &RuleInstance,
    rule_id: &str,
    severity: Severity,
    summary: String,
    detail: &str,
) -> AlertCandidate {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), alertname_of(rule_id).into());
    labels.insert("instance".into(), inst.name.clone());
    labels.insert("rule".into(), inst.rule.meta.id.clone());
    let mut details = serde_json::Map::new();
    details.insert("error".into(), detail.into());
    AlertCandidate {
        labels,
        severity,
        summary,
        runbook: None,
        value: None,
        details,
    }
}
