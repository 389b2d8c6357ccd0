//! Runs the `tripline` binary built by cargo for this test run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the `tripline` binary (built by `cargo build` before the tests; see scripts/test).
pub fn tripline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TRIPLINE_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("debug/tripline");
    assert!(
        p.exists(),
        "{} not found: run `cargo build -p tripline` first (scripts/test does)",
        p.display()
    );
    p
}

/// Runs `tripline ARGS` in `dir`, returning its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(tripline_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("start tripline")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
