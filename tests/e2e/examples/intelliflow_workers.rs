//! Runbook 004: IntelliFlow's three workers as local HTTP servers (`/metrics`, `/health/*`)
//! scraped by a real Prometheus, their BullMQ wait lists in a real Redis, and the example config
//! with only its endpoints rewritten. The incident walks the `for:` durations with `eval --at`:
//! ingestion-worker goes down (its queue backs up, muted), events-worker's DLQ fills,
//! notifications-worker's circuit breaker opens and its email queue backs up.

use super::*;
use crate::support::prometheus::{http_get, HttpServer};
use crate::support::redis::Redis;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNBOOK: &str = "https://runbooks.example.com/intelliflow-workers";
const WORKERS: [(&str, u16); 3] = [
    ("events-worker", 3100),
    ("ingestion-worker", 3101),
    ("notifications-worker", 3102),
];

/// What a worker's HTTP server answers: its metrics and health, healthy or in the incident.
fn worker_server(worker: &'static str, incident: Arc<AtomicBool>) -> HttpServer {
    HttpServer::start(Arc::new(move |line: &str| {
        let bad = incident.load(Ordering::SeqCst);
        if bad && worker == "ingestion-worker" {
            return (
                503,
                "text/plain",
                "connection refused by a crashed worker".into(),
            );
        }
        if line.starts_with("GET /health/") {
            return (200, "application/json", r#"{"status":"ok"}"#.into());
        }
        if !line.starts_with("GET /metrics") {
            return (404, "text/plain", "not found".into());
        }
        let (queue, dlq, breaker) = match worker {
            "events-worker" => ("intelliflow:events", if bad { 120 } else { 2 }, 0),
            "ingestion-worker" => ("intelliflow:text-extraction", 0, 0),
            _ => (
                "intelliflow:notifications:email",
                1,
                if bad { 2 } else { 0 },
            ),
        };
        let body = format!(
            "# TYPE intelliflow_queue_dlq_depth gauge\n\
             intelliflow_queue_dlq_depth{{queue=\"{queue}\"}} {dlq}\n\
             # TYPE intelliflow_circuit_breaker_state gauge\n\
             intelliflow_circuit_breaker_state{{worker=\"{worker}\",breaker=\"provider\",dependency=\"smtp\"}} {breaker}\n"
        );
        (200, "text/plain; version=0.0.4", body)
    }))
}

/// A real Prometheus scraping the three workers every second (like `support::prometheus`, with
/// one job per worker).
struct Prom {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus(servers: &[(&str, &HttpServer)]) -> Option<Prom> {
    let exe = match std::env::var_os("TRIPLINE_PROMETHEUS") {
        Some(p) => PathBuf::from(p),
        None if std::env::var("TRIPLINE_REQUIRE_REAL_PARTS").as_deref() == Ok("1") => {
            panic!("TRIPLINE_PROMETHEUS is not set (scripts/lib/services.sh)")
        }
        None => {
            eprintln!("note: TRIPLINE_PROMETHEUS is not set; skipping this Prometheus test");
            return None;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut yml = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    for (job, s) in servers {
        yml.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            s.port
        ));
    }
    std::fs::write(dir.path().join("prometheus.yml"), yml).unwrap();
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(&exe)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            // Every worker scraped (up == 1) at least twice.
            let ready = http_get(
                port,
                "/api/v1/query?query=count(count_over_time(up%5B1m%5D)%3E%3D2)%20%3D%3D%203",
            )
            .is_some_and(|(s, b)| s == 200 && b.contains("\"value\""));
            if ready {
                return Some(Prom {
                    child,
                    _dir: dir,
                    port,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("prometheus did not start or never scraped the workers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intelliflow_worker_down_mutes_its_queue_and_pages_and_healthy_workers_are_quiet() {
    let Some(redis) = Redis::start() else { return };
    let incident = Arc::new(AtomicBool::new(false));
    let servers: Vec<(&str, HttpServer)> = WORKERS
        .iter()
        .map(|(w, _)| (*w, worker_server(w, incident.clone())))
        .collect();
    let refs: Vec<(&str, &HttpServer)> = servers.iter().map(|(w, s)| (*w, s)).collect();
    let Some(prom) = prometheus(&refs) else {
        return;
    };
    let rx = Receivers::start(&[
        ("platform-alerts", "SLACK_WEBHOOK_URL"),
        ("platform-oncall", "PAGERDUTY_ROUTING_KEY"),
    ]);
    let mut env = rx.env.clone();
    env.push(("REDIS_URL".into(), redis.url()));
    let mut config = rewrite(
        INTELLIFLOW_WORKERS,
        "http://prometheus.internal:9090",
        &format!("http://127.0.0.1:{}", prom.port),
    );
    for ((w, port), (_, s)) in WORKERS.iter().zip(&servers) {
        config = rewrite(&config, &format!("http://{w}:{port}"), &s.url());
    }
    config = rewrite(&config, PAGERDUTY_URL, &rx.url("platform-oncall"));
    // Some waiting jobs on every queue, far from 1000.
    let jobs: Vec<String> = (0..40).map(|i| format!("job-{i}")).collect();
    let push = |queue: &str, n: usize| {
        let key = format!("bull:{queue}:wait");
        let mut args = vec!["RPUSH", key.as_str()];
        args.extend(jobs.iter().cycle().take(n).map(|s| s.as_str()));
        redis.cmd(&args);
    };
    for q in [
        "intelliflow:events",
        "intelliflow:text-extraction",
        "intelliflow:notifications:email",
    ] {
        push(q, 40);
    }

    // Healthy.
    let dir = dir_with(&config);
    let alerts = eval(dir.path(), &env, None);
    assert_eq!(summary(&alerts), vec![], "{alerts:#?}");
    assert_eq!(rx.counts(), BTreeMap::new());

    // The incident starts: the `for:` rules go pending.
    incident.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2_500)); // a couple of scrapes
    let at = chrono::Utc::now();
    let alerts = eval(dir.path(), &env, Some(&at.to_rfc3339()));
    let pending: Vec<_> = summary(&alerts)
        .into_iter()
        .filter(|(_, state, _)| state == "pending")
        .map(|(n, _, _)| n)
        .collect();
    assert!(
        ["CircuitBreakerOpen", "HighDLQDepth", "WorkerDown"]
            .iter()
            .all(|n| pending.contains(&n.to_string())),
        "{alerts:#?}"
    );
    assert_eq!(
        rx.counts(),
        BTreeMap::new(),
        "nothing is told while pending"
    );

    // The queues back up while ingestion-worker is down; 5 minutes later every `for:` has held.
    push("intelliflow:text-extraction", 2_500);
    push("intelliflow:notifications:email", 1_500);
    // Prometheus answers an instant query from the last 5 minutes of samples: the evaluation
    // at `at + 301s` needs scrapes made after `at + 1s`, so let a few happen.
    while chrono::Utc::now() < at + chrono::Duration::seconds(4) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let later = (at + chrono::Duration::seconds(301)).to_rfc3339();
    let alerts = eval(dir.path(), &env, Some(&later));
    let firing: Vec<_> = summary(&alerts)
        .into_iter()
        .filter(|(_, state, _)| state == "firing")
        .collect();
    for expected in [
        ("CircuitBreakerOpen", "warning"),
        ("HighDLQDepth", "warning"),
        ("QueueBacklogIngestion", "warning"),
        ("QueueBacklogNotifications", "warning"),
        ("WorkerDown", "critical"),
    ] {
        assert!(
            firing
                .iter()
                .any(|(n, _, sev)| n == expected.0 && sev == expected.1),
            "{expected:?} in {firing:#?}"
        );
    }
    let down = alerts
        .iter()
        .find(|a| a["instance"] == "WorkerDown" && a["state"] == "firing")
        .unwrap();
    assert_eq!(down["labels"]["worker"], "ingestion-worker", "{down:#?}");

    // WorkerDown pages the Platform Team on-call and is posted in #platform-alerts with the
    // others; ingestion-worker's queue backlog (and readiness) are inhibited while it is down.
    assert_eq!(
        pagerduty_triggers(&rx.bodies("platform-oncall")),
        vec![(
            "WorkerDown".to_string(),
            "critical".to_string(),
            format!("{RUNBOOK}#worker-not-starting")
        )]
    );
    let slack = serde_json::to_string(&rx.bodies("platform-alerts")).unwrap();
    for section in [
        "worker-not-starting",
        "dlq-messages-accumulating",
        "circuit-breaker-open",
        "queue-backlog-growing",
    ] {
        assert!(
            slack.contains(&format!("{RUNBOOK}#{section}")),
            "{section}: {slack}"
        );
    }
    assert!(slack.contains("intelliflow:notifications:email"), "{slack}");
    assert!(
        !slack.contains("intelliflow:text-extraction"),
        "the down worker's queue is muted: {slack}"
    );
    assert!(!slack.contains("WorkerNotReady"), "{slack}");
    assert_eq!(rx.bodies("platform-alerts").len(), 4, "{slack}");
}
