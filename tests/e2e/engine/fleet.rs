//! Fleet rules (`tripline::fleet`) across cycles: what happens to a subject that drops out of
//! discovery, and to one whose data cannot be fetched. Discovery comes from the fixture source's
//! series, as `tripline test` does it; the store is shared by two engines standing for the same
//! deployment before and after the subject's metric stopped being listed.

use serde_json::json;
use std::sync::Arc;
use tripline::source::{FixtureData, FixtureSource};
use tripline::store::{SqliteStore, Store};
use tripline::{InstanceSpec, Tripline};

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
}

/// Fixture data: `ApproximateNumberOfMessagesVisible` for each queue at one instant, and
/// `failing` queues whose query fails.
fn fixture(queues: &[(&str, f64)], failing: &[&str]) -> Arc<FixtureSource> {
    let series: Vec<_> = queues
        .iter()
        .map(|(q, v)| {
            json!({
                "match": { "metric": "ApproximateNumberOfMessagesVisible", "dimensions": { "QueueName": q } },
                "points": [["2026-11-01T09:57:00Z", v], ["2026-11-01T10:02:00Z", v]],
            })
        })
        .collect();
    let error: Vec<_> = failing
        .iter()
        .map(|q| json!({ "match": { "dimensions": { "QueueName": q } }, "message": "throttled" }))
        .collect();
    let data: FixtureData =
        serde_json::from_value(json!({ "series": series, "error": error })).unwrap();
    Arc::new(FixtureSource::new(data))
}

fn engine(store: Arc<dyn Store>, source: Arc<FixtureSource>, rule: &str) -> Tripline {
    Tripline::builder()
        .store(store)
        .source("cloudwatch", source)
        .instance(InstanceSpec::new("queues", rule).param("queue", "prd-*"))
        .build()
        .unwrap()
}

fn states(r: &tripline::CycleReport) -> Vec<(String, String)> {
    let mut v: Vec<_> = r
        .alerts
        .iter()
        .filter(|a| a.rule != tripline::SOURCE_ERROR)
        .map(|a| (a.labels["queue"].clone(), a.state.as_str().to_string()))
        .collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn a_subject_that_drops_out_of_discovery_keeps_its_alert_until_its_own_data_resolves_it() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let t0 = at("2026-11-01T10:00:30Z");
    let before = engine(
        store.clone(),
        fixture(&[("prd-orders", 5000.0), ("prd-emails", 4000.0)], &[]),
        "aws/sqs-queue-depth",
    );
    let r = before.run_cycle_at(t0, None).await.unwrap();
    assert_eq!(
        states(&r),
        pairs(&[("prd-emails", "firing"), ("prd-orders", "firing")])
    );

    // prd-orders is no longer listed (no datapoint for two weeks, in CloudWatch's terms): it is
    // still evaluated, and with `missing = "ignore"` (the rule's default) its alert stays firing
    // instead of resolving because it vanished from discovery.
    let after = engine(
        store.clone(),
        fixture(&[("prd-emails", 4000.0)], &[]),
        "aws/sqs-queue-depth",
    );
    let r = after
        .run_cycle_at(at("2026-11-01T10:05:30Z"), None)
        .await
        .unwrap();
    assert_eq!(
        states(&r),
        pairs(&[("prd-emails", "firing"), ("prd-orders", "firing")])
    );
    assert!(r
        .transitions
        .iter()
        .all(|t| t.alert.labels["queue"] != "prd-orders"
            || t.kind != tripline::alert::TransitionKind::Resolved));
}

#[tokio::test]
async fn a_dropped_subject_resolves_on_its_own_data_and_a_failing_one_keeps_its_state_alone() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    // aws/sqs-dlq-not-empty treats missing data as not breaching: a queue whose metric is gone
    // resolves — on its own (empty) data, in the cycle that evaluates it.
    let before = engine(
        store.clone(),
        fixture(&[("prd-a", 5.0), ("prd-b", 5.0), ("prd-c", 5.0)], &[]),
        "aws/sqs-dlq-not-empty",
    );
    let r = before
        .run_cycle_at(at("2026-11-01T10:00:30Z"), None)
        .await
        .unwrap();
    assert_eq!(r.alerts.len(), 3, "{:#?}", r.alerts);

    // prd-a dropped out of discovery, prd-b's query fails, prd-c drained.
    let after = engine(
        store.clone(),
        fixture(&[("prd-b", 5.0), ("prd-c", 0.0)], &["prd-b"]),
        "aws/sqs-dlq-not-empty",
    );
    let r = after
        .run_cycle_at(at("2026-11-01T10:05:30Z"), None)
        .await
        .unwrap();
    assert_eq!(
        states(&r),
        pairs(&[
            ("prd-a", "resolved"),
            ("prd-b", "firing"),
            ("prd-c", "resolved")
        ])
    );
    // The failure is reported for that subject only.
    assert_eq!(r.source_failures.len(), 1, "{:?}", r.source_failures);
    let err = r
        .alerts
        .iter()
        .chain(r.transitions.iter().map(|t| &t.alert))
        .find(|a| a.rule == tripline::SOURCE_ERROR);
    assert!(err.is_some_and(|a| a.labels.get("subject").map(String::as_str) == Some("prd-b")));
}

#[test]
fn fleet_parameters_are_checked_when_the_instance_is_built() {
    let build = |spec: InstanceSpec| Tripline::builder().instance(spec).build().map(|_| ());
    let err = build(
        InstanceSpec::new("x", "aws/lambda-errors")
            .param("function", "prd-a")
            .exclude("prd-b"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`exclude` needs a fleet"), "{err}");
    let err = build(InstanceSpec::new("x", "aws/lambda-errors").param("function", json!([])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the list of subjects is empty"), "{err}");
    let err = build(InstanceSpec::new("x", "aws/lambda-errors").param("function", json!(["a", 3])))
        .unwrap_err()
        .to_string();
    // The parameter type check (docs/rules.md, "Parameter types") or the fleet's own says so.
    assert!(
        err.contains("names or globs") || err.contains("an array of strings"),
        "{err}"
    );
    assert!(build(
        InstanceSpec::new("x", "aws/lambda-errors")
            .param("function", json!(["prd-a", "prd-b-*"]))
            .exclude("prd-b-canary")
    )
    .is_ok());
}
