//! Alertmanager's API v2 on the daemon, with its JSON shapes (prometheus/alertmanager
//! `api/v2/openapi.yaml`), so the tools people already run — `amtool`, Grafana's Alertmanager
//! data source, Karma — work against `tripline run`: alerts and alert groups with their
//! silenced/inhibited status, silences (list, get, create, expire), receivers and status.
//! `POST /api/v2/alerts` (Prometheus sending alerts) is `crate::ingest`, served next to these.
//!
//! Reads and mutations are authorized like the rest of the API (a bearer token for mutations,
//! and for reads unless `open_reads`). Errors are what Alertmanager answers: a JSON string
//! with a 4xx status, which amtool prints as it is.

use super::auth::{authorize, AppState};
use crate::alert::{Alert, AlertState};
use crate::clock::Timestamp;
use crate::pipeline::group::{group_key, group_labels};
use crate::pipeline::matcher::{MatchOp, Matcher};
use crate::pipeline::route::Route;
use crate::pipeline::silence::Silence;
use crate::pipeline::status::{statuses, AlertStatus};
use crate::pipeline::PipelineConfig;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

type Params = Query<Vec<(String, String)>>;

/// Alertmanager's error body: a bare JSON string.
fn fail(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(Value::String(message.to_string()))).into_response()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    fail(StatusCode::SERVICE_UNAVAILABLE, e)
}

/// `active`, `silenced`, `inhibited` (default true), `filter` (matchers, repeated) and
/// `receiver` (an anchored regex) of `GET /alerts` and `GET /alerts/groups`.
/// The `filter` query parameters, each a matcher or a list of them in Alertmanager's grammar
/// (`filter=alertname="Lo.*"`, `filter={team="db"}`).
pub(crate) fn filters(params: &[(String, String)]) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (_, v) in params.iter().filter(|(k, _)| k == "filter") {
        out.extend(
            crate::pipeline::matcher::parse_matchers(v)
                .map_err(|e| format!("bad matcher format: {e}"))?,
        );
    }
    Ok(out)
}

struct AlertQuery {
    active: bool,
    silenced: bool,
    inhibited: bool,
    filter: Vec<Matcher>,
    receiver: Option<regex::Regex>,
}

impl AlertQuery {
    fn parse(params: &[(String, String)]) -> Result<Self, String> {
        let flag = |name: &str| -> Result<bool, String> {
            match params
                .iter()
                .rfind(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
            {
                None => Ok(true),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(v) => Err(format!("{name}: expected true or false, got {v:?}")),
            }
        };
        let filter = filters(params)?;
        let receiver = match params.iter().rfind(|(k, _)| k == "receiver") {
            Some((_, r)) if !r.is_empty() => Some(
                regex::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| format!("failed to parse receiver param: {e}"))?,
            ),
            _ => None,
        };
        Ok(AlertQuery {
            active: flag("active")?,
            silenced: flag("silenced")?,
            inhibited: flag("inhibited")?,
            filter,
            receiver,
        })
    }

    /// Alertmanager's `alertFilter`: by state, then by the filter matchers.
    fn keeps(&self, a: &Alert, st: &AlertStatus) -> bool {
        if !self.active && st.state() == "active" {
            return false;
        }
        if !self.silenced && !st.silenced_by.is_empty() {
            return false;
        }
        if !self.inhibited && !st.inhibited_by.is_empty() {
            return false;
        }
        self.filter.iter().all(|m| m.matches(a))
    }

    fn keeps_receivers(&self, receivers: &[String]) -> bool {
        self.receiver
            .as_ref()
            .is_none_or(|re| receivers.iter().any(|r| re.is_match(r)))
    }
}

/// The receivers a route reaches: its own, and its escalation policy's steps.
fn route_receivers(cfg: &PipelineConfig, r: &Route) -> Vec<String> {
    let mut out: Vec<String> = r.receiver.iter().cloned().collect();
    if let Some(p) = r.escalation.as_ref().and_then(|p| cfg.policies.get(p)) {
        out.extend(p.steps.iter().map(|s| s.receiver.clone()));
    }
    out
}

fn receivers_of(cfg: &PipelineConfig, a: &Alert) -> Vec<String> {
    let mut seen = BTreeSet::new();
    cfg.route
        .matching(a)
        .into_iter()
        .flat_map(|r| route_receivers(cfg, r))
        .filter(|r| seen.insert(r.clone()))
        .collect()
}

/// Go's zero time: what Alertmanager's clients read as "no end known".
const NO_END: &str = "0001-01-01T00:00:00.000Z";

/// An alert as Alertmanager's `gettableAlert`. The severity, a field here, is a label there.
fn gettable_alert(a: &Alert, st: &AlertStatus, receivers: &[String]) -> Value {
    let mut labels = a.labels.clone();
    labels
        .entry("severity".into())
        .or_insert_with(|| a.severity.as_str().to_string());
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    if !a.summary.is_empty() {
        annotations.insert("summary".into(), a.summary.clone());
    }
    if let Some(r) = &a.runbook {
        annotations.insert("runbook_url".into(), r.clone());
    }
    for (k, v) in a.shown_details() {
        if k == crate::ingest::GENERATOR_URL {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        annotations.insert(k.clone(), text);
    }
    let ends_at = a
        .ends_at
        .map(|t| t.to_rfc3339())
        .or_else(|| {
            a.details
                .get(crate::ingest::ENDS_AT)
                .and_then(|v| v.as_str())
                .map(String::from)
        })
        .unwrap_or_else(|| NO_END.into());
    let mut v = json!({
        "labels": labels,
        "annotations": annotations,
        "receivers": receivers.iter().map(|r| json!({ "name": r })).collect::<Vec<_>>(),
        "fingerprint": a.fingerprint,
        "startsAt": a.starts_at.unwrap_or(a.active_since),
        "updatedAt": a.updated_at,
        "endsAt": ends_at,
        "status": {
            "state": st.state(),
            "silencedBy": st.silenced_by,
            "inhibitedBy": st.inhibited_by,
        },
    });
    if let Some(Value::String(g)) = a.details.get(crate::ingest::GENERATOR_URL) {
        v["generatorURL"] = Value::String(g.clone());
    }
    v
}

/// The firing alerts (Alertmanager never sees pending ones) with their status, or a response.
async fn firing_with_status(
    s: &AppState,
) -> Result<(PipelineConfig, Vec<(Alert, AlertStatus)>), Response> {
    let engine = s.daemon.engine().await;
    let store = engine.store();
    let alerts: Vec<Alert> = store
        .load_alerts()
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|a| a.state == AlertState::Firing)
        .collect();
    let state = store.load_notify_state().await.map_err(unavailable)?;
    let cfg = engine.pipeline().config().clone();
    let mut st = statuses(&cfg, &alerts, &state, s.daemon.clock.now());
    let out = alerts
        .into_iter()
        .map(|a| {
            let status = st.remove(&a.fingerprint).unwrap_or_default();
            (a, status)
        })
        .collect();
    Ok((cfg, out))
}

/// `GET /api/v2/alerts`, sorted by fingerprint as Alertmanager sorts them.
pub(super) async fn get_alerts(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    let q = match AlertQuery::parse(&params) {
        Ok(q) => q,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let (cfg, alerts) = match firing_with_status(&s).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut out: Vec<(String, Value)> = alerts
        .iter()
        .filter_map(|(a, st)| {
            let receivers = receivers_of(&cfg, a);
            (q.keeps_receivers(&receivers) && q.keeps(a, st))
                .then(|| (a.fingerprint.clone(), gettable_alert(a, st, &receivers)))
        })
        .collect();
    out.sort_by(|x, y| x.0.cmp(&y.0));
    Json(out.into_iter().map(|(_, v)| v).collect::<Vec<_>>()).into_response()
}

/// `GET /api/v2/alerts/groups`: one group per routing-tree group and receiver, as the
/// notification pipeline groups them.
pub(super) async fn get_groups(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    let q = match AlertQuery::parse(&params) {
        Ok(q) => q,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let (cfg, alerts) = match firing_with_status(&s).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // (group key, receiver) → (group labels, alerts)
    let mut groups: BTreeMap<(String, String), (crate::alert::Labels, Vec<Value>)> =
        BTreeMap::new();
    for (a, st) in alerts.iter().filter(|(a, st)| q.keeps(a, st)) {
        let receivers = receivers_of(&cfg, a);
        for r in cfg.route.matching(a) {
            let labels = group_labels(r, &a.labels, a);
            let key = group_key(r, &labels);
            for rcv in route_receivers(&cfg, r) {
                if !q.keeps_receivers(std::slice::from_ref(&rcv)) {
                    continue;
                }
                groups
                    .entry((key.clone(), rcv))
                    .or_insert_with(|| (labels.clone(), vec![]))
                    .1
                    .push(gettable_alert(a, st, &receivers));
            }
        }
    }
    Json(
        groups
            .into_iter()
            .map(|((_, receiver), (labels, alerts))| {
                json!({ "labels": labels, "receiver": { "name": receiver }, "alerts": alerts })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

fn silence_state(s: &Silence, now: Timestamp) -> &'static str {
    if s.is_expired(now) {
        "expired"
    } else if s.is_active(now) {
        "active"
    } else {
        "pending"
    }
}

fn am_matchers(s: &Silence) -> Vec<Value> {
    s.parsed()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "value": m.value,
                "isRegex": matches!(m.op, MatchOp::Regex | MatchOp::NotRegex),
                "isEqual": matches!(m.op, MatchOp::Equal | MatchOp::Regex),
            })
        })
        .collect()
}

/// A silence as Alertmanager's `gettableSilence`.
fn gettable_silence(s: &Silence, now: Timestamp) -> Value {
    // The store keeps no update time: an expired silence was last changed when it ended.
    let updated = if s.is_expired(now) {
        s.ends_at.max(s.created_at)
    } else {
        s.created_at
    };
    json!({
        "id": s.id,
        "status": { "state": silence_state(s, now) },
        "updatedAt": updated,
        "matchers": am_matchers(s),
        "startsAt": s.starts_at,
        "endsAt": s.ends_at,
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

/// Alertmanager's `CheckSilenceMatchesFilterLabels`: each filter matcher must equal one of the
/// silence's matchers (same name, operator and value).
fn silence_matches_filter(s: &Silence, filter: &[Matcher]) -> bool {
    let own = s.parsed().unwrap_or_default();
    filter.iter().all(|f| own.iter().any(|m| m == f))
}

/// `GET /api/v2/silences`: active first (soonest end first), then pending (soonest start),
/// then expired (latest end first).
pub(super) async fn get_silences(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    let filter = match filters(&params) {
        Ok(f) => f,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let list = match s.daemon.engine().await.store().list_silences().await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    let now = s.daemon.clock.now();
    let mut list: Vec<Silence> = list
        .into_iter()
        .filter(|x| silence_matches_filter(x, &filter))
        .collect();
    let rank = |x: &Silence| match silence_state(x, now) {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    };
    list.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| match rank(a) {
            0 => a.ends_at.cmp(&b.ends_at),
            1 => a.starts_at.cmp(&b.starts_at),
            _ => b.ends_at.cmp(&a.ends_at),
        })
    });
    Json(
        list.iter()
            .map(|x| gettable_silence(x, now))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

pub(super) async fn get_silence(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    match s.daemon.engine().await.store().list_silences().await {
        Ok(l) => match l.iter().find(|x| x.id == id) {
            Some(x) => Json(gettable_silence(x, s.daemon.clock.now())).into_response(),
            None => fail(StatusCode::NOT_FOUND, format!("silence {id} not found")),
        },
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableMatcher {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<PostableMatcher>,
    starts_at: Timestamp,
    ends_at: Timestamp,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// `POST /api/v2/silences`: a new silence, or (with the `id` of an existing one) its
/// replacement, which gets a new id as Alertmanager gives one when a silence cannot be changed
/// in place. Answers `{"silenceID": …}`.
pub(super) async fn post_silences(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return *r;
    }
    let req: PostableSilence = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("not a postableSilence: {e}"),
            )
        }
    };
    let matchers = match req
        .matchers
        .iter()
        .map(|m| {
            let op = match (m.is_regex, m.is_equal) {
                (false, true) => MatchOp::Equal,
                (false, false) => MatchOp::NotEqual,
                (true, true) => MatchOp::Regex,
                (true, false) => MatchOp::NotRegex,
            };
            Matcher::new(m.name.clone(), op, m.value.clone())
        })
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(m) => m,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let now = s.daemon.clock.now();
    if req.starts_at >= req.ends_at {
        return fail(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        );
    }
    if req.ends_at < now {
        return fail(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        );
    }
    let engine = s.daemon.engine().await;
    let store = engine.store();
    if let Some(id) = req.id.as_deref().filter(|i| !i.is_empty()) {
        match store.list_silences().await {
            Ok(l) if l.iter().any(|x| x.id == id) => {
                if let Err(e) = store.expire_silence(id, now).await {
                    return unavailable(e);
                }
            }
            Ok(_) => return fail(StatusCode::NOT_FOUND, format!("silence {id} not found")),
            Err(e) => return unavailable(e),
        }
    }
    // As Alertmanager: a start in the past means now.
    let starts_at = req.starts_at.max(now);
    let silence = match Silence::new(
        &matchers,
        starts_at,
        req.ends_at,
        req.created_by,
        req.comment,
        now,
    ) {
        Ok(x) => x,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    match store.add_silence(&silence).await {
        Ok(()) => {
            s.daemon.wake_notify();
            Json(json!({ "silenceID": silence.id })).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// `DELETE /api/v2/silence/{id}`: the silence ends now. Expiring an expired silence is a no-op
/// (as in current Alertmanager); an unknown id is a 404.
pub(super) async fn delete_silence(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return *r;
    }
    match s
        .daemon
        .engine()
        .await
        .store()
        .expire_silence(&id, s.daemon.clock.now())
        .await
    {
        Ok(true) => {
            s.daemon.wake_notify();
            StatusCode::OK.into_response()
        }
        Ok(false) => fail(StatusCode::NOT_FOUND, format!("silence {id} not found")),
        Err(e) => unavailable(e),
    }
}

/// `GET /api/v2/receivers`.
pub(super) async fn get_receivers(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    let cfg = s.daemon.config.read().await;
    Json(
        cfg.raw
            .receivers
            .iter()
            .map(|r| json!({ "name": r.get_ref().name() }))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// `GET /api/v2/status`. There is no cluster (replicas share a store instead), and
/// `config.original` is a summary of the routing — receivers' names and the root route — not
/// the file, which may name endpoints people would rather not publish.
pub(super) async fn get_status(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    let engine = s.daemon.engine().await;
    let route = &engine.pipeline().config().route;
    let cfg = s.daemon.config.read().await;
    let mut original = String::from("route:\n");
    if let Some(r) = &route.receiver {
        original.push_str(&format!("  receiver: {r:?}\n"));
    }
    original.push_str("receivers:\n");
    for r in &cfg.raw.receivers {
        original.push_str(&format!("- name: {:?}\n", r.get_ref().name()));
    }
    Json(json!({
        "cluster": { "status": "disabled", "peers": [] },
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        },
        "config": { "original": original },
        "uptime": s.daemon.started_at,
    }))
    .into_response()
}
