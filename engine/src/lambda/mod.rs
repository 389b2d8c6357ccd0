//! The scheduled-Lambda entry, without the Lambda runtime itself (that lives in the
//! `tripline-lambda` binary behind the `lambda` feature), so the handler can be called and tested
//! like any function.
//!
//! One invocation = one cycle over every rule instance + one notification pass (which is part of
//! the cycle), with state in the configured store — DynamoDB for a Lambda, since nothing else
//! survives between invocations. The cycle runs at the scheduled event's `time` (so a retried
//! invocation evaluates the same instant); an event without `time` runs at the current time.

use crate::assembly::{self as wire, WireOptions};
use crate::clock::{ManualClock, Timestamp};
use crate::config::{Config, StoreConfig};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the config is read from: `TRIPLINE_CONFIG`, else `/var/task/tripline.toml` (the root of
/// the deployment package).
pub fn config_path() -> PathBuf {
    std::env::var_os("TRIPLINE_CONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/task/tripline.toml"))
}

/// How long before the invocation's deadline delivery stops, leaving time to write the state
/// and return.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// What one invocation returns (the Lambda's JSON result).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The instant the cycle ran at.
    pub at: String,
    pub rules_evaluated: usize,
    /// Alerts after the cycle by state (`pending`, `firing`, `resolved` this cycle).
    pub alerts_by_state: BTreeMap<String, usize>,
    /// Notifications delivered by this invocation (its cycle's pass and what it delivered
    /// within its budget after).
    pub notifications_sent: usize,
    /// Notifications the pipeline queued this cycle (delivered now or by a later invocation).
    pub notifications_queued: usize,
    pub rule_errors: usize,
    pub source_errors: usize,
    pub delivery_errors: usize,
}

/// The instant a scheduled event names (`time`, RFC 3339), if any.
pub fn event_time(event: &serde_json::Value) -> Result<Option<Timestamp>> {
    match event.get("time").and_then(|t| t.as_str()) {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| Error::Config(format!("event time {s:?}: {e}"))),
    }
}

/// The handler: loads the config (once per cold start), runs one cycle at the event's time.
pub struct Handler {
    cfg: Config,
}

impl Handler {
    /// Reads and checks the config at `path`. A store other than DynamoDB is allowed (for tests
    /// and local runs) but logged: a Lambda's disk does not outlive the execution environment.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self> {
        let cfg = Config::load(&path.into())?;
        if !matches!(cfg.raw.store, StoreConfig::Dynamodb(_)) {
            tracing::warn!(
                "[store] is not dynamodb: alert state and the outbox will not survive the execution environment"
            );
        }
        Ok(Handler { cfg })
    }

    /// Runs one cycle for `event` (an EventBridge scheduled event, or any JSON object), then
    /// delivers what comes due within `[notify] deliver_budget`.
    pub async fn handle(&self, event: &serde_json::Value) -> Result<Summary> {
        self.handle_within(event, None).await
    }

    /// `handle` for an invocation that must end by `deadline` (the Lambda context's): delivery
    /// stops [`DEADLINE_MARGIN`] before it, or at the budget if that comes first.
    pub async fn handle_within(
        &self,
        event: &serde_json::Value,
        deadline: Option<std::time::SystemTime>,
    ) -> Result<Summary> {
        let at = event_time(event)?.unwrap_or_else(chrono::Utc::now);
        let engine = wire::build(
            &self.cfg,
            WireOptions {
                clock: Arc::new(ManualClock::new(at)),
                ..Default::default()
            },
        )?;
        let mut report = engine.run_cycle_at(at, None).await?;
        let mut budget = wire::deliver_budget(&self.cfg)?;
        if let Some(d) = deadline {
            let left = d
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(DEADLINE_MARGIN);
            budget = budget.min(left);
        }
        let (queued, more) = engine.deliver_for(at, budget, report.flush_busy).await?;
        report.absorb_delivery(queued, &more);
        let mut by_state = BTreeMap::new();
        for a in &report.alerts {
            *by_state.entry(a.state.as_str().to_string()).or_insert(0) += 1;
        }
        for (receiver, e) in &report.delivery_errors {
            tracing::warn!(receiver = %receiver, "delivery failed: {e}");
        }
        Ok(Summary {
            at: at.to_rfc3339(),
            rules_evaluated: report.instances_evaluated,
            alerts_by_state: by_state,
            notifications_sent: report.delivered.len(),
            notifications_queued: report.notifications.len(),
            rule_errors: report.rule_failures.len(),
            source_errors: report.source_failures.len(),
            delivery_errors: report.delivery_errors.len(),
        })
    }
}
