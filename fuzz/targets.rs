//! The fuzz targets: each takes arbitrary bytes and drives one of Tripline's input loaders the
//! way the binary does. A target may return errors (that is the point of most inputs); it must
//! never panic, hang or overflow. Shared by the mutation harness (`main.rs`) and its regression
//! test, so a crash found once is replayed by every `cargo test`.

use std::path::Path;
use std::sync::Arc;
use tripline::clock::Timestamp;

/// The instants inputs are evaluated at: an ordinary one and the edges of what RFC 3339 writes.
fn instants() -> [Timestamp; 3] {
    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    [
        t("2026-11-01T10:00:00Z"),
        t("9999-12-31T23:59:59Z"),
        t("0000-01-01T00:00:00Z"),
    ]
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Durations (`5m`, `1h30m`), fixture/test instants (`-5m`, RFC 3339) and cron schedules.
pub fn durations_cron(data: &[u8]) {
    let s = text(data);
    if let Ok(d) = tripline::clock::parse_duration(&s) {
        let _ = tripline::clock::format_duration(d);
    }
    for at in instants() {
        let _ = tripline::source::fixture::parse_time(&s, at);
    }
    if let Ok(schedule) = tripline::rule::parse_schedule(&s) {
        // One tick: enough to run the schedule's arithmetic at each instant.
        for at in instants() {
            let _ = schedule.after(&at).next();
        }
    }
}

/// Label matchers (`team=~db|data`), one a line, as routes and silences take them.
pub fn matchers(data: &[u8]) {
    use tripline::pipeline::matcher::Matcher;
    let s = text(data);
    let labels: tripline::alert::Labels = [("team", "db"), ("alertname", "x"), ("", "")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for line in s.lines() {
        if let Ok(m) = Matcher::parse(line) {
            let _ = m.to_string();
            let _ = tripline::pipeline::matcher::all_match(std::slice::from_ref(&m), &labels);
        }
    }
    let _ = tripline::pipeline::silence::parse_matchers(
        &s.lines().map(String::from).collect::<Vec<_>>(),
    );
}

/// A config file through what `tripline check` does: parse, then build every part of it.
pub fn config(data: &[u8]) {
    use tripline::assembly::{self as wire, WireOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.toml");
    let Ok(cfg) = tripline::config::Config::parse(&path, text(data)) else {
        return;
    };
    runtime().block_on(async {
        let opts = WireOptions {
            tolerate_rule_errors: false,
            allow_missing_secrets: true,
            store: Some(Arc::new(tripline::store::SqliteStore::in_memory().unwrap())),
            ..Default::default()
        };
        let _ = wire::build(&cfg, opts);
    });
}

/// A rule file: loaded (compiled, its `RULE` checked), then `query` and `evaluate` run once under
/// tight limits so that a mutated loop costs milliseconds, not the default second.
pub fn rule(data: &[u8]) {
    use tripline::rule::{Limits, RuleEngine};
    let limits = Limits {
        max_operations: 20_000,
        deadline: std::time::Duration::from_millis(50),
        ..Limits::default()
    };
    let engine = RuleEngine::new(limits, &[]);
    let Ok(Some(rule)) = tripline::rule::load_rule_source(
        &engine,
        Path::new("fuzz.rhai").to_path_buf(),
        &text(data),
    ) else {
        return;
    };
    let params = rhai::Dynamic::from_map(Default::default());
    for at in instants() {
        let _ = engine.query(&rule, &params, at);
        let _ = engine.evaluate(&rule, &[], &params, at);
    }
}

/// A rule-test file (`*.test.toml`) through `tripline test`, beside a copy of a stock rule.
pub fn rule_test(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/aws");
    std::fs::copy(
        rules.join("lambda-throttles.rhai"),
        dir.path().join("case.rhai"),
    )
    .unwrap();
    let file = dir.path().join("case.test.toml");
    std::fs::write(&file, data).unwrap();
    runtime().block_on(async {
        let _ = tripline::ruletest::run_file(&file, None).await;
    });
}

/// A fixture file, as JSON and as TOML, then asked for the series its own entries match at each
/// instant (which is where point times are resolved).
pub fn fixture(data: &[u8]) {
    use tripline::source::{fixture::FixtureSource, FetchContext, FixtureData, Source};
    let s = text(data);
    for name in ["fuzz.json", "fuzz.toml"] {
        let Ok(parsed) = FixtureData::parse(Path::new(name), &s) else {
            continue;
        };
        let mut specs = Vec::new();
        for m in parsed
            .series
            .iter()
            .map(|x| &x.matches)
            .chain(parsed.table.iter().map(|x| &x.matches))
            .chain(parsed.error.iter().map(|x| &x.matches))
        {
            let mut params = m.clone();
            let kind = params
                .remove("kind")
                .and_then(|k| k.as_str().map(String::from))
                .unwrap_or_else(|| "cloudwatch".into());
            params
                .entry("period")
                .or_insert_with(|| serde_json::json!("1m"));
            specs.push(tripline::rule::QuerySpec::new(
                kind,
                serde_json::Value::Object(params),
            ));
        }
        let source = FixtureSource::new(parsed);
        runtime().block_on(async {
            for at in instants() {
                let ctx = FetchContext {
                    at,
                    deadline: std::time::Instant::now() + std::time::Duration::from_secs(5),
                };
                let _ = source.fetch(&specs, &ctx).await;
            }
        });
    }
}

/// `POST /api/v2/alerts` bodies: parsed as the handler does, merged into an empty store and then
/// into what that produced (the update path).
pub fn ingest_body(data: &[u8]) {
    let Ok(posted) = serde_json::from_slice::<Vec<tripline::ingest::PostableAlert>>(data) else {
        return;
    };
    for at in instants() {
        if let Ok(stored) = tripline::ingest::merge(posted.clone(), &[], at) {
            let _ = tripline::ingest::merge(posted.clone(), &stored, at);
        }
    }
}

/// `POST /api/v1/silences` bodies, through the handler's own parsing and checks.
pub fn silence_body(data: &[u8]) {
    for at in instants() {
        let _ = tripline::pipeline::silence::Silence::from_request(&text(data), at);
    }
}

/// Every target: its name, its function, and where its seeds are (repo-relative files or
/// directories, with the file-name suffix that marks a seed).
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub seeds: &'static [(&'static str, &'static str)],
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "durations_cron",
        run: durations_cron,
        seeds: &[("fuzz/seeds/durations_cron", "")],
    },
    Target {
        name: "matchers",
        run: matchers,
        seeds: &[("fuzz/seeds/matchers", "")],
    },
    Target {
        name: "config",
        run: config,
        seeds: &[
            ("examples", "tripline.toml"),
            ("tests/fixtures/hostile", ".toml"),
        ],
    },
    Target {
        name: "rule",
        run: rule,
        seeds: &[
            ("rules/aws/lambda-errors.rhai", ""),
            ("rules/aws/lambda-timeouts.rhai", ""),
            ("rules/aws/sqs-oldest-message-age.rhai", ""),
            ("rules/db/pool-utilization.rhai", ""),
            ("tests/fixtures/hostile", ".rhai"),
        ],
    },
    Target {
        name: "rule_test",
        run: rule_test,
        seeds: &[
            ("rules/aws/lambda-throttles.test.toml", ""),
            ("rules/aws/lambda-errors.test.toml", ""),
            ("tests/fixtures/hostile/overflow", ".test.toml"),
        ],
    },
    Target {
        name: "fixture",
        run: fixture,
        seeds: &[
            ("examples/demo/campaign-workers.json", ""),
            ("tests/fixtures/hostile/overflow/point.json", ""),
            ("fuzz/seeds/fixture", ""),
        ],
    },
    Target {
        name: "ingest_body",
        run: ingest_body,
        seeds: &[("fuzz/seeds/ingest_body", "")],
    },
    Target {
        name: "silence_body",
        run: silence_body,
        seeds: &[("fuzz/seeds/silence_body", "")],
    },
];
