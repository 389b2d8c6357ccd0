//! Rules in Rhai: one `Engine` configured once (sandbox limits, the API rules call), each rule file
//! compiled once to an `AST`, and the three entry points a rule defines: `query(params)`,
//! `evaluate(data, params)` and the optional `triage(alert, ctx)`.
//!
//! This module does not fetch data or keep state; it turns scripts into query specs and alert
//! candidates, and turns every script failure into a `RuleFailure` value instead of a panic.

mod api;
mod loader;
mod meta;
mod sandbox;

pub use crate::data::QuerySpec;
pub use api::{TriageContext, QUERY_KINDS};
pub use loader::{load_rule_file, load_rule_source, RuleSet};
pub use meta::{parse_schedule, ParamKind, ParamSpec, RuleMeta, CRON_FORM};
pub use sandbox::Limits;

use crate::alert::{AlertCandidate, Labels};
use crate::clock::Timestamp;
use crate::data::QueryOutcome;
use rhai::{Dynamic, Engine, Map, AST};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A compiled rule: its metadata and its AST, shared by every instance of it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub meta: RuleMeta,
    pub ast: Arc<AST>,
    /// Where it came from: a file path, or `<stock>/aws/lambda-errors.rhai` for embedded rules.
    pub origin: PathBuf,
    pub has_triage: bool,
    /// `query` cannot depend on the evaluation instant (the file never calls `now()`), so its
    /// specs for given params are computed once and reused every cycle.
    pub query_is_pure: bool,
}

/// Why a rule script failed. Becomes a `tripline/rule-error` alert; never stops other rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    /// `query`, `evaluate` or `triage`.
    pub stage: &'static str,
    /// `path:line:col: message`.
    pub message: String,
    /// The sandbox stopped it (operations, deadline, depth, size), as opposed to a plain error.
    pub limit: Option<&'static str>,
}

impl std::fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.stage, self.message)
    }
}

/// What `evaluate` reported.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub fired: Vec<AlertCandidate>,
    pub retained: Vec<Labels>,
    pub retain_all: bool,
}

/// The shared, configured script engine.
pub struct RuleEngine {
    engine: Engine,
    limits: Limits,
}

impl std::fmt::Debug for RuleEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEngine")
            .field("limits", &self.limits)
            .finish()
    }
}

impl RuleEngine {
    /// Builds the engine once: sandbox limits, `import` confined to `rule_dirs`, the rule API.
    pub fn new(limits: Limits, rule_dirs: &[PathBuf]) -> Self {
        let mut engine = Engine::new();
        sandbox::apply(&mut engine, &limits, rule_dirs);
        api::register(&mut engine);
        RuleEngine { engine, limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Runs `query(params)`: the named query specs the rule needs this cycle.
    /// `params` is the instance's parameter map, ideally shared (`Dynamic::into_shared`) so that
    /// passing it costs a reference count, not a copy.
    pub fn query(
        &self,
        rule: &Rule,
        params: &Dynamic,
        at: Timestamp,
    ) -> Result<BTreeMap<String, QuerySpec>, RuleFailure> {
        let out = sandbox::call(self, rule, "query", at, (params.clone(),))?;
        api::query_specs(out).map_err(|m| RuleFailure {
            stage: "query",
            message: format!("{}: {m}", rule.origin.display()),
            limit: None,
        })
    }

    /// Runs `evaluate(data, params)` over the outcomes of the rule's queries.
    pub fn evaluate(
        &self,
        rule: &Rule,
        data: &[(&str, &QueryOutcome)],
        params: &Dynamic,
        at: Timestamp,
    ) -> Result<Evaluation, RuleFailure> {
        let data = api::data_map(data);
        api::install_collector(api::Collector::new(&rule.meta, self.limits.max_alerts));
        let r = sandbox::call(
            self,
            rule,
            "evaluate",
            at,
            (Dynamic::from_map(data), params.clone()),
        );
        let collector = api::take_collector().expect("collector installed above");
        if collector.capped {
            // Located at the fire() call that went over, even if the script caught its error.
            let what = format!(
                "stopped by the sandbox (max_alerts_per_instance): {}",
                api::Collector::cap_message(self.limits.max_alerts)
            );
            let message = match r {
                // `path:line:col: Runtime error: …` at the call that went over.
                Err(f) => match f.message.find(": Runtime error: ") {
                    Some(i) => format!("{}: {what}", &f.message[..i]),
                    None => f.message,
                },
                Ok(_) => format!("{}: {what}", rule.origin.display()),
            };
            return Err(RuleFailure {
                stage: "evaluate",
                message,
                limit: Some("max_alerts_per_instance"),
            });
        }
        r.map(drop)?;
        collector.finish().map_err(|m| RuleFailure {
            stage: "evaluate",
            message: format!("{}: {m}", rule.origin.display()),
            limit: None,
        })
    }

    /// Runs `triage(alert, ctx)`; returns the map it produced, attached to the alert's details.
    pub fn triage(
        &self,
        rule: &Rule,
        alert: &crate::alert::Alert,
        ctx: TriageContext,
        at: Timestamp,
    ) -> Result<Map, RuleFailure> {
        let alert = api::alert_map(alert);
        let out = sandbox::call(
            self,
            rule,
            "triage",
            at,
            (Dynamic::from_map(alert), Dynamic::from(ctx)),
        )?;
        if out.is_unit() {
            return Ok(Map::new());
        }
        out.try_cast::<Map>().ok_or_else(|| RuleFailure {
            stage: "triage",
            message: format!(
                "{}: triage must return a map (or nothing)",
                rule.origin.display()
            ),
            limit: None,
        })
    }
}

#[cfg(test)]
mod tests;
