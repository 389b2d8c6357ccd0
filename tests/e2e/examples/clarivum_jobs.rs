//! Runbook 001: Clarivum's SQS queues, DLQs and Lambda workers in moto, the example config with
//! only `[aws] endpoint_url` and the PagerDuty URL rewritten.

use super::*;
use crate::aws::{in_period, now, Seeder};
use crate::support::moto::Moto;

const RUNBOOK: &str = "https://runbooks.example.com/clarivum-jobs";
const QUEUES: [&str; 3] = [
    "clarivum-prod-coupon-jobs",
    "clarivum-prod-pdf-export-jobs",
    "clarivum-prod-email-jobs",
];
const WORKERS: [&str; 3] = [
    "clarivum-prod-coupon-worker",
    "clarivum-prod-pdf-export-worker",
    "clarivum-prod-email-worker",
];

fn receivers() -> Receivers {
    Receivers::start(&[
        ("clarivum-ops", "SLACK_WEBHOOK_URL"),
        ("backend-oncall", "PAGERDUTY_ROUTING_KEY"),
        ("platform-lead", "PLATFORM_LEAD_WEBHOOK_URL"),
        ("cto", "CTO_WEBHOOK_URL"),
        ("marketing", "MARKETING_WEBHOOK_URL"),
    ])
}

struct Setup {
    moto: Moto,
    rx: Receivers,
    env: Vec<(String, String)>,
    at: chrono::DateTime<chrono::Utc>,
}

async fn setup() -> Option<Setup> {
    let moto = Moto::start()?;
    let rx = receivers();
    let mut env = rx.env.clone();
    env.extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
    Some(Setup {
        moto,
        rx,
        env,
        at: now(),
    })
}

impl Setup {
    fn run(&self) -> Vec<Value> {
        let c = rewrite(
            CLARIVUM_JOBS,
            "# endpoint_url = \"http://127.0.0.1:5000\"",
            &format!("endpoint_url = \"{}\"", self.moto.endpoint()),
        );
        let c = rewrite(&c, PAGERDUTY_URL, &self.rx.url("backend-oncall"));
        let dir = dir_with(&c);
        eval(dir.path(), &self.env, Some(&self.at.to_rfc3339()))
    }

    /// Seeds the state of every queue, DLQ and worker: `(oldest message age s, DLQ depth)` per
    /// queue, `(errors, peak concurrency)` per worker.
    async fn seed(&self, queues: [(f64, f64); 3], workers: [(f64, f64); 3]) {
        let seed = Seeder::new(&self.moto).await;
        let five = in_period(self.at, 300, 0);
        for (q, (age, dlq)) in QUEUES.iter().zip(queues) {
            let dims = [("QueueName", *q)];
            seed.metric("AWS/SQS", "ApproximateAgeOfOldestMessage", &dims, five, age)
                .await;
            let dlq_name = format!("{q}-dlq");
            let dims = [("QueueName", dlq_name.as_str())];
            seed.metric(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &dims,
                five,
                dlq,
            )
            .await;
        }
        for (f, (errors, concurrency)) in WORKERS.iter().zip(workers) {
            seed.lambda("Invocations", f, five, 500.0).await;
            seed.lambda("Errors", f, five, errors).await;
            seed.lambda("ConcurrentExecutions", f, five, concurrency)
                .await;
        }
    }
}

/// The incident: email jobs stuck for 3 hours (marketing must be told), PDF exports 20 minutes
/// behind, a DLQ flood on coupon jobs after a schema change broke the coupon worker, a few
/// dead letters on PDF exports.
async fn incident(s: &Setup) -> Vec<Value> {
    s.seed(
        [(1_500.0, 250.0), (1_200.0, 4.0), (10_800.0, 0.0)],
        [(40.0, 120.0), (0.0, 30.0), (0.0, 10.0)],
    )
    .await;
    s.run()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clarivum_backlog_and_dlq_flood_raise_the_runbook_levels_and_healthy_queues_are_quiet() {
    let Some(s) = setup().await else { return };
    // Healthy: messages picked up within a minute, DLQs empty, no errors, concurrency low.
    s.seed(
        [(30.0, 0.0), (45.0, 0.0), (12.0, 0.0)],
        [(0.0, 40.0), (0.0, 12.0), (0.0, 5.0)],
    )
    .await;
    let alerts = s.run();
    assert_eq!(summary(&alerts), vec![], "{alerts:#?}");
    assert_eq!(s.rx.counts(), BTreeMap::new());

    s.moto.reset();
    let alerts = incident(&s).await;
    assert_eq!(
        summary(&alerts),
        triples(&[
            ("coupon-jobs-backlog", "firing", "warning"),
            ("jobs-dlq", "firing", "critical"),
            ("worker-errors", "firing", "critical"),
            ("email-jobs-backlog", "firing", "critical"),
            ("pdf-export-jobs-backlog", "firing", "warning"),
            ("jobs-dlq", "firing", "warning"),
        ]),
        "{alerts:#?}"
    );
    let email = alerts
        .iter()
        .find(|a| a["instance"] == "email-jobs-backlog")
        .unwrap();
    assert!(
        email["summary"]
            .as_str()
            .unwrap()
            .contains("notify marketing"),
        "{email:#?}"
    );
    // Everything is posted in #clarivum-ops with its runbook section.
    let ops = serde_json::to_string(&s.rx.bodies("clarivum-ops")).unwrap();
    for section in [
        "backlog-growth--slow-processing",
        "dlq-flood",
        "lambda-errors--timeouts",
    ] {
        assert!(
            ops.contains(&format!("{RUNBOOK}#{section}")),
            "{section}: {ops}"
        );
    }
    assert_eq!(s.rx.bodies("clarivum-ops").len(), 6);
}

/// The escalation matrix: `severity=critical` routes see the alert's severity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clarivum_criticals_page_the_backend_engineer_and_a_2h_backlog_notifies_marketing() {
    let Some(s) = setup().await else { return };
    incident(&s).await;
    let page = |n: &str, sec: &str| {
        (
            n.to_string(),
            "critical".to_string(),
            format!("{RUNBOOK}#{sec}"),
        )
    };
    assert_eq!(
        pagerduty_triggers(&s.rx.bodies("backend-oncall")),
        vec![
            page("email-jobs-backlog", "backlog-growth--slow-processing"),
            page("jobs-dlq", "dlq-flood"),
            page("worker-errors", "lambda-errors--timeouts"),
        ]
    );
    assert_eq!(
        webhook_alerts(&s.rx.bodies("marketing")),
        vec![(
            "email-jobs-backlog".to_string(),
            format!("{RUNBOOK}#backlog-growth--slow-processing")
        )]
    );
    assert_eq!(s.rx.bodies("clarivum-ops").len(), 6);
}
