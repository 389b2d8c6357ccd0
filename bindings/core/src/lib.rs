//! What the Python and Node bindings share, so each of them is only the conversion to its
//! language: the engine behind a host's calls (`Host`), the data a host pushes (series keyed by
//! name and labels, tables), receivers whose delivery is a host-language callable
//! (`HostReceiver`), silences, acks and `test_rules` as the CLI has them, and errors sorted into
//! the kinds the bindings raise (`HostError`: config, rule, source, store) with the position of
//! the first problem.
//!
//! Each call runs on one process-wide Tokio runtime (`runtime()`); the bindings call the
//! blocking functions here with their interpreter's lock released.

// A `HostError` is built once per failed host call and turned into an exception at once; its
// size costs nothing next to that, and boxing it would only add an indirection to every `?`.
#![allow(clippy::result_large_err)]

use async_trait::async_trait;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tripline::alert::{Alert, Labels};
use tripline::assembly as wire;
use tripline::clock::Timestamp;
use tripline::config::Config;
use tripline::data::{QueryData, Series, Table};
use tripline::notify::{Notification, Notifier, NotifyError};
use tripline::pipeline::escalate::Ack;
use tripline::pipeline::silence::Silence;
use tripline::store::{SqliteStore, Store};
use tripline::{CycleReport, InstanceSpec, Tripline};

pub use tripline;

/// The runtime every binding call runs on: two workers are plenty for one cycle at a time, and a
/// Lambda or worker host has few cores.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tripline")
            .enable_all()
            .build()
            .expect("the tripline runtime starts")
    })
}

/// The kind of a binding error; each language maps it to its own exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A config file (or the programmatic builder's settings) is invalid.
    Config,
    /// A rule file does not load, or a rule is used wrongly.
    Rule,
    /// A source could not be built or answered with an error.
    Source,
    /// The store failed.
    Store,
    /// A value the host passed is out of range or of the wrong shape.
    Value,
    /// The call does not fit the engine's state (an unknown alert, a receiver added too late).
    State,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Config => "ERR_TRIPLINE_CONFIG",
            ErrorKind::Rule => "ERR_TRIPLINE_RULE",
            ErrorKind::Source => "ERR_TRIPLINE_SOURCE",
            ErrorKind::Store => "ERR_TRIPLINE_STORE",
            ErrorKind::Value => "ERR_TRIPLINE_VALUE",
            ErrorKind::State => "ERR_TRIPLINE_STATE",
        }
    }
}

/// An engine error as the bindings raise it: the whole text, and the kind and position of the
/// first problem (`errors` holds each problem when there were several).
#[derive(Debug, Clone)]
pub struct HostError {
    pub kind: ErrorKind,
    pub message: String,
    pub path: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The underlying cause's text (an I/O error reading a file), when there is one.
    pub cause: Option<String>,
    pub errors: Vec<HostError>,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl HostError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        HostError {
            kind,
            message: message.into(),
            path: None,
            line: None,
            column: None,
            cause: None,
            errors: vec![],
        }
    }

    pub fn value(message: impl Into<String>) -> Self {
        HostError::new(ErrorKind::Value, message)
    }

    pub fn state(message: impl Into<String>) -> Self {
        HostError::new(ErrorKind::State, message)
    }
}

impl From<tripline::Error> for HostError {
    fn from(e: tripline::Error) -> Self {
        use tripline::Error as E;
        let message = e.to_string();
        match e {
            E::Many(v) => {
                let mut parts: Vec<HostError> = v
                    .into_iter()
                    .flat_map(tripline::Error::flatten)
                    .map(HostError::from)
                    .collect();
                if parts.len() == 1 {
                    return parts.remove(0);
                }
                let mut out = match parts.first() {
                    Some(first) => first.clone(),
                    None => HostError::new(ErrorKind::Config, ""),
                };
                out.message = message;
                out.errors = parts;
                out
            }
            E::Invalid { location, .. } => {
                let path = location.path.display().to_string();
                let kind = if path.ends_with(".rhai") {
                    ErrorKind::Rule
                } else {
                    ErrorKind::Config
                };
                HostError {
                    path: Some(path),
                    line: Some(location.line),
                    column: Some(location.col),
                    ..HostError::new(kind, message)
                }
            }
            E::Config(_) => HostError::new(ErrorKind::Config, message),
            E::Rule { .. } => HostError::new(ErrorKind::Rule, message),
            E::Source { .. } => HostError::new(ErrorKind::Source, message),
            E::Store(_) => HostError::new(ErrorKind::Store, message),
            E::Io { path, source } => {
                let path = path.display().to_string();
                let kind = if path.ends_with(".rhai") {
                    ErrorKind::Rule
                } else {
                    ErrorKind::Config
                };
                HostError {
                    path: Some(path),
                    cause: Some(source.to_string()),
                    ..HostError::new(kind, message)
                }
            }
        }
    }
}

pub type HostResult<T> = std::result::Result<T, HostError>;

/// Seconds since the Unix epoch (fractional) as an instant.
pub fn instant(secs: f64) -> HostResult<Timestamp> {
    if !secs.is_finite() {
        return Err(HostError::value(format!("timestamp {secs} is not finite")));
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
    chrono::DateTime::from_timestamp(whole as i64, nanos)
        .ok_or_else(|| HostError::value(format!("timestamp {secs} is out of range")))
}

/// An instant as seconds since the Unix epoch.
pub fn epoch(t: Timestamp) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}

/// How a host delivers one notification: resolves to `Err(message)` when it failed (the outbox
/// keeps it and tries again).
pub type Deliver =
    Arc<dyn Fn(Notification) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A receiver written in the host's language (`add_receiver(name, callable)`).
pub struct HostReceiver {
    name: String,
    deliver: Deliver,
}

impl HostReceiver {
    pub fn new(name: impl Into<String>, deliver: Deliver) -> Self {
        HostReceiver {
            name: name.into(),
            deliver,
        }
    }
}

#[async_trait]
impl Notifier for HostReceiver {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        (self.deliver)(n.clone())
            .await
            .map_err(|m| NotifyError::retryable(format!("receiver {}: {m}", self.name)))
    }
}

/// One rule instance as a host describes it (the config's `[[rule]]`).
#[derive(Debug, Clone, Default)]
pub struct InstanceArgs {
    pub name: String,
    pub rule: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub labels: Labels,
    pub every: Option<String>,
    pub for_: Option<String>,
    pub keep_firing_for: Option<String>,
    pub severity: Option<String>,
    pub runbook: Option<String>,
}

/// What the programmatic builder is given.
#[derive(Debug, Clone)]
pub struct BuilderArgs {
    pub rules_dirs: Vec<PathBuf>,
    pub stock_rules: bool,
    /// (origin, text) of rules given as source text.
    pub rule_sources: Vec<(String, String)>,
    /// A SQLite file, or `None` (or `":memory:"`) for an in-memory store.
    pub store: Option<String>,
    /// `[sources.<kind>]` tables, as the config file has them (`{"type": "prometheus", "url":
    /// ...}`), and the `[aws]` table they may need.
    pub sources: Vec<(String, serde_json::Value)>,
    pub aws: Option<serde_json::Value>,
    pub instances: Vec<InstanceArgs>,
}

impl Default for BuilderArgs {
    fn default() -> Self {
        BuilderArgs {
            rules_dirs: vec![],
            stock_rules: true,
            rule_sources: vec![],
            store: None,
            sources: vec![],
            aws: None,
            instances: vec![],
        }
    }
}

/// How to build an engine: from a config file or from builder arguments.
#[derive(Debug, Clone)]
pub enum Recipe {
    Config {
        path: PathBuf,
        /// Overrides the config's `[store]` (a SQLite path or `":memory:"`).
        store: Option<String>,
    },
    Builder(BuilderArgs),
}

fn open_store(s: &str) -> HostResult<Arc<dyn Store>> {
    Ok(if s == ":memory:" {
        Arc::new(SqliteStore::in_memory()?)
    } else {
        Arc::new(SqliteStore::open(s)?)
    })
}

fn duration(what: &str, s: &Option<String>) -> HostResult<Option<chrono::Duration>> {
    s.as_ref()
        .map(|d| {
            tripline::clock::parse_duration(d)
                .map_err(|e| HostError::new(ErrorKind::Config, format!("{what}: {e}")))
        })
        .transpose()
}

/// `[sources]` tables given in code go through the config file's own checks: they are written
/// as a config document and parsed, so a bad table is reported as `<builder>:line:col`.
fn builder_sources(
    args: &BuilderArgs,
) -> HostResult<Vec<(String, Arc<dyn tripline::source::Source>)>> {
    if args.sources.is_empty() {
        return Ok(vec![]);
    }
    let mut doc = serde_json::Map::new();
    doc.insert(
        "sources".into(),
        serde_json::Value::Object(args.sources.iter().cloned().collect()),
    );
    if let Some(aws) = &args.aws {
        doc.insert("aws".into(), aws.clone());
    }
    let text = toml::to_string(&serde_json::Value::Object(doc))
        .map_err(|e| HostError::new(ErrorKind::Config, format!("sources: {e}")))?;
    let cfg = Config::parse(Path::new("<builder>"), text)?;
    let mut out = Vec::new();
    for (kind, sc) in &cfg.raw.sources {
        out.push((kind.clone(), wire::build_source(&cfg, kind, sc.get_ref())?));
    }
    Ok(out)
}

fn build(recipe: &Recipe, receivers: &[Arc<dyn Notifier>]) -> HostResult<Tripline> {
    match recipe {
        Recipe::Config { path, store } => {
            let cfg = Config::load(path)?;
            let opts = wire::WireOptions {
                store: store.as_deref().map(open_store).transpose()?,
                ..Default::default()
            };
            Ok(wire::build_with_receivers(&cfg, opts, receivers.to_vec())?)
        }
        Recipe::Builder(args) => {
            let mut b = Tripline::builder().stock_rules(args.stock_rules);
            for d in &args.rules_dirs {
                b = b.rules_dir(d);
            }
            for (origin, text) in &args.rule_sources {
                b = b.rule_source(origin, text.clone());
            }
            for (kind, s) in builder_sources(args)? {
                b = b.source(kind, s);
            }
            if let Some(s) = &args.store {
                b = b.store(open_store(s)?);
            }
            for r in receivers {
                b = b.notifier(r.clone());
            }
            for i in &args.instances {
                let severity = i
                    .severity
                    .as_deref()
                    .map(|s| {
                        s.parse().map_err(|e: String| {
                            HostError::new(ErrorKind::Config, format!("instance {:?}: {e}", i.name))
                        })
                    })
                    .transpose()?;
                b = b.instance(InstanceSpec {
                    name: i.name.clone(),
                    rule: i.rule.clone(),
                    params: i.params.clone(),
                    labels: i.labels.clone(),
                    every: i.every.clone(),
                    for_: duration(&format!("instance {:?}: for", i.name), &i.for_)?,
                    keep_firing_for: duration(
                        &format!("instance {:?}: keep_firing_for", i.name),
                        &i.keep_firing_for,
                    )?,
                    severity,
                    runbook: i.runbook.clone(),
                    // Fleets through the bindings take globs and lists in `params`; `exclude`
                    // is the config file's and Rust's only.
                    exclude: vec![],
                    location: None,
                    param_locations: Default::default(),
                });
            }
            Ok(b.build()?)
        }
    }
}

/// Data pushed under one name.
#[derive(Debug, Clone)]
enum Pushed {
    /// `push_series` without labels: the name is that one series.
    One(Series),
    /// `push_series` with labels: the name is a set, one series per label set.
    Set(BTreeMap<Labels, Series>),
    Table(Table),
}

impl Pushed {
    fn data(&self) -> QueryData {
        match self {
            Pushed::One(s) => QueryData::Series(s.clone()),
            Pushed::Set(m) => QueryData::SeriesSet(m.values().cloned().collect()),
            Pushed::Table(t) => QueryData::Table(t.clone()),
        }
    }
}

#[derive(Default)]
struct PushState {
    data: HashMap<String, Pushed>,
    /// Names pushed since the engine last saw them.
    dirty: std::collections::HashSet<String>,
}

struct Built {
    engine: Arc<Tripline>,
    /// Whether the store was used (a cycle, a silence, an ack): after that the engine is not
    /// rebuilt to take a new receiver, since an in-memory store would lose what it holds.
    used: bool,
}

/// The engine behind a binding's `Engine` object.
pub struct Host {
    recipe: Recipe,
    receivers: Mutex<Vec<Arc<dyn Notifier>>>,
    built: Mutex<Built>,
    pushed: Mutex<PushState>,
}

/// One case of `test_rules`.
#[derive(Debug, Clone)]
pub struct CaseView {
    pub file: String,
    pub rule: String,
    pub name: String,
    /// `None` when it passed.
    pub failure: Option<String>,
}

impl Host {
    /// Builds the engine now, so a bad config or rule is reported by the constructor.
    pub fn new(recipe: Recipe, receivers: Vec<Arc<dyn Notifier>>) -> HostResult<Host> {
        let engine = Arc::new(build(&recipe, &receivers)?);
        Ok(Host {
            recipe,
            receivers: Mutex::new(receivers),
            built: Mutex::new(Built {
                engine,
                used: false,
            }),
            pushed: Mutex::new(PushState::default()),
        })
    }

    /// The engine as built now.
    pub fn engine(&self) -> Arc<Tripline> {
        self.built.lock().expect("engine lock").engine.clone()
    }

    fn used_engine(&self) -> Arc<Tripline> {
        let mut b = self.built.lock().expect("engine lock");
        b.used = true;
        b.engine.clone()
    }

    /// Adds a receiver next to the configured ones. The engine is rebuilt with it, which is only
    /// allowed before its store is first used.
    pub fn add_receiver(&self, r: Arc<dyn Notifier>) -> HostResult<()> {
        let mut built = self.built.lock().expect("engine lock");
        if built.used {
            return Err(HostError::state(format!(
                "add receiver {:?} before the first cycle, silence or ack",
                r.name()
            )));
        }
        let mut receivers = self.receivers.lock().expect("receivers lock");
        if receivers.iter().any(|x| x.name() == r.name()) {
            return Err(HostError::new(
                ErrorKind::Config,
                format!("receiver name {:?} is used twice", r.name()),
            ));
        }
        let mut with = receivers.clone();
        with.push(r);
        let engine = Arc::new(build(&self.recipe, &with)?);
        *receivers = with;
        built.engine = engine;
        // Everything pushed so far goes to the new engine at the next cycle.
        let mut p = self.pushed.lock().expect("pushed lock");
        let names: Vec<String> = p.data.keys().cloned().collect();
        p.dirty.extend(names);
        Ok(())
    }

    /// Pushes one series under `name`: with no labels the name is that series (replacing what
    /// was there); with labels it joins the name's set, replacing the member with equal labels.
    pub fn push_series(
        &self,
        name: &str,
        points: Vec<(Timestamp, f64)>,
        labels: Labels,
        period_secs: i64,
    ) -> HostResult<()> {
        if period_secs < 0 {
            return Err(HostError::value("period must not be negative"));
        }
        let mut s = Series::new(name).with_points(period_secs, points);
        s.labels = labels.clone();
        let mut p = self.pushed.lock().expect("pushed lock");
        if labels.is_empty() {
            p.data.insert(name.to_string(), Pushed::One(s));
        } else {
            match p.data.get_mut(name) {
                Some(Pushed::Set(m)) => {
                    m.insert(labels, s);
                }
                _ => {
                    p.data
                        .insert(name.to_string(), Pushed::Set(BTreeMap::from([(labels, s)])));
                }
            }
        }
        p.dirty.insert(name.to_string());
        Ok(())
    }

    /// Pushes rows under `name` (a log-query or SQL result, read with `pushed(name)`).
    pub fn push_table(
        &self,
        name: &str,
        rows: Vec<serde_json::Map<String, serde_json::Value>>,
    ) -> HostResult<()> {
        let rows = rows.into_iter().map(|r| r.into_iter().collect()).collect();
        let mut p = self.pushed.lock().expect("pushed lock");
        p.data
            .insert(name.to_string(), Pushed::Table(Table::new(name, rows)));
        p.dirty.insert(name.to_string());
        Ok(())
    }

    /// Forgets everything pushed.
    pub fn clear_pushed(&self) {
        let mut p = self.pushed.lock().expect("pushed lock");
        let emptied: Vec<(String, QueryData)> = p
            .data
            .drain()
            .map(|(n, d)| {
                // What the name reads as when nothing was pushed: an empty series, or an empty
                // set for a name whose series had labels (rules iterate those).
                let empty = match d {
                    Pushed::Set(_) => QueryData::SeriesSet(vec![]),
                    Pushed::Table(_) => QueryData::Table(Table::new(n.clone(), vec![])),
                    Pushed::One(_) => QueryData::Series(Series::new(n.clone())),
                };
                (n, empty)
            })
            .collect();
        p.dirty.clear();
        drop(p);
        let engine = self.engine();
        for (n, empty) in emptied {
            engine.push(n, empty);
        }
    }

    fn flush_pushed(&self, engine: &Tripline) {
        let mut p = self.pushed.lock().expect("pushed lock");
        let dirty = std::mem::take(&mut p.dirty);
        for name in dirty {
            if let Some(d) = p.data.get(&name) {
                engine.push(name.clone(), d.data());
            }
        }
    }

    /// Runs one cycle at `at` (now when `None`) over the named instances (all when `None`).
    /// Blocks the calling thread: a binding calls it with its interpreter lock released.
    pub fn run_cycle(
        &self,
        at: Option<Timestamp>,
        only: Option<Vec<String>>,
    ) -> HostResult<CycleReport> {
        let engine = self.used_engine();
        self.flush_pushed(&engine);
        let at = at.unwrap_or_else(chrono::Utc::now);
        if let Some(o) = &only {
            for n in o {
                if !engine.instances().iter().any(|i| &i.name == n) {
                    return Err(HostError::value(format!("no rule instance named {n:?}")));
                }
            }
        }
        Ok(runtime().block_on(engine.run_cycle_at(at, only.as_deref()))?)
    }

    /// Flushes the pipeline and makes one delivery pass (group timers, retries, escalations)
    /// without evaluating rules; returns the outbox ids delivered.
    pub fn deliver(&self, at: Option<Timestamp>) -> HostResult<Vec<String>> {
        let engine = self.used_engine();
        let at = at.unwrap_or_else(chrono::Utc::now);
        let (_, delivery) = runtime().block_on(engine.notify_at(at))?;
        Ok(delivery.delivered)
    }

    /// The alerts in the store (pending, firing, and resolved ones still retained).
    pub fn alerts(&self) -> HostResult<Vec<Alert>> {
        let engine = self.engine();
        Ok(runtime().block_on(engine.store().load_alerts())?)
    }

    /// Adds a silence of alerts matching every matcher (`team=db`, `function=~prd-.*`); returns
    /// its id.
    pub fn add_silence(
        &self,
        matchers: &[String],
        starts_at: Option<Timestamp>,
        ends_at: Timestamp,
        created_by: &str,
        comment: &str,
    ) -> HostResult<String> {
        // Alertmanager's grammar, each string one matcher or a `{…}` list, with the silence
        // limits (the CLI and the API parse them the same way).
        let parsed =
            tripline::pipeline::silence::parse_matchers(matchers).map_err(HostError::value)?;
        // A host that says when the silence starts runs on its own time line (a replay, a test,
        // a backfill): "already over" is judged from that start, not from the wall clock.
        let now = chrono::Utc::now();
        let made_at = starts_at.map_or(now, |s| s.min(now));
        // Given only an end that is behind us, the problem is the end, not the order of the two
        // (which the default start, now, would otherwise report).
        if starts_at.is_none() && ends_at <= now {
            return Err(HostError::value(format!(
                "the silence would end at {}, which has already passed",
                ends_at.to_rfc3339()
            )));
        }
        let s = Silence::new(
            &parsed,
            starts_at.unwrap_or(now),
            ends_at,
            created_by,
            comment,
            made_at,
        )
        .map_err(HostError::value)?;
        let engine = self.used_engine();
        runtime().block_on(engine.store().add_silence(&s))?;
        Ok(s.id)
    }

    /// Silences in the store; expired ones (at `at`, default now) only with `all`.
    pub fn silences(&self, all: bool, at: Option<Timestamp>) -> HostResult<Vec<Silence>> {
        let engine = self.engine();
        let now = at.unwrap_or_else(chrono::Utc::now);
        Ok(runtime()
            .block_on(engine.store().list_silences())?
            .into_iter()
            .filter(|s| all || !s.is_expired(now))
            .collect())
    }

    /// Ends a silence at `at` (default now); false when there is no such silence active then.
    pub fn expire_silence(&self, id: &str, at: Option<Timestamp>) -> HostResult<bool> {
        let engine = self.used_engine();
        let at = at.unwrap_or_else(chrono::Utc::now);
        runtime().block_on(async {
            let store = engine.store();
            let active = store
                .list_silences()
                .await?
                .iter()
                .any(|s| s.id == id && !s.is_expired(at));
            Ok(active && store.expire_silence(id, at).await?)
        })
    }

    /// Acknowledges a firing alert, as `tripline ack` does: escalation stops for this episode
    /// and receivers that track incidents are told at once. Returns the receivers told.
    pub fn ack(
        &self,
        fingerprint: &str,
        by: &str,
        at: Option<Timestamp>,
    ) -> HostResult<Vec<String>> {
        let engine = self.used_engine();
        let at = at.unwrap_or_else(chrono::Utc::now);
        runtime().block_on(async {
            let store = engine.store().clone();
            let alerts = store.load_alerts().await?;
            let Some(alert) = alerts.iter().find(|x| x.fingerprint == fingerprint) else {
                return Err(HostError::state(format!(
                    "no alert with fingerprint {fingerprint}"
                )));
            };
            if alert.state != tripline::alert::AlertState::Firing {
                return Err(HostError::state(format!(
                    "alert {fingerprint} is {}, not firing: nothing to acknowledge",
                    alert.state
                )));
            }
            store
                .ack(&Ack {
                    fingerprint: fingerprint.to_string(),
                    by: by.to_string(),
                    at,
                    announced: false,
                })
                .await?;
            let (flush, delivery) = engine.notify_at(at).await?;
            Ok(flush
                .commit
                .notifications
                .iter()
                .filter(|n| delivery.delivered.contains(&n.id))
                .map(|n| n.receiver.clone())
                .collect())
        })
    }
}

/// Runs the rule fixture cases (`*.test.toml`) under `paths`, as `tripline test` does.
pub fn test_rules(paths: &[PathBuf]) -> HostResult<Vec<CaseView>> {
    runtime().block_on(async {
        let files = tripline::ruletest::discover(paths)?;
        let mut out = Vec::new();
        for f in &files {
            let root = paths
                .iter()
                .find(|p| p.is_dir() && f.starts_with(p))
                .map(|p| p.as_path());
            for r in tripline::ruletest::run_file(f, root).await {
                out.push(CaseView {
                    file: r.file.display().to_string(),
                    rule: r.rule,
                    name: r.name,
                    failure: r.failure,
                });
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"
        const RULE = #{ id: "t/depth", severity: "warning", runbook: "https://rb.example/depth",
                        params: #{ threshold: 100 } };
        fn query(p) { #{ depth: pushed("depth") } }
        fn evaluate(d, p) {
            for s in d.depth {
                let v = s.last();
                if v != () && v > p.threshold {
                    fire(#{ summary: `${s.labels.queue} ${fmt_number(v)}`, value: v, labels: #{ queue: s.labels.queue } });
                }
            }
        }
    "#;

    fn host() -> Host {
        Host::new(
            Recipe::Builder(BuilderArgs {
                stock_rules: false,
                rule_sources: vec![("t.rhai".into(), RULE.into())],
                instances: vec![InstanceArgs {
                    name: "depth".into(),
                    rule: "t/depth".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            vec![],
        )
        .unwrap()
    }

    fn labels(q: &str) -> Labels {
        Labels::from([("queue".to_string(), q.to_string())])
    }

    #[test]
    fn labelled_pushes_join_one_set_and_replace_their_own_member() {
        let h = host();
        let at = chrono::Utc::now();
        h.push_series("depth", vec![(at, 500.0)], labels("a"), 60)
            .unwrap();
        h.push_series("depth", vec![(at, 900.0)], labels("b"), 60)
            .unwrap();
        h.push_series("depth", vec![(at, 5.0)], labels("b"), 60)
            .unwrap();
        let r = h.run_cycle(Some(at), None).unwrap();
        let summaries: Vec<&str> = r.alerts.iter().map(|a| a.summary.as_str()).collect();
        assert_eq!(summaries, ["a 500"]);
    }

    #[test]
    fn a_receiver_added_after_a_cycle_is_refused() {
        let h = host();
        h.run_cycle(None, None).unwrap();
        let r = HostReceiver::new("late", Arc::new(|_| Box::pin(async { Ok(()) })));
        let e = h.add_receiver(Arc::new(r)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::State);
    }

    #[test]
    fn config_errors_carry_the_position_of_the_bad_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(
            &p,
            "stock_rules = true\n\n[[rule]]\nuse = \"aws/lambda-errors\"\nparms = {}\n",
        )
        .unwrap();
        let e = Host::new(
            Recipe::Config {
                path: p.clone(),
                store: None,
            },
            vec![],
        )
        .err()
        .unwrap();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.path.as_deref(), Some(p.to_str().unwrap()));
        assert_eq!((e.line, e.column), (Some(5), Some(1)));
    }

    #[test]
    fn a_broken_rule_source_is_a_rule_error_at_its_position() {
        let e = Host::new(
            Recipe::Builder(BuilderArgs {
                stock_rules: false,
                rule_sources: vec![("bad.rhai".into(), "fn evaluate(d, p) { let x = ; }".into())],
                ..Default::default()
            }),
            vec![],
        )
        .err()
        .unwrap();
        assert_eq!(e.kind, ErrorKind::Rule, "{e}");
        assert_eq!(e.path.as_deref(), Some("bad.rhai"));
        assert_eq!(e.line, Some(1));
    }
}
