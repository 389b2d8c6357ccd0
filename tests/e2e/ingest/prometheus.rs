//! Debian's Prometheus 2.42, configured with Tripline as its Alertmanager (`api_version: v2`,
//! bearer token in `authorization`), sends an alert of its own rules; Tripline's pipeline takes
//! it to a webhook receiver with Prometheus's labels and rendered annotations.

use super::tripline_with_webhook;
use crate::support::prometheus::Prometheus;
use crate::support::receiver::Receiver;
use std::time::Duration;

/// Fires on the exporter's `intelliflow_circuit_breaker_state{worker="notifications-worker"} 2`.
const RULES: &str = r#"groups:
  - name: intelliflow
    rules:
      - alert: CircuitBreakerOpen
        expr: intelliflow_circuit_breaker_state == 2
        for: 0s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.worker }}: circuit breaker open"
          runbook_url: https://runbooks.example.com/intelliflow#circuit-breaker
"#;

#[test]
fn prometheus_sends_its_alerts_to_tripline() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let d = tripline_with_webhook(dir.path(), &receiver);
    let Some(prom) = Prometheus::builder()
        .min_scrapes(1)
        .rules(RULES)
        .alertmanager(&d.addr, "t0ken")
        .start()
    else {
        return;
    };
    assert!(
        receiver.wait_accepted(1, Duration::from_secs(90)),
        "no notification reached the receiver\nprometheus: {}\n{}\ntripline log:\n{}",
        prom.own_metrics("prometheus_notifications_"),
        prom.log(),
        d.log.lock().unwrap()
    );
    // Only Prometheus posts to the daemon, and the daemon answers 401 without the token: the
    // notification shows that Prometheus sent it, with the token.
    let msg = receiver.accepted()[0].json();
    assert_eq!(msg["status"], "firing", "{msg:#}");
    let alerts = msg["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{msg:#}");
    let a = &alerts[0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["alertname"], "CircuitBreakerOpen");
    assert_eq!(a["labels"]["worker"], "notifications-worker");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["job"], "events-worker");
    assert_eq!(
        a["annotations"]["summary"],
        "notifications-worker: circuit breaker open"
    );
    assert_eq!(
        a["annotations"]["runbook_url"],
        "https://runbooks.example.com/intelliflow#circuit-breaker"
    );
    // Prometheus's link to the expression's graph keeps its own field; Tripline's bookkeeping
    // (the alert's expiry) is not shown as an annotation.
    let generator = a["generatorURL"].as_str().unwrap();
    assert!(
        generator.starts_with("http://") && generator.contains("/graph?"),
        "{msg:#}"
    );
    let keys: Vec<&String> = a["annotations"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["runbook_url", "summary"], "{msg:#}");
}
