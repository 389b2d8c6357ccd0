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

/// Issue #17, points 10 and 11: replica A dies (as by SIGKILL: the injected fault aborts the
/// process) while holding the flush lease, after writing the outbox entries and before the
/// notification log. Replica B delivers those queued entries within seconds although the lease
/// is held; when the lease lapses its own flush plans the same news onto the same ids, so
/// nothing goes out twice. Then replica C dies right after taking the lease: B delivers the next
/// alerts once the lease lapses, each once.
#[test]
fn a_replica_killed_holding_the_flush_lease_costs_no_duplicate_and_no_stall_of_queued_entries() {
    let Some(moto) = Moto::start() else { return };
    let rx = Receiver::start_with(Reply::Status(200));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        config(&moto, &rx.url("/hook")).replace("tripline-replicas", "tripline-takeover"),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = dynamo(&moto, "tripline-takeover");
    let seed = |hosts: std::ops::Range<usize>| {
        let alerts: Vec<_> = hosts
            .map(|i| alert("Slow", &[("host", &format!("h{i}"))], Severity::Warning))
            .collect();
        rt.block_on(store.save_alerts(&alerts, &[])).unwrap();
    };
    let ids = |rx: &Receiver| -> Vec<String> {
        rx.accepted()
            .iter()
            .map(|r| r.header("x-tripline-notification-id").unwrap().to_string())
            .collect()
    };
    seed(0..10);
    let env: Vec<(&str, String)> = moto.env();
    let with = |fault: Option<&'static str>| {
        let mut v: Vec<(&str, String)> = env.clone();
        if let Some(f) = fault {
            v.push(("TRIPLINE_FAILPOINTS", f.to_string()));
        }
        v
    };
    let start = |fault: Option<&'static str>| {
        let v = with(fault);
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Daemon::start(dir.path(), "tripline.toml", &v)
    };

    let mut a = start(Some("flush-after-outbox=abort"));
    a.wait_exit(30);
    let queued = rt.block_on(store.outbox_pending_count()).unwrap();
    assert_eq!(queued, 10, "A queued the news before it died");
    assert!(rx.requests().is_empty(), "A died before sending");

    let t0 = std::time::Instant::now();
    let b = start(None);
    b.wait_for(20, "B delivering A's queued entries", || {
        rx.accepted().len() >= 10
    });
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "queued entries waited for the lease: {took:?}"
    );
    // The lease (30 s) lapses; B's flushes plan the same 10 again, onto the same ids.
    std::thread::sleep(Duration::from_secs(35).saturating_sub(t0.elapsed()));
    let first = ids(&rx);
    assert_eq!(first.len(), 10, "{first:?}");
    assert_eq!(
        first
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        10
    );
    seed(10..13);
    b.wait_for(20, "B flushing again", || rx.accepted().len() >= 13);
    println!(
        "A died between outbox and log holding the lease: B delivered its 10 queued entries {took:.1?} after starting; after the lease lapsed, 13 alerts -> {} POSTs, {} distinct ids",
        ids(&rx).len(),
        ids(&rx).iter().collect::<std::collections::BTreeSet<_>>().len()
    );

    // C takes the lease and dies at once; the alerts seeded after wait for the lease, not longer.
    let mut c = start(Some("flush-after-lock=abort"));
    c.wait_exit(30);
    let killed = std::time::Instant::now();
    seed(13..16);
    b.wait_for(45, "B taking over C's lease", || rx.accepted().len() >= 16);
    let takeover = killed.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let all = ids(&rx);
    let distinct = all.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(all.len(), 16, "{all:?}");
    assert_eq!(distinct, 16);
    assert!(takeover <= Duration::from_secs(40), "{takeover:?}");
    println!("C died holding the lease: the next 3 alerts reached the receiver {takeover:.1?} later (lease 30 s); 16 POSTs, {distinct} distinct ids");
    let log = b.log.lock().unwrap().clone();
    assert!(!log.contains("ERROR"), "{log}");
}
