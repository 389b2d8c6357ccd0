//! The Node.js addon behind the `tripline` npm package (napi-rs): the same engine as the Python
//! package, in camelCase. Everything that can reach a receiver (`runCycle`, `deliver`, `ack`)
//! runs on libuv's thread pool and returns a Promise, so JS receivers run on the event loop
//! meanwhile; errors are instances of the package's `Error` subclasses (`index.js` registers
//! them) with `code`, `path`, `line`, `column`.

// `HostError` is built once per failed call and thrown at once (see bindings/core).
#![allow(clippy::result_large_err)]

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ErrorStrategy, ThreadsafeFunction};
use napi::{Env, JsFunction, JsObject, JsUnknown, Ref};
use napi_derive::napi;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tripline_bindings::tripline::alert::Alert as CoreAlert;
use tripline_bindings::tripline::notify::{Notification as CoreNotification, Notifier};
use tripline_bindings::{
    instant, BuilderArgs, ErrorKind, Host, HostError, HostReceiver, InstanceArgs, Recipe,
};

type Timestamp = chrono::DateTime<chrono::Utc>;
/// `pushSeries` timestamps: one instant, or many (Dates or epoch milliseconds).
type Instants = Either4<Timestamp, f64, Vec<Either<Timestamp, f64>>, Float64Array>;

thread_local! {
    /// The error classes `index.js` registered, by kind name, and its receiver wrapper. Never
    /// dropped: the reference lives as long as the addon (napi asserts on dropping a live one).
    static CLASSES: std::mem::ManuallyDrop<RefCell<Option<Ref<()>>>> =
        const { std::mem::ManuallyDrop::new(RefCell::new(None)) };
}

// Called once by `index.js` with `{ TriplineError, ConfigError, RuleError, SourceError,
// StoreError, InvalidArgument, wrapReceiver }` (a plain comment: not part of index.d.ts).
#[napi(js_name = "__registerClasses")]
pub fn register_classes(env: Env, classes: JsObject) -> Result<()> {
    let r = env.create_reference(classes)?;
    CLASSES.with(|c| {
        if let Some(mut old) = c.borrow_mut().replace(r) {
            let _ = old.unref(env);
        }
    });
    Ok(())
}

fn classes(env: &Env) -> Result<JsObject> {
    CLASSES.with(|c| match c.borrow().as_ref() {
        Some(r) => env.get_reference_value(r),
        None => Err(Error::from_reason(
            "tripline: load the package through its index.js",
        )),
    })
}

fn error_object(env: &Env, e: &HostError) -> Result<JsObject> {
    let cls = classes(env)?;
    let name = match e.kind {
        ErrorKind::Config => "ConfigError",
        ErrorKind::Rule => "RuleError",
        ErrorKind::Source => "SourceError",
        ErrorKind::Store => "StoreError",
        ErrorKind::Value => "InvalidArgument",
        ErrorKind::State => "TriplineError",
    };
    let ctor: JsFunction = cls.get_named_property(name)?;
    let mut obj = ctor.new_instance(&[env.create_string(&e.message)?])?;
    obj.set_named_property("code", e.kind.code())?;
    obj.set_named_property("path", e.path.clone())?;
    obj.set_named_property("line", e.line.map(|v| v as u32))?;
    obj.set_named_property("column", e.column.map(|v| v as u32))?;
    let mut parts = env.create_array_with_length(e.errors.len())?;
    for (i, p) in e.errors.iter().enumerate() {
        parts.set_element(i as u32, error_object(env, p)?)?;
    }
    obj.set_named_property("errors", parts)?;
    if let Some(c) = &e.cause {
        obj.set_named_property("cause", env.create_error(Error::from_reason(c.clone()))?)?;
    }
    Ok(obj)
}

/// A `HostError` as a thrown (or rejected) JS error of its class.
fn js_error(env: &Env, e: HostError) -> Error {
    match error_object(env, &e) {
        Ok(obj) => Error::from(obj.into_unknown()),
        Err(err) => err,
    }
}

/// An instant given as a `Date` or as epoch milliseconds (`Date.now()`).
fn at_of(v: Option<Either<Timestamp, f64>>) -> std::result::Result<Option<Timestamp>, HostError> {
    match v {
        None => Ok(None),
        Some(Either::A(t)) => Ok(Some(t)),
        Some(Either::B(ms)) => instant(ms / 1000.0).map(Some),
    }
}

#[napi(object)]
pub struct Alert {
    pub fingerprint: String,
    /// The rule id (`worker/queue-depth`).
    pub rule: String,
    /// The rule instance that raised it.
    pub instance: String,
    /// Its `alertname` label.
    pub name: String,
    /// `"pending"`, `"firing"` or `"resolved"`.
    pub state: String,
    pub severity: String,
    pub labels: HashMap<String, String>,
    pub summary: String,
    pub runbook: Option<String>,
    pub value: Option<f64>,
    pub details: serde_json::Value,
    /// When it started firing (absent while pending).
    pub starts_at: Option<chrono::DateTime<chrono::Utc>>,
    pub active_since: chrono::DateTime<chrono::Utc>,
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn alert(a: &CoreAlert) -> Alert {
    Alert {
        fingerprint: a.fingerprint.clone(),
        rule: a.rule.clone(),
        instance: a.instance.clone(),
        name: a
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| a.instance.clone()),
        state: a.state.as_str().to_string(),
        severity: a.severity.to_string(),
        labels: a.labels.clone().into_iter().collect(),
        summary: a.summary.clone(),
        runbook: a.runbook.clone(),
        value: a.value,
        details: serde_json::Value::Object(a.details.clone()),
        starts_at: a.starts_at,
        active_since: a.active_since,
        ends_at: a.ends_at,
    }
}

#[napi(object)]
pub struct Notification {
    pub id: String,
    pub receiver: String,
    /// `"firing"`, `"resolved"` or `"acknowledged"`.
    pub status: String,
    pub group_labels: HashMap<String, String>,
    pub alerts: Vec<Alert>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub acknowledged_by: Option<String>,
}

fn notification(n: &CoreNotification) -> Notification {
    Notification {
        id: n.id.clone(),
        receiver: n.receiver.clone(),
        status: n.status.as_str().to_string(),
        group_labels: n.group_labels.clone().into_iter().collect(),
        alerts: n.alerts.iter().map(|a| alert(a)).collect(),
        created_at: n.created_at,
        acknowledged_by: n.acknowledged_by.clone(),
    }
}

#[napi(object)]
pub struct Failure {
    /// The rule instance (or receiver, for delivery errors).
    pub name: String,
    pub message: String,
}

/// What one cycle did.
#[napi(object)]
pub struct CycleReport {
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub instances_evaluated: u32,
    /// Pending and firing alerts after the cycle, plus the ones resolved in it.
    pub alerts: Vec<Alert>,
    /// The alerts firing after the cycle.
    pub firing: Vec<Alert>,
    /// Notifications put in the outbox this cycle.
    pub notifications: Vec<Notification>,
    /// Outbox ids delivered in this cycle's delivery pass.
    pub delivered: Vec<String>,
    /// Deliveries that failed and will be retried (`name` is the receiver).
    pub delivery_errors: Vec<Failure>,
    pub rule_failures: Vec<Failure>,
    pub source_failures: Vec<Failure>,
}

fn report(r: &tripline_bindings::tripline::CycleReport) -> CycleReport {
    let alerts: Vec<Alert> = r.alerts.iter().map(alert).collect();
    CycleReport {
        at: r.at,
        instances_evaluated: r.instances_evaluated as u32,
        firing: r
            .alerts
            .iter()
            .filter(|a| a.state.as_str() == "firing")
            .map(alert)
            .collect(),
        alerts,
        notifications: r.notifications.iter().map(|n| notification(n)).collect(),
        delivered: r.delivered.clone(),
        delivery_errors: r
            .delivery_errors
            .iter()
            .map(|(n, m)| Failure {
                name: n.clone(),
                message: m.clone(),
            })
            .collect(),
        rule_failures: r
            .rule_failures
            .iter()
            .map(|(n, f)| Failure {
                name: n.clone(),
                message: f.to_string(),
            })
            .collect(),
        source_failures: r
            .source_failures
            .iter()
            .map(|(n, f)| Failure {
                name: n.clone(),
                message: f.to_string(),
            })
            .collect(),
    }
}

#[napi(object)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<String>,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
    pub comment: String,
}

#[napi(object)]
pub struct CaseResult {
    pub file: String,
    pub rule: String,
    pub name: String,
    /// What went wrong (expected vs got); absent when it passed.
    pub failure: Option<String>,
}

/// A use of a rule, as a config's `[[rule]]`.
#[napi(object)]
pub struct InstanceOptions {
    pub name: String,
    /// The rule id.
    pub rule: String,
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    pub labels: Option<HashMap<String, String>>,
    /// A cron schedule (`"0 * * * * *"`) for the daemon; a host's `runCycle` evaluates anyway.
    pub every: Option<String>,
    /// How long the condition must hold before firing (`"5m"`).
    #[napi(js_name = "for")]
    pub for_: Option<String>,
    pub keep_firing_for: Option<String>,
    pub severity: Option<String>,
    pub runbook: Option<String>,
}

#[napi(object)]
pub struct RuleSource {
    /// Names the rule in errors (`"queue.rhai"`).
    pub origin: String,
    pub text: String,
}

/// An engine described in code (the config file's settings).
#[napi(object)]
pub struct BuilderOptions {
    /// Directories of your own `*.rhai` rules.
    pub rules_dirs: Option<Vec<String>>,
    /// Whether the stock rules can be used (default true).
    pub stock_rules: Option<bool>,
    pub rule_sources: Option<Vec<RuleSource>>,
    /// A SQLite file, or `":memory:"` (the default).
    pub store: Option<String>,
    /// `[sources.<kind>]` tables: `{ prometheus: { type: "prometheus", url: "..." } }`.
    pub sources: Option<serde_json::Map<String, serde_json::Value>>,
    /// The `[aws]` table (region, endpoint_url).
    pub aws: Option<serde_json::Value>,
    pub instances: Option<Vec<InstanceOptions>>,
}

#[napi(object)]
pub struct ConfigOptions {
    /// Overrides the config's `[store]`: a SQLite path or `":memory:"`.
    pub store: Option<String>,
}

#[napi(object)]
pub struct PushOptions {
    /// With labels the series joins the name's set (one per label set).
    pub labels: Option<HashMap<String, String>>,
    /// Seconds per point (default 60).
    pub period: Option<i64>,
}

#[napi(object)]
pub struct CycleOptions {
    /// The evaluation instant (default now).
    #[napi(ts_type = "Date | number")]
    pub at: Option<Either<Timestamp, f64>>,
    /// Instances to evaluate (default all).
    pub instances: Option<Vec<String>>,
    /// Reject with `SourceError` / `RuleError` (after the cycle) when a source or rule failed.
    pub raise_on_failure: Option<bool>,
}

#[napi(object)]
pub struct SilenceOptions {
    /// All must match: `team=db`, `function=~prd-.*`, `env!=dev`.
    pub matchers: Vec<String>,
    #[napi(ts_type = "Date | number")]
    pub starts_at: Option<Either<Timestamp, f64>>,
    #[napi(ts_type = "Date | number")]
    pub ends_at: Option<Either<Timestamp, f64>>,
    /// How long from the start when `endsAt` is not given (`"2h"`; default `"1h"`).
    pub duration: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
}

/// A JS receiver: `index.js`'s `wrapReceiver` turns the host's function into one that always
/// returns a Promise (so a throw and a rejection are the same failed delivery).
fn js_receiver(env: &Env, name: String, f: JsFunction) -> Result<Arc<dyn Notifier>> {
    let cls = classes(env)?;
    let wrap: JsFunction = cls.get_named_property("wrapReceiver")?;
    let wrapped: JsFunction = wrap.call(None, &[f])?.try_into()?;
    let mut tsfn: ThreadsafeFunction<CoreNotification, ErrorStrategy::Fatal> = wrapped
        .create_threadsafe_function(0, |ctx| {
            Ok(vec![notification(&ctx.value).into_js(&ctx.env)?])
        })?;
    // A receiver alone must not keep the process alive.
    tsfn.unref(env)?;
    let tsfn = Arc::new(tsfn);
    let deliver = Arc::new(move |n: CoreNotification| {
        let tsfn = tsfn.clone();
        let fut = async move {
            let p: Promise<()> = tsfn.call_async(n).await.map_err(|e| e.reason.clone())?;
            p.await.map_err(|e| e.reason.clone())
        };
        Box::pin(fut) as futures::future::BoxFuture<'static, std::result::Result<(), String>>
    });
    Ok(Arc::new(HostReceiver::new(name, deliver)))
}

trait IntoJs {
    fn into_js(self, env: &Env) -> Result<JsUnknown>;
}

impl<T: ToNapiValue> IntoJs for T {
    fn into_js(self, env: &Env) -> Result<JsUnknown> {
        unsafe {
            let raw = T::to_napi_value(env.raw(), self)?;
            JsUnknown::from_napi_value(env.raw(), raw)
        }
    }
}

/// The engine: build it with `Engine.fromConfig(path)` or `Engine.build({...})`.
#[napi]
pub struct Engine {
    host: Arc<Host>,
}

fn receivers_of(
    env: &Env,
    receivers: Option<HashMap<String, JsFunction>>,
) -> Result<Vec<Arc<dyn Notifier>>> {
    let mut out = Vec::new();
    let mut given: Vec<(String, JsFunction)> = receivers.unwrap_or_default().into_iter().collect();
    given.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, f) in given {
        out.push(js_receiver(env, name, f)?);
    }
    Ok(out)
}

#[napi]
impl Engine {
    /// Loads a `tripline.toml` with the stock rules and its `rules_dirs`. `receivers` adds JS
    /// receivers by name next to the configured ones (routes may name them).
    #[napi(
        factory,
        ts_args_type = "path: string, options?: ConfigOptions, receivers?: Record<string, (n: Notification) => unknown>"
    )]
    pub fn from_config(
        env: Env,
        path: String,
        options: Option<ConfigOptions>,
        receivers: Option<HashMap<String, JsFunction>>,
    ) -> Result<Engine> {
        let rs = receivers_of(&env, receivers)?;
        let recipe = Recipe::Config {
            path: PathBuf::from(path),
            store: options.and_then(|o| o.store),
        };
        Host::new(recipe, rs)
            .map(|h| Engine { host: Arc::new(h) })
            .map_err(|e| js_error(&env, e))
    }

    /// Builds an engine described in code.
    #[napi(
        factory,
        ts_args_type = "options: BuilderOptions, receivers?: Record<string, (n: Notification) => unknown>"
    )]
    pub fn build(
        env: Env,
        options: BuilderOptions,
        receivers: Option<HashMap<String, JsFunction>>,
    ) -> Result<Engine> {
        let rs = receivers_of(&env, receivers)?;
        let mut sources: Vec<(String, serde_json::Value)> =
            options.sources.unwrap_or_default().into_iter().collect();
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        let args = BuilderArgs {
            rules_dirs: options
                .rules_dirs
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            stock_rules: options.stock_rules.unwrap_or(true),
            rule_sources: options
                .rule_sources
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r.origin, r.text))
                .collect(),
            store: options.store,
            sources,
            aws: options.aws,
            instances: options
                .instances
                .unwrap_or_default()
                .into_iter()
                .map(|i| InstanceArgs {
                    name: i.name,
                    rule: i.rule,
                    params: i.params.unwrap_or_default(),
                    labels: i.labels.unwrap_or_default().into_iter().collect(),
                    every: i.every,
                    for_: i.for_,
                    keep_firing_for: i.keep_firing_for,
                    severity: i.severity,
                    runbook: i.runbook,
                })
                .collect(),
        };
        Host::new(Recipe::Builder(args), rs)
            .map(|h| Engine { host: Arc::new(h) })
            .map_err(|e| js_error(&env, e))
    }

    /// Rule instance names.
    #[napi(getter)]
    pub fn instances(&self) -> Vec<String> {
        self.host
            .engine()
            .instances()
            .iter()
            .map(|i| i.name.clone())
            .collect()
    }

    /// Receiver names, configured and added.
    #[napi(getter)]
    pub fn receivers(&self) -> Vec<String> {
        self.host
            .engine()
            .notifiers()
            .iter()
            .map(|n| n.name().to_string())
            .collect()
    }

    /// Adds a JS receiver: called with each `Notification` routed to `name` (every alert when
    /// the config has no `[route]`); a throw or a rejected Promise fails the delivery, which
    /// stays in the outbox and is retried. Add receivers before the first cycle.
    #[napi(ts_args_type = "name: string, receiver: (n: Notification) => unknown")]
    pub fn add_receiver(&self, env: Env, name: String, receiver: JsFunction) -> Result<()> {
        let r = js_receiver(&env, name, receiver)?;
        self.host.add_receiver(r).map_err(|e| js_error(&env, e))
    }

    /// Pushes a series read by rules with `pushed(name)`: `values` with their `timestamps`
    /// (Dates or epoch milliseconds; default: the last value now, one point per period before).
    #[napi(
        ts_args_type = "name: string, values: number | number[] | Float64Array, timestamps?: Date | number | Array<Date | number> | Float64Array, options?: PushOptions"
    )]
    pub fn push_series(
        &self,
        env: Env,
        name: String,
        values: Either3<f64, Vec<f64>, Float64Array>,
        timestamps: Option<Instants>,
        options: Option<PushOptions>,
    ) -> Result<()> {
        let vs: Vec<f64> = match values {
            Either3::A(v) => vec![v],
            Either3::B(v) => v,
            Either3::C(a) => a.to_vec(),
        };
        let period = options.as_ref().and_then(|o| o.period).unwrap_or(60);
        let labels = options
            .and_then(|o| o.labels)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let points = (|| -> std::result::Result<Vec<(Timestamp, f64)>, HostError> {
            let ts: Vec<Timestamp> = match timestamps {
                None => {
                    let now = chrono::Utc::now();
                    let n = vs.len() as i64;
                    (0..n)
                        .map(|i| now - chrono::Duration::seconds((n - 1 - i) * period))
                        .collect()
                }
                Some(Either4::A(t)) => vec![t],
                Some(Either4::B(ms)) => vec![instant(ms / 1000.0)?],
                Some(Either4::C(list)) => list
                    .into_iter()
                    .map(|t| at_of(Some(t)).map(|t| t.expect("given")))
                    .collect::<std::result::Result<_, _>>()?,
                Some(Either4::D(a)) => a
                    .iter()
                    .map(|ms| instant(ms / 1000.0))
                    .collect::<std::result::Result<_, _>>()?,
            };
            if ts.len() != vs.len() {
                return Err(HostError::value(format!(
                    "pushSeries {name:?}: {} timestamps but {} values",
                    ts.len(),
                    vs.len()
                )));
            }
            Ok(ts.into_iter().zip(vs).collect())
        })()
        .map_err(|e| js_error(&env, e))?;
        self.host
            .push_series(&name, points, labels, period)
            .map_err(|e| js_error(&env, e))
    }

    /// Pushes rows (a log-query or SQL result) read by rules with `pushed(name)`.
    #[napi(ts_args_type = "name: string, rows: Array<Record<string, unknown>>")]
    pub fn push_table(&self, env: Env, name: String, rows: Vec<serde_json::Value>) -> Result<()> {
        let rows = rows
            .into_iter()
            .map(|r| match r {
                serde_json::Value::Object(m) => Ok(m),
                _ => Err(HostError::value("pushTable rows must be objects")),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| js_error(&env, e))?;
        self.host
            .push_table(&name, rows)
            .map_err(|e| js_error(&env, e))
    }

    /// Forgets everything pushed.
    #[napi]
    pub fn clear_pushed(&self) {
        self.host.clear_pushed()
    }

    /// Runs one cycle: evaluates, moves alerts through pending/firing/resolved, notifies and
    /// delivers. Runs off the event loop; JS receivers are called on it meanwhile.
    #[napi(ts_return_type = "Promise<CycleReport>")]
    pub fn run_cycle(&self, env: Env, options: Option<CycleOptions>) -> Result<AsyncTask<Work>> {
        let (at, instances, strict) = match options {
            Some(o) => (o.at, o.instances, o.raise_on_failure.unwrap_or(false)),
            None => (None, None, false),
        };
        let at = at_of(at).map_err(|e| js_error(&env, e))?;
        Ok(AsyncTask::new(Work {
            host: self.host.clone(),
            job: Job::Cycle {
                at,
                instances,
                strict,
            },
            out: None,
        }))
    }

    /// The notification half of a cycle (group timers, escalations, retries); resolves to the
    /// outbox ids delivered.
    #[napi(
        ts_args_type = "at?: Date | number",
        ts_return_type = "Promise<string[]>"
    )]
    pub fn deliver(&self, env: Env, at: Option<Either<Timestamp, f64>>) -> Result<AsyncTask<Work>> {
        let at = at_of(at).map_err(|e| js_error(&env, e))?;
        Ok(AsyncTask::new(Work {
            host: self.host.clone(),
            job: Job::Deliver { at },
            out: None,
        }))
    }

    /// Acknowledges a firing alert (as `tripline ack`); resolves to the receivers told.
    #[napi(
        ts_args_type = "fingerprint: string, by: string, at?: Date | number",
        ts_return_type = "Promise<string[]>"
    )]
    pub fn ack(
        &self,
        env: Env,
        fingerprint: String,
        by: String,
        at: Option<Either<Timestamp, f64>>,
    ) -> Result<AsyncTask<Work>> {
        let at = at_of(at).map_err(|e| js_error(&env, e))?;
        Ok(AsyncTask::new(Work {
            host: self.host.clone(),
            job: Job::Ack {
                fingerprint,
                by,
                at,
            },
            out: None,
        }))
    }

    /// Alerts in the store: pending, firing, and recently resolved.
    #[napi]
    pub fn alerts(&self, env: Env) -> Result<Vec<Alert>> {
        self.host
            .alerts()
            .map(|v| v.iter().map(alert).collect())
            .map_err(|e| js_error(&env, e))
    }

    /// Mutes matching alerts; returns the silence's id.
    #[napi]
    pub fn add_silence(&self, env: Env, options: SilenceOptions) -> Result<String> {
        let r = (|| {
            let starts = at_of(options.starts_at)?;
            let ends = match at_of(options.ends_at)? {
                Some(t) => t,
                None => {
                    let d = tripline_bindings::tripline::clock::parse_duration(
                        options.duration.as_deref().unwrap_or("1h"),
                    )
                    .map_err(|e| HostError::value(format!("duration: {e}")))?;
                    starts.unwrap_or_else(chrono::Utc::now) + d
                }
            };
            self.host.add_silence(
                &options.matchers,
                starts,
                ends,
                options.created_by.as_deref().unwrap_or("unknown"),
                options.comment.as_deref().unwrap_or(""),
            )
        })();
        r.map_err(|e| js_error(&env, e))
    }

    /// Active and pending silences at `at` (now); `all` adds expired ones.
    #[napi(ts_args_type = "all?: boolean, at?: Date | number")]
    pub fn silences(
        &self,
        env: Env,
        all: Option<bool>,
        at: Option<Either<Timestamp, f64>>,
    ) -> Result<Vec<Silence>> {
        let at = at_of(at).map_err(|e| js_error(&env, e))?;
        self.host
            .silences(all.unwrap_or(false), at)
            .map(|v| {
                v.into_iter()
                    .map(|s| Silence {
                        id: s.id,
                        matchers: s.matchers,
                        starts_at: s.starts_at,
                        ends_at: s.ends_at,
                        created_by: s.created_by,
                        comment: s.comment,
                    })
                    .collect()
            })
            .map_err(|e| js_error(&env, e))
    }

    /// Ends a silence at `at` (now); false when there was no such silence active then.
    #[napi(ts_args_type = "id: string, at?: Date | number")]
    pub fn expire_silence(
        &self,
        env: Env,
        id: String,
        at: Option<Either<Timestamp, f64>>,
    ) -> Result<bool> {
        let at = at_of(at).map_err(|e| js_error(&env, e))?;
        self.host
            .expire_silence(&id, at)
            .map_err(|e| js_error(&env, e))
    }
}

/// Runs the rule fixture cases (`*.test.toml`) under `paths`, as `tripline test` does.
#[napi]
pub fn test_rules(env: Env, paths: Vec<String>) -> Result<Vec<CaseResult>> {
    let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
    tripline_bindings::test_rules(&paths)
        .map(|v| {
            v.into_iter()
                .map(|c| CaseResult {
                    file: c.file,
                    rule: c.rule,
                    name: c.name,
                    failure: c.failure,
                })
                .collect()
        })
        .map_err(|e| js_error(&env, e))
}

pub enum Job {
    Cycle {
        at: Option<Timestamp>,
        instances: Option<Vec<String>>,
        strict: bool,
    },
    Deliver {
        at: Option<Timestamp>,
    },
    Ack {
        fingerprint: String,
        by: String,
        at: Option<Timestamp>,
    },
}

pub enum Done {
    Cycle(Box<tripline_bindings::tripline::CycleReport>, bool),
    Names(Vec<String>),
}

/// Work that may reach receivers, run on libuv's thread pool.
pub struct Work {
    host: Arc<Host>,
    job: Job,
    out: Option<HostError>,
}

impl Task for Work {
    type Output = Done;
    type JsValue = JsUnknown;

    fn compute(&mut self) -> Result<Done> {
        let r = match &self.job {
            Job::Cycle {
                at,
                instances,
                strict,
            } => self
                .host
                .run_cycle(*at, instances.clone())
                .map(|r| Done::Cycle(Box::new(r), *strict)),
            Job::Deliver { at } => self.host.deliver(*at).map(Done::Names),
            Job::Ack {
                fingerprint,
                by,
                at,
            } => self.host.ack(fingerprint, by, *at).map(Done::Names),
        };
        r.map_err(|e| {
            let text = e.message.clone();
            self.out = Some(e);
            Error::from_reason(text)
        })
    }

    fn resolve(&mut self, env: Env, out: Done) -> Result<JsUnknown> {
        match out {
            Done::Names(v) => v.into_js(&env),
            Done::Cycle(r, strict) => {
                let failed = if !r.source_failures.is_empty() {
                    Some((
                        ErrorKind::Source,
                        "sources failed",
                        r.source_failures_text(),
                    ))
                } else if !r.rule_failures.is_empty() {
                    Some((ErrorKind::Rule, "rules failed", r.rule_failures_text()))
                } else {
                    None
                };
                let js = report(&r).into_js(&env)?;
                match failed {
                    Some((kind, what, list)) if strict => {
                        let e = HostError::new(kind, format!("{what}: {list}"));
                        let mut obj = error_object(&env, &e)?;
                        obj.set_named_property("report", js)?;
                        Err(Error::from(obj.into_unknown()))
                    }
                    _ => Ok(js),
                }
            }
        }
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<JsUnknown> {
        match self.out.take() {
            Some(e) => Err(js_error(&env, e)),
            None => Err(err),
        }
    }
}

trait FailureText {
    fn source_failures_text(&self) -> String;
    fn rule_failures_text(&self) -> String;
}

impl FailureText for tripline_bindings::tripline::CycleReport {
    fn source_failures_text(&self) -> String {
        self.source_failures
            .iter()
            .map(|(i, f)| format!("{i}: {f}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn rule_failures_text(&self) -> String {
        self.rule_failures
            .iter()
            .map(|(i, f)| format!("{i}: {f}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
