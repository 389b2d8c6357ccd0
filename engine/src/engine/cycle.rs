//! One evaluation cycle, as named steps: plan → collect → evaluate → advance → triage → persist,
//! then notify. `Tripline::run_cycle_with` calls them in that order, each a short function over
//! what the step before produced (docs/ARCHITECTURE.md, "One cycle").

use super::fleet::{self, Failure, Unit};
use super::{meta_candidate, CycleMode, CycleReport, RuleInstance, Tripline};
use crate::alert::{
    self, Alert, AlertCandidate, Labels, Reported, Severity, Transition, TransitionKind,
    RULE_ERROR, SOURCE_ERROR,
};
use crate::clock::Timestamp;
use crate::data::{QueryOutcome, QuerySpec, SourceFailure};
use crate::error::Result;
use crate::rule::RuleFailure;
use crate::rule::TriageContext;
use crate::source::FetchContext;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// What happened to one instance's evaluation.
enum Outcome {
    Evaluated(crate::rule::Evaluation),
    RuleFailed(RuleFailure),
    SourceFailed(SourceFailure),
}

type Specs = std::result::Result<Arc<BTreeMap<String, QuerySpec>>, RuleFailure>;

/// The plan step's result: the cycle's units, each unit's specs and the time planning it took.
struct Plan<'a> {
    units: Vec<Unit<'a>>,
    specs: Vec<Specs>,
    spent: Vec<Duration>,
}

impl Tripline {
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
        let plan = self.plan(&due, &stored, &ctx).await;
        let fetched = self.collect(&plan, &ctx).await;
        report.queries = fetched.len();
        let outcomes = self.evaluate(plan, &fetched, at, &mut report);
        let (units, outcomes): (Vec<_>, Vec<_>) = outcomes.into_iter().unzip();
        let mut transitions = self.advance(&due, &units, outcomes, &stored, at, &mut report);
        self.triage(&mut transitions, at).await;
        if mode == CycleMode::DryRun {
            return self
                .dry_run_notifications(report, stored, transitions, at)
                .await;
        }
        report.alerts = self.persist(stored, &transitions, at).await?;
        self.notify_into(&mut report, at).await?;
        report.transitions = transitions;
        Ok(report)
    }

    /// Plan: the units (each plain instance as it is, each fleet instance once per subject) and
    /// each unit's query specs.
    async fn plan<'a>(
        &self,
        due: &[&'a RuleInstance],
        stored: &[Alert],
        ctx: &FetchContext,
    ) -> Plan<'a> {
        let units = fleet::units(&self.rule_engine, &self.sources, due, stored, ctx).await;
        let mut specs = Vec::with_capacity(units.len());
        let mut spent = Vec::with_capacity(units.len());
        for u in &units {
            let started = std::time::Instant::now();
            specs.push(match u.failed {
                Some(_) => Ok(Arc::default()),
                None => self.plan_instance(&u.inst, ctx.at),
            });
            spent.push(started.elapsed());
        }
        Plan {
            units,
            specs,
            spent,
        }
    }

    /// Collect: every distinct spec once, from the source of its kind.
    async fn collect(&self, plan: &Plan<'_>, ctx: &FetchContext) -> HashMap<String, QueryOutcome> {
        let mut distinct: HashMap<&str, &QuerySpec> = HashMap::new();
        for specs in plan.specs.iter().filter_map(|p| p.as_ref().ok()) {
            for s in specs.values() {
                distinct.entry(s.key.as_str()).or_insert(s);
            }
        }
        self.sources
            .fetch_all(distinct.into_values().cloned().collect::<Vec<_>>(), ctx)
            .await
    }

    /// Evaluate: each unit's rule over its data, when all of its queries succeeded.
    fn evaluate<'a>(
        &self,
        plan: Plan<'a>,
        fetched: &HashMap<String, QueryOutcome>,
        at: Timestamp,
        report: &mut CycleReport,
    ) -> Vec<(Unit<'a>, Outcome)> {
        let mut outcomes = Vec::with_capacity(plan.units.len());
        for ((u, specs), spent) in plan.units.into_iter().zip(plan.specs).zip(plan.spent) {
            let started = std::time::Instant::now();
            let outcome = self.evaluate_unit(&u, specs, fetched, at);
            report
                .eval_durations
                .push((u.inst.name.clone(), spent + started.elapsed()));
            outcomes.push((u, outcome));
        }
        outcomes
    }

    fn evaluate_unit(
        &self,
        u: &Unit<'_>,
        specs: Specs,
        fetched: &HashMap<String, QueryOutcome>,
        at: Timestamp,
    ) -> Outcome {
        let inst = &u.inst;
        match (&u.failed, specs) {
            (Some(Failure::Rule(f)), _) => Outcome::RuleFailed(f.clone()),
            (Some(Failure::Source(f)), _) => Outcome::SourceFailed(f.clone()),
            (None, Err(f)) => Outcome::RuleFailed(f),
            (None, Ok(specs)) => {
                let data: Vec<(&str, &QueryOutcome)> = specs
                    .iter()
                    .map(|(name, s)| (name.as_str(), &fetched[&s.key]))
                    .collect();
                match data.iter().find_map(|(_, o)| o.as_ref().err()) {
                    Some(f) => Outcome::SourceFailed(f.clone()),
                    None => match self.evaluate_rule(inst, u.subject.as_deref(), &data, at) {
                        Ok(e) => Outcome::Evaluated(e),
                        Err(f) => Outcome::RuleFailed(f),
                    },
                }
            }
        }
    }

    /// One unit's `evaluate`, through the backtest memo when there is one.
    fn evaluate_rule(
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

    /// Advance: one state step per instance over what all its units reported, then the
    /// meta-alerts (rule and source errors) the failures raise.
    fn advance(
        &self,
        due: &[&RuleInstance],
        units: &[Unit<'_>],
        outcomes: Vec<Outcome>,
        stored: &[Alert],
        at: Timestamp,
        report: &mut CycleReport,
    ) -> Vec<Transition> {
        let mut by_instance: HashMap<&str, Vec<Alert>> = HashMap::new();
        for a in stored {
            by_instance
                .entry(a.instance.as_str())
                .or_default()
                .push(a.clone());
        }
        let current_of = |inst: &RuleInstance| {
            by_instance
                .get(inst.name.as_str())
                .map(|v| v.as_slice())
                .unwrap_or(&[])
        };
        let mut reports: Vec<Reported> = vec![Reported::default(); due.len()];
        let mut meta_fired: Vec<AlertCandidate> = Vec::new();
        for (u, outcome) in units.iter().zip(outcomes) {
            let inst = due[u.parent];
            let into = &mut reports[u.parent];
            if let Some(c) = self.report_unit(inst, u, outcome, current_of(inst), into, report) {
                meta_fired.push(c);
            }
        }
        let mut transitions = Vec::new();
        for (inst, reported) in due.iter().zip(&reports) {
            transitions.extend(alert::advance(
                &inst.rule.meta.id,
                &inst.name,
                current_of(inst),
                reported,
                inst.timing,
                at,
            ));
        }
        transitions.extend(self.meta_transitions(stored, due, meta_fired, at));
        transitions
    }

    /// What one unit reports into its instance's state step; the meta-alert its failure raises.
    fn report_unit(
        &self,
        inst: &RuleInstance,
        u: &Unit<'_>,
        outcome: Outcome,
        current: &[Alert],
        into: &mut Reported,
        report: &mut CycleReport,
    ) -> Option<AlertCandidate> {
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
        let mut c = match outcome {
            Outcome::Evaluated(mut e) => {
                if let (Some(s), Some(fleet)) = (&u.subject, &inst.fleet) {
                    let labels = e.fired.iter_mut().map(|c| &mut c.labels);
                    for l in labels.chain(e.retained.iter_mut()) {
                        fleet::name_subject(l, &fleet.param, s);
                    }
                }
                into.fired
                    .extend(e.fired.into_iter().map(|c| self.decorate(inst, c)));
                into.retained
                    .extend(e.retained.into_iter().map(|l| self.subject_labels(inst, l)));
                into.retain_all |= e.retain_all;
                return None;
            }
            Outcome::RuleFailed(f) => {
                tracing::warn!(instance = %inst.name, subject = ?u.subject, "rule failed: {f}");
                let c = meta_candidate(
                    inst,
                    RULE_ERROR,
                    Severity::Warning,
                    format!("rule {}{on} ({}) {f}", inst.name, inst.rule.meta.id),
                    &f.message,
                );
                report.rule_failures.push((inst.name.clone(), f));
                c
            }
            Outcome::SourceFailed(f) => {
                tracing::warn!(instance = %inst.name, subject = ?u.subject, "source failed: {f}");
                let c = meta_candidate(
                    inst,
                    SOURCE_ERROR,
                    Severity::Warning,
                    format!("rule {}{on} cannot fetch its data: {f}", inst.name),
                    &f.message,
                );
                report.source_failures.push((inst.name.clone(), f));
                c
            }
        };
        if let Some(s) = &u.subject {
            c.labels.insert("subject".into(), s.clone());
        }
        failed(into);
        Some(c)
    }

    /// Persist: the changed alerts in one write, resolved ones past retention pruned. Returns
    /// the alerts as they stand now.
    async fn persist(
        &self,
        stored: Vec<Alert>,
        transitions: &[Transition],
        at: Timestamp,
    ) -> Result<Vec<Alert>> {
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
        self.store.save_alerts(&changed, &deleted).await?;
        self.store.prune_resolved(at - self.retention).await?;
        let mut now: BTreeMap<String, Alert> = stored
            .into_iter()
            .filter(|a| a.is_active())
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        for t in transitions {
            match t.kind {
                TransitionKind::Dropped => {
                    now.remove(&t.alert.fingerprint);
                }
                _ => {
                    now.insert(t.alert.fingerprint.clone(), t.alert.clone());
                }
            }
        }
        Ok(now.into_values().collect())
    }

    /// Notify: silence → inhibit → route → group → escalate → dedup → outbox, then one delivery
    /// pass (what is not delivered now stays in the outbox for the next pass or process).
    async fn notify_into(&self, report: &mut CycleReport, at: Timestamp) -> Result<()> {
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
        Ok(())
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

    /// One unit's query specs (cached when the rule's query does not use time).
    pub(super) fn plan_instance(
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
