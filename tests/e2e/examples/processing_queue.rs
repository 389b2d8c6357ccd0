//! Runbook 003: the `processing_queue` table in a real PostgreSQL, the database health check
//! from a local HTTP server, pool metrics from a real Prometheus, the example config unchanged but
//! for its endpoints. The incident: a flow failing most of its records, records orphaned in
//! `processing`, a slow database; then the 15-minute escalation of what is still critical.

use super::*;
use crate::support::postgres::Postgres;
use crate::support::prometheus::{HttpServer, Prometheus};

const RUNBOOK: &str = "https://runbooks.example.com/processing-queue";

fn config(prom: &Prometheus, health: &HttpServer, rx: &Receivers) -> String {
    let c = rewrite(
        PROCESSING_QUEUE,
        "http://prometheus.internal:9090",
        &prom.url(),
    );
    let c = rewrite(
        &c,
        "http://rpa-health.internal:8080/health/db",
        &format!("{}/health/db", health.url()),
    );
    rewrite(&c, PAGERDUTY_URL, &rx.url("primary-oncall"))
}

fn receivers() -> Receivers {
    Receivers::start(&[
        ("team-slack", "SLACK_WEBHOOK_URL"),
        ("primary-oncall", "PAGERDUTY_ROUTING_KEY"),
        ("secondary-oncall", "SECONDARY_ONCALL_WEBHOOK_URL"),
        ("dba", "DBA_WEBHOOK_URL"),
        ("management", "MANAGEMENT_WEBHOOK_URL"),
    ])
}

/// `n` rows of `flow` in `status`, claimed `claimed_ago` ago.
fn rows(pg: &Postgres, flow: &str, status: &str, n: u32, claimed_ago: &str) {
    let completed = if status == "completed" {
        "NOW() - INTERVAL '1 minute'"
    } else {
        "NULL"
    };
    let error = if status == "failed" {
        "'ConnectionError: upstream survey API refused the connection'"
    } else {
        "NULL"
    };
    pg.psql(
        "tripline",
        &format!(
            "INSERT INTO processing_queue (flow_name, flow_instance_id, status, claimed_at, completed_at, error_message, created_at, updated_at) \
             SELECT '{flow}', '{flow}-' || (g % 4), '{status}', NOW() - INTERVAL '{claimed_ago}', {completed}, {error}, NOW() - INTERVAL '{claimed_ago}', NOW() \
             FROM generate_series(1, {n}) g"
        ),
    );
}

/// The servers, receivers and environment of one test.
struct Setup {
    pg: Postgres,
    prom: Prometheus,
    rx: Receivers,
    env: Vec<(String, String)>,
}

fn setup() -> Option<Setup> {
    let pg = Postgres::start()?;
    let prom = Prometheus::start(1)?;
    pg.create_processing_queue();
    let rx = receivers();
    let mut env = rx.env.clone();
    env.push(("PROCESSING_QUEUE_DSN".into(), pg.dsn()));
    Some(Setup { pg, prom, rx, env })
}

/// The incident: "High Number of Failed Records" (success rate 40%, 180 failed), "Records Stuck
/// in Processing State" (60 claimed 3 hours ago), throughput down to ~18 records an hour, and
/// the database answering in 1.8 s. Returns the alerts of one evaluation at `at`.
fn incident(
    s: &Setup,
    at: chrono::DateTime<chrono::Utc>,
) -> (tempfile::TempDir, HttpServer, Vec<Value>) {
    s.pg.psql("tripline", "TRUNCATE processing_queue");
    rows(&s.pg, "survey_processing", "completed", 120, "5 hours");
    rows(&s.pg, "survey_processing", "failed", 180, "5 hours");
    rows(&s.pg, "survey_processing", "processing", 60, "3 hours");
    rows(&s.pg, "report_generation", "completed", 80, "1 hour");
    let slow_db = HttpServer::fixed(
        200,
        "application/json",
        r#"{"status":"ok","response_time_ms":1800}"#,
    );
    let dir = dir_with(&config(&s.prom, &slow_db, &s.rx));
    let alerts = eval(dir.path(), &s.env, Some(&at.to_rfc3339()));
    (dir, slow_db, alerts)
}

fn issue(section: &str) -> String {
    format!("{RUNBOOK}#{section}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_queue_incident_raises_the_runbook_levels_and_a_healthy_queue_is_quiet() {
    let Some(s) = setup() else { return };

    // Healthy: ~62 records an hour over the day, 99% of them completed, none stuck; the database
    // answers in 12 ms. Nothing fires, no one is told.
    rows(&s.pg, "survey_processing", "completed", 1490, "3 hours");
    rows(&s.pg, "survey_processing", "failed", 10, "3 hours");
    rows(&s.pg, "survey_processing", "processing", 4, "10 minutes");
    let healthy_db = HttpServer::fixed(
        200,
        "application/json",
        r#"{"status":"ok","response_time_ms":12}"#,
    );
    let dir = dir_with(&config(&s.prom, &healthy_db, &s.rx));
    let alerts = eval(dir.path(), &s.env, None);
    assert_eq!(summary(&alerts), vec![], "{alerts:#?}");
    assert_eq!(s.rx.counts(), BTreeMap::new());

    let (_dir, _db, alerts) = incident(&s, chrono::Utc::now());
    assert_eq!(
        summary(&alerts),
        triples(&[
            ("processing-queue-failed-records", "firing", "critical"),
            ("processing-queue-orphaned-records", "firing", "critical"),
            ("processing-queue-processing-rate", "firing", "warning"),
            ("processing-queue-success-rate", "firing", "critical"),
            ("rpa-db-response-time", "firing", "warning"),
        ]),
        "{alerts:#?}"
    );
    for a in &alerts {
        assert!(
            a["runbook"].as_str().unwrap().starts_with(RUNBOOK),
            "{a:#?}"
        );
    }
    // Every alert reached a receiver, with its runbook section.
    let all: String = [
        "team-slack",
        "primary-oncall",
        "secondary-oncall",
        "dba",
        "management",
    ]
    .iter()
    .map(|r| serde_json::to_string(&s.rx.bodies(r)).unwrap())
    .collect();
    for section in [
        "issue-high-number-of-failed-records",
        "issue-records-stuck-in-processing-state",
        "issue-low-processing-throughput",
        "issue-database-connection-problems",
    ] {
        assert!(all.contains(&issue(section)), "{section}: {all}");
    }
}

/// The routing the runbook asks for: `severity=critical` routes see the alert's severity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_queue_criticals_page_and_escalate_after_15_minutes() {
    let Some(s) = setup() else { return };
    let at = chrono::Utc::now();
    let (dir, _db, _alerts) = incident(&s, at);
    // Level 2 (critical) pages the primary on-call at once; Level 1 (warning) goes to the team.
    let crit = |n: &str, sec: &str| (n.to_string(), "critical".to_string(), issue(sec));
    assert_eq!(
        pagerduty_triggers(&s.rx.bodies("primary-oncall")),
        vec![
            crit(
                "processing-queue-failed-records",
                "issue-high-number-of-failed-records"
            ),
            crit(
                "processing-queue-orphaned-records",
                "issue-records-stuck-in-processing-state"
            ),
            crit(
                "processing-queue-success-rate",
                "issue-high-number-of-failed-records"
            ),
        ]
    );
    assert_eq!(
        s.rx.counts(),
        BTreeMap::from([("primary-oncall", 3), ("team-slack", 2)])
    );

    // "Escalate if not resolved in 15 minutes": 16 minutes on, still failing, nobody acked.
    s.rx.clear();
    let later = (at + chrono::Duration::minutes(16)).to_rfc3339();
    let alerts = eval(dir.path(), &s.env, Some(&later));
    assert_eq!(alerts.iter().filter(|a| a["state"] == "firing").count(), 5);
    let mut escalated = webhook_alerts(&s.rx.bodies("secondary-oncall"));
    escalated.dedup();
    let w = |n: &str, sec: &str| (n.to_string(), issue(sec));
    assert_eq!(
        escalated,
        vec![
            w(
                "processing-queue-failed-records",
                "issue-high-number-of-failed-records"
            ),
            w(
                "processing-queue-orphaned-records",
                "issue-records-stuck-in-processing-state"
            ),
            w(
                "processing-queue-success-rate",
                "issue-high-number-of-failed-records"
            ),
        ]
    );
    assert_eq!(
        s.rx.counts().get("management"),
        None,
        "management comes after an hour"
    );
    assert_eq!(
        s.rx.counts().get("dba"),
        None,
        "the database is slow, not critical"
    );
}
