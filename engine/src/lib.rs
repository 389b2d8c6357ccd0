//! Tripline: an embeddable alerting and triage rules engine.
//!
//! Rules are small Rhai scripts evaluated on cron schedules against CloudWatch metrics, log
//! queries and other sources; alerts move through pending → firing → resolved, are kept in a
//! durable store and are announced to receivers.
//!
//! ```
//! use std::sync::Arc;
//! use tripline::{data::{QueryData, Series}, InstanceSpec, Tripline};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let rule = r#"
//!     const RULE = #{ id: "demo/queue-depth", severity: "warning",
//!                     runbook: "https://runbooks.example.com/queue",
//!                     params: #{ threshold: 100 } };
//!     fn query(p) { #{ depth: pushed("depth") } }
//!     fn evaluate(d, p) {
//!         let v = d.depth.last();
//!         if v != () && v > p.threshold { fire(#{ summary: `depth ${fmt_number(v)}`, value: v }); }
//!     }
//! "#;
//! let engine = Tripline::builder()
//!     .stock_rules(false)
//!     .rule_source("queue.rhai", rule)
//!     .instance(InstanceSpec::new("queue", "demo/queue-depth"))
//!     .build()
//!     .unwrap();
//! let now = chrono::Utc::now();
//! engine.push("depth", QueryData::Series(Series::new("depth").with_points(60, [(now, 250.0)])));
//! let report = engine.run_cycle_at(now, None).await.unwrap();
//! assert_eq!(report.alerts.len(), 1);
//! assert_eq!(report.alerts[0].summary, "depth 250");
//! # });
//! ```

pub mod alert;
pub mod assembly;
pub mod aws;
pub mod backtest;
#[doc(hidden)]
pub mod bench;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod data;
mod engine;
pub mod error;
pub mod ingest;
pub mod lambda;
pub mod notify;
pub mod pipeline;
pub mod rule;
pub mod ruletest;
pub mod source;
pub mod store;
pub mod suggest;

pub use alert::{RULE_ERROR, SOURCE_ERROR};
pub use engine::fleet;
pub use engine::{
    resolve_params, CycleMode, CycleReport, Ingested, InstanceSpec, RuleInstance, Tripline,
    TriplineBuilder,
};
pub use error::{Error, Result};
