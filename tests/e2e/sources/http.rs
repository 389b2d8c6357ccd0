//! The HTTP probe against loopback servers shaped like runbook 004's worker health endpoints.
//! A target that is down is data (`ok = false`, `status = 0`, `error`); a spec that cannot be
//! probed is a failure.

use super::{failure, fetch_one, spec, table};
use crate::support::prometheus::HttpServer;
use serde_json::{json, Value};
use std::sync::Arc;
use tripline::source::{HttpProbeOptions, HttpProbeSource};

fn probe() -> HttpProbeSource {
    HttpProbeSource::new(HttpProbeOptions::default()).unwrap()
}

fn worker() -> HttpServer {
    HttpServer::start(Arc::new(|line: &str| {
        let path = line.split_whitespace().nth(1).unwrap_or("/");
        match path {
            "/health/live" => (200, "application/json", r#"{"status":"ok"}"#.into()),
            "/health/ready" => (
                503,
                "application/json",
                r#"{"status":"not_ready","reason":"redis unavailable"}"#.into(),
            ),
            "/health/detailed" => (
                200,
                "application/json",
                r#"{"status":"degraded","dependencies":{"redis":{"status":"up"},"smtp":{"circuitBreaker":"OPEN"}},"metrics":{"concurrency":5}}"#.into(),
            ),
            "/metrics" => (200, "text/plain", "up 1\n".into()),
            _ => (404, "text/plain", "not found".into()),
        }
    }))
}

#[tokio::test]
async fn health_endpoints_become_one_row_tables() {
    let w = worker();
    let src = probe();
    let url = |p: &str| format!("{}{p}", w.url());

    let o = fetch_one(
        &src,
        spec("http_probe", json!({ "url": url("/health/live") })),
    )
    .await;
    let row = &table(&o).rows[0];
    assert_eq!(row["status"], json!(200));
    assert_eq!(row["ok"], json!(true));
    assert!(row["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(row["value"], Value::Null);
    assert_eq!(row["error"], Value::Null);
    assert_eq!(row["url"], json!(url("/health/live")));

    let o = fetch_one(
        &src,
        spec(
            "http_probe",
            json!({ "url": url("/health/ready"), "json_pointer": "/reason" }),
        ),
    )
    .await;
    let row = &table(&o).rows[0];
    assert_eq!(row["status"], json!(503));
    assert_eq!(row["ok"], json!(false));
    assert_eq!(row["value"], json!("redis unavailable"));

    let o = fetch_one(
        &src,
        spec(
            "http_probe",
            json!({ "url": url("/health/detailed"), "json_pointer": "/dependencies/smtp/circuitBreaker" }),
        ),
    )
    .await;
    assert_eq!(table(&o).rows[0]["value"], json!("OPEN"));

    // POST works too; a pointer into a non-JSON body leaves value () and says why.
    let o = fetch_one(
        &src,
        spec(
            "http_probe",
            json!({ "url": url("/metrics"), "method": "POST", "json_pointer": "/x" }),
        ),
    )
    .await;
    let row = &table(&o).rows[0];
    assert_eq!(row["ok"], json!(true));
    assert_eq!(row["value"], Value::Null);
    assert!(row["error"].as_str().unwrap().contains("not JSON"));

    let o = fetch_one(
        &src,
        spec(
            "http_probe",
            json!({ "url": url("/health/detailed"), "json_pointer": "/nope" }),
        ),
    )
    .await;
    assert!(table(&o).rows[0]["error"]
        .as_str()
        .unwrap()
        .contains("/nope"));
}

#[tokio::test]
async fn an_unreachable_target_is_data_and_a_bad_spec_is_a_failure() {
    let src = probe();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = fetch_one(
        &src,
        spec(
            "http_probe",
            json!({ "url": format!("http://127.0.0.1:{port}/health/live") }),
        ),
    )
    .await;
    let row = &table(&o).rows[0];
    assert_eq!(row["status"], json!(0));
    assert_eq!(row["ok"], json!(false));
    let e = row["error"].as_str().unwrap().to_lowercase();
    assert!(e.contains("refused"), "{e}");

    // A target that accepts but never answers: a timeout, also data.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health/ready", silent.local_addr().unwrap());
    let o = fetch_one(
        &src,
        spec("http_probe", json!({ "url": url, "timeout": "300ms" })),
    )
    .await;
    let row = &table(&o).rows[0];
    assert_eq!(row["ok"], json!(false));
    assert_eq!(row["status"], json!(0));
    assert!(
        row["error"].as_str().unwrap().contains("no answer within"),
        "{row:?}"
    );
    assert!(row["latency_ms"].as_f64().unwrap() >= 250.0);
    drop(silent);

    for (params, message) in [
        (json!({}), "needs a `url`"),
        (json!({ "url": "not a url" }), "not a url"),
        (json!({ "url": "ftp://127.0.0.1/x" }), "http:// or https://"),
        (
            json!({ "url": "http://127.0.0.1/", "method": "DELETE" }),
            "DELETE",
        ),
        (
            json!({ "url": "http://127.0.0.1/", "json_pointer": "status" }),
            "json_pointer",
        ),
    ] {
        let o = fetch_one(&src, spec("http_probe", params.clone())).await;
        let f = failure(&o);
        assert_eq!(f.source, "http_probe");
        assert!(f.message.contains(message), "{params}: {}", f.message);
    }
}
