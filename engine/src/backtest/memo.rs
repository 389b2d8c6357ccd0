//! The evaluation memo of a backtest: a rule's `evaluate` is not run again at an instant whose
//! input is identical to the one it was last run with, when nothing else it can see differs.
//!
//! Replaying a month minute by minute, most instants hand a rule exactly what the previous one
//! did (an empty Prometheus vector while the condition does not hold, a CloudWatch window whose
//! buckets did not move). `evaluate(data, params)` is a pure function of its arguments unless the
//! script can read the instant or keep state, so its last result is reused when:
//!
//! - the rule cannot see the instant: its AST (function bodies and closures included) calls no
//!   `now()`, imports no module (whose code the AST does not show), and makes no dynamic calls
//!   (`Fn(…)`, `call`, `curry`) that could reach `now()` by name ([`instant_free`]);
//! - the data is equal (`==`, every series' labels, points, window end and missing-data flags;
//!   a NaN never equals itself, so data with NaN is always evaluated again);
//! - the params are the ones the instance was configured with: params are a shared script value,
//!   so a script that writes into them would see its own writes on the next call. After every
//!   real call the params are compared with the configured ones; the first call that changed
//!   them turns the memo off for that instance for good.
//!
//! Only successful evaluations are reused; a failed one is run again next time. The state
//! machine, the pipeline and the bookkeeping still run at every instant (timers for `for`,
//! `keep_firing_for`, missing data and ladders advance with time, not with data). What a reused
//! evaluation does not repeat is the script's own `print`/`debug` output.

use crate::clock::Timestamp;
use crate::data::QueryOutcome;
use crate::engine::RuleInstance;
use crate::rule::{Evaluation, RuleEngine, RuleFailure};
use rhai::{ASTNode, Expr, Stmt, AST};
use std::collections::HashMap;
use std::sync::Mutex;

/// Whether nothing in `ast` can read the evaluation instant (see the module docs).
pub fn instant_free(ast: &AST) -> bool {
    const DYNAMIC: &[&str] = &["now", "Fn", "call", "curry", "eval"];
    let mut free = true;
    ast.walk(&mut |path: &[ASTNode]| {
        let name = match path.last() {
            Some(ASTNode::Stmt(Stmt::Import(..))) => {
                free = false;
                return false;
            }
            Some(ASTNode::Stmt(Stmt::FnCall(x, _)))
            | Some(ASTNode::Expr(Expr::FnCall(x, _)))
            | Some(ASTNode::Expr(Expr::MethodCall(x, _))) => x.name.as_str(),
            _ => return true,
        };
        if DYNAMIC.contains(&name) {
            free = false;
            return false;
        }
        true
    });
    free
}

struct Last {
    data: Vec<(String, QueryOutcome)>,
    result: Evaluation,
}

/// One unit: an instance, or one fleet subject of it.
struct Unit {
    /// The configured params as the script sees them, printed; `None` once a call changed them.
    params: Option<String>,
    last: Option<Last>,
}

#[derive(Default)]
struct Inner {
    /// Per rule (by its AST's address, shared by its instances): whether it is instant-free.
    rules: HashMap<usize, bool>,
    /// Per instance, per fleet subject (`None` for a plain instance).
    units: HashMap<String, HashMap<Option<String>, Unit>>,
}

/// One backtest's memo; see the module docs.
#[derive(Default)]
pub struct EvalMemo {
    inner: Mutex<Inner>,
    /// Evaluations answered from the memo, and run.
    hits: std::sync::atomic::AtomicU64,
    runs: std::sync::atomic::AtomicU64,
}

fn same(a: &[(String, QueryOutcome)], b: &[(&str, &QueryOutcome)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((an, ao), (bn, bo))| an == bn && ao == *bo)
}

fn printed(params: &rhai::Dynamic) -> String {
    format!("{params:?}")
}

impl EvalMemo {
    /// (reused, run) evaluations so far.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.runs.load(Relaxed))
    }

    /// `evaluate` for one unit of a cycle, or its last result when that is certainly the same.
    pub(crate) fn evaluate(
        &self,
        re: &RuleEngine,
        inst: &RuleInstance,
        subject: Option<&str>,
        data: &[(&str, &QueryOutcome)],
        at: Timestamp,
    ) -> Result<Evaluation, RuleFailure> {
        use std::sync::atomic::Ordering::Relaxed;
        let params = inst.params_dynamic();
        let mut g = self.inner.lock().expect("memo");
        let rule = std::sync::Arc::as_ptr(&inst.rule.ast) as usize;
        let free = *g
            .rules
            .entry(rule)
            .or_insert_with(|| instant_free(&inst.rule.ast));
        if !free {
            drop(g);
            self.runs.fetch_add(1, Relaxed);
            return re.evaluate(&inst.rule, data, &params, at);
        }
        if !g.units.contains_key(inst.name.as_str()) {
            g.units.insert(inst.name.clone(), HashMap::new());
        }
        let subjects = g.units.get_mut(inst.name.as_str()).expect("just inserted");
        let subject = subject.map(str::to_string);
        let unit = subjects.entry(subject.clone()).or_insert_with(|| Unit {
            params: Some(printed(&params)),
            last: None,
        });
        if unit.params.is_some() {
            if let Some(last) = &unit.last {
                if same(&last.data, data) {
                    self.hits.fetch_add(1, Relaxed);
                    return Ok(last.result.clone());
                }
            }
        }
        // The script runs without the lock: a fleet's subjects may be evaluated meanwhile.
        let configured = unit.params.clone();
        drop(g);
        self.runs.fetch_add(1, Relaxed);
        let r = re.evaluate(&inst.rule, data, &params, at);
        let unchanged = configured.is_some_and(|p| p == printed(&params));
        let last = match (&r, unchanged) {
            (Ok(e), true) => Some(Last {
                data: data
                    .iter()
                    .map(|(n, o)| ((*n).to_string(), (*o).clone()))
                    .collect(),
                result: e.clone(),
            }),
            _ => None,
        };
        let mut g = self.inner.lock().expect("memo");
        if let Some(unit) = g
            .units
            .get_mut(inst.name.as_str())
            .and_then(|s| s.get_mut(&subject))
        {
            unit.last = last;
            if !unchanged {
                unit.params = None;
            }
        }
        r
    }
}

impl crate::engine::EvaluateHook for EvalMemo {
    fn evaluate(
        &self,
        rules: &RuleEngine,
        inst: &RuleInstance,
        subject: Option<&str>,
        data: &[(&str, &QueryOutcome)],
        at: Timestamp,
    ) -> Result<Evaluation, RuleFailure> {
        EvalMemo::evaluate(self, rules, inst, subject, data, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ast(src: &str) -> AST {
        let mut e = rhai::Engine::new();
        e.register_fn("now", || 0_i64);
        e.compile(src).unwrap()
    }

    #[test]
    fn a_write_into_shared_params_shows_in_their_print() {
        let mut m = rhai::Map::new();
        m.insert("calls".into(), rhai::Dynamic::from(0_i64));
        let shared = rhai::Dynamic::from_map(m).into_shared();
        let before = printed(&shared);
        let e = rhai::Engine::new();
        let ast = e.compile("fn evaluate(d, p) { p.calls += 1; }").unwrap();
        let _: rhai::Dynamic = e
            .call_fn(
                &mut rhai::Scope::new(),
                &ast,
                "evaluate",
                (rhai::Dynamic::UNIT, shared.clone()),
            )
            .unwrap();
        assert_ne!(
            printed(&shared),
            before,
            "the script's write went through to the params"
        );
    }

    #[test]
    fn the_instant_is_seen_through_now_imports_and_dynamic_calls() {
        assert!(instant_free(&ast(
            "fn evaluate(d, p) { for s in d.x { if s > p.t { fire(s) } } }"
        )));
        assert!(!instant_free(&ast("fn evaluate(d, p) { let t = now(); }")));
        // In a helper, a closure, a method-call position.
        assert!(!instant_free(&ast(
            "fn helper() { now() } fn evaluate(d, p) { helper() }"
        )));
        assert!(!instant_free(&ast(
            "fn evaluate(d, p) { let f = || now(); f.call() }"
        )));
        assert!(!instant_free(&ast(
            "fn evaluate(d, p) { let f = Fn(\"n\" + \"ow\"); f.call() }"
        )));
        assert!(!instant_free(&ast(
            "import \"helpers\" as h; fn evaluate(d, p) { }"
        )));
    }
}
