//! The scheduled-Lambda handler, called directly with an EventBridge scheduled event, against
//! DynamoDB on moto: one cycle per invocation, and the next invocation sees the first's state.

use super::credentials_in_env;
use crate::support::moto::Moto;
use crate::support::receiver::{Receiver, Reply};
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::json;
use tripline::lambda::Handler;

fn scheduled_event(at: chrono::DateTime<Utc>) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/tripline-every-minute"],
        "detail": {}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invocation_runs_one_cycle_and_the_next_sees_its_state() {
    let Some(moto) = Moto::start() else { return };
    credentials_in_env();
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    // The rule reads the last complete 5-minute period: run 30 s into a period, with data in the
    // one before.
    let floor = Utc::now().timestamp() / 300 * 300;
    let period_start = chrono::DateTime::from_timestamp(floor, 0).unwrap();
    let now = period_start + Duration::seconds(30);
    let p =
        |d: i64| (period_start + Duration::minutes(d)).to_rfc3339_opts(SecondsFormat::Secs, true);
    std::fs::write(
        dir.path().join("data.toml"),
        format!(
            "[[series]]\nmatch = {{ metric = \"ApproximateNumberOfMessagesVisible\" }}\npoints = [[\"{}\", 5000.0], [\"{}\", 6000.0]]\n",
            p(-3),
            p(-1)
        ),
    )
    .unwrap();
    let config = format!(
        r#"
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

[store]
type = "dynamodb"
table = "tripline-lambda"
create_table = true

[sources.cloudwatch]
type = "fixture"
files = ["data.toml"]

[[rule]]
name = "queue-depth"
use = "aws/sqs-queue-depth"
params = {{ queue = "orders", missing = "notBreaching" }}

[[receiver]]
type = "webhook"
name = "hook"
url = "{hook}"

[route]
receiver = "hook"
group_wait = "0s"
"#,
        endpoint = moto.endpoint(),
        hook = rx.url("/hook")
    );
    let path = dir.path().join("tripline.toml");
    std::fs::write(&path, config).unwrap();
    let handler = Handler::load(&path).unwrap();

    let first = handler.handle(&scheduled_event(now)).await.unwrap();
    let v = serde_json::to_value(&first).unwrap();
    assert_eq!(v["rules_evaluated"], 1, "{v}");
    assert_eq!(v["alerts_by_state"], json!({"firing": 1}), "{v}");
    assert_eq!(v["notifications_sent"], 1, "{v}");
    assert_eq!(v["rule_errors"], 0, "{v}");
    assert_eq!(v["source_errors"], 0, "{v}");
    assert_eq!(rx.accepted().len(), 1);

    // A fresh handler (a new execution environment) a minute later: the alert is unchanged and
    // its notification is in DynamoDB's log, so nothing is sent again.
    let handler = Handler::load(&path).unwrap();
    let second = handler
        .handle(&scheduled_event(now + Duration::minutes(1)))
        .await
        .unwrap();
    let v = serde_json::to_value(&second).unwrap();
    assert_eq!(v["alerts_by_state"], json!({"firing": 1}), "{v}");
    assert_eq!(v["notifications_sent"], 0, "{v}");
    assert_eq!(v["notifications_queued"], 0, "{v}");
    assert_eq!(rx.accepted().len(), 1);

    // The state is in the table, not in the process.
    let store = super::dynamo(&moto, "tripline-lambda");
    let alerts = store.load_alerts().await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].starts_at.map(|t| t.timestamp()),
        Some(now.timestamp())
    );
}

#[test]
fn the_config_path_defaults_to_the_package_root() {
    // Only read here; other tests never set TRIPLINE_CONFIG.
    if std::env::var_os("TRIPLINE_CONFIG").is_none() {
        assert_eq!(
            tripline::lambda::config_path(),
            std::path::PathBuf::from("/var/task/tripline.toml")
        );
    }
}
