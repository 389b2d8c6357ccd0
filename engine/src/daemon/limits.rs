//! How much a request to the daemon's API may make it read or compile, per endpoint (issue #17):
//! a 1 MB silence regex once cost 3.3 s and 184 MB that were never given back. A body over its
//! endpoint's limit is refused with 413 before it is read in full; limits on what a body may hold
//! (matchers, regex length) are in the stages that parse it (`pipeline::silence`).
//!
//! This is a layer over the whole router, so the handlers in `http.rs` stay about their API.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `POST /api/v2/alerts`: Prometheus sends at most 64 alerts a POST; other senders batch more
/// (the benchmarks post 1,000 alerts, about 400 KB).
pub const INGEST_BODY: usize = 4 * 1024 * 1024;
/// `POST /api/v1/silences`: a few matchers and a comment.
pub const SILENCE_BODY: usize = 64 * 1024;
/// Any other request (`{"by": …}` of an ack; reads have no body).
pub const OTHER_BODY: usize = 4 * 1024;

/// The most a body to `method path` may be.
pub fn body_limit(method: &Method, path: &str) -> usize {
    match (method, path) {
        (&Method::POST, "/api/v2/alerts") => INGEST_BODY,
        (&Method::POST, "/api/v1/silences") => SILENCE_BODY,
        _ => OTHER_BODY,
    }
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(serde_json::json!({
            "error": format!("request body too large: at most {limit} bytes for this endpoint")
        })),
    )
        .into_response()
}

/// Refuses a body over its endpoint's limit: at once when its `Content-Length` says so,
/// otherwise (chunked) as soon as that much has been read.
pub async fn limit_body(req: Request, next: Next) -> Response {
    let limit = body_limit(req.method(), req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return too_large(limit),
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_has_its_own_limit() {
        assert_eq!(body_limit(&Method::POST, "/api/v2/alerts"), INGEST_BODY);
        assert_eq!(body_limit(&Method::POST, "/api/v1/silences"), SILENCE_BODY);
        assert_eq!(
            body_limit(&Method::POST, "/api/v1/alerts/ab/ack"),
            OTHER_BODY
        );
        assert_eq!(body_limit(&Method::GET, "/api/v1/silences"), OTHER_BODY);
    }
}
