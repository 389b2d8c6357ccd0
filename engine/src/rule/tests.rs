//! Each sandbox limit has a hostile script that hits it.

use super::*;
use chrono::Utc;
use std::time::Duration;

fn rule_with(engine: &RuleEngine, body: &str) -> Rule {
    let src = format!("const RULE = #{{ id: \"t/hostile\" }};\nfn query(p) {{ #{{}} }}\nfn evaluate(d, p) {{\n{body}\n}}\n");
    load_rule_source(engine, PathBuf::from("hostile.rhai"), &src)
        .unwrap()
        .unwrap()
}

fn failure(limits: Limits, body: &str) -> RuleFailure {
    let engine = RuleEngine::new(limits, &[]);
    let rule = rule_with(&engine, body);
    engine
        .evaluate(&rule, &[], &Dynamic::from_map(Map::new()), Utc::now())
        .unwrap_err()
}

#[test]
fn max_operations() {
    let f = failure(Limits::default(), "loop { }");
    assert_eq!(f.limit, Some("max_operations"), "{f}");
}

#[test]
fn wall_clock_deadline() {
    let limits = Limits {
        max_operations: 0,
        deadline: Duration::from_millis(50),
        ..Limits::default()
    };
    let f = failure(limits, "let x = 0; loop { x += 1; }");
    assert_eq!(f.limit, Some("deadline"), "{f}");
    assert!(f.message.contains("exceeded its 50 ms deadline"), "{f}");
}

#[test]
fn call_depth() {
    let engine = RuleEngine::new(Limits::default(), &[]);
    let src = "const RULE = #{ id: \"t/r\" };\nfn query(p) { #{} }\nfn down(n) { down(n + 1) }\nfn evaluate(d, p) { down(0); }\n";
    let rule = load_rule_source(&engine, PathBuf::from("r.rhai"), src)
        .unwrap()
        .unwrap();
    let f = engine
        .evaluate(&rule, &[], &Dynamic::from_map(Map::new()), Utc::now())
        .unwrap_err();
    assert_eq!(f.limit, Some("max_call_depth"), "{f}");
}

#[test]
fn string_size() {
    let f = failure(
        Limits::default(),
        "let s = \"0123456789\"; while s.len() < 100_000_000 { s += s; }",
    );
    assert_eq!(f.limit, Some("max_data_size"), "{f}");
}

#[test]
fn array_size() {
    let f = failure(
        Limits {
            max_array_size: 1000,
            ..Limits::default()
        },
        "let a = []; loop { a.push(1); }",
    );
    assert_eq!(f.limit, Some("max_data_size"), "{f}");
}

#[test]
fn map_size() {
    let f = failure(
        Limits {
            max_map_size: 1000,
            ..Limits::default()
        },
        "let m = #{}; let i = 0; loop { let one = #{}; one[`k${i}`] = i; m += one; i += 1; }",
    );
    assert_eq!(f.limit, Some("max_data_size"), "{f}");
}

#[test]
fn expression_depth_is_a_compile_error() {
    let engine = RuleEngine::new(Limits::default(), &[]);
    let deep = format!("let x = {}1{};", "(".repeat(200), ")".repeat(200));
    let src = format!("const RULE = #{{ id: \"t/deep\" }};\nfn query(p) {{ #{{}} }}\nfn evaluate(d, p) {{ {deep} }}\n");
    let e = load_rule_source(&engine, PathBuf::from("deep.rhai"), &src)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("deep.rhai:3:"), "{e}");
}

#[test]
fn eval_is_disabled_and_variables_are_strict() {
    let engine = RuleEngine::new(Limits::default(), &[]);
    let src =
        "const RULE = #{ id: \"t/e\" };\nfn query(p) { #{} }\nfn evaluate(d, p) { eval(\"1\"); }\n";
    assert!(load_rule_source(&engine, PathBuf::from("e.rhai"), src).is_err());
    let src = "const RULE = #{ id: \"t/v\" };\nfn query(p) { #{} }\nfn evaluate(d, p) { undeclared + 1; }\n";
    let e = load_rule_source(&engine, PathBuf::from("v.rhai"), src)
        .unwrap_err()
        .to_string();
    assert!(e.contains("v.rhai:3:") && e.contains("undeclared"), "{e}");
}

#[test]
fn no_filesystem_or_process_functions() {
    for call in [
        "open_file(\"/etc/passwd\")",
        "read_file(\"/etc/passwd\")",
        "system(\"id\")",
        "env(\"HOME\")",
    ] {
        // Refused when the file loads: no such function is registered.
        let engine = RuleEngine::new(Limits::default(), &[]);
        let src = format!("const RULE = #{{ id: \"t/hostile\" }};\nfn query(p) {{ #{{}} }}\nfn evaluate(d, p) {{\n{call};\n}}\n");
        let e = load_rule_source(&engine, PathBuf::from("hostile.rhai"), &src).unwrap_err();
        assert!(
            e.to_string().contains("call to unknown function"),
            "{call}: {e}"
        );
        // And through a function pointer, which only run time can see, it is not found either.
        let name = call.split('(').next().unwrap();
        let f = failure(Limits::default(), &format!("Fn(\"{name}\").call(\"x\");"));
        assert!(f.message.contains("Function not found"), "{call}: {f}");
    }
}

#[test]
fn imports_stay_inside_the_rules_directories() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("lib")).unwrap();
    std::fs::write(rules.join("lib/limits.rhai"), "export const LIMIT = 7;").unwrap();
    std::fs::write(dir.path().join("outside.rhai"), "export const LIMIT = 666;").unwrap();
    let engine = RuleEngine::new(Limits::default(), std::slice::from_ref(&rules));
    let ok = "import \"lib/limits\" as l;\nconst RULE = #{ id: \"t/i\" };\nfn query(p) { #{} }\nfn evaluate(d, p) { }\n";
    assert!(load_rule_source(&engine, rules.join("ok.rhai"), ok)
        .unwrap()
        .is_some());
    let escape = "import \"../outside\" as l;\nconst RULE = #{ id: \"t/x\" };\nfn query(p) { #{} }\nfn evaluate(d, p) { }\n";
    let e = load_rule_source(&engine, rules.join("x.rhai"), escape)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.rhai:1:") && e.contains("inside the rules directories"),
        "{e}"
    );
}

#[test]
fn fire_rejects_unknown_keys_and_needs_a_summary() {
    let f = failure(
        Limits::default(),
        "fire(#{ summary: \"x\", sevrity: \"critical\" });",
    );
    assert!(f.message.contains("unknown key \"sevrity\""), "{f}");
    let f = failure(Limits::default(), "fire(#{ labels: #{} });");
    assert!(f.message.contains("summary is required"), "{f}");
}

#[test]
fn triage_fetch_runs_the_follow_up_query_and_its_wait_is_not_script_time() {
    use crate::data::{QueryData, Table};
    let limits = Limits {
        deadline: Duration::from_millis(50),
        ..Limits::default()
    };
    let engine = RuleEngine::new(limits, &[]);
    let src = "const RULE = #{ id: \"t/triage\" };\nfn query(p) { #{} }\nfn evaluate(d, p) { }\nfn triage(a, ctx) {\n  let t1 = ctx.fetch(logs_insights(#{ query: \"a\" }));\n  let t2 = ctx.fetch(logs_insights(#{ query: \"b\" }));\n  #{ rows: t1.len() + t2.len(), group: ctx.params.group }\n}\n";
    let rule = load_rule_source(&engine, PathBuf::from("t.rhai"), src)
        .unwrap()
        .unwrap();
    // A slow source: each follow-up takes longer than the whole script deadline.
    let runner = std::sync::Arc::new(|spec: QuerySpec| {
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(spec.kind, "logs_insights");
        Ok(QueryData::Table(Table::new("t", vec![Default::default()])))
    });
    let mut params = Map::new();
    params.insert("group".into(), "/aws/lambda/f".into());
    let alert = crate::alert::Alert {
        fingerprint: "f".into(),
        rule: "t/triage".into(),
        instance: "i".into(),
        labels: Default::default(),
        state: crate::alert::AlertState::Firing,
        severity: crate::alert::Severity::Warning,
        summary: "s".into(),
        runbook: None,
        value: None,
        details: Default::default(),
        active_since: Utc::now(),
        starts_at: None,
        ends_at: None,
        last_active: Utc::now(),
        updated_at: Utc::now(),
        severity_changed_at: None,
        keep_firing_since: None,
    };
    let out = engine
        .triage(
            &rule,
            &alert,
            TriageContext::new(params, runner),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(out.get("rows").unwrap().as_int().unwrap(), 2);
    assert_eq!(out.get("group").unwrap().to_string(), "/aws/lambda/f");
}

#[test]
fn alerts_per_call() {
    let limits = Limits {
        max_alerts: 100,
        ..Limits::default()
    };
    let fire_forever =
        "let i = 0; loop { fire(#{ summary: `a${i}`, labels: #{ i: i } }); i += 1; }";
    let f = failure(limits.clone(), fire_forever);
    assert_eq!(f.limit, Some("max_alerts_per_instance"), "{f}");
    assert_eq!(
        f.message,
        "hostile.rhai:4:19: stopped by the sandbox (max_alerts_per_instance): fire() was called \
         more than 100 times in one evaluate (engine.max_alerts_per_instance); none of this \
         cycle's alerts were kept"
    );
    // Catching the error does not get round the cap.
    let caught = "for i in 0..1000 { try { fire(#{ summary: `a${i}` }); } catch (e) { } }";
    let f = failure(limits.clone(), caught);
    assert_eq!(f.limit, Some("max_alerts_per_instance"), "{f}");
    assert!(
        f.message
            .starts_with("hostile.rhai: stopped by the sandbox (max_alerts_per_instance)"),
        "{f}"
    );
    // Exactly the cap is allowed.
    let engine = RuleEngine::new(limits, &[]);
    let rule = rule_with(&engine, "for i in 0..100 { fire(#{ summary: `a${i}` }); }");
    let e = engine
        .evaluate(&rule, &[], &Dynamic::from_map(Map::new()), Utc::now())
        .unwrap();
    assert_eq!(e.fired.len(), 100);
}
