//! `tripline check --online` on a config that calls AWS: region and credentials must resolve
//! before the first cycle, with a message that says which is missing. (Plain `check` works
//! offline: tests/e2e/check/offline.rs.)

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

/// `tripline check --online` with only `env` (and PATH): no profile, no instance metadata.
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
        .args(["check", "--online", "--config", "tripline.toml"])
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

/// The "complete example" of docs/aws.md, as written there.
fn documented_example() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/aws.md"))
        .unwrap();
    let section = &doc[doc.find("## A complete example").expect("the section")..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_example_checks_and_runs_against_moto() {
    use super::{now, tripline, Seeder};
    let Some(moto) = crate::support::moto::Moto::start() else {
        return;
    };
    let seed = Seeder::new(&moto).await;
    seed.topic("campaign-workers-alerts").await;
    seed.log_lines(
        "/aws/lambda/prd2011-prod1-us-east-1-cmp-save-data",
        &[(now() - chrono::Duration::minutes(3), "INFO saved")],
    )
    .await;
    let text = documented_example().replace(
        "# endpoint_url = \"http://127.0.0.1:5000\"",
        &format!("endpoint_url = \"{}\"", moto.endpoint()),
    );
    assert!(
        text.contains(&moto.endpoint()),
        "the example has the commented endpoint_url line"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tripline.toml"), text).unwrap();
    let out = tripline(&moto, dir.path(), &["check", "--config", "tripline.toml"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("ok (7 rule instances"),
        "{}",
        stdout(&out)
    );
    let out = tripline(
        &moto,
        dir.path(),
        &["eval", "--config", "tripline.toml", "--format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    // Nothing is wrong in this account except the daily job that never ran.
    let names: Vec<&str> = alerts
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["merge-avro-daily"], "{alerts:#?}");
    assert_eq!(moto.sns_messages("campaign-workers-alerts").len(), 1);
}
