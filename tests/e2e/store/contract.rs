//! One contract for every store. Each test gets two handles `a` and `b` on the same storage (two
//! connections to one SQLite file; two `DynamoStore`s on one moto table, as two replicas have).

use super::{dynamo, sqlite};
use crate::support::moto::Moto;
use chrono::{TimeZone, Utc};
use std::sync::Arc;
use tripline::alert::{Alert, AlertState, Labels, Severity};
use tripline::clock::Timestamp;
use tripline::notify::nflog::NflogEntry;
use tripline::notify::outbox::{OutboxEntry, OutboxState};
use tripline::notify::{Notification, NotificationStatus};
use tripline::pipeline::escalate::Ack;
use tripline::pipeline::group::GroupState;
use tripline::pipeline::silence::Silence;
use tripline::pipeline::{Flush, FlushCommit, NotifyState};
use tripline::store::AlertStore;
use tripline::store::{SqliteStore, Store};

fn t(s: i64) -> Timestamp {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn alert(fp: &str, state: AlertState, ends: Option<i64>) -> Alert {
    Alert {
        fingerprint: fp.into(),
        rule: "r".into(),
        instance: "i".into(),
        labels: [("a".to_string(), "b".to_string())].into(),
        state,
        severity: Severity::High,
        summary: format!("summary of {fp}"),
        runbook: Some("https://runbooks.example.com/r".into()),
        value: Some(1.5),
        details: Default::default(),
        active_since: t(0),
        starts_at: Some(t(0)),
        ends_at: ends.map(t),
        last_active: t(0),
        updated_at: t(0),
        severity_changed_at: None,
        keep_firing_since: None,
    }
}

fn notification(id: &str, receiver: &str, at: i64) -> Notification {
    Notification {
        id: id.into(),
        receiver: receiver.into(),
        status: NotificationStatus::Firing,
        group_key: "g".into(),
        group_labels: Labels::new(),
        alerts: vec![std::sync::Arc::new(alert("f1", AlertState::Firing, None))],
        created_at: t(at),
        acknowledged_by: None,
    }
}

fn silence(id: &str, starts: i64, ends: i64) -> Silence {
    Silence {
        id: id.into(),
        matchers: vec!["team=db".into()],
        starts_at: t(starts),
        ends_at: t(ends),
        created_by: "me".into(),
        comment: "maintenance".into(),
        created_at: t(0),
        expiry_noticed: false,
    }
}

fn nflog(group: &str, receiver: &str) -> NflogEntry {
    NflogEntry {
        group_key: group.into(),
        receiver: receiver.into(),
        firing: [("f1".to_string(), Severity::High)].into(),
        resolved: Default::default(),
        sent_at: t(5),
    }
}

fn flush_of(commit: FlushCommit) -> Flush {
    Flush {
        commit,
        ..Default::default()
    }
}

async fn alerts_and_meta(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    assert!(a.load_alerts().await.unwrap().is_empty());
    let f2 = alert("f2", AlertState::Resolved, Some(100));
    let f1 = alert("f1", AlertState::Firing, None);
    let f3 = alert("f3", AlertState::Resolved, Some(300));
    a.save_alerts(&[f2.clone(), f1.clone(), f3.clone()], &[])
        .await
        .unwrap();
    // Ordered by fingerprint, identical round trip, visible through the other handle.
    assert_eq!(
        b.load_alerts().await.unwrap(),
        vec![f1.clone(), f2.clone(), f3.clone()]
    );
    // Replace by fingerprint and delete in one call.
    let mut f1b = f1.clone();
    f1b.summary = "changed".into();
    b.save_alerts(&[f1b.clone()], &["f3".into()]).await.unwrap();
    assert_eq!(a.load_alerts().await.unwrap(), vec![f1b.clone(), f2]);
    // Prune only resolved alerts that ended before the cut-off.
    assert_eq!(a.prune_resolved(t(100)).await.unwrap(), 0);
    assert_eq!(a.prune_resolved(t(101)).await.unwrap(), 1);
    assert_eq!(b.load_alerts().await.unwrap(), vec![f1b]);

    assert_eq!(a.get_meta("k").await.unwrap(), None);
    a.set_meta("k", "v1").await.unwrap();
    b.set_meta("k", "v2").await.unwrap();
    assert_eq!(a.get_meta("k").await.unwrap().as_deref(), Some("v2"));
}

async fn silences_acks_and_flush_commits(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.add_silence(&silence("s2", 0, 200)).await.unwrap();
    a.add_silence(&silence("s1", 0, 100)).await.unwrap();
    let ids: Vec<String> = b
        .list_silences()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["s1", "s2"], "ordered by end");
    assert!(!b.expire_silence("nope", t(10)).await.unwrap());
    assert!(b.expire_silence("s2", t(50)).await.unwrap());
    // Never moved later, never before its start.
    assert!(b.expire_silence("s1", t(150)).await.unwrap());
    let got = a.list_silences().await.unwrap();
    assert_eq!(
        got.iter()
            .map(|s| (s.id.as_str(), s.ends_at))
            .collect::<Vec<_>>(),
        [("s2", t(50)), ("s1", t(100))]
    );

    let ack = Ack {
        fingerprint: "f1".into(),
        by: "alice".into(),
        at: t(20),
        announced: false,
    };
    a.ack(&ack).await.unwrap();
    a.ack(&Ack {
        by: "bob".into(),
        ..ack.clone()
    })
    .await
    .unwrap();
    let st = b.load_notify_state().await.unwrap();
    assert_eq!(st.acks.len(), 1, "one ack per alert");
    assert_eq!(st.acks[0].by, "bob");
    assert_eq!(st.silences.len(), 2);

    let group = GroupState {
        key: "g1".into(),
        created_at: t(1),
        next_flush: t(31),
        joined: Default::default(),
    };
    b.commit_flush(&FlushCommit {
        nflog: vec![nflog("g1", "ops"), nflog("g0", "pager")],
        groups_saved: vec![group.clone()],
        acks_announced: vec!["f1".into()],
        silences_noticed: vec!["s1".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let st = a.load_notify_state().await.unwrap();
    assert_eq!(st.groups, vec![group]);
    assert_eq!(
        st.nflog
            .iter()
            .map(|e| (e.group_key.as_str(), e.receiver.as_str()))
            .collect::<Vec<_>>(),
        [("g0", "pager"), ("g1", "ops")]
    );
    assert!(st.acks[0].announced);
    assert!(
        st.silences
            .iter()
            .find(|s| s.id == "s1")
            .unwrap()
            .expiry_noticed
    );

    a.commit_flush(&FlushCommit {
        groups_deleted: vec!["g1".into()],
        nflog_deleted: vec![("g1".into(), "ops".into())],
        acks_deleted: vec!["f1".into()],
        silences_deleted: vec!["s2".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let st = b.load_notify_state().await.unwrap();
    assert!(st.groups.is_empty() && st.acks.is_empty());
    assert_eq!(st.nflog.len(), 1);
    assert_eq!(st.silences.len(), 1);
}

async fn flushes_and_the_outbox(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.save_alerts(&[alert("f1", AlertState::Firing, None)], &[])
        .await
        .unwrap();
    // The plan sees the stored alerts and state; its notifications enter the outbox in order.
    let flush = a
        .flush_atomically(&|alerts: &[std::sync::Arc<Alert>], state: &NotifyState| {
            assert_eq!(alerts.len(), 1);
            assert!(state.nflog.is_empty());
            flush_of(FlushCommit {
                notifications: vec![
                    notification("n1", "ops", 10).into(),
                    notification("n2", "pager", 10).into(),
                    notification("n3", "ops", 11).into(),
                ],
                nflog: vec![nflog("g", "ops")],
                ..Default::default()
            })
        })
        .await
        .unwrap();
    assert_eq!(flush.commit.notifications.len(), 3);
    let ids = |v: Vec<OutboxEntry>| -> Vec<String> {
        v.into_iter().map(|e| e.notification.id.clone()).collect()
    };
    assert_eq!(ids(b.outbox_entries().await.unwrap()), ["n1", "n2", "n3"]);
    assert_eq!(ids(b.outbox_due(t(10), 100).await.unwrap()), ["n1", "n2"]);
    assert_eq!(ids(b.outbox_due(t(11), 1).await.unwrap()), ["n1"]);
    assert_eq!(b.outbox_next_due().await.unwrap(), Some(t(10)));

    // The same id again is ignored, not reset.
    a.commit_flush(&FlushCommit {
        notifications: vec![notification("n1", "ops", 99).into()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(a.outbox_entries().await.unwrap().len(), 3);

    // A claim is exclusive; the lease moves the entry out of the due list until it lapses.
    assert!(a.outbox_claim("n1", t(10), t(30)).await.unwrap());
    assert!(!b.outbox_claim("n1", t(10), t(30)).await.unwrap());
    assert!(!b.outbox_claim("n1", t(29), t(49)).await.unwrap());
    assert!(!b.outbox_claim("missing", t(10), t(30)).await.unwrap());
    assert_eq!(ids(b.outbox_due(t(20), 100).await.unwrap()), ["n2", "n3"]);
    // The holder "died": once the lease lapses another process takes the entry over.
    assert_eq!(
        ids(b.outbox_due(t(30), 100).await.unwrap()),
        ["n1", "n2", "n3"]
    );
    assert!(b.outbox_claim("n1", t(30), t(50)).await.unwrap());
    assert!(!a.outbox_claim("n1", t(31), t(51)).await.unwrap());

    // Delivered: never due again.
    let mut e = b
        .outbox_entries()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.notification.id == "n1")
        .unwrap();
    e.state = OutboxState::Delivered;
    e.attempts = 1;
    e.delivered_at = Some(t(31));
    e.next_attempt_at = t(31);
    b.outbox_update(&e).await.unwrap();
    assert!(!a.outbox_claim("n1", t(100), t(120)).await.unwrap());
    let got = a.outbox_entries().await.unwrap();
    assert_eq!(got[0], e);
    assert_eq!(ids(a.outbox_due(t(100), 100).await.unwrap()), ["n2", "n3"]);

    // Defer holds every pending entry of a receiver, never earlier than it was.
    a.outbox_defer("ops", t(60)).await.unwrap();
    a.outbox_defer("ops", t(40)).await.unwrap();
    assert_eq!(ids(b.outbox_due(t(59), 100).await.unwrap()), ["n2"]);
    assert_eq!(ids(b.outbox_due(t(60), 100).await.unwrap()), ["n2", "n3"]);
    assert_eq!(b.outbox_next_due().await.unwrap(), Some(t(10)));

    // Dead letter, then prune delivered and dead entries last touched before the cut-off.
    let mut d = b.outbox_due(t(10), 1).await.unwrap().remove(0);
    assert_eq!(d.notification.id, "n2");
    d.state = OutboxState::Dead;
    d.last_error = Some("HTTP 400".into());
    d.next_attempt_at = t(40);
    a.outbox_update(&d).await.unwrap();
    assert_eq!(b.outbox_next_due().await.unwrap(), Some(t(60)));
    assert_eq!(a.prune_outbox(t(35)).await.unwrap(), 1, "n1 only");
    assert_eq!(ids(b.outbox_entries().await.unwrap()), ["n2", "n3"]);
    assert_eq!(
        a.prune_outbox(t(1000)).await.unwrap(),
        1,
        "n2; n3 is pending"
    );
    assert_eq!(ids(b.outbox_entries().await.unwrap()), ["n3"]);
}

/// Two processes flush at once: the second plans on the first's written state, so the news is
/// queued once; two processes claim one entry at once: one wins.
///
/// `simultaneous = false` (moto): moto checks a condition and applies the write without a lock,
/// so two conditional writes arriving in the same instant can both succeed there (DynamoDB
/// itself evaluates them atomically per item). Against moto the second flush therefore starts
/// while the first holds the lease (it must wait and then see the first's state), and the two
/// claims race only as far as moto can referee them: one after the other.
async fn concurrent_flushes_and_claims(a: Arc<dyn Store>, b: Arc<dyn Store>, simultaneous: bool) {
    let plan = |alerts: &[std::sync::Arc<Alert>], state: &NotifyState| {
        let _ = alerts;
        // Widen the window in which a second process could read the same state.
        std::thread::sleep(std::time::Duration::from_millis(200));
        if state.nflog.iter().any(|e| e.group_key == "race") {
            return Flush::default();
        }
        flush_of(FlushCommit {
            notifications: vec![notification(&format!("race-{}", rand_id()), "ops", 0).into()],
            nflog: vec![nflog("race", "ops")],
            ..Default::default()
        })
    };
    let (ra, rb) = tokio::join!(
        {
            let a = a.clone();
            async move { a.flush_atomically(&plan).await }
        },
        {
            let b = b.clone();
            async move {
                if !simultaneous {
                    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                }
                b.flush_atomically(&plan).await
            }
        }
    );
    let sent = ra.unwrap().commit.notifications.len() + rb.unwrap().commit.notifications.len();
    assert_eq!(sent, 1, "exactly one process queued the news");
    let entries = a.outbox_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    let id = entries[0].notification.id.clone();

    let (ca, cb) = if simultaneous {
        tokio::join!(
            a.outbox_claim(&id, t(0), t(20)),
            b.outbox_claim(&id, t(0), t(20))
        )
    } else {
        let ca = a.outbox_claim(&id, t(0), t(20)).await;
        (ca, b.outbox_claim(&id, t(0), t(20)).await)
    };
    assert_eq!(
        [ca.unwrap(), cb.unwrap()].iter().filter(|w| **w).count(),
        1,
        "exactly one claim wins"
    );
}

fn rand_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn two_sqlite_handles() -> (tempfile::TempDir, Arc<dyn Store>, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    (dir, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_store_contract() {
    let s = sqlite();
    alerts_and_meta(s.clone(), s.clone()).await;
    let (_d, a, b) = two_sqlite_handles();
    alerts_and_meta(a, b).await;
    let (_d, a, b) = two_sqlite_handles();
    silences_acks_and_flush_commits(a, b).await;
    let (_d, a, b) = two_sqlite_handles();
    flushes_and_the_outbox(a, b).await;
    let (_d, a, b) = two_sqlite_handles();
    concurrent_flushes_and_claims(a, b, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_store_contract() {
    let Some(moto) = Moto::start() else { return };
    alerts_and_meta(dynamo(&moto, "t1"), dynamo(&moto, "t1")).await;
    silences_acks_and_flush_commits(dynamo(&moto, "t2"), dynamo(&moto, "t2")).await;
    flushes_and_the_outbox(dynamo(&moto, "t3"), dynamo(&moto, "t3")).await;
    concurrent_flushes_and_claims(dynamo(&moto, "t4"), dynamo(&moto, "t4"), false).await;
    // Everything lives in the one table per store, with its pk/sk keys.
    let data = moto.data();
    let tables = data
        .pointer("/dynamodb/Table")
        .and_then(|t| t.as_array())
        .map(|t| t.len());
    assert!(tables.is_none_or(|n| n == 4), "{tables:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_without_create_table_reports_the_missing_table() {
    let Some(moto) = Moto::start() else { return };
    super::credentials_in_env();
    let s = tripline::store::DynamoStore::new(&super::aws(&moto), "absent", false).unwrap();
    let e = s.load_alerts().await.unwrap_err().to_string();
    assert!(e.contains("ResourceNotFoundException"), "{e}");
}
