//! The Redis source against a real redis-server: list/zset/stream lengths, INFO fields and
//! BullMQ job counts laid out as BullMQ stores them (runbook 004's queues).

use super::{failure, fetch_one, series, series_set, spec};
use crate::support::redis::Redis;
use serde_json::json;
use tripline::source::{RedisOptions, RedisSource, Source};

fn seed_bullmq(r: &Redis, queue: &str, wait: usize, active: usize, zsets: &[(&str, usize)]) {
    for i in 0..wait {
        r.cmd(&["LPUSH", &format!("{queue}:wait"), &format!("w{i}")]);
    }
    for i in 0..active {
        r.cmd(&["LPUSH", &format!("{queue}:active"), &format!("a{i}")]);
    }
    for (state, n) in zsets {
        for i in 0..*n {
            r.cmd(&[
                "ZADD",
                &format!("{queue}:{state}"),
                &format!("{}", 1_700_000_000_000u64 + i as u64),
                &format!("{state}{i}"),
            ]);
        }
    }
    r.cmd(&[
        "HSET",
        &format!("{queue}:meta"),
        "opts.maxLenEvents",
        "10000",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_info_fields_and_bullmq_queues_come_from_redis() {
    let Some(r) = Redis::start() else { return };
    seed_bullmq(
        &r,
        "bull:intelliflow:events",
        5,
        2,
        &[("failed", 4), ("delayed", 1), ("completed", 7)],
    );
    seed_bullmq(
        &r,
        "bull:intelliflow:notifications:email",
        1,
        0,
        &[("failed", 2)],
    );
    // The runbook's own `redis-cli LLEN intelliflow:events:wait`.
    for i in 0..3 {
        r.cmd(&["RPUSH", "intelliflow:events:wait", &format!("job{i}")]);
    }
    r.cmd(&[
        "XADD",
        "bull:intelliflow:events:events",
        "*",
        "event",
        "added",
    ]);
    r.cmd(&[
        "XADD",
        "bull:intelliflow:events:events",
        "*",
        "event",
        "completed",
    ]);
    r.cmd(&["SET", "intelliflow:outbox:lag", "42.5"]);
    r.cmd(&["SET", "not-a-number", "hello"]);

    let src = RedisSource::new(RedisOptions::url(r.url())).unwrap();
    let specs = [
        spec(
            "redis",
            json!({"command": "LLEN", "key": "intelliflow:events:wait"}),
        ),
        spec(
            "redis",
            json!({"command": "ZCARD", "key": "bull:intelliflow:events:failed"}),
        ),
        spec(
            "redis",
            json!({"command": "XLEN", "key": "bull:intelliflow:events:events"}),
        ),
        spec(
            "redis",
            json!({"command": "INFO", "field": "connected_clients"}),
        ),
        spec(
            "redis",
            json!({"command": "INFO", "field": "used_memory", "section": "memory"}),
        ),
        spec(
            "redis",
            json!({"command": "BULLMQ", "queue": "bull:intelliflow:events"}),
        ),
        spec(
            "redis",
            json!({"command": "BULLMQ", "prefix": "bull", "queue": "intelliflow:notifications:email",
                   "states": ["wait", "failed"]}),
        ),
        spec(
            "redis",
            json!({"command": "GET", "key": "intelliflow:outbox:lag"}),
        ),
        spec("redis", json!({"command": "GET", "key": "absent"})),
        spec("redis", json!({"command": "LLEN", "key": "absent"})),
        // Errors: a key of the wrong type, a non-numeric value, an unknown INFO field.
        spec(
            "redis",
            json!({"command": "LLEN", "key": "bull:intelliflow:events:failed"}),
        ),
        spec("redis", json!({"command": "GET", "key": "not-a-number"})),
        spec(
            "redis",
            json!({"command": "INFO", "field": "no_such_field"}),
        ),
    ];
    let ctx = super::ctx(20);
    let out = src.fetch(&specs, &ctx).await;

    let llen = series(&out[0]);
    assert_eq!(llen.last(), Some(3.0));
    assert_eq!(llen.name, "intelliflow:events:wait");
    assert_eq!(llen.labels["command"], "LLEN");
    assert_eq!(llen.points[0].ts, ctx.at);
    assert_eq!(series(&out[1]).last(), Some(4.0));
    assert_eq!(series(&out[2]).last(), Some(2.0));
    assert!(series(&out[3]).last().unwrap() >= 1.0);
    assert!(series(&out[4]).last().unwrap() > 0.0);

    let bull = series_set(&out[5]);
    let state = |set: &[tripline::data::Series], s: &str| {
        set.iter()
            .find(|x| x.labels.get("state").map(String::as_str) == Some(s))
            .unwrap_or_else(|| panic!("no {s} series"))
            .last()
    };
    assert_eq!(state(bull, "wait"), Some(5.0));
    assert_eq!(state(bull, "active"), Some(2.0));
    assert_eq!(state(bull, "failed"), Some(4.0));
    assert_eq!(state(bull, "delayed"), Some(1.0));
    assert_eq!(state(bull, "completed"), Some(7.0));
    assert_eq!(state(bull, "paused"), Some(0.0));
    assert_eq!(state(bull, "prioritized"), Some(0.0));
    assert!(bull
        .iter()
        .all(|s| s.labels["queue"] == "bull:intelliflow:events"));
    let email = series_set(&out[6]);
    assert_eq!(email.len(), 2);
    assert_eq!(state(email, "wait"), Some(1.0));
    assert_eq!(state(email, "failed"), Some(2.0));

    assert_eq!(series(&out[7]).last(), Some(42.5));
    assert!(series(&out[8]).is_empty(), "an absent key has no value");
    assert_eq!(series(&out[9]).last(), Some(0.0));

    assert!(
        failure(&out[10]).message.contains("WRONGTYPE"),
        "{:?}",
        out[10]
    );
    assert!(
        failure(&out[11]).message.contains("not a number"),
        "{:?}",
        out[11]
    );
    assert!(
        failure(&out[12]).message.contains("no_such_field"),
        "{:?}",
        out[12]
    );

    // The connection is kept and still good after the errors.
    let o = fetch_one(
        &src,
        spec(
            "redis",
            json!({"command": "LLEN", "key": "intelliflow:events:wait"}),
        ),
    )
    .await;
    assert_eq!(series(&o).last(), Some(3.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_failure_naming_the_server() {
    let Some(mut r) = Redis::start() else { return };
    let port = r.port;
    let src = RedisSource::new(RedisOptions::url(r.url())).unwrap();
    let q = spec(
        "redis",
        json!({"command": "LLEN", "key": "intelliflow:events:wait"}),
    );
    assert_eq!(series(&fetch_one(&src, q.clone()).await).last(), Some(0.0));
    r.stop();
    // The kept connection breaks first, then reconnecting is refused.
    let mut last = None;
    for _ in 0..2 {
        let o = fetch_one(&src, q.clone()).await;
        last = Some(failure(&o).message.clone());
    }
    let m = last.unwrap();
    assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
    assert!(m.to_lowercase().contains("refused"), "{m}");
}
