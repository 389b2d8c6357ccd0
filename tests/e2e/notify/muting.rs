//! Inhibition and silences through the pipeline, the store and a real webhook receiver.

use super::{alert, engine, mins, resolved};
use crate::support::receiver::Receiver;
use chrono::{DateTime, Utc};
use tripline::alert::{Alert, Severity};
use tripline::pipeline::matcher::Matcher;
use tripline::pipeline::silence::Silence;
use tripline::Tripline;

fn setup(rx: &Receiver, extra: &str) -> (Tripline, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
stock_rules = false
[store]
type = "memory"

[[receiver]]
type = "webhook"
name = "hook"
url = "{}"

[route]
receiver = "hook"
group_by = ["..."]
group_wait = "0s"
group_interval = "1m"

[[inhibit]]
source_matchers = ["severity=critical"]
target_matchers = ["severity=warning"]
equal = ["function"]

[[inhibit]]
source_matchers = ["alertname=WorkerDown"]
target_matchers = ["alertname=~Queue.*"]
equal = ["worker"]
{extra}
"#,
        rx.url("/hook")
    );
    let (e, _) = engine(dir.path(), &config);
    (e, dir)
}

/// Saves the alerts, flushes and delivers at `at`; returns the alertnames+labels delivered.
async fn step(e: &Tripline, rx: &Receiver, alerts: &[Alert], at: DateTime<Utc>) -> Vec<String> {
    e.store().save_alerts(alerts, &[]).await.unwrap();
    e.pipeline().flush(e.store().as_ref(), at).await.unwrap();
    let r = e.outbox().deliver_due(at).await.unwrap();
    assert!(r.retrying.is_empty() && r.dead.is_empty());
    let mut out: Vec<String> = rx
        .accepted()
        .iter()
        .flat_map(|r| {
            r.json()["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    format!(
                        "{} {} {}",
                        a["status"].as_str().unwrap(),
                        a["labels"]["alertname"].as_str().unwrap(),
                        a["labels"]["function"]
                            .as_str()
                            .or(a["labels"]["queue"].as_str())
                            .unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    rx.clear();
    out
}

fn sev_labels<'a>(f: &'a str, s: &'a str) -> [(&'a str, &'a str); 2] {
    [("function", f), ("severity", s)]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn critical_mutes_warning_of_the_same_function_and_worker_down_mutes_its_queues() {
    let rx = Receiver::start();
    let (e, _dir) = setup(&rx, "");
    rt().block_on(async {
        let crit = alert("Errors", &sev_labels("f1", "critical"), Severity::Critical);
        let warn_same = alert("Latency", &sev_labels("f1", "warning"), Severity::Warning);
        let warn_other = alert("Latency", &sev_labels("f2", "warning"), Severity::Warning);
        let down = alert("WorkerDown", &[("worker", "w1")], Severity::Critical);
        let q_w1 = alert(
            "QueueDepth",
            &[("worker", "w1"), ("queue", "jobs")],
            Severity::Warning,
        );
        let q_w2 = alert(
            "QueueAge",
            &[("worker", "w2"), ("queue", "mail")],
            Severity::Warning,
        );
        let all = [
            crit.clone(),
            warn_same.clone(),
            warn_other.clone(),
            down.clone(),
            q_w1.clone(),
            q_w2.clone(),
        ];
        let got = step(&e, &rx, &all, mins(0)).await;
        assert_eq!(
            got,
            [
                "firing Errors f1",
                "firing Latency f2",
                "firing QueueAge mail",
                "firing WorkerDown "
            ]
        );
        // The sources resolve: the muted alerts are announced at once.
        let got = step(
            &e,
            &rx,
            &[resolved(crit, mins(5)), resolved(down, mins(5))],
            mins(5),
        )
        .await;
        assert_eq!(
            got,
            [
                "firing Latency f1",
                "firing QueueDepth jobs",
                "resolved Errors f1",
                "resolved WorkerDown "
            ]
        );
    });
}

#[test]
fn silences_mute_until_they_expire_and_expiry_over_firing_is_noticed() {
    let rx = Receiver::start();
    let (e, _dir) = setup(&rx, "");
    rt().block_on(async {
        let s = Silence::new(
            &[Matcher::parse("function=~f1|f2").unwrap()],
            mins(0),
            mins(60),
            "ann",
            "deploying",
            mins(0),
        )
        .unwrap();
        e.store().add_silence(&s).await.unwrap();
        let a = alert("Errors", &sev_labels("f1", "warning"), Severity::Warning);
        let b = alert("Errors", &sev_labels("f3", "warning"), Severity::Warning);
        assert_eq!(
            step(&e, &rx, &[a.clone(), b.clone()], mins(1)).await,
            ["firing Errors f3"]
        );
        assert!(step(&e, &rx, &[], mins(30)).await.is_empty());

        // Expired by hand at 40m: muting stops at once, and someone is told it still fires.
        assert!(e.store().expire_silence(&s.id, mins(40)).await.unwrap());
        e.store().save_alerts(&[], &[]).await.unwrap();
        let flush = e
            .pipeline()
            .flush(e.store().as_ref(), mins(40))
            .await
            .unwrap();
        assert_eq!(flush.notices.len(), 1, "{:?}", flush.notices);
        assert!(
            flush.notices[0].contains(&format!(
                "silence {} (function=~\"f1|f2\") by ann expired",
                s.id
            )),
            "{}",
            flush.notices[0]
        );
        assert!(flush.notices[0].contains(&a.fingerprint));
        e.outbox().deliver_due(mins(40)).await.unwrap();
        assert_eq!(step(&e, &rx, &[], mins(40)).await, ["firing Errors f1"]);
        let again = e
            .pipeline()
            .flush(e.store().as_ref(), mins(41))
            .await
            .unwrap();
        assert!(again.notices.is_empty(), "noticed once");
    });
}

#[test]
fn resolves_of_silenced_alerts_are_sent_only_when_configured() {
    for (send_resolved, want) in [
        (false, vec![]),
        (true, vec!["resolved Errors f1".to_string()]),
    ] {
        let rx = Receiver::start();
        let (e, _dir) = setup(
            &rx,
            &format!("[silences]\nsend_resolved = {send_resolved}\n"),
        );
        rt().block_on(async {
            let a = alert("Errors", &sev_labels("f1", "warning"), Severity::Warning);
            assert_eq!(
                step(&e, &rx, std::slice::from_ref(&a), mins(0)).await,
                ["firing Errors f1"]
            );
            let s = Silence::new(
                &[Matcher::parse("function=f1").unwrap()],
                mins(1),
                mins(120),
                "ann",
                "",
                mins(1),
            )
            .unwrap();
            e.store().add_silence(&s).await.unwrap();
            let got = step(&e, &rx, &[resolved(a, mins(10))], mins(10)).await;
            assert_eq!(got, want, "send_resolved = {send_resolved}");
        });
    }
}
