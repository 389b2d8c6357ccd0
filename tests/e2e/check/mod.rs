//! `tripline check` as a new user meets it (issue #12): it works offline, rejects each usual
//! mistake with `path:line:col` and a suggestion (the fixtures under tests/fixtures/check), and
//! the habits of the ecosystem (completions, a man page, a JSON Schema of the config) work.

mod ecosystem;
mod fixtures;
mod matchers;
mod offline;

use std::path::{Path, PathBuf};

/// tests/fixtures/check.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/check")
}
