//! The `tripline._native` extension module: the engine behind the `tripline` Python package.
//! The package's Python half (`python/tripline/`) turns datetimes and NumPy arrays into epoch
//! seconds and raw float64 bytes, so this half takes only plain numbers, strings and bytes.
//! Every call that runs the engine releases the GIL; Python receivers take it back only while
//! they run.

// `HostError` is built once per failed call and raised at once (see bindings/core).
#![allow(clippy::result_large_err)]

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::PathBuf;
use std::sync::Arc;
use tripline_bindings::tripline::alert::{Alert as CoreAlert, Labels};
use tripline_bindings::tripline::notify::{Notification as CoreNotification, Notifier};
use tripline_bindings::{
    epoch, instant, BuilderArgs, ErrorKind, Host, HostError, HostReceiver, InstanceArgs, Recipe,
};

/// Raises a `HostError` as the `tripline.errors` class of its kind, with `code`, `path`, `line`,
/// `column`, every problem in `errors`, and an `OSError` as `__cause__` when there was one.
fn raise(py: Python<'_>, e: HostError) -> PyErr {
    match error_object(py, &e) {
        Ok(obj) => PyErr::from_value(obj),
        Err(err) => err,
    }
}

fn error_object<'py>(py: Python<'py>, e: &HostError) -> PyResult<Bound<'py, PyAny>> {
    let module = py.import("tripline.errors")?;
    let class = match e.kind {
        ErrorKind::Config => "ConfigError",
        ErrorKind::Rule => "RuleError",
        ErrorKind::Source => "SourceError",
        ErrorKind::Store => "StoreError",
        ErrorKind::Value => "InvalidArgument",
        ErrorKind::State => "TriplineError",
    };
    let obj = module.getattr(class)?.call1((e.message.clone(),))?;
    obj.setattr("code", e.kind.code())?;
    obj.setattr("path", e.path.clone())?;
    obj.setattr("line", e.line)?;
    obj.setattr("column", e.column)?;
    let parts = PyList::empty(py);
    for p in &e.errors {
        parts.append(error_object(py, p)?)?;
    }
    obj.setattr("errors", parts)?;
    if let Some(c) = &e.cause {
        let cause = py
            .import("builtins")?
            .getattr("OSError")?
            .call1((c.clone(),))?;
        obj.setattr("__cause__", cause)?;
    }
    Ok(obj)
}

fn ts(secs: Option<f64>) -> Result<Option<chrono::DateTime<chrono::Utc>>, HostError> {
    secs.map(instant).transpose()
}

/// `datetime.datetime.fromtimestamp(secs, timezone.utc)`: the limited API has no datetime
/// constructors, so this goes through the module.
fn datetime(py: Python<'_>, t: chrono::DateTime<chrono::Utc>) -> PyResult<PyObject> {
    static PARTS: GILOnceCell<(PyObject, PyObject)> = GILOnceCell::new();
    let (from_ts, utc) = PARTS.get_or_try_init(py, || -> PyResult<_> {
        let m = py.import("datetime")?;
        let from_ts = m.getattr("datetime")?.getattr("fromtimestamp")?.unbind();
        let utc = m.getattr("timezone")?.getattr("utc")?.unbind();
        Ok((from_ts, utc))
    })?;
    from_ts.call1(py, (epoch(t), utc.clone_ref(py)))
}

fn opt_datetime(py: Python<'_>, t: Option<chrono::DateTime<chrono::Utc>>) -> PyResult<PyObject> {
    match t {
        Some(t) => datetime(py, t),
        None => Ok(py.None()),
    }
}

fn json_to_py(py: Python<'_>, v: &serde_json::Value) -> PyResult<PyObject> {
    use pyo3::IntoPyObjectExt;
    Ok(match v {
        serde_json::Value::Null => py.None(),
        serde_json::Value::Bool(b) => b.into_py_any(py)?,
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into_py_any(py)?,
            (None, Some(f)) => f.into_py_any(py)?,
            _ => n.to_string().into_py_any(py)?,
        },
        serde_json::Value::String(s) => s.into_py_any(py)?,
        serde_json::Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(json_to_py(py, x)?)?;
            }
            l.into_any().unbind()
        }
        serde_json::Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any().unbind()
        }
    })
}

fn py_to_json(v: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    if v.is_none() {
        return Ok(serde_json::Value::Null);
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(serde_json::Value::Bool(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(match v.extract::<i64>() {
            Ok(i) => i.into(),
            Err(_) => serde_json::json!(v.extract::<f64>()?),
        });
    }
    if v.is_instance_of::<PyFloat>() {
        let f: f64 = v.extract()?;
        return Ok(serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(serde_json::Value::String(v.extract()?));
    }
    if let Ok(d) = v.downcast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, x) in d.iter() {
            let key: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err("mapping keys must be strings"))?;
            m.insert(key, py_to_json(&x)?);
        }
        return Ok(serde_json::Value::Object(m));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for x in v.try_iter()? {
            out.push(py_to_json(&x?)?);
        }
        return Ok(serde_json::Value::Array(out));
    }
    // Datetimes (and anything with an ISO form) become ISO 8601 text, as in TOML and JSON.
    if let Ok(iso) = v.call_method0("isoformat") {
        return Ok(serde_json::Value::String(iso.extract()?));
    }
    Err(PyTypeError::new_err(format!(
        "cannot pass a {} to tripline (use None, bool, int, float, str, list, dict or datetime)",
        v.get_type().name()?
    )))
}

fn json_map(v: Option<&Bound<'_, PyAny>>) -> PyResult<serde_json::Map<String, serde_json::Value>> {
    match v {
        None => Ok(serde_json::Map::new()),
        Some(v) if v.is_none() => Ok(serde_json::Map::new()),
        Some(v) => match py_to_json(v)? {
            serde_json::Value::Object(m) => Ok(m),
            _ => Err(PyTypeError::new_err("expected a dict")),
        },
    }
}

/// One alert: its state, severity, labels, summary, runbook, value and instants.
#[pyclass(module = "tripline._native", frozen, name = "Alert")]
struct PyAlert(CoreAlert);

#[pymethods]
impl PyAlert {
    #[getter]
    fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }
    /// The rule id (`worker/queue-depth`).
    #[getter]
    fn rule(&self) -> &str {
        &self.0.rule
    }
    /// The rule instance (its `alertname` label).
    #[getter]
    fn instance(&self) -> &str {
        &self.0.instance
    }
    #[getter]
    fn name(&self) -> &str {
        self.0
            .labels
            .get("alertname")
            .map(|s| s.as_str())
            .unwrap_or(&self.0.instance)
    }
    /// `"pending"`, `"firing"` or `"resolved"`.
    #[getter]
    fn state(&self) -> &'static str {
        self.0.state.as_str()
    }
    #[getter]
    fn severity(&self) -> String {
        self.0.severity.to_string()
    }
    #[getter]
    fn labels(&self) -> Labels {
        self.0.labels.clone()
    }
    #[getter]
    fn summary(&self) -> &str {
        &self.0.summary
    }
    #[getter]
    fn runbook(&self) -> Option<&str> {
        self.0.runbook.as_deref()
    }
    #[getter]
    fn value(&self) -> Option<f64> {
        self.0.value
    }
    #[getter]
    fn details(&self, py: Python<'_>) -> PyResult<PyObject> {
        json_to_py(py, &serde_json::Value::Object(self.0.details.clone()))
    }
    /// When it started firing (`None` while pending).
    #[getter]
    fn starts_at(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_datetime(py, self.0.starts_at)
    }
    /// When the condition was first seen.
    #[getter]
    fn active_since(&self, py: Python<'_>) -> PyResult<PyObject> {
        datetime(py, self.0.active_since)
    }
    /// When it resolved.
    #[getter]
    fn ends_at(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_datetime(py, self.0.ends_at)
    }
    fn __repr__(&self) -> String {
        let mut s = format!(
            "<Alert {} {} {} {:?}",
            self.0.state.as_str(),
            self.0.severity,
            self.name(),
            self.0.summary
        );
        if let Some(v) = self.0.value {
            s.push_str(&format!(" value={v}"));
        }
        if let Some(t) = self.0.starts_at {
            s.push_str(&format!(" starts_at={}", t.to_rfc3339()));
        }
        if let Some(r) = &self.0.runbook {
            s.push_str(&format!(" runbook={r}"));
        }
        s.push('>');
        s
    }
}

/// One message to one receiver: a group of alerts.
#[pyclass(module = "tripline._native", frozen, name = "Notification")]
struct PyNotification(Arc<CoreNotification>);

#[pymethods]
impl PyNotification {
    #[getter]
    fn id(&self) -> &str {
        &self.0.id
    }
    #[getter]
    fn receiver(&self) -> &str {
        &self.0.receiver
    }
    /// `"firing"`, `"resolved"` or `"acknowledged"`.
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    #[getter]
    fn group_labels(&self) -> Labels {
        self.0.group_labels.clone()
    }
    #[getter]
    fn alerts(&self) -> Vec<PyAlert> {
        self.0
            .alerts
            .iter()
            .map(|a| PyAlert(CoreAlert::clone(a)))
            .collect()
    }
    #[getter]
    fn created_at(&self, py: Python<'_>) -> PyResult<PyObject> {
        datetime(py, self.0.created_at)
    }
    #[getter]
    fn acknowledged_by(&self) -> Option<&str> {
        self.0.acknowledged_by.as_deref()
    }
    /// The notification as the JSON the webhook receiver posts.
    fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }
    fn __repr__(&self) -> String {
        format!(
            "<Notification to {} {} alerts={} group={:?}>",
            self.0.receiver,
            self.0.status.as_str(),
            self.0.alerts.len(),
            self.0.group_labels
        )
    }
}

/// What one cycle did.
#[pyclass(module = "tripline._native", frozen, name = "CycleReport")]
struct PyCycleReport(tripline_bindings::tripline::CycleReport);

#[pymethods]
impl PyCycleReport {
    #[getter]
    fn at(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_datetime(py, self.0.at)
    }
    /// Pending and firing alerts after the cycle, plus the ones resolved in it.
    #[getter]
    fn alerts(&self) -> Vec<PyAlert> {
        self.0.alerts.iter().cloned().map(PyAlert).collect()
    }
    /// The alerts that are firing after the cycle.
    #[getter]
    fn firing(&self) -> Vec<PyAlert> {
        self.0
            .alerts
            .iter()
            .filter(|a| a.state.as_str() == "firing")
            .cloned()
            .map(PyAlert)
            .collect()
    }
    #[getter]
    fn instances_evaluated(&self) -> usize {
        self.0.instances_evaluated
    }
    /// Notifications put in the outbox this cycle.
    #[getter]
    fn notifications(&self) -> Vec<PyNotification> {
        self.0
            .notifications
            .iter()
            .cloned()
            .map(PyNotification)
            .collect()
    }
    /// Outbox ids delivered in this cycle's delivery pass.
    #[getter]
    fn delivered(&self) -> Vec<String> {
        self.0.delivered.clone()
    }
    /// (receiver, error) of deliveries that failed and will be retried.
    #[getter]
    fn delivery_errors(&self) -> Vec<(String, String)> {
        self.0.delivery_errors.clone()
    }
    /// (instance, message) of rules that failed this cycle (each also raises a rule-error alert).
    #[getter]
    fn rule_failures(&self) -> Vec<(String, String)> {
        self.0
            .rule_failures
            .iter()
            .map(|(i, f)| (i.clone(), f.to_string()))
            .collect()
    }
    /// (instance, message) of instances whose data could not be fetched.
    #[getter]
    fn source_failures(&self) -> Vec<(String, String)> {
        self.0
            .source_failures
            .iter()
            .map(|(i, f)| (i.clone(), f.to_string()))
            .collect()
    }
    fn __repr__(&self) -> String {
        let firing = self
            .0
            .alerts
            .iter()
            .filter(|a| a.state.as_str() == "firing")
            .count();
        format!(
            "<CycleReport at={} instances={} alerts={} firing={} notifications={} delivered={} failures={}>",
            self.0.at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            self.0.instances_evaluated,
            self.0.alerts.len(),
            firing,
            self.0.notifications.len(),
            self.0.delivered.len(),
            self.0.rule_failures.len() + self.0.source_failures.len()
        )
    }
}

/// A receiver whose delivery calls a Python callable with a `Notification`; an exception is a
/// failed delivery, kept in the outbox and retried.
fn py_receiver(name: String, callable: PyObject) -> Arc<dyn Notifier> {
    let callable = Arc::new(callable);
    let deliver = Arc::new(move |n: CoreNotification| {
        let callable = callable.clone();
        let fut = async move {
            tokio::task::spawn_blocking(move || {
                Python::with_gil(|py| {
                    let arg =
                        Py::new(py, PyNotification(Arc::new(n))).map_err(|e| e.to_string())?;
                    // An `async def` receiver returns a coroutine: run it to completion here
                    // (this is a worker thread, with no event loop), or it never runs at all.
                    let called = callable.call1(py, (arg,)).and_then(|r| {
                        let asyncio = py.import("asyncio")?;
                        if asyncio.call_method1("iscoroutine", (&r,))?.is_truthy()? {
                            asyncio.call_method1("run", (r,))?;
                        }
                        Ok(())
                    });
                    match called {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            let text = e.to_string();
                            // The host sees its own traceback, as for any unhandled exception.
                            e.print(py);
                            Err(text)
                        }
                    }
                })
            })
            .await
            .map_err(|e| format!("receiver task: {e}"))?
        };
        Box::pin(fut) as futures::future::BoxFuture<'static, Result<(), String>>
    });
    Arc::new(HostReceiver::new(name, deliver))
}

fn receivers(
    py: Python<'_>,
    given: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<Arc<dyn Notifier>>> {
    let mut out = Vec::new();
    if let Some(d) = given {
        for (k, v) in d.iter() {
            let name: String = k.extract()?;
            if !v.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "receiver {name:?} must be callable"
                )));
            }
            out.push(py_receiver(name, v.unbind()));
        }
    }
    let _ = py;
    Ok(out)
}

/// Float64 values given as a sequence or as raw native-endian bytes (a NumPy array's).
#[derive(FromPyObject)]
enum Floats<'py> {
    Bytes(Bound<'py, PyBytes>),
    List(Vec<f64>),
}

impl Floats<'_> {
    fn values(&self) -> PyResult<Vec<f64>> {
        match self {
            Floats::List(v) => Ok(v.clone()),
            Floats::Bytes(b) => {
                let raw = b.as_bytes();
                if raw.len() % 8 != 0 {
                    return Err(PyTypeError::new_err(
                        "float64 bytes must be a multiple of 8 long",
                    ));
                }
                Ok(raw
                    .chunks_exact(8)
                    .map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")))
                    .collect())
            }
        }
    }
}

/// The engine. Build it with `from_config` or `build`; the `tripline.Engine` wrapper is what
/// hosts use.
#[pyclass(module = "tripline._native", frozen, name = "Engine")]
struct PyEngine(Host);

#[pymethods]
impl PyEngine {
    #[staticmethod]
    #[pyo3(signature = (path, store=None, receivers=None))]
    fn from_config(
        py: Python<'_>,
        path: PathBuf,
        store: Option<String>,
        receivers: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let rs = self::receivers(py, receivers)?;
        py.allow_threads(|| Host::new(Recipe::Config { path, store }, rs))
            .map(PyEngine)
            .map_err(|e| raise(py, e))
    }

    #[staticmethod]
    #[pyo3(signature = (rules_dirs, stock_rules, rule_sources, store, sources, aws, instances, receivers))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        rules_dirs: Vec<PathBuf>,
        stock_rules: bool,
        rule_sources: Vec<(String, String)>,
        store: Option<String>,
        sources: Vec<(String, Bound<'_, PyAny>)>,
        aws: Option<Bound<'_, PyAny>>,
        instances: Vec<Bound<'_, PyDict>>,
        receivers: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut args = BuilderArgs {
            rules_dirs,
            stock_rules,
            rule_sources,
            store,
            aws: aws.as_ref().map(py_to_json).transpose()?,
            ..Default::default()
        };
        for (k, v) in sources {
            args.sources.push((k, py_to_json(&v)?));
        }
        for d in instances {
            let get_s = |k: &str| -> PyResult<Option<String>> {
                match d.get_item(k)? {
                    Some(v) if !v.is_none() => Ok(Some(v.extract()?)),
                    _ => Ok(None),
                }
            };
            let labels: Labels = match d.get_item("labels")? {
                Some(v) if !v.is_none() => v.extract()?,
                _ => Labels::new(),
            };
            args.instances.push(InstanceArgs {
                name: get_s("name")?.unwrap_or_default(),
                rule: get_s("rule")?.unwrap_or_default(),
                params: json_map(d.get_item("params")?.as_ref())?,
                labels,
                every: get_s("every")?,
                for_: get_s("for")?,
                keep_firing_for: get_s("keep_firing_for")?,
                severity: get_s("severity")?,
                runbook: get_s("runbook")?,
            });
        }
        let rs = self::receivers(py, receivers)?;
        py.allow_threads(|| Host::new(Recipe::Builder(args), rs))
            .map(PyEngine)
            .map_err(|e| raise(py, e))
    }

    fn add_receiver(&self, py: Python<'_>, name: String, callable: PyObject) -> PyResult<()> {
        if !callable.bind(py).is_callable() {
            return Err(PyTypeError::new_err(format!(
                "receiver {name:?} must be callable"
            )));
        }
        let r = py_receiver(name, callable);
        py.allow_threads(|| self.0.add_receiver(r))
            .map_err(|e| raise(py, e))
    }

    /// Rule instance names.
    fn instances(&self) -> Vec<String> {
        self.0
            .engine()
            .instances()
            .iter()
            .map(|i| i.name.clone())
            .collect()
    }

    /// Receiver names (configured and added).
    fn receivers(&self) -> Vec<String> {
        self.0
            .engine()
            .notifiers()
            .iter()
            .map(|n| n.name().to_string())
            .collect()
    }

    #[pyo3(signature = (name, timestamps, values, labels=None, period=60))]
    fn push_series(
        &self,
        py: Python<'_>,
        name: String,
        timestamps: Floats<'_>,
        values: Floats<'_>,
        labels: Option<Labels>,
        period: i64,
    ) -> PyResult<()> {
        let ts = timestamps.values()?;
        let vs = values.values()?;
        if ts.len() != vs.len() {
            return Err(raise(
                py,
                HostError::value(format!(
                    "push_series {name:?}: {} timestamps but {} values",
                    ts.len(),
                    vs.len()
                )),
            ));
        }
        let points = ts
            .into_iter()
            .zip(vs)
            .map(|(t, v)| instant(t).map(|t| (t, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| raise(py, e))?;
        self.0
            .push_series(&name, points, labels.unwrap_or_default(), period)
            .map_err(|e| raise(py, e))
    }

    fn push_table(
        &self,
        py: Python<'_>,
        name: String,
        rows: Vec<Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let rows = rows
            .iter()
            .map(|r| json_map(Some(r.as_any())))
            .collect::<PyResult<Vec<_>>>()?;
        self.0.push_table(&name, rows).map_err(|e| raise(py, e))
    }

    fn clear_pushed(&self) {
        self.0.clear_pushed()
    }

    #[pyo3(signature = (at=None, instances=None))]
    fn run_cycle(
        &self,
        py: Python<'_>,
        at: Option<f64>,
        instances: Option<Vec<String>>,
    ) -> PyResult<PyCycleReport> {
        py.allow_threads(|| self.0.run_cycle(ts(at)?, instances))
            .map(PyCycleReport)
            .map_err(|e| raise(py, e))
    }

    #[pyo3(signature = (at=None))]
    fn deliver(&self, py: Python<'_>, at: Option<f64>) -> PyResult<Vec<String>> {
        py.allow_threads(|| self.0.deliver(ts(at)?))
            .map_err(|e| raise(py, e))
    }

    fn alerts(&self, py: Python<'_>) -> PyResult<Vec<PyAlert>> {
        py.allow_threads(|| self.0.alerts())
            .map(|v| v.into_iter().map(PyAlert).collect())
            .map_err(|e| raise(py, e))
    }

    #[pyo3(signature = (matchers, ends_at, starts_at=None, created_by="unknown".to_string(), comment=String::new()))]
    fn add_silence(
        &self,
        py: Python<'_>,
        matchers: Vec<String>,
        ends_at: f64,
        starts_at: Option<f64>,
        created_by: String,
        comment: String,
    ) -> PyResult<String> {
        py.allow_threads(|| {
            self.0.add_silence(
                &matchers,
                ts(starts_at)?,
                instant(ends_at)?,
                &created_by,
                &comment,
            )
        })
        .map_err(|e| raise(py, e))
    }

    /// Silences as dicts (id, matchers, starts_at, ends_at, created_by, comment).
    #[pyo3(signature = (all=false, at=None))]
    fn silences(&self, py: Python<'_>, all: bool, at: Option<f64>) -> PyResult<Vec<PyObject>> {
        let list = py
            .allow_threads(|| self.0.silences(all, ts(at)?))
            .map_err(|e| raise(py, e))?;
        list.into_iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("id", &s.id)?;
                d.set_item("matchers", &s.matchers)?;
                d.set_item("starts_at", datetime(py, s.starts_at)?)?;
                d.set_item("ends_at", datetime(py, s.ends_at)?)?;
                d.set_item("created_by", &s.created_by)?;
                d.set_item("comment", &s.comment)?;
                Ok(d.into_any().unbind())
            })
            .collect()
    }

    #[pyo3(signature = (id, at=None))]
    fn expire_silence(&self, py: Python<'_>, id: String, at: Option<f64>) -> PyResult<bool> {
        py.allow_threads(|| self.0.expire_silence(&id, ts(at)?))
            .map_err(|e| raise(py, e))
    }

    #[pyo3(signature = (fingerprint, by, at=None))]
    fn ack(
        &self,
        py: Python<'_>,
        fingerprint: String,
        by: String,
        at: Option<f64>,
    ) -> PyResult<Vec<String>> {
        py.allow_threads(|| self.0.ack(&fingerprint, &by, ts(at)?))
            .map_err(|e| raise(py, e))
    }
}

/// (file, rule, case, failure) of one fixture case.
type CaseRow = (String, String, String, Option<String>);

/// Runs rule fixture cases; returns (file, rule, case, failure-or-None) per case.
#[pyfunction]
fn test_rules(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Vec<CaseRow>> {
    py.allow_threads(|| tripline_bindings::test_rules(&paths))
        .map(|v| {
            v.into_iter()
                .map(|c| (c.file, c.rule, c.name, c.failure))
                .collect()
        })
        .map_err(|e| raise(py, e))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngine>()?;
    m.add_class::<PyAlert>()?;
    m.add_class::<PyNotification>()?;
    m.add_class::<PyCycleReport>()?;
    m.add_function(wrap_pyfunction!(test_rules, m)?)?;
    Ok(())
}
