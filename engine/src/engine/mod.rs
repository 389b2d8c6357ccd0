//! The engine: rule instances, sources, store, clock and receivers, and one evaluation cycle
//! through them — plan → collect → evaluate → state → triage → notify.
//!
//! The library is the product: a host program builds a `Tripline` from a config file or
//! programmatically, pushes data it already has, runs a cycle at an instant it chooses and gets
//! notifications through a `Notifier` it implements.

mod builder;
mod cycle;
pub mod fleet;
mod ingest;
pub use ingest::Ingested;
mod instance;
mod meta;

pub use builder::TriplineBuilder;
pub use instance::{resolve_params, InstanceSpec, RuleInstance};
use meta::meta_candidate;

use crate::alert::{Alert, Transition};
use crate::clock::{Clock, Timestamp};
use crate::data::{QueryData, SourceFailure};
use crate::error::Result;
use crate::notify::outbox::{DeliveryReport, Outbox, RetryPolicy};
use crate::notify::{Notification, Notifier};
use crate::pipeline::{Flush, Pipeline};
use crate::rule::{QuerySpec, RuleEngine, RuleFailure, RuleSet};
use crate::source::{PushedSource, Sources};
use crate::store::{SqliteStore, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
    pub notifications: Vec<Arc<Notification>>,
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
    pub fn absorb_delivery(&mut self, queued: Vec<Arc<Notification>>, more: &DeliveryReport) {
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
    /// Stands between the cycle and `evaluate`: a backtest's twin reuses evaluations whose
    /// input did not change (`backtest::memo`).
    eval_memo: Option<Arc<dyn EvaluateHook>>,
}

/// What a cycle calls to evaluate a rule instance's data, when set (the engine owns the trait,
/// so that the backtest above it can plug its memo in without the engine knowing it).
pub(crate) trait EvaluateHook: Send + Sync {
    fn evaluate(
        &self,
        rules: &crate::rule::RuleEngine,
        inst: &RuleInstance,
        subject: Option<&str>,
        data: &[(&str, &crate::data::QueryOutcome)],
        at: crate::clock::Timestamp,
    ) -> std::result::Result<crate::rule::Evaluation, crate::rule::RuleFailure>;
}

impl std::fmt::Debug for Tripline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tripline")
            .field("instances", &self.instances.len())
            .field("sources", &self.sources)
            .finish()
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
    pub(crate) fn memoize_evaluations(&mut self, memo: Arc<dyn EvaluateHook>) {
        self.eval_memo = Some(memo);
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
        self.plan_instance(inst, at)
    }
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
    ) -> Result<(Vec<Arc<Notification>>, DeliveryReport)> {
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
}
