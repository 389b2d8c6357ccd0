//! Backtests: would this rule have paged us last week, and what would another threshold change?
//!
//! `Tripline::backtest` replays the selected rule instances at every instant their schedules
//! would have run in a range, through the engine's own cycle (`run_cycle_at`: plan → collect →
//! evaluate → state → notify) on a throw-away twin of the engine: an in-memory store, receivers
//! that accept and drop every notification, and sources wrapped in `history::HistorySource`,
//! which fetches each query once over the whole range and answers every instant from that data.
//! Nothing here re-implements rule semantics: `for`, `keep_firing_for`, missing data, severity
//! ladders and fleet globs are whatever the engine does. What a backtest adds is bookkeeping —
//! firing intervals per subject, notifications per receiver — and the comparison of two runs
//! (`diff`). Rendering for people is in `report`.

pub mod history;
pub mod memo;
pub mod report;

use crate::alert::{Labels, Severity, TransitionKind};
use crate::clock::{ManualClock, Timestamp};
use crate::engine::RuleInstance;
use crate::error::{Error, Result};
use crate::notify::{Notification, NotificationStatus, Notifier, NotifyError};
use crate::rule::QuerySpec;
use crate::source::{FetchContext, HistorySupport, Sources};
use crate::Tripline;
use async_trait::async_trait;
use history::HistorySource;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A list of evaluation instants, increasing, shared by the instances and specs that use it.
type Instants = Arc<Vec<Timestamp>>;

/// Evaluation instants × instances a backtest will replay at most: 30 days at one evaluation a
/// minute for 2,000 instances (86.4 M). The bookkeeping no longer grows with it (instances on
/// one schedule share its list of instants); the time does, about linearly.
pub const MAX_EVALUATIONS: usize = 100_000_000;

/// The replayed range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacktestRange {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// One `--set instance.key=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub instance: String,
    pub key: String,
    pub value: serde_json::Value,
}

impl Setting {
    /// Parses `instance.key=value`; the value is JSON when it parses as JSON (`12`, `true`,
    /// `"x"`), a string otherwise (`10m`, `prd2011-*`).
    pub fn parse(s: &str) -> std::result::Result<Setting, String> {
        let (lhs, value) = s
            .split_once('=')
            .ok_or_else(|| format!("--set {s:?}: expected instance.key=value"))?;
        let (instance, key) = lhs
            .rsplit_once('.')
            .filter(|(i, k)| !i.is_empty() && !k.is_empty())
            .ok_or_else(|| format!("--set {s:?}: expected instance.key=value"))?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        Ok(Setting {
            instance: instance.to_string(),
            key: key.to_string(),
            value,
        })
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}={}", self.instance, self.key, self.value)
    }
}

/// How far a backtest has got, for a progress bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub instants_done: usize,
    pub instants_total: usize,
    /// Source API requests made so far (prefetch included).
    pub requests: u64,
    /// Still fetching history (before the first instant).
    pub fetching: bool,
}

pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

#[derive(Clone, Default)]
pub struct BacktestOptions {
    /// Instance names or rule ids to replay; all instances when empty.
    pub rules: Vec<String>,
    pub settings: Vec<Setting>,
    /// The present, for CloudWatch retention (default: the wall clock).
    pub now: Option<Timestamp>,
    pub progress: Option<ProgressFn>,
    /// Replay with the plain engine cycle only, no evaluation memo (`memo`): the reference the
    /// memo is tested against. The report is the same either way, only slower.
    pub reference: bool,
}

/// A firing interval of one subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// When it started pending (equal to `start` without `for`).
    pub pending_since: Timestamp,
    pub start: Timestamp,
    /// When it resolved; `None`: still firing at the end of the range.
    pub end: Option<Timestamp>,
    pub duration_secs: i64,
    /// The highest value the rule reported while it fired.
    pub peak: Option<f64>,
    /// The worst severity it reached.
    pub severity: Severity,
}

/// A pending span that never became firing, or the pending part before a firing interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectReport {
    pub labels: Labels,
    pub intervals: Vec<Interval>,
    /// Pending spans, including those that went away before `for` elapsed.
    pub pending: Vec<Span>,
    pub firing_secs: i64,
}

impl SubjectReport {
    /// The labels that tell subjects apart, for people: `function=f1` (alertname left out).
    pub fn subject(&self) -> String {
        subject_text(&self.labels)
    }
}

pub fn subject_text(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if parts.is_empty() {
        "(no labels)".into()
    } else {
        parts.join(",")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    pub name: String,
    pub rule: String,
    pub evaluations: usize,
    /// Numeric parameters named like thresholds, drawn on the charts.
    pub thresholds: Vec<(String, f64)>,
    pub subjects: Vec<SubjectReport>,
    pub rule_failures: usize,
    pub source_failures: usize,
    pub first_failure: Option<String>,
    /// Why the instance was not replayed.
    pub skipped: Option<String>,
}

impl InstanceReport {
    pub fn intervals(&self) -> usize {
        self.subjects.iter().map(|s| s.intervals.len()).sum()
    }
    pub fn firing_secs(&self) -> i64 {
        self.subjects.iter().map(|s| s.firing_secs).sum()
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ReceiverCount {
    pub firing: usize,
    pub resolved: usize,
    pub other: usize,
}

impl ReceiverCount {
    pub fn total(&self) -> usize {
        self.firing + self.resolved + self.other
    }
}

/// A series over the whole range, for charts.
#[derive(Debug, Clone, Serialize)]
pub struct ChartSeries {
    pub instance: String,
    /// The rule's name for the query (`errors`).
    pub query: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(Timestamp, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacktestReport {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Distinct evaluation instants.
    pub instants: usize,
    /// Instance evaluations (instants × instances due at them).
    pub evaluations: usize,
    /// Source API requests by query kind.
    pub requests: BTreeMap<String, u64>,
    pub notes: Vec<String>,
    pub settings: Vec<String>,
    pub instances: Vec<InstanceReport>,
    /// Notifications the pipeline would have sent, per receiver.
    pub notifications: BTreeMap<String, ReceiverCount>,
    #[serde(skip)]
    pub series: Vec<ChartSeries>,
    pub elapsed_secs: f64,
    /// Evaluations answered by the memo instead of the script (0 with `reference`).
    #[serde(skip)]
    pub reused_evaluations: u64,
}

impl BacktestReport {
    pub fn intervals(&self) -> usize {
        self.instances.iter().map(|i| i.intervals()).sum()
    }
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// A receiver that accepts and drops everything: the pipeline runs, nobody is told.
struct DryRun {
    name: String,
}

#[async_trait]
impl Notifier for DryRun {
    fn name(&self) -> &str {
        &self.name
    }
    async fn notify(&self, _n: &Notification) -> std::result::Result<(), NotifyError> {
        Ok(())
    }
}

/// Per-fingerprint bookkeeping while replaying.
#[derive(Default)]
struct Track {
    instance: String,
    labels: Labels,
    pending_since: Option<Timestamp>,
    open: Option<Interval>,
    intervals: Vec<Interval>,
    pending: Vec<Span>,
}

fn numeric_thresholds(params: &rhai::Map) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = params
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k == "threshold" || k.ends_with("_threshold") || k == "warning" || k == "critical"
        })
        .filter_map(|(k, v)| {
            let f = v
                .as_float()
                .ok()
                .or_else(|| v.as_int().ok().map(|i| i as f64))?;
            Some((k.to_string(), f))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

impl Tripline {
    /// Replays the selected instances over `range` on a throw-away twin of this engine (see the
    /// module docs). Nothing is sent and this engine's store is only read (for silences).
    pub async fn backtest(
        &self,
        range: BacktestRange,
        opts: BacktestOptions,
    ) -> Result<BacktestReport> {
        let started = std::time::Instant::now();
        if range.to <= range.from {
            return Err(Error::Config(format!(
                "backtest range: --to ({}) must be after --from ({})",
                range.to.to_rfc3339(),
                range.from.to_rfc3339()
            )));
        }
        let now = opts.now.unwrap_or_else(chrono::Utc::now);
        let selected = |i: &RuleInstance| {
            opts.rules.is_empty()
                || opts
                    .rules
                    .iter()
                    .any(|r| r == &i.name || r == &i.rule.meta.id)
        };
        for r in &opts.rules {
            if !self
                .instances()
                .iter()
                .any(|i| r == &i.name || r == &i.rule.meta.id)
            {
                return Err(Error::Config(format!(
                    "--rule {r:?}: no rule instance or rule id of that name"
                )));
            }
        }
        let mut insts: Vec<RuleInstance> = self
            .instances()
            .iter()
            .filter(|i| selected(i))
            .cloned()
            .collect();
        for s in &opts.settings {
            let Some(i) = insts.iter_mut().find(|i| i.name == s.instance) else {
                return Err(Error::Config(format!(
                    "--set {s}: no selected rule instance named {:?}",
                    s.instance
                )));
            };
            *i = i
                .with_setting(&s.key, s.value.clone())
                .map_err(|m| Error::Config(format!("--set {s}: {m}")))?;
        }

        // Every instant each instance's schedule would have run at.
        // Instances sharing a schedule share its instants (computed once per distinct schedule).
        let mut per_instance: Vec<Arc<Vec<Timestamp>>> = Vec::with_capacity(insts.len());
        let mut by_schedule: HashMap<String, Arc<Vec<Timestamp>>> = HashMap::new();
        let mut total = 0usize;
        let too_many = || {
            Error::Config(format!(
                "the backtest would run more than {MAX_EVALUATIONS} evaluations: \
                 shorten the range or select fewer rules"
            ))
        };
        for i in &insts {
            let key = i.schedule.to_string();
            let v = match by_schedule.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let mut v = Vec::new();
                    for t in i
                        .schedule
                        .after(&(range.from - chrono::Duration::seconds(1)))
                    {
                        if t > range.to {
                            break;
                        }
                        v.push(t);
                        if total + v.len() > MAX_EVALUATIONS {
                            return Err(too_many());
                        }
                    }
                    let v = Arc::new(v);
                    by_schedule.insert(key, v.clone());
                    v
                }
            };
            total += v.len();
            if total > MAX_EVALUATIONS {
                return Err(too_many());
            }
            per_instance.push(v);
        }

        // Sources, wrapped; the instances needing a source without history are skipped.
        let mut sources = Sources::default();
        let mut wrapped: Vec<(String, Arc<HistorySource>)> = Vec::new();
        for kind in self.sources().kinds() {
            if let Some(s) = self.sources().get(kind) {
                let h = Arc::new(HistorySource::new(kind, s.clone()));
                sources.insert(kind, h.clone());
                wrapped.push((kind.to_string(), h));
            }
        }
        wrapped.sort_by(|a, b| a.0.cmp(&b.0));
        let support = |kind: &str| {
            wrapped
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, h)| h.support())
        };
        let mut skipped: Vec<Option<String>> = vec![None; insts.len()];
        // Per spec, the lists of instants it is asked at: an instance whose `query` cannot see
        // the instant plans the same specs at every instant (`plan_at` is then computed once and
        // cached), so it hands over its schedule's shared list instead of a copy per spec.
        let mut asked: HashMap<String, (QuerySpec, Vec<Instants>)> = HashMap::new();
        let mut query_names: Vec<Vec<(String, String)>> = vec![vec![]; insts.len()];
        let mut notes = Vec::new();
        for (n, inst) in insts.iter().enumerate() {
            let mut first = true;
            let pure = inst.rule.query_is_pure;
            let mut own: HashMap<String, Vec<Timestamp>> = HashMap::new();
            for t in per_instance[n].iter() {
                let Ok(specs) = self.plan_at(inst, *t) else {
                    if pure {
                        // The same failure at every instant: nothing is asked.
                        break;
                    }
                    continue;
                };
                if first {
                    first = false;
                    query_names[n] = specs
                        .iter()
                        .map(|(q, s)| (q.clone(), s.key.clone()))
                        .collect();
                    if let Some(s) = specs
                        .values()
                        .find(|s| support(&s.kind) == Some(HistorySupport::None))
                    {
                        let why = format!(
                            "its {} source keeps no history (only the present can be queried)",
                            s.kind
                        );
                        notes.push(format!("{}: not replayed: {why}", inst.name));
                        skipped[n] = Some(why);
                        break;
                    }
                }
                if pure {
                    for s in specs.values() {
                        asked
                            .entry(s.key.clone())
                            .or_insert_with(|| (s.clone(), vec![]))
                            .1
                            .push(per_instance[n].clone());
                    }
                    break;
                }
                for s in specs.values() {
                    asked
                        .entry(s.key.clone())
                        .or_insert_with(|| (s.clone(), vec![]));
                    own.entry(s.key.clone()).or_default().push(*t);
                }
            }
            for (key, ts) in own {
                if let Some(a) = asked.get_mut(&key) {
                    a.1.push(Arc::new(ts));
                }
            }
        }

        let report_progress = |p: Progress| {
            if let Some(f) = &opts.progress {
                f(&p);
            }
        };
        let requests_now = || wrapped.iter().map(|(_, h)| h.requests()).sum::<u64>();
        let base_requests: Vec<u64> = wrapped.iter().map(|(_, h)| h.requests()).collect();
        // The instances due at each instant, by schedule: (instants, the instances on them).
        let mut schedules: Vec<(Arc<Vec<Timestamp>>, Vec<usize>)> = Vec::new();
        for (n, ts) in per_instance.iter().enumerate() {
            if skipped[n].is_some() {
                continue;
            }
            match schedules.iter_mut().find(|(s, _)| Arc::ptr_eq(s, ts)) {
                Some((_, members)) => members.push(n),
                None => schedules.push((ts.clone(), vec![n])),
            }
        }
        let mut instants: BTreeMap<Timestamp, Vec<u32>> = BTreeMap::new();
        for (g, (ts, _)) in schedules.iter().enumerate() {
            for t in ts.iter() {
                instants.entry(*t).or_default().push(g as u32);
            }
        }
        report_progress(Progress {
            instants_total: instants.len(),
            fetching: true,
            ..Default::default()
        });

        // Fetch the history: one prefetch per source, all at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        let mut by_kind: BTreeMap<String, Vec<(QuerySpec, Instants)>> = BTreeMap::new();
        for (spec, mut lists) in asked.into_values() {
            let ts = if lists.len() == 1 {
                // One schedule's instants (or one instance's): increasing already.
                lists.pop().unwrap_or_default()
            } else {
                let mut ts: Vec<Timestamp> = lists.iter().flat_map(|l| l.iter().copied()).collect();
                ts.sort();
                ts.dedup();
                Arc::new(ts)
            };
            by_kind
                .entry(spec.kind.clone())
                .or_default()
                .push((spec, ts));
        }
        let mut chart_ranges: Vec<(QuerySpec, Arc<Vec<Timestamp>>)> = Vec::new();
        let fetches = wrapped.iter().map(|(kind, h)| {
            let specs = by_kind.get(kind.as_str()).cloned().unwrap_or_default();
            async move { h.prefetch(&specs, now, deadline).await }
        });
        futures::future::join_all(fetches).await;
        for (kind, h) in &wrapped {
            if h.support() == HistorySupport::AnyInstant {
                chart_ranges.extend(by_kind.get(kind.as_str()).cloned().unwrap_or_default());
            }
            notes.extend(h.notes());
        }

        // The twin.
        let clock = Arc::new(ManualClock::new(range.from));
        let notifiers: Vec<Arc<dyn Notifier>> = self
            .notifiers()
            .iter()
            .map(|n| {
                Arc::new(DryRun {
                    name: n.name().to_string(),
                }) as Arc<dyn Notifier>
            })
            .collect();
        let names: Vec<String> = insts.iter().map(|i| i.name.clone()).collect();
        let mut twin = self.replica(insts.clone(), sources, notifiers, clock.clone())?;
        let memo = Arc::new(memo::EvalMemo::default());
        if !opts.reference {
            twin.memoize_evaluations(memo.clone());
        }
        match self.store().list_silences().await {
            Ok(silences) => {
                for s in &silences {
                    twin.store().add_silence(s).await?;
                }
            }
            Err(e) => notes.push(format!("silences could not be read from the store: {e}")),
        }

        // Replay.
        let mut tracks: BTreeMap<String, Track> = BTreeMap::new();
        let mut evaluations = vec![0usize; insts.len()];
        let mut failures: Vec<(usize, usize, Option<String>)> = vec![(0, 0, None); insts.len()];
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut notifications: BTreeMap<String, ReceiverCount> = self
            .notifiers()
            .iter()
            .map(|n| (n.name().to_string(), ReceiverCount::default()))
            .collect();
        let replayed = names.len() - skipped.iter().filter(|s| s.is_some()).count();
        let total_instants = instants.len();
        let every = (total_instants / 200).max(1);
        let mut total_evaluations = 0usize;
        let mut due: Vec<usize> = Vec::new();
        for (k, (t, groups)) in instants.iter().enumerate() {
            due.clear();
            for g in groups {
                due.extend_from_slice(&schedules[*g as usize].1);
            }
            if groups.len() > 1 {
                due.sort_unstable();
            }
            let due = &due;
            clock.set(*t);
            let only: Vec<String>;
            let cycle = if due.len() == names.len() && replayed == names.len() {
                twin.run_cycle_at(*t, None).await?
            } else {
                only = due.iter().map(|n| names[*n].clone()).collect();
                twin.run_cycle_at(*t, Some(&only)).await?
            };
            total_evaluations += due.len();
            for n in due {
                evaluations[*n] += 1;
            }
            for (inst, f) in &cycle.rule_failures {
                if let Some(i) = index.get(inst.as_str()) {
                    failures[*i].0 += 1;
                    failures[*i].2.get_or_insert_with(|| f.to_string());
                }
            }
            for (inst, f) in &cycle.source_failures {
                if let Some(i) = index.get(inst.as_str()) {
                    failures[*i].1 += 1;
                    failures[*i].2.get_or_insert_with(|| f.to_string());
                }
            }
            for tr in &cycle.transitions {
                let a = &tr.alert;
                let track = tracks
                    .entry(a.fingerprint.clone())
                    .or_insert_with(|| Track {
                        instance: a.instance.clone(),
                        labels: a.labels.clone(),
                        ..Default::default()
                    });
                match &tr.kind {
                    TransitionKind::Pending => {
                        track.pending_since = Some(a.active_since);
                    }
                    TransitionKind::Firing => {
                        let since = track.pending_since.take().unwrap_or(*t);
                        if since < *t {
                            track.pending.push(Span {
                                start: since,
                                end: *t,
                            });
                        }
                        track.open = Some(Interval {
                            pending_since: since,
                            start: *t,
                            end: None,
                            duration_secs: 0,
                            peak: a.value,
                            severity: a.severity,
                        });
                    }
                    TransitionKind::SeverityChanged { .. } | TransitionKind::Updated => {}
                    TransitionKind::Resolved => {
                        if let Some(mut i) = track.open.take() {
                            i.end = Some(*t);
                            i.duration_secs = (*t - i.start).num_seconds();
                            track.intervals.push(i);
                        }
                    }
                    TransitionKind::Dropped => {
                        if let Some(since) = track.pending_since.take() {
                            track.pending.push(Span {
                                start: since,
                                end: *t,
                            });
                        }
                    }
                }
            }
            for a in cycle.alerts.iter().filter(|a| a.is_active()) {
                if let Some(i) = tracks.get_mut(&a.fingerprint).and_then(|t| t.open.as_mut()) {
                    i.severity = i.severity.max(a.severity);
                    if let Some(v) = a.value {
                        i.peak = Some(i.peak.map_or(v, |p| p.max(v)));
                    }
                }
            }
            for n in &cycle.notifications {
                let c = notifications.entry(n.receiver.clone()).or_default();
                match n.status {
                    NotificationStatus::Firing => c.firing += 1,
                    NotificationStatus::Resolved => c.resolved += 1,
                    NotificationStatus::Acknowledged => c.other += 1,
                }
            }
            if k % every == 0 || k + 1 == total_instants {
                report_progress(Progress {
                    instants_done: k + 1,
                    instants_total: total_instants,
                    requests: requests_now(),
                    fetching: false,
                });
            }
        }

        // Close what is still open at the end of the range.
        let mut subjects: BTreeMap<String, Vec<SubjectReport>> = BTreeMap::new();
        for (_, mut tr) in tracks {
            if let Some(mut i) = tr.open.take() {
                i.duration_secs = (range.to - i.start).num_seconds();
                tr.intervals.push(i);
            }
            if let Some(since) = tr.pending_since.take() {
                tr.pending.push(Span {
                    start: since,
                    end: range.to,
                });
            }
            if tr.intervals.is_empty() && tr.pending.is_empty() {
                continue;
            }
            let firing_secs = tr.intervals.iter().map(|i| i.duration_secs).sum();
            subjects
                .entry(tr.instance)
                .or_default()
                .push(SubjectReport {
                    labels: tr.labels,
                    intervals: tr.intervals,
                    pending: tr.pending,
                    firing_secs,
                });
        }
        let mut instance_reports = Vec::new();
        for (n, inst) in insts.iter().enumerate() {
            let mut subs = subjects.remove(&inst.name).unwrap_or_default();
            subs.sort_by_key(|a| a.subject());
            instance_reports.push(InstanceReport {
                name: inst.name.clone(),
                rule: inst.rule.meta.id.clone(),
                evaluations: evaluations[n],
                thresholds: numeric_thresholds(&inst.params),
                subjects: subs,
                rule_failures: failures[n].0,
                source_failures: failures[n].1,
                first_failure: failures[n].2.clone(),
                skipped: skipped[n].clone(),
            });
        }
        // Tripline's own alerts about the replayed rules (rule errors, source errors).
        for (name, mut subs) in subjects {
            subs.sort_by_key(|a| a.subject());
            instance_reports.push(InstanceReport {
                rule: name.clone(),
                name,
                evaluations: 0,
                thresholds: vec![],
                subjects: subs,
                rule_failures: 0,
                source_failures: 0,
                first_failure: None,
                skipped: None,
            });
        }

        // Charts: the series over the whole range.
        let mut series = Vec::new();
        let mut by_key: HashMap<String, Vec<crate::data::Series>> = HashMap::new();
        for (_, h) in &wrapped {
            by_key.extend(h.range_series());
        }
        for (spec, ts) in chart_ranges {
            if let Some(s) = fixture_range(self.sources(), &spec, &ts).await {
                by_key.insert(spec.key.clone(), s);
            }
        }
        for (n, inst) in insts.iter().enumerate() {
            for (q, key) in &query_names[n] {
                for s in by_key.get(key).into_iter().flatten() {
                    series.push(ChartSeries {
                        instance: inst.name.clone(),
                        query: q.clone(),
                        name: s.name.clone(),
                        labels: s.labels.clone(),
                        points: s.points.iter().map(|p| (p.ts, p.value)).collect(),
                    });
                }
            }
        }

        let requests = wrapped
            .iter()
            .zip(base_requests)
            .map(|((k, h), base)| (k.clone(), h.requests().saturating_sub(base)))
            .collect();
        Ok(BacktestReport {
            from: range.from,
            to: range.to,
            instants: total_instants,
            evaluations: total_evaluations,
            requests,
            notes,
            settings: opts.settings.iter().map(|s| s.to_string()).collect(),
            instances: instance_reports,
            notifications,
            series,
            elapsed_secs: started.elapsed().as_secs_f64(),
            reused_evaluations: memo.counts().0,
        })
    }
}

/// For charts of fixture-backed queries: the spec asked once over the union of its windows.
async fn fixture_range(
    sources: &Sources,
    spec: &QuerySpec,
    ts: &[Timestamp],
) -> Option<Vec<crate::data::Series>> {
    let src = sources.get(&spec.kind)?;
    let windows: Vec<crate::source::Window> = ts
        .iter()
        .filter_map(|t| crate::source::Window::of(spec, *t).ok())
        .collect();
    let start = windows.iter().map(|w| w.start).min()?;
    let end = windows.iter().map(|w| w.end).max()?;
    let period = windows.first()?.period_secs;
    let mut p = spec.params.as_object().cloned().unwrap_or_default();
    p.remove("offset");
    p.insert(
        "range".into(),
        format!("{}s", (end - start).num_seconds()).into(),
    );
    p.insert("period".into(), format!("{period}s").into());
    let r = QuerySpec::new(spec.kind.clone(), serde_json::Value::Object(p));
    let ctx = FetchContext {
        at: end,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(30),
    };
    match src.fetch(std::slice::from_ref(&r), &ctx).await.pop()? {
        Ok(crate::data::QueryData::Series(s)) => Some(vec![s]),
        Ok(crate::data::QueryData::SeriesSet(s)) => Some(s),
        _ => None,
    }
}

/// How one subject's intervals differ between two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Same,
    Changed,
    /// Only in the first run.
    Removed,
    /// Only in the second run.
    Added,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffEntry {
    pub instance: String,
    pub subject: String,
    pub change: Change,
    pub a: Option<Interval>,
    pub b: Option<Interval>,
}

fn overlaps(a: &Interval, b: &Interval, to: Timestamp) -> bool {
    a.start <= b.end.unwrap_or(to) && b.start <= a.end.unwrap_or(to)
}

/// Intervals only the second run has, as `Added` entries.
fn push_added(out: &mut Vec<DiffEntry>, inst: &str, subj: &str, only_b: Vec<Interval>) {
    out.extend(only_b.into_iter().map(|y| DiffEntry {
        instance: inst.to_string(),
        subject: subj.to_string(),
        change: Change::Added,
        a: None,
        b: Some(y),
    }));
}

/// The two runs compared interval by interval, per instance and subject: an interval of one
/// run is matched with the first overlapping interval of the other.
pub fn diff(a: &BacktestReport, b: &BacktestReport) -> Vec<DiffEntry> {
    let collect = |r: &BacktestReport| {
        let mut m: BTreeMap<(String, String), Vec<Interval>> = BTreeMap::new();
        for i in &r.instances {
            for s in &i.subjects {
                m.entry((i.name.clone(), s.subject()))
                    .or_default()
                    .extend(s.intervals.iter().cloned());
            }
        }
        m
    };
    let (ma, mut mb) = (collect(a), collect(b));
    let to = a.to.max(b.to);
    let mut out = Vec::new();
    for ((inst, subj), ia) in ma {
        let mut ib = mb.remove(&(inst.clone(), subj.clone())).unwrap_or_default();
        for x in ia {
            let entry = |change, b| DiffEntry {
                instance: inst.clone(),
                subject: subj.clone(),
                change,
                a: Some(x.clone()),
                b,
            };
            match ib.iter().position(|y| overlaps(&x, y, to)) {
                Some(p) => {
                    let y = ib.remove(p);
                    let same = y.start == x.start && y.end == x.end;
                    out.push(entry(
                        if same { Change::Same } else { Change::Changed },
                        Some(y),
                    ));
                }
                None => out.push(entry(Change::Removed, None)),
            }
        }
        push_added(&mut out, &inst, &subj, ib);
    }
    for ((inst, subj), ib) in mb {
        push_added(&mut out, &inst, &subj, ib);
    }
    let start_of = |e: &DiffEntry| e.a.as_ref().or(e.b.as_ref()).map(|i| i.start);
    out.sort_by(|x, y| {
        (x.instance.as_str(), x.subject.as_str(), start_of(x)).cmp(&(
            y.instance.as_str(),
            y.subject.as_str(),
            start_of(y),
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_values_as_json_or_text() {
        let s = Setting::parse("errors.threshold=5").unwrap();
        assert_eq!(
            (s.instance.as_str(), s.key.as_str()),
            ("errors", "threshold")
        );
        assert_eq!(s.value, serde_json::json!(5));
        let s = Setting::parse("aws.lambda.for=10m").unwrap();
        assert_eq!(s.instance, "aws.lambda");
        assert_eq!(s.value, serde_json::json!("10m"));
        assert!(Setting::parse("threshold=5").is_err());
        assert!(Setting::parse("errors.threshold").is_err());
    }
}
