//! Shell completions, the man page and the config's JSON Schema, generated from the CLI and the
//! config types, each checked by the tool that reads it.

use crate::support::bin::{run, stderr, stdout};
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn completion_scripts_parse() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let out = run(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("route-test") && script.contains("config-schema"),
            "{shell}"
        );
        let path = dir.path().join(format!("tripline.{shell}"));
        std::fs::write(&path, &script).unwrap();
        // bash is always there; the others are checked where installed.
        if shell == "bash" || have(checker) {
            let flag = if shell == "fish" {
                "--no-execute"
            } else {
                "-n"
            };
            let o = Command::new(checker).arg(flag).arg(&path).output().unwrap();
            assert!(o.status.success(), "{shell}: {}", stderr(&o));
        }
    }
    let out = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_renders_with_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let roff = stdout(&out);
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(roff.contains(section), "{section} missing");
    }
    let page = dir.path().join("tripline.1");
    std::fs::write(&page, &roff).unwrap();
    if have("man") {
        let o = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        assert!(!stderr(&o).contains("warning"), "man warns: {}", stderr(&o));
        for want in [
            "SYNOPSIS",
            "TRIPLINE CHECK",
            "--online",
            "TRIPLINE ROUTE-TEST",
        ] {
            assert!(
                text.contains(want),
                "{want} not in the rendered page:\n{text}"
            );
        }
    }
}

/// The schema is valid JSON Schema, every example config satisfies it, and a misspelt key does
/// not (Python's `jsonschema`, the reference validator, and `tomllib`).
#[test]
fn the_config_schema_validates_the_examples() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["config-schema"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    std::fs::write(dir.path().join("schema.json"), stdout(&out)).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = r#"
import glob, json, sys, tomllib
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
configs = sorted(glob.glob(sys.argv[2] + "/examples/*/tripline.toml"))
assert len(configs) >= 5, configs
for f in configs:
    errors = [e.message for e in v.iter_errors(tomllib.load(open(f, "rb")))]
    assert not errors, (f, errors)
bad = {"rule": [{"use": "aws/lambda-errors", "parms": {}}]}
assert [e.message for e in v.iter_errors(bad)] == ["Additional properties are not allowed ('parms' was unexpected)"], list(v.iter_errors(bad))
print(len(configs))
"#;
    let python = [root.join(".venv/bin/python"), "python3".into()]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import jsonschema, tomllib"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a Python 3.11+ with jsonschema (the repo's .venv or python3)");
    let o = Command::new(python)
        .args(["-c", script])
        .arg(dir.path().join("schema.json"))
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}
