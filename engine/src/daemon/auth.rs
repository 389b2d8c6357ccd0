//! Who may call the API: the bearer token (compared in constant time, never logged), reads left
//! open when the config says so, and the state every handler shares. Used by the router
//! (`http.rs`) and the Alertmanager-compatible handlers (`amapi.rs`) alike, so neither imports
//! the other's internals.

use super::Daemon;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

#[derive(Clone)]
pub struct Auth {
    pub token: Option<String>,
    pub open_reads: bool,
}

#[derive(Clone)]
pub(super) struct AppState {
    pub(super) daemon: Arc<Daemon>,
    pub(super) auth: Auth,
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

/// The token of an `Authorization: Bearer TOKEN` header. The scheme is case-insensitive
/// (RFC 9110 §11.1: `bearer`, `BEARER` are the same scheme) and may be followed by several spaces.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// `Ok(())` if the request may proceed.
pub(super) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    mutating: bool,
) -> Result<(), Box<Response>> {
    if !mutating && state.auth.open_reads {
        return Ok(());
    }
    let Some(expected) = &state.auth.token else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "no API token is configured on this server",
        ));
    };
    let given = bearer_token(headers).unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required",
        ))
    }
}
