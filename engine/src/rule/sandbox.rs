//! Every limit a rule script runs under, in one place: operations, a wall-clock deadline per call
//! (checked from `on_progress`), call and expression depth, string/array/map sizes, `eval`
//! disabled, strict variables, and `import` confined to the rules directories. Scripts get no
//! filesystem or network functions at all: the engine registers none.

use super::{Rule, RuleEngine, RuleFailure};
use crate::clock::Timestamp;
use rhai::module_resolvers::ModuleResolver;
use rhai::{Dynamic, Engine, EvalAltResult, FuncArgs, Module, Position, Scope};

type SharedModule = Arc<Module>;
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_operations: u64,
    /// Wall-clock budget of one `query`, `evaluate` or `triage` call.
    pub deadline: Duration,
    pub max_call_depth: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_modules: usize,
    /// Alerts one `evaluate` call may report (`fire()` calls); beyond it the call stops and the
    /// instance's evaluation fails with a `RuleError` naming this limit (issue #17: 200,000
    /// `fire()` calls once stored 200,000 alerts, 2.1 GB).
    pub max_alerts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 2_000_000,
            deadline: Duration::from_secs(1),
            max_call_depth: 48,
            max_expr_depth: 96,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
            max_modules: 32,
            max_alerts: 10_000,
        }
    }
}

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static NOW: Cell<i64> = const { Cell::new(0) };
}

/// Moves the running call's deadline later by `by` (time spent waiting on a follow-up query).
pub(crate) fn extend_deadline(by: Duration) {
    DEADLINE.with(|d| d.set(d.get().map(|t| t + by)));
}

/// The evaluation instant of the call running on this thread, as Unix seconds (`now()` in rules).
pub(crate) fn now_secs() -> i64 {
    NOW.with(|n| n.get())
}

pub(super) fn apply(engine: &mut Engine, limits: &Limits, rule_dirs: &[PathBuf]) {
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_depth);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth / 2);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_modules(limits.max_modules);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_progress(|ops| {
        if ops % 256 == 0 {
            if let Some(d) = DEADLINE.with(|d| d.get()) {
                if Instant::now() >= d {
                    return Some(Dynamic::from("deadline"));
                }
            }
        }
        None
    });
    engine.set_module_resolver(RulesDirResolver::new(rule_dirs));
    // Scripts print through tracing, never to the process's stdout.
    engine.on_print(|s| tracing::info!(target: "tripline::rule", "{s}"));
    engine.on_debug(
        |s, src, pos| tracing::debug!(target: "tripline::rule", "{}:{pos}: {s}", src.unwrap_or("")),
    );
}

/// Calls `fn_name` in `rule` under the deadline, turning any script failure into a `RuleFailure`.
pub(super) fn call(
    re: &RuleEngine,
    rule: &Rule,
    fn_name: &'static str,
    at: Timestamp,
    args: impl FuncArgs,
) -> Result<Dynamic, RuleFailure> {
    let deadline = Instant::now() + re.limits.deadline;
    DEADLINE.with(|d| d.set(Some(deadline)));
    NOW.with(|n| n.set(at.timestamp()));
    let mut scope = Scope::new();
    let opts = rhai::CallFnOptions::new()
        .eval_ast(false)
        .rewind_scope(true);
    let r = re
        .engine
        .call_fn_with_options::<Dynamic>(opts, &mut scope, &rule.ast, fn_name, args);
    DEADLINE.with(|d| d.set(None));
    r.map_err(|e| failure(rule, fn_name, &e, re.limits.deadline))
}

/// Describes a script error as `path:line:col: message`, naming the sandbox limit it hit.
pub(super) fn failure(
    rule: &Rule,
    stage: &'static str,
    e: &EvalAltResult,
    deadline: Duration,
) -> RuleFailure {
    let inner = e.unwrap_inner();
    let limit = match inner {
        EvalAltResult::ErrorTooManyOperations(_) => Some("max_operations"),
        EvalAltResult::ErrorTerminated(..) => Some("deadline"),
        EvalAltResult::ErrorStackOverflow(_) => Some("max_call_depth"),
        EvalAltResult::ErrorDataTooLarge(..) => Some("max_data_size"),
        EvalAltResult::ErrorTooManyModules(_) => Some("max_modules"),
        _ => None,
    };
    let what = match (limit, inner) {
        (Some("deadline"), _) => {
            format!("stopped: exceeded its {} ms deadline", deadline.as_millis())
        }
        (Some(l), e) => format!("stopped by the sandbox ({l}): {e}"),
        (None, EvalAltResult::ErrorFunctionNotFound(sig, _)) if sig.starts_with(stage) => {
            format!("the rule does not define `fn {stage}`")
        }
        (None, EvalAltResult::ErrorModuleNotFound(p, _)) => import_refused(p),
        (None, _) => without_position(inner.to_string()),
    };
    // The innermost position points into the rule's own code, not at the call site.
    let pos = [inner.position(), e.position()]
        .into_iter()
        .find(|p| !p.is_none())
        .unwrap_or(Position::NONE);
    let origin = rule.origin.display();
    let message = match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{origin}:{l}:{c}: {what}"),
        (Some(l), None) => format!("{origin}:{l}:1: {what}"),
        _ => format!("{origin}: {what}"),
    };
    RuleFailure {
        stage,
        message,
        limit,
    }
}

/// Resolves `import "x"` to `x.rhai` inside one of the rules directories, and nowhere else.
pub struct RulesDirResolver {
    roots: Vec<PathBuf>,
    cache: Mutex<HashMap<PathBuf, SharedModule>>,
}

impl RulesDirResolver {
    pub fn new(roots: &[PathBuf]) -> Self {
        let roots = roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
        RulesDirResolver {
            roots,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn locate(&self, path: &str) -> Option<PathBuf> {
        let rel = Path::new(path);
        let rel = if rel.extension().is_some() {
            rel.to_path_buf()
        } else {
            rel.with_extension("rhai")
        };
        self.roots.iter().find_map(|root| {
            let candidate = root.join(&rel).canonicalize().ok()?;
            candidate.starts_with(root).then_some(candidate)
        })
    }
}

impl ModuleResolver for RulesDirResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let not_found = || {
            Box::new(EvalAltResult::ErrorModuleNotFound(
                format!("{path} (imports are resolved only inside the rules directories)"),
                pos,
            ))
        };
        let file = self.locate(path).ok_or_else(not_found)?;
        if let Some(m) = self.cache.lock().expect("module cache").get(&file) {
            return Ok(m.clone());
        }
        let text = std::fs::read_to_string(&file).map_err(|_| not_found())?;
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                path.to_string(),
                e.into(),
                pos,
            ))
        })?;
        ast.set_source(file.display().to_string());
        let module: SharedModule = Arc::new(Module::eval_ast_as_new(Scope::new(), &ast, engine)?);
        self.cache
            .lock()
            .expect("module cache")
            .insert(file, module.clone());
        Ok(module)
    }
}

/// Runs a rule file's top level (its `const` declarations) under the deadline.
/// On failure returns (line, col, message).
pub(super) fn run_top_level(
    re: &RuleEngine,
    ast: &rhai::AST,
    scope: &mut Scope,
) -> Result<(), (usize, usize, String)> {
    DEADLINE.with(|d| d.set(Some(Instant::now() + re.limits.deadline)));
    let r = re.engine.run_ast_with_scope(scope, ast);
    DEADLINE.with(|d| d.set(None));
    r.map_err(|e| {
        let pos = e.position();
        let message = match e.unwrap_inner() {
            EvalAltResult::ErrorModuleNotFound(p, _) => import_refused(p),
            inner => without_position(inner.to_string()),
        };
        (
            pos.line().unwrap_or(1),
            pos.position().unwrap_or(1),
            message,
        )
    })
}

fn import_refused(path: &str) -> String {
    format!(
        "cannot import {path:?}: imports resolve only to .rhai files inside the rules directories"
    )
}

/// Rhai appends ` (line L, position C)` to messages; we print positions as `path:L:C:` instead.
fn without_position(mut s: String) -> String {
    if let Some(i) = s.rfind(" (line ") {
        s.truncate(i);
    }
    s
}
