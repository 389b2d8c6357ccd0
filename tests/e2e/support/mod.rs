//! Starting real parts and running the binary.

pub mod bin;
pub mod counting_proxy;
pub mod daemon;
pub mod http;
pub mod moto;
pub mod postgres;
pub mod prometheus;
pub mod receiver;
pub mod redis;

use std::path::PathBuf;

/// A free loopback port (free now: a server started on it can still lose a race, so callers
/// retry on another port when their server exits at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Where the installed real part `var` names is (`TRIPLINE_PROMETHEUS=/usr/bin/prometheus`):
/// checked with `installed`; when unset, a failure under `TRIPLINE_REQUIRE_REAL_PARTS=1`
/// (`scripts/test`, CI) and otherwise `None`, so the calling test skips with a note.
/// `what` names it for people: "prometheus", "redis-server", "PostgreSQL".
pub fn real_part(var: &str, what: &str, installed: impl Fn(&PathBuf) -> bool) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                installed(&p),
                "{var}={} is not an installed {what}",
                p.display()
            );
            Some(p)
        }
        None if std::env::var("TRIPLINE_REQUIRE_REAL_PARTS").as_deref() == Ok("1") => panic!(
            "{var} is not set: install {what} (scripts/lib/services.sh, \
             install_test_deps_services) and export its path"
        ),
        None => {
            eprintln!("note: {var} is not set; skipping this {what} test");
            None
        }
    }
}
