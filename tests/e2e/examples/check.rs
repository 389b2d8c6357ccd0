//! `tripline check` accepts every example as shipped, given the environment it documents.

use super::*;

#[test]
fn every_example_config_passes_check() {
    let env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/dummy",
        ),
        ("PAGERDUTY_ROUTING_KEY", "dummy-routing-key"),
        (
            "TEAM_LEAD_WEBHOOK_URL",
            "https://hooks.example.com/team-lead",
        ),
        ("MANAGER_WEBHOOK_URL", "https://hooks.example.com/manager"),
        ("DEVOPS_WEBHOOK_URL", "https://hooks.example.com/devops"),
        (
            "PLATFORM_LEAD_WEBHOOK_URL",
            "https://hooks.example.com/platform-lead",
        ),
        ("CTO_WEBHOOK_URL", "https://hooks.example.com/cto"),
        (
            "MARKETING_WEBHOOK_URL",
            "https://hooks.example.com/marketing",
        ),
        (
            "SECONDARY_ONCALL_WEBHOOK_URL",
            "https://hooks.example.com/secondary",
        ),
        ("DBA_WEBHOOK_URL", "https://hooks.example.com/dba"),
        (
            "MANAGEMENT_WEBHOOK_URL",
            "https://hooks.example.com/management",
        ),
        (
            "PROCESSING_QUEUE_DSN",
            "host=db.internal user=tripline_ro dbname=rpa_db",
        ),
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, config, rules) in [
        ("campaign-workers", CAMPAIGN_WORKERS, 6),
        ("clarivum-jobs", CLARIVUM_JOBS, 7),
        ("lambda-job-alerts", LAMBDA_JOB_ALERTS, 5),
        ("processing-queue", PROCESSING_QUEUE, 6),
        ("intelliflow-workers", INTELLIFLOW_WORKERS, 9),
    ] {
        let dir = dir_with(config);
        let out = tripline(dir.path(), &env, &["check", "--config", "tripline.toml"]);
        assert!(
            out.status.success(),
            "{name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains(&format!("ok ({rules} rule instances")),
            "{name}: {}",
            stdout(&out)
        );
    }
}
