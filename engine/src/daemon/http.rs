//! Health, metrics and the JSON API. Mutating calls need the bearer token; reads too unless the
//! config opens them. The token is compared in constant time and never logged.

use super::amapi;
use super::auth::{authorize, AppState, Auth};
use super::Daemon;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub fn router(daemon: Arc<Daemon>, auth: Auth) -> Router {
    Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v2/alerts", get(amapi::get_alerts).post(ingest))
        .route("/api/v2/alerts/groups", get(amapi::get_groups))
        .route(
            "/api/v2/silences",
            get(amapi::get_silences).post(amapi::post_silences),
        )
        .route(
            "/api/v2/silence/{id}",
            get(amapi::get_silence).delete(amapi::delete_silence),
        )
        .route("/api/v2/receivers", get(amapi::get_receivers))
        .route("/api/v2/status", get(amapi::get_status))
        .route(
            "/api/v1/silences",
            get(silences_list)
                .post(silences_create)
                .delete(silences_delete),
        )
        .route("/api/v1/alerts/{fp}/ack", post(ack))
        .with_state(AppState { daemon, auth })
        // Per-endpoint body limits; the default limit of axum's extractors is raised to the
        // largest of them so that it never refuses first.
        .layer(axum::middleware::from_fn(super::limits::limit_body))
        .layer(axum::extract::DefaultBodyLimit::max(
            super::limits::INGEST_BODY,
        ))
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.daemon.ready.load(Ordering::SeqCst) && s.daemon.store_ok().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store does not answer",
        )
            .into_response()
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.daemon.metrics.render(),
    )
        .into_response()
}

/// `GET /api/v1/alerts`: the pending and firing alerts, each as `tripline alerts --format json`
/// prints it (with its `status`: silences, inhibitors, acknowledgement), only those every
/// `filter` matcher matches (`?filter=severity="critical"`, Alertmanager's grammar). See
/// docs/api.md.
async fn alerts(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    let filter = match super::amapi::filters(&params) {
        Ok(f) => f,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let engine = s.daemon.engine().await;
    let loaded = async {
        let alerts: Vec<_> = engine
            .store()
            .load_alerts()
            .await?
            .into_iter()
            .filter(|a| a.is_active())
            .filter(|a| crate::pipeline::matcher::all_match(&filter, a))
            .collect();
        let state = engine.store().load_notify_state().await?;
        Ok::<_, crate::Error>((alerts, state))
    };
    match loaded.await {
        Ok((alerts, state)) => {
            let statuses = crate::pipeline::status::statuses(
                engine.pipeline().config(),
                &alerts,
                &state,
                s.daemon.clock.now(),
            );
            Json(
                alerts
                    .iter()
                    .map(|a| crate::pipeline::status::alert_json(a, statuses.get(&a.fingerprint)))
                    .collect::<Vec<_>>(),
            )
            .into_response()
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

fn json_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": message.to_string() })),
    )
        .into_response()
}

async fn silences_list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    match s.daemon.engine().await.store().list_silences().await {
        Ok(list) => Json(list).into_response(),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// Body: `{"matchers": ["team=db"], "duration": "2h" | "ends_at": RFC 3339, "starts_at"?,
/// "created_by", "comment"}`. Answers 201 with the silence.
async fn silences_create(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    use crate::pipeline::silence::Silence;
    if let Err(r) = authorize(&s, &headers, true) {
        return *r;
    }
    let silence = match Silence::from_request(&body, s.daemon.clock.now()) {
        Ok(x) => x,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    match s.daemon.engine().await.store().add_silence(&silence).await {
        Ok(()) => (StatusCode::CREATED, Json(silence)).into_response(),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// `DELETE /api/v1/silences?id=ID`: the silence ends now.
async fn silences_delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return *r;
    }
    let Some(id) = q.get("id") else {
        return json_error(StatusCode::BAD_REQUEST, "give ?id=SILENCE_ID");
    };
    let now = s.daemon.clock.now();
    match s
        .daemon
        .engine()
        .await
        .store()
        .expire_silence(id, now)
        .await
    {
        Ok(true) => Json(serde_json::json!({ "expired": id })).into_response(),
        Ok(false) => json_error(StatusCode::NOT_FOUND, format!("no silence with id {id}")),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// `POST /api/v1/alerts/{fp}/ack` with an optional `{"by": "name"}`: escalation stops and the
/// receivers that were told are told at once.
async fn ack(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(fp): Path<String>,
    body: String,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return *r;
    }
    let by = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("by").and_then(|b| b.as_str()).map(String::from))
        .unwrap_or_else(|| "api".into());
    let engine = s.daemon.engine().await;
    let now = s.daemon.clock.now();
    let firing = match engine.store().load_alerts().await {
        Ok(alerts) => alerts
            .into_iter()
            .find(|a| a.fingerprint == fp && a.state == crate::alert::AlertState::Firing),
        Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let Some(firing) = firing else {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("no firing alert with fingerprint {fp}"),
        );
    };
    // A second ack of the same episode tells nobody again (as `tripline ack`).
    match engine.store().load_notify_state().await {
        Ok(st) => {
            if let Some(k) = st.acks.iter().find(|k| k.covers(&firing)) {
                return Json(serde_json::json!({
                    "acknowledged": fp, "by": k.by, "at": k.at, "already": true
                }))
                .into_response();
            }
        }
        Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
    let ack = crate::pipeline::escalate::Ack {
        fingerprint: fp.clone(),
        by: by.clone(),
        at: now,
        announced: false,
    };
    if let Err(e) = engine.store().ack(&ack).await {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, e);
    }
    if let Err(e) = engine.notify_at(now).await {
        tracing::error!("notification pipeline failed after an ack: {e}");
    }
    Json(serde_json::json!({ "acknowledged": fp, "by": by })).into_response()
}

/// Alertmanager's `POST /api/v2/alerts`: Prometheus (or anything speaking that API) can send its
/// alerts here. Authenticated like every mutation (Prometheus: `authorization` in its
/// `alertmanagers` config).
async fn ingest(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return *r;
    }
    let alerts = match crate::ingest::parse_body(&body) {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": format!("not Alertmanager v2 alerts: {e}") })),
            )
                .into_response()
        }
    };
    let engine = s.daemon.engine().await;
    match engine.ingest_posted(alerts, s.daemon.clock.now()).await {
        Ok(ingested) => {
            // Waking the notification loop for each POST would only re-plan every alert (a
            // storm of posts kept it planning non-stop). Wake it when the alerts open a group
            // (so its group_wait runs from now, not from the next tick) or when some route
            // sends at once.
            let at_once = ingested.opens_group
                || engine
                    .pipeline()
                    .config()
                    .route
                    .walk()
                    .iter()
                    .any(|r| r.timers.group_wait <= chrono::Duration::zero());
            if at_once {
                s.daemon.wake_notify();
            }
            StatusCode::OK.into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
