//! The storm through the real daemon (issue #15): 100,000 alerts in 100 groups, 1,000 per
//! `POST /api/v2/alerts`, through `tripline run` to a recording webhook receiver, once with the
//! incremental plan and once with `TRIPLINE_FULL_REPLAN=1` (every plan a full one, the
//! reference). Which flush carries which alerts depends on timing; what each group finally
//! tells the receiver does not: the message of each group that covers all its alerts. Both runs
//! must give the same such messages, byte for byte; the test prints their digest
//! (`storm digest: …`), which a build of older code must print alike.
//!
//! Ignored by default (minutes in a debug build); run it with
//! `cargo test --workspace --test e2e -- --ignored storm_` (`TRIPLINE_BIN` picks a release
//! binary, `TRIPLINE_TEST_STORM_ALERTS` another size, a multiple of 1,000).

use crate::support::daemon::Daemon;
use crate::support::http::request;
use crate::support::receiver::Receiver;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const GROUPS: usize = 100;
const BATCH: usize = 1000;
const TOKEN: &str = "st0rm";

fn config(receiver: &Receiver) -> String {
    format!(
        r#"stock_rules = false

[server]
listen = "127.0.0.1:0"

[store]
type = "sqlite"
path = "state.db"

[route]
receiver = "sink"
group_by = ["alertname", "group"]
group_wait = "1s"
group_interval = "2s"
repeat_interval = "4h"

[[receiver]]
type = "webhook"
name = "sink"
url = "{}"
send_resolved = false
"#,
        receiver.url("/hook")
    )
}

/// The POST bodies: fixed instants, so two runs (and two builds) post the same alerts.
fn bodies(n: usize) -> Vec<String> {
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "labels": {
                    "alertname": "StormAlert",
                    "group": format!("g{:04}", i % GROUPS),
                    "instance": format!("host-{i:07}"),
                    "severity": "warning",
                },
                "annotations": {"summary": format!("storm alert {i}")},
                "startsAt": "2026-12-01T00:00:00Z",
                "endsAt": "2099-01-01T00:00:00Z",
                "generatorURL": "http://storm/graph",
            })
        })
        .collect();
    alerts
        .chunks(BATCH)
        .map(|c| serde_json::to_string(c).unwrap())
        .collect()
}

/// FNV-1a, 64 bits: a digest stable across builds and toolchains.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

struct Outcome {
    digest: u64,
    messages: usize,
    notified_after: Duration,
}

/// One run: posts `n` alerts, waits until every group's messages cover its alerts, and digests
/// each group's covering message.
fn storm(n: usize, full_replan: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    std::fs::write(dir.path().join("tripline.toml"), config(&receiver)).unwrap();
    let mut env = vec![("TRIPLINE_API_TOKEN", TOKEN)];
    if full_replan {
        env.push((tripline::pipeline::FULL_REPLAN_ENV, "1"));
    }
    let d = Daemon::start(dir.path(), "tripline.toml", &env);
    let auth = format!("Bearer {TOKEN}");
    let started = Instant::now();
    for body in bodies(n) {
        let r = request(
            &d.addr,
            "POST",
            "/api/v2/alerts",
            &[("Authorization", &auth)],
            &body,
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let per_group = n / GROUPS;
    // Per group: the firing count of its largest message so far, and that message.
    let mut covering: BTreeMap<String, (usize, serde_json::Value)> = BTreeMap::new();
    let mut seen = 0;
    let mut messages = 0;
    d.wait_for(900, "every group's alerts notified", || {
        let accepted = receiver.accepted();
        for r in &accepted[seen..] {
            let msg = r.json();
            messages += 1;
            let alerts = msg["alerts"].as_array().unwrap();
            let key = msg["groupLabels"].to_string();
            for a in alerts {
                assert_eq!(a["status"], "firing");
                assert_eq!(a["labels"]["group"], msg["groupLabels"]["group"]);
            }
            let firing = alerts.len();
            if covering.get(&key).is_none_or(|(c, _)| firing > *c) {
                covering.insert(key, (firing, msg));
            }
        }
        seen = accepted.len();
        covering.len() == GROUPS && covering.values().all(|(c, _)| *c == per_group)
    });
    let notified_after = started.elapsed();
    let mut digest = 0xcbf2_9ce4_8422_2325;
    for (key, (_, msg)) in &covering {
        digest = fnv(key.as_bytes(), digest);
        digest = fnv(msg.to_string().as_bytes(), digest);
    }
    Outcome {
        digest,
        messages,
        notified_after,
    }
}

#[test]
#[ignore = "minutes in a debug build: cargo test --workspace --test e2e -- --ignored storm_"]
fn storm_of_100k_alerts_notifies_the_same_as_the_full_replan() {
    let n: usize = std::env::var("TRIPLINE_TEST_STORM_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    assert!(
        n.is_multiple_of(BATCH) && n.is_multiple_of(GROUPS) && n > 0,
        "{n}: a multiple of 1,000"
    );
    let inc = storm(n, false);
    let full = storm(n, true);
    for (name, o) in [("incremental", &inc), ("full re-plan", &full)] {
        println!(
            "storm: {name}: {n} alerts, {} messages, all notified after {:.2} s",
            o.messages,
            o.notified_after.as_secs_f64()
        );
    }
    println!("storm digest: {n} alerts, {:016x}", inc.digest);
    assert_eq!(
        inc.digest, full.digest,
        "the groups' covering messages differ between the incremental and the full plan"
    );
}
