//! Tripline's Alertmanager-compatible `POST /api/v2/alerts`: alerts in the JSON Prometheus sends
//! go through Tripline's pipeline and reach a receiver — posted by hand here, and by Debian's
//! Prometheus 2.42 itself in `prometheus`.

mod prometheus;

use crate::support::daemon::Daemon;
use crate::support::http::request;
use crate::support::receiver::Receiver;
use std::time::Duration;

fn tripline_with_webhook(dir: &std::path::Path, receiver: &Receiver) -> Daemon {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\ntype = \"sqlite\"\npath = \"state.db\"\n\n[[receiver]]\ntype = \"webhook\"\nname = \"ops\"\nurl = \"{}\"\n",
        receiver.url("/hook")
    );
    std::fs::write(dir.join("tripline.toml"), config).unwrap();
    Daemon::start(dir, "tripline.toml", &[("TRIPLINE_API_TOKEN", "t0ken")])
}

#[test]
fn posted_alerts_need_the_token_and_reach_a_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let d = tripline_with_webhook(dir.path(), &receiver);
    let body = r#"[{"labels":{"alertname":"QueueDeep","queue":"email","severity":"warning"},"annotations":{"summary":"email queue is deep"}}]"#;
    assert_eq!(
        request(&d.addr, "POST", "/api/v2/alerts", &[], body)
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        request(
            &d.addr,
            "POST",
            "/api/v2/alerts",
            &[("Authorization", "Bearer t0ken")],
            "{not json"
        )
        .unwrap()
        .status,
        400
    );
    assert_eq!(
        request(
            &d.addr,
            "POST",
            "/api/v2/alerts",
            &[("Authorization", "Bearer t0ken")],
            body
        )
        .unwrap()
        .status,
        200
    );
    assert!(
        receiver.wait_accepted(1, Duration::from_secs(20)),
        "no notification; log:\n{}",
        d.log.lock().unwrap()
    );
    let msg = receiver.accepted()[0].json();
    assert_eq!(msg["status"], "firing");
    assert_eq!(msg["alerts"][0]["labels"]["alertname"], "QueueDeep");
    assert_eq!(
        msg["alerts"][0]["annotations"]["summary"],
        "email queue is deep"
    );
}
