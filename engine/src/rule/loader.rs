//! Loading rules: compile each file once, read its `RULE` metadata, and collect every problem
//! with its `path:line:col` without letting one broken file stop the others from loading.

use super::{meta::RuleMeta, sandbox, Rule, RuleEngine};
use crate::error::Error;
use rhai::{Map, Scope};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The stock rules shipped in `rules/`, embedded at build time as (relative path, source).
pub(crate) const STOCK_RULES: &[(&str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/stock_rules.rs"));

/// All loaded rules by id.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    pub rules: BTreeMap<String, Rule>,
}

impl RuleSet {
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.get(id)
    }

    /// How many rules a config can `use`: those compiled, plus (with the stock rules on) the
    /// stock rules `load_for` left uncompiled because nothing used them.
    pub fn available(&self, include_stock: bool) -> usize {
        let mut ids: BTreeSet<&str> = self.rules.keys().map(String::as_str).collect();
        if include_stock {
            ids.extend(STOCK_RULES.iter().map(|(path, _)| stock_id(path)));
        }
        ids.len()
    }

    /// Loads the embedded stock rules, then every `*.rhai` rule under `dirs` (which may override a
    /// stock rule by id). Returns the rules that loaded and an error per file that did not.
    pub fn load(
        engine: &RuleEngine,
        dirs: &[PathBuf],
        include_stock: bool,
    ) -> (RuleSet, Vec<Error>) {
        Self::load_for(engine, dirs, include_stock, None)
    }

    /// `load`, compiling of the stock rules only those with an id in `wanted` (all when `None`):
    /// a config using one stock rule does not pay for compiling thirty. Every file under `dirs`
    /// is still compiled (its errors are the config's to see). A stock rule's id is its path
    /// without `.rhai` (a test pins it); should one ever differ, a wanted id found nowhere else
    /// compiles the stock rules left out, so the answer is the same as with every one compiled.
    pub fn load_for(
        engine: &RuleEngine,
        dirs: &[PathBuf],
        include_stock: bool,
        wanted: Option<&BTreeSet<&str>>,
    ) -> (RuleSet, Vec<Error>) {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        let mut skipped = Vec::new();
        if include_stock {
            for (path, text) in STOCK_RULES {
                if wanted.is_some_and(|w| !w.contains(stock_id(path))) {
                    skipped.push((path, text));
                    continue;
                }
                match load_rule_source(engine, PathBuf::from(format!("<stock>/{path}")), text) {
                    Ok(Some(rule)) => {
                        set.rules.insert(rule.meta.id.clone(), rule);
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        let mut own: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in dirs {
            let mut files = Vec::new();
            if let Err(e) = walk(dir, &mut files) {
                errors.push(Error::io(dir, e));
                continue;
            }
            for file in files {
                match load_rule_file(engine, &file) {
                    Ok(Some(rule)) => {
                        if let Some(first) = own.get(&rule.meta.id) {
                            errors.push(Error::invalid(
                                &file,
                                1,
                                1,
                                format!(
                                    "rule id {:?} is already defined in {}",
                                    rule.meta.id,
                                    first.display()
                                ),
                            ));
                            continue;
                        }
                        own.insert(rule.meta.id.clone(), file.clone());
                        set.rules.insert(rule.meta.id.clone(), rule);
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        if let Some(w) = wanted {
            if w.iter().any(|id| !set.rules.contains_key(*id)) {
                for (path, text) in skipped {
                    match load_rule_source(engine, PathBuf::from(format!("<stock>/{path}")), text) {
                        // Only where nothing else defines the id: the files under `dirs` win.
                        Ok(Some(rule)) => {
                            set.rules.entry(rule.meta.id.clone()).or_insert(rule);
                        }
                        Ok(None) => {}
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        (set, errors)
    }
}

/// The id a stock rule declares: its path under `rules/` without `.rhai`.
fn stock_id(path: &str) -> &str {
    path.strip_suffix(".rhai").unwrap_or(path)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rhai") {
            out.push(p);
        }
    }
    Ok(())
}

pub fn load_rule_file(engine: &RuleEngine, path: &Path) -> Result<Option<Rule>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    load_rule_source(engine, path.to_path_buf(), &text)
}

/// Compiles one rule. `Ok(None)` for a library module (a file without `fn evaluate`), which is
/// only reachable through `import`.
pub fn load_rule_source(
    engine: &RuleEngine,
    origin: PathBuf,
    text: &str,
) -> Result<Option<Rule>, Error> {
    let mut ast = engine.engine().compile(text).map_err(|e| {
        let pos = e.position();
        Error::invalid(
            &origin,
            pos.line().unwrap_or(1),
            pos.position().unwrap_or(1),
            e.err_type().to_string(),
        )
    })?;
    ast.set_source(origin.display().to_string());
    let fns: Vec<(String, usize)> = ast
        .iter_functions()
        .map(|f| (f.name.to_string(), f.params.len()))
        .collect();
    let has = |name: &str, arity: usize| fns.iter().any(|(n, a)| n == name && *a == arity);
    if !has("evaluate", 2) {
        if text.contains("const RULE") {
            return Err(Error::invalid(
                &origin,
                line_of(text, "const RULE"),
                1,
                "a rule must define `fn evaluate(data, params)`",
            ));
        }
        return Ok(None);
    }
    if !has("query", 1) {
        return Err(Error::invalid(
            &origin,
            line_of(text, "fn evaluate"),
            1,
            "a rule must define `fn query(params)` returning its query specs",
        ));
    }
    let unknown = unknown_calls(engine, &ast);
    if !unknown.is_empty() {
        let errors: Vec<Error> = unknown
            .into_iter()
            .map(|(line, col, message)| Error::invalid(&origin, line, col, message))
            .collect();
        return Err(if errors.len() == 1 {
            errors.into_iter().next().unwrap_or(Error::Many(vec![]))
        } else {
            Error::Many(errors)
        });
    }
    let rule_line = line_of(text, "const RULE");
    let mut scope = Scope::new();
    sandbox::run_top_level(engine, &ast, &mut scope)
        .map_err(|e| Error::invalid(&origin, e.0, e.1, e.2))?;
    let map = scope.get_value::<Map>("RULE").ok_or_else(|| {
        Error::invalid(
            &origin,
            1,
            1,
            "a rule must declare its metadata as `const RULE = #{ id: ..., ... };`",
        )
    })?;
    let meta = RuleMeta::from_map(&map).map_err(|m| Error::invalid(&origin, rule_line, 1, m))?;
    Ok(Some(Rule {
        meta,
        ast: Arc::new(ast),
        origin,
        has_triage: has("triage", 2),
        query_is_pure: !text.contains("now("),
    }))
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Functions a script may call without defining them: rhai's keywords-that-look-like-calls.
const KEYWORD_FNS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
    "this",
];

/// The names of every function registered on the engine (the rule API and rhai's packages).
/// Every `RuleEngine` registers the same ones, so they are gathered once.
fn registered_fns(engine: &RuleEngine) -> &'static std::collections::HashSet<String> {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        engine
            .engine()
            .gen_fn_signatures(true)
            .iter()
            .filter_map(|sig| {
                let name = sig.split('(').next()?.trim();
                let name = name.rsplit(' ').next()?;
                Some(name.to_string())
            })
            .chain(KEYWORD_FNS.iter().map(|s| s.to_string()))
            .collect()
    })
}

/// Calls in `ast` (top level and every function body) to functions that are neither defined in
/// the script nor registered: `(line, col, message)`, with the nearest known name. Method calls
/// (`x.len()`) and module-qualified calls (`lib::f()`) are left to run time; so is a call through
/// a variable holding a function pointer.
fn unknown_calls(engine: &RuleEngine, ast: &rhai::AST) -> Vec<(usize, usize, String)> {
    use rhai::{ASTNode, Expr, Stmt};
    let registered = registered_fns(engine);
    let mut script: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut variables: std::collections::HashSet<String> = std::collections::HashSet::new();
    for f in ast.iter_functions() {
        script.insert(f.name.to_string());
        variables.extend(f.params.iter().map(|p| p.to_string()));
    }
    let mut calls: Vec<(String, rhai::Position)> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, pos)))
            | Some(ASTNode::Stmt(Stmt::FnCall(x, pos)))
                if !x.is_qualified() && !x.is_operator_call() =>
            {
                calls.push((x.name.to_string(), *pos));
            }
            Some(ASTNode::Expr(Expr::Variable(x, _, _))) => {
                variables.insert(x.1.to_string());
            }
            Some(ASTNode::Stmt(Stmt::Var(x, _, _))) => {
                variables.insert(x.0.name.to_string());
            }
            _ => {}
        }
        true
    });
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (name, pos) in calls {
        let ident = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_');
        if !ident
            || script.contains(&name)
            || registered.contains(&name)
            || variables.contains(&name)
            || !seen.insert((name.clone(), pos))
        {
            continue;
        }
        let hint = crate::suggest::did_you_mean(
            &name,
            script
                .iter()
                .map(String::as_str)
                .chain(rule_api_names(registered)),
        );
        out.push((
            pos.line().unwrap_or(1),
            pos.position().unwrap_or(1),
            format!("call to unknown function `{name}`: it is neither defined in this file nor part of the rule API{hint}"),
        ));
    }
    out
}

/// The registered names worth suggesting: identifiers, not getters/setters or operators.
fn rule_api_names(
    registered: &std::collections::HashSet<String>,
) -> impl Iterator<Item = &str> + '_ {
    let mut v: Vec<&str> = registered
        .iter()
        .map(String::as_str)
        .filter(|n| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && !n.contains('$')
        })
        .collect();
    // Ties go to the first: make that deterministic.
    v.sort_unstable();
    v.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(body: &str) -> Result<Option<Rule>, Error> {
        let engine = RuleEngine::new(super::super::Limits::default(), &[]);
        let src = format!(
            "const RULE = #{{ id: \"t/r\", params: #{{ threshold: 1 }} }};\nfn query(p) {{ #{{}} }}\nfn helper(x) {{ x + 1 }}\nfn evaluate(d, p) {{\n{body}\n}}\n"
        );
        load_rule_source(&engine, PathBuf::from("r.rhai"), &src)
    }

    #[test]
    fn calls_to_functions_that_exist_nowhere_are_refused_at_load() {
        let e =
            load("if p.threshold > 100 {\n    fire_alert(#{ summary: \"x\" });\n}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.rhai:6:5: call to unknown function `fire_alert`: it is neither defined in this file nor part of the rule API; did you mean `fire`?"
        );
        let e = load("helpr(1);").unwrap_err();
        assert!(e.to_string().contains("did you mean `helper`?"), "{e}");
    }

    #[test]
    fn script_functions_the_api_methods_and_function_pointers_pass() {
        let body = "let f = |x| x * 2;\nlet n = helper(f.call(2));\nlet s = \"abc\".len();\nlet g = Fn(\"helper\");\nif n > s { fire(#{ summary: `n=${n}` }); }\nprint(type_of(g));";
        assert!(load(body).unwrap().is_some());
    }

    /// Every stock rule passes the check (none calls a function that exists nowhere).
    #[test]
    fn the_stock_rules_pass() {
        let engine = RuleEngine::new(super::super::Limits::default(), &[]);
        let (set, errors) = RuleSet::load(&engine, &[], true);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(set.rules.len() > 20);
    }
}

#[cfg(test)]
mod stock_tests {
    use super::*;

    #[test]
    fn every_stock_rule_declares_its_path_as_its_id() {
        let engine = RuleEngine::new(Default::default(), &[]);
        let (all, errors) = RuleSet::load(&engine, &[], true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(all.rules.len(), STOCK_RULES.len());
        for (path, text) in STOCK_RULES {
            let rule = load_rule_source(&engine, PathBuf::from(*path), text)
                .unwrap()
                .unwrap();
            assert_eq!(rule.meta.id, stock_id(path), "{path}");
        }
    }

    #[test]
    fn only_the_wanted_stock_rules_are_compiled_and_dirs_still_win() {
        let engine = RuleEngine::new(Default::default(), &[]);
        let wanted: BTreeSet<&str> = ["aws/lambda-errors", "worker/down", "own/rule"].into();
        let (set, errors) = RuleSet::load_for(&engine, &[], true, Some(&wanted));
        assert!(errors.is_empty(), "{errors:?}");
        // `own/rule` is nowhere: the fallback compiled every stock rule, and still found nothing.
        assert_eq!(set.rules.len(), STOCK_RULES.len());
        let wanted: BTreeSet<&str> = ["aws/lambda-errors", "worker/down"].into();
        let (set, _) = RuleSet::load_for(&engine, &[], true, Some(&wanted));
        assert_eq!(
            set.rules.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["aws/lambda-errors", "worker/down"]
        );
        assert_eq!(
            set.rules["worker/down"].origin,
            PathBuf::from("<stock>/worker/down.rhai")
        );
        // A rule directory overriding a wanted stock id keeps its own rule.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.rhai"),
            "const RULE = #{ id: \"worker/down\" };\nfn query(p) { #{} }\nfn evaluate(d, p) { [] }\n",
        )
        .unwrap();
        let (set, errors) =
            RuleSet::load_for(&engine, &[dir.path().to_path_buf()], true, Some(&wanted));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.rules.len(), 2);
        assert_eq!(
            set.rules["worker/down"].origin,
            dir.path().join("mine.rhai")
        );
        // Nothing wanted, nothing of the stock compiled.
        let (set, _) = RuleSet::load_for(&engine, &[], true, Some(&BTreeSet::new()));
        assert!(set.rules.is_empty());
    }
}
