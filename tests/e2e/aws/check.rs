//! `tripline check` on a config that calls AWS: region and credentials must resolve before the
//! first cycle, with a message that says which is missing.

use crate::support::bin::{stderr, stdout, tripline_bin};
use std::path::Path;
use std::process::{Command, Output};

const CONFIG: &str = r#"[store]
type = "memory"

[aws]
endpoint_url = "http://127.0.0.1:9"
REGION_LINE

[sources.cloudwatch]
type = "cloudwatch"

[[rule]]
use = "aws/lambda-errors"
params = { function = "prd2011-prod1-us-east-1-cmp-save-data" }
"#;

/// `tripline check` with only `env` (and PATH): no profile, no instance metadata.
fn check(dir: &Path, region: Option<&str>, env: &[(&str, &str)]) -> Output {
    let line = region
        .map(|r| format!("region = \"{r}\""))
        .unwrap_or_default();
    std::fs::write(
        dir.join("tripline.toml"),
        CONFIG.replace("REGION_LINE", &line),
    )
    .unwrap();
    Command::new(tripline_bin())
        .args(["check", "--config", "tripline.toml"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .envs(env.iter().copied())
        .output()
        .expect("start tripline")
}

#[test]
fn check_fails_clearly_without_region_or_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(
        dir.path(),
        None,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("tripline.toml:4:1: aws: no region"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = check(dir.path(), Some("us-east-1"), &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("aws: no credentials found by the default chain"),
        "{err}"
    );

    let out = check(
        dir.path(),
        None,
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(": ok"), "{}", stdout(&out));
}

#[test]
fn check_rejects_bad_aws_settings_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[store]\ntype = \"memory\"\n\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"localhost:5000\"\n\n[sources.cloudwatch]\ntype = \"cloudwatch\"\nmax_attempts = 3\nretries = 2\n";
    std::fs::write(dir.path().join("tripline.toml"), text).unwrap();
    let out = Command::new(tripline_bin())
        .args(["check", "--config", "tripline.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("tripline.toml:8:1: unknown field `retries`"),
        "{}",
        stderr(&out)
    );

    let text = text.replace("retries = 2\n", "");
    std::fs::write(dir.path().join("tripline.toml"), &text).unwrap();
    let out = Command::new(tripline_bin())
        .args(["check", "--config", "tripline.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tripline.toml:4:1: aws.endpoint_url \"localhost:5000\" must start with http:// or https://"), "{}", stderr(&out));
}
