//! Hostile input (issue #17): inputs that once panicked the process, or cost it without bound,
//! each pinned with the exact error it must give instead — a `path:line:col` line for files,
//! a 4xx for the API.

mod api;
mod cli;

use std::path::{Path, PathBuf};

/// `tests/fixtures/hostile`.
pub fn hostile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hostile")
}
