//! State survives a restart: a fresh process sees the same alert (fingerprint, starts_at), and a
//! later resolve is recorded.

use crate::support::bin::{run, stderr, stdout};

const CONFIG: &str = r#"
[store]
type = "sqlite"
path = "state/tripline.db"

[sources.cloudwatch]
type = "fixture"
files = ["data.toml"]

[[rule]]
name = "queue-depth"
use = "aws/sqs-queue-depth"
params = { queue = "orders", missing = "notBreaching" }
"#;

const DATA: &str = r#"
[[series]]
match = { metric = "ApproximateNumberOfMessagesVisible" }
points = [["2026-11-01T09:57:00Z", 5000.0], ["2026-11-01T10:02:00Z", 6000.0]]
"#;

fn eval(dir: &std::path::Path, at: &str) -> Vec<serde_json::Value> {
    let out = run(
        dir,
        &[
            "eval",
            "--config",
            "tripline.toml",
            "--at",
            at,
            "--notify",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "eval at {at}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn alert_state_survives_a_restart_and_records_the_resolve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tripline.toml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("data.toml"), DATA).unwrap();

    let t1 = eval(dir.path(), "2026-11-01T10:00:30Z");
    assert_eq!(t1.len(), 1);
    assert_eq!(t1[0]["state"], "firing");
    let fp = t1[0]["fingerprint"].clone();
    assert_eq!(t1[0]["starts_at"], "2026-11-01T10:00:30Z");

    // A second process, later, with the same store.
    let t2 = eval(dir.path(), "2026-11-01T10:05:30Z");
    assert_eq!(t2.len(), 1);
    assert_eq!(t2[0]["fingerprint"], fp);
    assert_eq!(t2[0]["starts_at"], "2026-11-01T10:00:30Z");
    assert_eq!(t2[0]["value"], 6000.0);

    // No datapoint left in the evaluation range (3 periods back from 10:18): resolved, and the
    // store says so.
    let t3 = eval(dir.path(), "2026-11-01T10:18:30Z");
    assert_eq!(t3.len(), 1);
    assert_eq!(t3[0]["state"], "resolved");
    assert_eq!(t3[0]["ends_at"], "2026-11-01T10:18:30Z");
    let out = run(
        dir.path(),
        &[
            "alerts",
            "--config",
            "tripline.toml",
            "--all",
            "--format",
            "json",
        ],
    );
    let stored: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["fingerprint"], fp);
    assert_eq!(stored[0]["state"], "resolved");
    assert_eq!(stored[0]["starts_at"], "2026-11-01T10:00:30Z");
}
