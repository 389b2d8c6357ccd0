//! The pipeline inside `tripline run`: group waits and paced deliveries happen between cycles,
//! silences and acks arrive through the API, SIGTERM drains the outbox.

use super::alert;
use crate::support::daemon::Daemon;
use crate::support::http::request;
use crate::support::receiver::{Receiver, Reply};
use tripline::alert::Severity;
use tripline::store::AlertStore;
use tripline::store::SqliteStore;

const TOKEN: &[(&str, &str)] = &[("Authorization", "Bearer t0ken")];

#[test]
fn delivers_between_cycles_and_takes_silences_and_acks_over_the_api() {
    let rx = Receiver::start_with(Reply::Status(202));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
stock_rules = false
[server]
listen = "127.0.0.1:0"

[store]
type = "sqlite"
path = "state.db"

[[receiver]]
type = "webhook"
name = "hook"
url = "{hook}"
rate_limit = "5/s"

[[receiver]]
type = "pagerduty"
name = "pd"
routing_key_env = "TRIPLINE_DAEMON_PD_KEY"
url = "{pd}"

[route]
receiver = "hook"
group_by = ["..."]
group_wait = "1s"
  [[route.routes]]
  matchers = ["severity=critical"]
  receiver = "pd"
"#,
        hook = rx.url("/hook"),
        pd = rx.url("/v2/enqueue")
    );
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    let page = alert("Outage", &[("severity", "critical")], Severity::Critical);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
            let mut alerts: Vec<_> = (0..10)
                .map(|i| alert("Slow", &[("host", &format!("h{i}"))], Severity::Warning))
                .collect();
            alerts.push(page.clone());
            store.save_alerts(&alerts, &[]).await.unwrap();
        });

    let mut d = Daemon::start(
        dir.path(),
        "tripline.toml",
        &[
            ("TRIPLINE_API_TOKEN", "t0ken"),
            ("TRIPLINE_DAEMON_PD_KEY", "daemon-key"),
        ],
    );
    // No rule is scheduled: only the notify loop can deliver these.
    d.wait_for(30, "11 deliveries", || rx.accepted().len() >= 11);
    let hook = rx.accepted().iter().filter(|r| r.path == "/hook").count();
    assert_eq!(hook, 10);

    // Silences over the API.
    let created = request(
        &d.addr,
        "POST",
        "/api/v1/silences",
        TOKEN,
        r#"{"matchers": ["host=h1"], "duration": "1h", "created_by": "ann", "comment": "reboot"}"#,
    )
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let id = serde_json::from_str::<serde_json::Value>(&created.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bad = request(
        &d.addr,
        "POST",
        "/api/v1/silences",
        TOKEN,
        r#"{"matchers": ["host=~("], "duration": "1h"}"#,
    )
    .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    let list = request(&d.addr, "GET", "/api/v1/silences", TOKEN, "").unwrap();
    assert!(
        list.body.contains(&id) && list.body.contains("reboot"),
        "{}",
        list.body
    );
    let gone = request(
        &d.addr,
        "DELETE",
        &format!("/api/v1/silences?id={id}"),
        TOKEN,
        "",
    )
    .unwrap();
    assert_eq!(gone.status, 200, "{}", gone.body);

    // An ack over the API reaches PagerDuty at once.
    let acked = request(
        &d.addr,
        "POST",
        &format!("/api/v1/alerts/{}/ack", page.fingerprint),
        TOKEN,
        r#"{"by": "bob"}"#,
    )
    .unwrap();
    assert_eq!(acked.status, 200, "{}", acked.body);
    let pd: Vec<String> = rx
        .accepted()
        .iter()
        .filter(|r| r.path == "/v2/enqueue")
        .map(|r| r.json()["event_action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pd, ["trigger", "acknowledge"]);
    let missing = request(
        &d.addr,
        "POST",
        "/api/v1/alerts/0000000000000000/ack",
        TOKEN,
        "",
    )
    .unwrap();
    assert_eq!(missing.status, 404);

    d.signal("TERM");
    assert_eq!(d.wait_exit(30), Some(0));
}
