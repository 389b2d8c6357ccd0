//! Overlapping deliveries: an HTTP receiver has up to four entries of different groups on their
//! way at once, but only after the pass's first entry went through alone; a group's own
//! entries never overlap. Hanging replies make the overlap visible: four requests that each
//! wait out the whole timeout arrive together, where sending one by one would have sent one,
//! waited out its timeout and stopped the pass.

use super::{alert, engine, secs};
use crate::support::receiver::{Receiver, Reply};
use tripline::alert::Severity;
use tripline::notify::outbox::OutboxState;

fn config(url: &str) -> String {
    format!(
        r#"
stock_rules = false
[store]
type = "memory"

[[receiver]]
type = "webhook"
name = "hook"
url = "{url}"
timeout = "2s"

[route]
receiver = "hook"
group_by = ["alertname"]
group_wait = "0s"
group_interval = "0s"
"#
    )
}

#[test]
fn after_the_first_entry_four_groups_are_in_flight_at_once_and_no_more() {
    let hook = Receiver::start_with(Reply::Hang);
    hook.then(vec![Reply::Status(200)]);
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(dir.path(), &config(&hook.url("/hook")));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Seven groups, one alert each.
        let alerts: Vec<_> = (0..7)
            .map(|i| alert(&format!("Down{i}"), &[("host", "h1")], Severity::Warning))
            .collect();
        e.store().save_alerts(&alerts, &[]).await.unwrap();
        let flush = e
            .pipeline()
            .flush(e.store().as_ref(), secs(0))
            .await
            .unwrap();
        assert_eq!(flush.commit.notifications.len(), 7);
        let report = e.outbox().deliver_due(secs(0)).await.unwrap();
        let requests = hook.requests();
        // The first went alone and was taken; then four at once, all hanging until the timeout;
        // the failures stopped the pass before the last two.
        assert_eq!(requests.len(), 5, "{requests:?}");
        assert_eq!(requests[0].answered, 200);
        assert!(requests[1..].iter().all(|r| r.answered == 0));
        let first_hung = requests[1].at;
        let spread = requests[4].at.duration_since(first_hung);
        assert!(
            spread < std::time::Duration::from_secs(2),
            "the four hung requests were sent together, not one timeout after another: {spread:?}"
        );
        assert_eq!(report.delivered.len(), 1);
        assert_eq!(report.retrying.len(), 4);
        assert_eq!(report.paced, 2);
        let groups: std::collections::BTreeSet<String> = requests
            .iter()
            .map(|r| r.json()["groupLabels"]["alertname"].to_string())
            .collect();
        assert_eq!(groups.len(), 5, "five different groups: {groups:?}");
        let entries = e.store().outbox_entries().await.unwrap();
        let delivered = entries
            .iter()
            .filter(|x| x.state == OutboxState::Delivered)
            .count();
        assert_eq!(delivered, 1);
    });
}
