//! Health, metrics and the JSON API. Mutating calls need the bearer token; reads too unless the
//! config opens them. The token is compared in constant time and never logged.

use super::Daemon;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Clone)]
pub struct Auth {
    pub token: Option<String>,
    pub open_reads: bool,
}

#[derive(Clone)]
struct AppState {
    daemon: Arc<Daemon>,
    auth: Auth,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, message: &str) -> Box<Response> {
    let mut r = (status, Json(serde_json::json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    Box::new(r)
}

/// `Ok(())` if the request may proceed.
fn authorize(state: &AppState, headers: &HeaderMap, mutating: bool) -> Result<(), Box<Response>> {
    if !mutating && state.auth.open_reads {
        return Ok(());
    }
    let Some(expected) = &state.auth.token else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "no API token is configured on this server",
        ));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required",
        ))
    }
}

pub fn router(daemon: Arc<Daemon>, auth: Auth) -> Router {
    Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/alerts", get(alerts))
        .route(
            "/api/v1/silences",
            get(silences_list)
                .post(silences_create)
                .delete(silences_delete),
        )
        .route("/api/v1/alerts/{fp}/ack", post(ack))
        .with_state(AppState { daemon, auth })
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

async fn alerts(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return *r;
    }
    match s.daemon.engine().await.store().load_alerts().await {
        Ok(alerts) => Json(
            alerts
                .into_iter()
                .filter(|a| a.is_active())
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn not_yet() -> Response {
    (StatusCode::NOT_IMPLEMENTED, Json(serde_json::json!({"error": "silences and acknowledgements arrive with the notification pipeline"}))).into_response()
}

async fn silences_list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    authorize(&s, &headers, false)
        .err()
        .map(|r| *r)
        .unwrap_or_else(not_yet)
}

async fn silences_create(State(s): State<AppState>, headers: HeaderMap) -> Response {
    authorize(&s, &headers, true)
        .err()
        .map(|r| *r)
        .unwrap_or_else(not_yet)
}

async fn silences_delete(State(s): State<AppState>, headers: HeaderMap) -> Response {
    authorize(&s, &headers, true)
        .err()
        .map(|r| *r)
        .unwrap_or_else(not_yet)
}

async fn ack(State(s): State<AppState>, headers: HeaderMap, Path(_fp): Path<String>) -> Response {
    authorize(&s, &headers, true)
        .err()
        .map(|r| *r)
        .unwrap_or_else(not_yet)
}
