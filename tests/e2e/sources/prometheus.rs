//! The Prometheus source against a real Prometheus scraping runbook 004's worker metrics; and
//! the failures Prometheus (or something in front of it) can answer.

use super::{failure, fetch_one, series_set, spec, table};
use crate::support::prometheus::{HttpServer, Prometheus};
use serde_json::json;
use std::sync::Arc;
use tripline::source::{
    HttpProbeOptions, HttpProbeSource, PrometheusOptions, PrometheusSource, Source,
};

fn source(url: String) -> PrometheusSource {
    PrometheusSource::new(PrometheusOptions::new(url)).unwrap()
}

fn promql(query: &str) -> tripline::rule::QuerySpec {
    spec("prometheus", json!({ "query": query }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_and_range_queries_and_prometheus_own_errors() {
    let Some(prom) = Prometheus::start(3) else {
        return;
    };
    let src = source(prom.url());
    let specs = [
        // Runbook 004's alert expressions.
        promql("intelliflow_queue_dlq_depth > 100"),
        promql("intelliflow_circuit_breaker_state == 2"),
        promql("up{job=~\".*worker.*\"} == 0"),
        promql("sum(intelliflow_queue_depth)"),
        promql("rate(intelliflow_worker_jobs_processed_total[10s])"),
        spec(
            "prometheus",
            json!({ "query": "intelliflow_queue_depth", "range": "30s", "step": "1s" }),
        ),
        promql("sum(rate(intelliflow_worker_jobs_processed_total[5m]"),
        promql("scalar(sum(intelliflow_queue_dlq_depth))"),
    ];
    let ctx = super::ctx(30);
    let out = src.fetch(&specs, &ctx).await;

    let dlq = series_set(&out[0]);
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0].name, "intelliflow_queue_dlq_depth");
    assert_eq!(dlq[0].labels["queue"], "intelliflow:events");
    assert_eq!(dlq[0].labels["job"], "events-worker");
    assert_eq!(
        dlq[0].labels["instance"],
        format!("127.0.0.1:{}", prom.exporter.port)
    );
    assert!(!dlq[0].labels.contains_key("__name__"));
    assert_eq!(dlq[0].last(), Some(120.0));

    let open = series_set(&out[1]);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].labels["worker"], "notifications-worker");

    assert!(series_set(&out[2]).is_empty(), "the worker is up");

    let total = series_set(&out[3]);
    assert_eq!(total[0].name, "sum(intelliflow_queue_depth)");
    assert!(total[0].labels.is_empty());
    assert_eq!(total[0].last(), Some(1512.0));

    let rate = series_set(&out[4]);
    assert!(rate[0].last().unwrap() > 0.0, "{rate:?}");

    // Range: a series per queue, one point per second the exporter was scraped.
    let range = series_set(&out[5]);
    assert_eq!(range.len(), 2);
    for s in range {
        assert_eq!(s.period_secs, 1);
        assert!(s.points.len() >= 2, "{s:?}");
        assert!(s.points.windows(2).all(|w| w[0].ts < w[1].ts));
        let end = s.end.unwrap();
        assert!(end <= ctx.at + chrono::Duration::seconds(1));
        assert!(s.points.iter().all(|p| p.ts < end));
    }
    let events = range
        .iter()
        .find(|s| s.labels["queue"] == "intelliflow:events")
        .unwrap();
    assert!(events.points.iter().all(|p| p.value == 1500.0));

    // Bad PromQL: Prometheus's own parse error.
    let f = failure(&out[6]);
    assert_eq!(f.source, "prometheus");
    assert!(f.message.contains("parse error"), "{}", f.message);
    assert!(f.message.contains("bad_data"), "{}", f.message);

    let scalar = series_set(&out[7]);
    assert_eq!(scalar[0].last(), Some(123.0));

    // The HTTP probe against Prometheus's real health and build-info endpoints.
    let probe = HttpProbeSource::new(HttpProbeOptions::default()).unwrap();
    let o = fetch_one(
        &probe,
        spec(
            "http_probe",
            json!({ "url": format!("{}/-/ready", prom.url()) }),
        ),
    )
    .await;
    let row = &table(&o).rows[0];
    assert_eq!(row["status"], json!(200));
    assert_eq!(row["ok"], json!(true));
    let o = fetch_one(
        &probe,
        spec(
            "http_probe",
            json!({ "url": format!("{}/api/v1/status/buildinfo", prom.url()),
                    "json_pointer": "/data/version" }),
        ),
    )
    .await;
    let v = table(&o).rows[0]["value"].as_str().unwrap().to_string();
    assert!(v.starts_with("2."), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_unreachable_servers_are_failures_with_their_message() {
    // A proxy in front of Prometheus failing with a plain-text 500.
    let down = HttpServer::fixed(500, "text/plain", "upstream connect error");
    let o = fetch_one(&source(down.url()), promql("up")).await;
    let m = &failure(&o).message;
    assert!(
        m.contains("HTTP 500") && m.contains("upstream connect error"),
        "{m}"
    );

    // Prometheus's JSON error shape on a 503 (query timeout / overload).
    let busy = HttpServer::fixed(
        503,
        "application/json",
        r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
    );
    let o = fetch_one(&source(busy.url()), promql("up")).await;
    let m = &failure(&o).message;
    assert!(
        m.contains("query timed out in expression evaluation"),
        "{m}"
    );
    assert!(m.contains("HTTP 503") && m.contains("timeout"), "{m}");

    // Nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = fetch_one(&source(format!("http://127.0.0.1:{port}")), promql("up")).await;
    let m = failure(&o).message.to_lowercase();
    assert!(m.contains("refused"), "{m}");

    // A path prefix in the URL is kept.
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let s2 = seen.clone();
    let prefixed = HttpServer::start(Arc::new(move |line: &str| {
        *s2.lock().unwrap() = line.to_string();
        (
            200,
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_string(),
        )
    }));
    let o = fetch_one(
        &source(format!("{}/prometheus", prefixed.url())),
        promql("up"),
    )
    .await;
    assert!(series_set(&o).is_empty());
    assert!(
        seen.lock()
            .unwrap()
            .starts_with("POST /prometheus/api/v1/query "),
        "{}",
        seen.lock().unwrap()
    );
}

#[tokio::test]
async fn headers_come_from_the_environment_and_bad_specs_make_no_request() {
    let heads = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let h2 = heads.clone();
    let server = HttpServer::start(Arc::new(move |head: &str| {
        h2.lock().unwrap().push(head.to_lowercase());
        (
            200,
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_string(),
        )
    }));
    // Only this test uses these variables.
    std::env::set_var("TRIPLINE_TEST_PROM_AUTH", "Bearer sources-test-token");
    let mut o = PrometheusOptions::new(server.url());
    o.headers_env
        .insert("Authorization".into(), "TRIPLINE_TEST_PROM_AUTH".into());
    let src = PrometheusSource::new(o).unwrap();
    let out = fetch_one(&src, promql("up")).await;
    assert!(series_set(&out).is_empty());
    assert!(heads.lock().unwrap()[0].contains("authorization: bearer sources-test-token"));

    let mut o = PrometheusOptions::new(server.url());
    o.headers_env.insert(
        "Authorization".into(),
        "TRIPLINE_TEST_UNSET_VARIABLE".into(),
    );
    let src = PrometheusSource::new(o).unwrap();
    let out = fetch_one(&src, promql("up")).await;
    assert!(failure(&out)
        .message
        .contains("TRIPLINE_TEST_UNSET_VARIABLE"));

    let out = fetch_one(&src, spec("prometheus", json!({ "range": "5m" }))).await;
    assert!(failure(&out).message.contains("needs a PromQL `query`"));
    let out = fetch_one(
        &src,
        spec(
            "prometheus",
            json!({ "query": "up", "range": "1d", "step": "1s" }),
        ),
    )
    .await;
    assert!(failure(&out).message.contains("11000"));
    assert_eq!(heads.lock().unwrap().len(), 1);
    assert_eq!(src.requests(), 0);
}
