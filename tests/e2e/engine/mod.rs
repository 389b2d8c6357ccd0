//! The engine through the CLI: check, eval, state across processes, sandboxed rules.

mod cli;
mod fleet;
mod sandbox;
mod state;

use std::path::Path;

/// Copies the named files from `tests/fixtures/<dir>` into `to`.
pub fn copy_fixtures(dir: &str, names: &[&str], to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir);
    std::fs::create_dir_all(to).unwrap();
    for n in names {
        std::fs::copy(from.join(n), to.join(n)).unwrap_or_else(|e| panic!("copy {n}: {e}"));
    }
}
