//! A flush that fails halfway must not send everything twice (issue #17, point 10), with a fault
//! injected into each real store: SQLite's flush is one transaction, so a failing notification-log
//! write (a trigger raising inside it) leaves nothing queued; DynamoDB's flush writes the outbox
//! first, so a failure after the outbox (`DynamoStore::inject_fault`) leaves entries whose re-plan
//! lands on the same ids. Either way the receiver gets each notification once.

use super::{aws, credentials_in_env};
use crate::notify::{alert, secs};
use crate::support::moto::Moto;
use crate::support::receiver::{Receiver, Reply};
use std::collections::BTreeSet;
use std::sync::Arc;
use tripline::alert::Severity;
use tripline::assembly::{self as wire, WireOptions};
use tripline::clock::ManualClock;
use tripline::config::Config;
use tripline::store::dynamodb::Fault;
use tripline::store::OutboxStore;
use tripline::store::{DynamoStore, SqliteStore, Store};
use tripline::Tripline;

fn engine(dir: &std::path::Path, hook: &str, store: Arc<dyn Store>) -> Tripline {
    let path = dir.join("tripline.toml");
    std::fs::write(
        &path,
        format!(
            r#"
stock_rules = false
[[receiver]]
type = "webhook"
name = "hook"
url = "{hook}"

[route]
receiver = "hook"
group_by = ["host"]
group_wait = "0s"
"#
        ),
    )
    .unwrap();
    let cfg = Config::load(&path).unwrap();
    wire::build(
        &cfg,
        WireOptions {
            clock: Arc::new(ManualClock::new(secs(0))),
            store: Some(store),
            ..Default::default()
        },
    )
    .unwrap()
}

async fn seed(store: &dyn Store) {
    let alerts: Vec<_> = (0..10)
        .map(|i| alert("Slow", &[("host", &format!("h{i}"))], Severity::Warning))
        .collect();
    store.save_alerts(&alerts, &[]).await.unwrap();
}

fn ids(rx: &Receiver) -> Vec<String> {
    rx.accepted()
        .iter()
        .map(|r| r.header("x-tripline-notification-id").unwrap().to_string())
        .collect()
}

fn assert_once_each(rx: &Receiver, n: usize) {
    let all = ids(rx);
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), n, "{all:?}");
    assert_eq!(distinct.len(), n, "a notification went out twice: {all:?}");
}

#[tokio::test]
async fn sqlite_a_failing_log_write_rolls_the_whole_flush_back() {
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
    let e = engine(dir.path(), &rx.url("/hook"), sqlite.clone());
    seed(sqlite.as_ref()).await;
    // The fault: SQLite itself refuses the notification-log write, inside the flush.
    sqlite
        .with_conn(|c| {
            c.execute_batch(
                "CREATE TRIGGER fault BEFORE INSERT ON nflog BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
            )
        })
        .unwrap();
    let err = e.notify_at(secs(0)).await.unwrap_err().to_string();
    assert!(err.contains("injected fault"), "{err}");
    assert_eq!(
        sqlite.outbox_entries().await.unwrap().len(),
        0,
        "rolled back"
    );
    assert!(rx.requests().is_empty());
    sqlite
        .with_conn(|c| c.execute_batch("DROP TRIGGER fault;"))
        .unwrap();
    for s in 1..=3 {
        e.notify_at(secs(s)).await.unwrap();
    }
    assert_once_each(&rx, 10);
    println!("sqlite: flush failed at the log write, re-flushed: 10 POSTs for 10 groups");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_a_flush_failing_after_the_outbox_is_replanned_onto_the_same_ids() {
    let Some(moto) = Moto::start() else { return };
    credentials_in_env();
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    let dynamo = Arc::new(DynamoStore::new(&aws(&moto), "tripline-halfway", true).unwrap());
    let e = engine(dir.path(), &rx.url("/hook"), dynamo.clone());
    seed(dynamo.as_ref()).await;
    dynamo.inject_fault("flush-after-outbox", Fault::Error);
    // The flush writes 10 outbox entries, then fails before the notification log. The delivery
    // pass of the same call still sends what is queued.
    let err = e.notify_at(secs(0)).await.unwrap_err().to_string();
    assert!(
        err.contains("injected fault at flush-after-outbox"),
        "{err}"
    );
    let first: BTreeSet<String> = dynamo
        .outbox_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.notification.id.clone())
        .collect();
    assert_eq!(first.len(), 10);
    // Later flushes plan the same news again (the log never recorded it) at other instants:
    // same ids, kept once.
    for s in 1..=5 {
        let (flush, _) = e.notify_at(secs(s)).await.unwrap();
        for n in &flush.commit.notifications {
            assert!(
                first.contains(&n.id),
                "a new id {} for re-planned news",
                n.id
            );
        }
    }
    assert_eq!(dynamo.outbox_entries().await.unwrap().len(), 10);
    assert_once_each(&rx, 10);
    println!("dynamodb: flush failed after the outbox, re-planned at 5 later instants: 10 POSTs for 10 groups, 10 distinct ids");
}
