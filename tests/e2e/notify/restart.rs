//! Durability: the process is killed (SIGKILL) while 100 notifications are pending against a
//! receiver that is down; a new process, with the receiver up, delivers all 100, none twice.

use super::alert;
use crate::support::bin::{stderr, stdout, tripline_bin};
use crate::support::receiver::{Receiver, Reply};
use std::process::{Command, Stdio};
use std::time::Duration;
use tripline::alert::Severity;
use tripline::notify::outbox::OutboxState;
use tripline::store::AlertStore;
use tripline::store::OutboxStore;
use tripline::store::SqliteStore;

#[test]
fn killed_with_100_pending_then_restarted_delivers_each_once() {
    let rx = Receiver::start_with(Reply::Status(503));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
stock_rules = false
[store]
type = "sqlite"
path = "state.db"

[notify]
backoff = "200ms"
max_backoff = "1s"

[[receiver]]
type = "webhook"
name = "hook"
url = "{}"

[route]
receiver = "hook"
group_by = ["..."]
group_wait = "0s"
"#,
        rx.url("/hook")
    );
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
        let alerts: Vec<_> = (0..100)
            .map(|i| {
                alert(
                    "JobFailed",
                    &[("job", &format!("job-{i:03}"))],
                    Severity::Warning,
                )
            })
            .collect();
        store.save_alerts(&alerts, &[]).await.unwrap();
    });

    let mut child = Command::new(tripline_bin())
        .args(["deliver", "--config", "tripline.toml", "--within", "60s"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It is retrying against the dead receiver: the outbox is written.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rx.requests().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first process never tried"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(rx.accepted().is_empty());

    let pending = rt.block_on(async {
        let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
        store.outbox_entries().await.unwrap()
    });
    assert_eq!(pending.len(), 100);
    assert!(pending.iter().all(|e| e.state == OutboxState::Pending));

    rx.reply(Reply::Status(200));
    let out = Command::new(tripline_bin())
        .args(["deliver", "--config", "tripline.toml", "--within", "30s"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("queued 0, delivered 100"),
        "{}",
        stdout(&out)
    );

    let accepted = rx.accepted();
    let mut ids: Vec<String> = accepted
        .iter()
        .map(|r| r.header("x-tripline-notification-id").unwrap().to_string())
        .collect();
    let mut jobs: Vec<String> = accepted
        .iter()
        .map(|r| {
            r.json()["alerts"][0]["labels"]["job"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 100, "delivered exactly 100 times");
    ids.sort();
    ids.dedup();
    jobs.sort();
    jobs.dedup();
    assert_eq!(
        (ids.len(), jobs.len()),
        (100, 100),
        "none twice, none missing"
    );

    // A third run has nothing left to do.
    let out = Command::new(tripline_bin())
        .args(["deliver", "--config", "tripline.toml", "--within", "5s"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("queued 0, delivered 0"),
        "{}",
        stdout(&out)
    );
    assert_eq!(rx.accepted().len(), 100);
}

#[test]
fn two_processes_on_one_store_send_each_notification_once() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "stock_rules = false\n[store]\ntype = \"sqlite\"\npath = \"state.db\"\n\n[[receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n\n[route]\nreceiver = \"hook\"\ngroup_by = [\"...\"]\ngroup_wait = \"0s\"\n",
        rx.url("/hook")
    );
    std::fs::write(dir.path().join("tripline.toml"), config).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
            let alerts: Vec<_> = (0..200)
                .map(|i| {
                    alert(
                        "JobFailed",
                        &[("job", &format!("job-{i:03}"))],
                        Severity::Warning,
                    )
                })
                .collect();
            store.save_alerts(&alerts, &[]).await.unwrap();
        });
    let spawn = || {
        Command::new(tripline_bin())
            .args(["deliver", "--config", "tripline.toml", "--within", "30s"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}{}{}{}",
        stdout(&a),
        stderr(&a),
        stdout(&b),
        stderr(&b)
    );
    let mut ids: Vec<String> = rx
        .accepted()
        .iter()
        .map(|r| r.header("x-tripline-notification-id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 200, "{}{}", stdout(&a), stdout(&b));
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "none twice");
}
