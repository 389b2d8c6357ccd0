//! Embedding Tripline in a host program (push mode): a worker that already knows its own numbers
//! pushes them as series, evaluates a rule at an instant of its choosing, and receives the
//! notifications through a receiver it implements itself.
//!
//! Run it: `cargo run -p tripline-embed-example`

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use tripline::data::{QueryData, Series};
use tripline::notify::{Notification, Notifier, NotifyError};
use tripline::{InstanceSpec, Tripline};

/// The host's own rule: the backlog of its in-process queue.
const RULE: &str = r#"
const RULE = #{
    id: "host/backlog",
    severity: "warning",
    runbook: "https://runbooks.example.com/host#backlog",
    params: #{ threshold: 100 },
};

fn query(p) { #{ backlog: pushed("backlog") } }

fn evaluate(d, p) {
    let v = d.backlog.last();
    if v != () && v > p.threshold {
        fire(#{ summary: `backlog is ${fmt_number(v)} jobs`, value: v, labels: #{ queue: "emails" } });
    }
}
"#;

/// The host's receiver: here it just keeps what it is given.
#[derive(Default)]
struct Inbox(Mutex<Vec<Notification>>);

#[async_trait]
impl Notifier for Inbox {
    fn name(&self) -> &str {
        "inbox"
    }
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.0.lock().expect("inbox lock").push(n.clone());
        Ok(())
    }
}

/// Builds the engine, pushes a backlog of `backlog`, evaluates at `at`, and returns what the
/// inbox received.
pub async fn evaluate_backlog(
    backlog: f64,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<Notification>> {
    let inbox = Arc::new(Inbox::default());
    let engine = Tripline::builder()
        .stock_rules(false)
        .rule_source("host/backlog.rhai", RULE)
        .instance(InstanceSpec::new("email-backlog", "host/backlog").param("threshold", 100))
        .notifier(inbox.clone())
        .build()?;
    engine.push(
        "backlog",
        QueryData::Series(Series::new("backlog").with_points(60, [(at, backlog)])),
    );
    engine.run_cycle_at(at, None).await?;
    let got = inbox.0.lock().expect("inbox lock").clone();
    Ok(got)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let got = evaluate_backlog(250.0, chrono::Utc::now()).await?;
    for n in &got {
        for a in &n.alerts {
            println!(
                "{} {} {} runbook={}",
                n.receiver,
                a.severity,
                a.summary,
                a.runbook.as_deref().unwrap_or("-")
            );
        }
    }
    anyhow::ensure!(!got.is_empty(), "the receiver got no notification");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_host_receiver_gets_the_alert() {
        let got = evaluate_backlog(250.0, chrono::Utc::now()).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].alerts[0].summary, "backlog is 250 jobs");
        assert_eq!(got[0].alerts[0].labels["queue"], "emails");
        assert_eq!(
            got[0].alerts[0].runbook.as_deref(),
            Some("https://runbooks.example.com/host#backlog")
        );
    }

    #[tokio::test]
    async fn a_small_backlog_sends_nothing() {
        assert!(evaluate_backlog(20.0, chrono::Utc::now())
            .await
            .unwrap()
            .is_empty());
    }
}
