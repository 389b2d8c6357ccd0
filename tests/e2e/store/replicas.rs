//! Two `tripline run` daemons with the same config sharing one DynamoDB table on moto: every
//! notification reaches the receiver once; when one replica is killed the other keeps delivering.

use super::dynamo;
use crate::notify::alert;
use crate::support::daemon::Daemon;
use crate::support::moto::Moto;
use crate::support::receiver::{Receiver, Reply};
use std::collections::BTreeMap;
use std::time::Duration;
use tripline::alert::Severity;

fn config(moto: &Moto, hook: &str) -> String {
    format!(
        r#"
stock_rules = false
[server]
listen = "127.0.0.1:0"

[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

[store]
type = "dynamodb"
table = "tripline-replicas"
create_table = true

[[receiver]]
type = "webhook"
name = "hook"
url = "{hook}"

[route]
receiver = "hook"
group_by = ["..."]
group_wait = "1s"
"#,
        endpoint = moto.endpoint()
    )
}

/// Deliveries per group (the webhook body's `groupKey`, else the whole body).
fn per_group(rx: &Receiver) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rx.accepted() {
        let j = r.json();
        let key = j
            .get("groupKey")
            .or_else(|| j.get("group_key"))
            .map(|k| k.to_string())
            .unwrap_or_else(|| j.to_string());
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

#[test]
fn two_replicas_on_one_dynamodb_table_deliver_each_notification_once_and_survive_a_kill() {
    let Some(moto) = Moto::start() else { return };
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        config(&moto, &rx.url("/hook")),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = dynamo(&moto, "tripline-replicas");
    let seed = |hosts: std::ops::Range<usize>| {
        let alerts: Vec<_> = hosts
            .map(|i| alert("Slow", &[("host", &format!("h{i}"))], Severity::Warning))
            .collect();
        rt.block_on(store.save_alerts(&alerts, &[])).unwrap();
    };
    seed(0..6);

    let env: Vec<(&str, String)> = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = Daemon::start(dir.path(), "tripline.toml", &env);
    let b = Daemon::start(dir.path(), "tripline.toml", &env);

    // No rule is scheduled: only the replicas' notify loops deliver these.
    b.wait_for(60, "6 deliveries", || rx.accepted().len() >= 6);
    // Both replicas keep flushing for a while: nothing is sent twice.
    std::thread::sleep(Duration::from_secs(5));
    let groups = per_group(&rx);
    assert_eq!(rx.accepted().len(), 6, "{groups:?}");
    assert_eq!(groups.len(), 6, "{groups:?}");
    assert!(groups.values().all(|n| *n == 1), "{groups:?}");

    // Kill one replica (SIGKILL: no drain); the other delivers what comes next.
    a.signal("KILL");
    a.wait_exit(10);
    seed(6..9);
    b.wait_for(60, "3 more deliveries", || rx.accepted().len() >= 9);
    std::thread::sleep(Duration::from_secs(3));
    let groups = per_group(&rx);
    assert_eq!(rx.accepted().len(), 9, "{groups:?}");
    assert!(groups.values().all(|n| *n == 1), "{groups:?}");
    let log = b.log.lock().unwrap().clone();
    assert!(!log.contains("ERROR"), "{log}");
}
