//! `check` needs no AWS credentials, no network and no instance metadata (as `promtool check`
//! and `amtool check-config`); `check --online` resolves region and credentials.

use crate::examples::{
    dir_with, CAMPAIGN_WORKERS, CLARIVUM_JOBS, INTELLIFLOW_WORKERS, LAMBDA_JOB_ALERTS,
    PROCESSING_QUEUE,
};
use crate::support::bin::{stderr, stdout, tripline_bin};
use std::path::Path;
use std::process::{Command, Output};

/// `tripline check` in `dir` with nothing of the caller's environment but `PATH`: no AWS
/// variables (`AWS_EC2_METADATA_DISABLED` unset too, so the SDK would probe instance metadata if
/// anything asked it for credentials), `HOME` an empty directory (no `~/.aws`), and every AWS
/// endpoint an unroutable address.
fn check_bare(dir: &Path, home: &Path, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(tripline_bin());
    c.arg("check")
        .args(args)
        .args(["--config", "tripline.toml"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ENDPOINT_URL", "http://10.255.255.1:9");
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The `*.rhai` files under the repo's rules/ (the embedded stock rules).
fn stock_rule_count() -> usize {
    fn walk(d: &Path) -> usize {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| match p.is_dir() {
                true => walk(&p),
                false => usize::from(p.extension().is_some_and(|x| x == "rhai")),
            })
            .sum()
    }
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules"))
}

#[test]
fn the_examples_pass_check_without_credentials_or_network() {
    let home = tempfile::tempdir().unwrap();
    for (name, config, rules) in [
        ("campaign-workers", CAMPAIGN_WORKERS, 6),
        ("clarivum-jobs", CLARIVUM_JOBS, 7),
        ("lambda-job-alerts", LAMBDA_JOB_ALERTS, 5),
        ("processing-queue", PROCESSING_QUEUE, 6),
        ("intelliflow-workers", INTELLIFLOW_WORKERS, 9),
    ] {
        let dir = dir_with(config);
        let out = check_bare(dir.path(), home.path(), &[], &[]);
        let err = stderr(&out);
        assert!(out.status.success(), "{name}: {}{err}", stdout(&out));
        // Every stock rule is available to `use`, though only the used ones were compiled.
        let stock = stock_rule_count();
        assert!(
            stdout(&out).contains(&format!(
                "ok ({rules} rule instances, {stock} rules available)"
            )),
            "{name}: {}",
            stdout(&out)
        );
        // Only the receivers' unset secrets are mentioned: no SDK warning, nothing about
        // credentials, regions or instance metadata.
        for line in err.lines() {
            assert!(
                line.starts_with("warning: tripline.toml:") && line.contains("is not set"),
                "{name}: unexpected stderr line {line:?}"
            );
        }
        let lower = err.to_lowercase();
        for word in ["imds", "metadata", "credential", "region", "ec2"] {
            assert!(!lower.contains(word), "{name}: {word} in {err}");
        }
    }
}

#[test]
fn check_online_resolves_credentials() {
    let home = tempfile::tempdir().unwrap();
    let dir = dir_with(LAMBDA_JOB_ALERTS);
    // No credentials anywhere (instance metadata off, so that the probe ends at once).
    let none = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let out = check_bare(dir.path(), home.path(), &none, &["--online"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("aws: no credentials found by the default chain"),
        "{}",
        stderr(&out)
    );
    // Credentials in the environment: resolved without a call to any AWS service.
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let out = check_bare(dir.path(), home.path(), &env, &["--online"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
