//! Every `tests/fixtures/check/*.toml` fails `check` with exactly its `*.stderr` and exit 2.

use super::fixtures_dir;
use crate::support::bin::{stderr, tripline_bin};
use std::process::Command;

#[test]
fn each_mistake_is_refused_with_its_position_and_a_suggestion() {
    let dir = fixtures_dir();
    let mut configs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 8, "{configs:?}");
    let bless = std::env::var_os("TRIPLINE_BLESS").is_some();
    let mut failures = Vec::new();
    for config in &configs {
        let name = config.file_name().unwrap().to_str().unwrap();
        let out = Command::new(tripline_bin())
            .args(["check", "--config", name])
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let got = stderr(&out);
        let expected_path = config.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if out.status.code() != Some(2) || got != expected {
            failures.push(format!(
                "{name}: exit {:?}\n--- expected\n{expected}--- got\n{got}",
                out.status.code()
            ));
        }
        // Every line is located and suggests or states what is expected.
        for line in expected.lines() {
            assert!(
                line.starts_with(name) || line.starts_with("rules/"),
                "{name}: {line}"
            );
            assert!(
                line.contains("did you mean") || line.contains("expected"),
                "{name}: no suggestion in {line}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
