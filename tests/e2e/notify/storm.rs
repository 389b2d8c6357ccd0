//! A storm: 5,000 alerts in 50 groups reach Slack as at most 50 messages, paced at Slack's
//! 1/s, with none lost although Slack answers 429 `Retry-After: 20` for the first 20 seconds.
//! Time is a manual clock: the test walks it a second at a time instead of waiting.

use super::{alert, engine, secs};
use crate::support::receiver::{Receiver, Reply};
use tripline::alert::Severity;
use tripline::notify::outbox::OutboxState;

#[test]
fn five_thousand_alerts_fifty_messages_paced_none_lost() {
    let rx = Receiver::start_with(Reply::TooManyRequests {
        retry_after_secs: 20,
    });
    std::env::set_var("TRIPLINE_TEST_STORM_SLACK", rx.url("/services/T0/B0/storm"));
    let dir = tempfile::tempdir().unwrap();
    let (e, _clock) = engine(
        dir.path(),
        r#"
stock_rules = false
[store]
type = "memory"

[[receiver]]
type = "slack"
name = "slack"
url_env = "TRIPLINE_TEST_STORM_SLACK"

[route]
receiver = "slack"
group_by = ["service"]
group_wait = "30s"
"#,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let alerts: Vec<_> = (0..5000)
            .map(|i| {
                alert(
                    "HighLatency",
                    &[
                        ("service", &format!("svc-{:02}", i % 50)),
                        ("host", &format!("h-{i}")),
                    ],
                    Severity::Warning,
                )
            })
            .collect();
        e.store().save_alerts(&alerts, &[]).await.unwrap();

        // group_wait holds the first flush.
        assert!(e
            .pipeline()
            .flush(e.store().as_ref(), secs(0))
            .await
            .unwrap()
            .commit
            .notifications
            .is_empty());
        let queued = e
            .pipeline()
            .flush(e.store().as_ref(), secs(30))
            .await
            .unwrap()
            .commit
            .notifications;
        assert_eq!(queued.len(), 50);

        let mut delivered_at = Vec::new();
        for s in 30..=130 {
            if s >= 50 {
                rx.reply(Reply::Status(200));
            }
            let r = e.outbox().deliver_due(secs(s)).await.unwrap();
            assert!(r.dead.is_empty(), "{:?}", r.dead);
            delivered_at.extend(r.delivered.iter().map(|_| s));
        }

        // Slack asked once to slow down, and was left alone for the 20 s it asked.
        let reqs = rx.requests();
        assert_eq!(reqs.iter().filter(|r| r.answered == 429).count(), 1);
        assert!(delivered_at.iter().all(|&s| s >= 50), "{delivered_at:?}");
        // Paced: one message a second, none lost, none twice.
        assert_eq!(delivered_at.len(), 50);
        assert_eq!(delivered_at, (50..100).collect::<Vec<_>>());
        let accepted = rx.accepted();
        assert_eq!(accepted.len(), 50);
        let mut ids: Vec<&str> = accepted
            .iter()
            .map(|r| r.header("x-tripline-notification-id").unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 50);
        // Every alert is accounted for: each message announces its 100.
        let mut announced = 0;
        for r in &accepted {
            let body = r.json();
            let blocks = body["attachments"][0]["blocks"].as_array().unwrap();
            assert!(blocks.len() <= 50);
            let header = blocks[0]["text"]["text"].as_str().unwrap();
            let n: usize = header
                .split("[FIRING:")
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            announced += n;
            assert!(blocks.last().unwrap()["elements"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("…and 80 more"));
        }
        assert_eq!(announced, 5000);
        let entries = e.store().outbox_entries().await.unwrap();
        assert!(entries.iter().all(|x| x.state == OutboxState::Delivered));
        assert_eq!(
            entries
                .iter()
                .map(|x| x.notification.alerts.len())
                .sum::<usize>(),
            5000
        );
    });
}
