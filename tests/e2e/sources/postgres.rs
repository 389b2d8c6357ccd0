//! The SQL source against a real PostgreSQL: runbook 003's queries exactly as the runbook writes
//! them, over seeded `processing_queue` rows; and the read-only guard.

use super::{failure, fetch_one, series_set, spec, table};
use crate::support::postgres::Postgres;
use serde_json::{json, Value};
use tripline::source::{PostgresOptions, PostgresSource, Source};

/// Rows placed relative to the current hour `h` so each query's window sees a known set:
/// hour h: 1 just claimed (processing); h-1: 3 completed in 2, 4, 6 min + 1 failed;
/// h-3: 2 completed in 10, 20 min; h-5: 3 stuck in processing (orphans, > 2 h);
/// older: completed 2 days ago, failed 3 days / 30 h / 10 days / 25 h (no message) ago; 2 pending.
const SEED: &str = "
WITH t AS (SELECT date_trunc('hour', NOW()) AS h)
INSERT INTO processing_queue
    (flow_name, flow_instance_id, status, claimed_at, completed_at, error_message, updated_at)
SELECT v.flow, v.inst, v.status, v.claimed, v.completed, v.err, COALESCE(v.updated, NOW())
FROM t, LATERAL (VALUES
    ('survey-import', 'c1', 'processing', NOW(), NULL::timestamptz, NULL::text, NULL::timestamptz),
    ('survey-import', 'c1', 'completed', t.h - interval '50 min', t.h - interval '48 min', NULL, NULL),
    ('survey-import', 'c2', 'completed', t.h - interval '50 min', t.h - interval '46 min', NULL, NULL),
    ('crm-sync',      'c2', 'completed', t.h - interval '50 min', t.h - interval '44 min', NULL, NULL),
    ('survey-import', 'c1', 'failed',    t.h - interval '40 min', NULL, 'Connection timeout to survey API', NULL),
    ('survey-import', 'c3', 'completed', t.h - interval '175 min', t.h - interval '165 min', NULL, NULL),
    ('crm-sync',      'c3', 'completed', t.h - interval '175 min', t.h - interval '155 min', NULL, NULL),
    ('survey-import', 'c4', 'processing', t.h - interval '299 min', NULL, NULL, NULL),
    ('survey-import', 'c4', 'processing', t.h - interval '299 min', NULL, NULL, NULL),
    ('crm-sync',      'c5', 'processing', t.h - interval '299 min', NULL, NULL, NULL),
    ('survey-import', 'c0', 'completed', NOW() - interval '2 days', NOW() - interval '2 days' + interval '1 min', NULL, NOW() - interval '2 days'),
    ('survey-import', 'c0', 'failed', NOW() - interval '3 days', NULL, 'Connection timeout to survey API', NOW() - interval '3 days'),
    ('crm-sync',      'c0', 'failed', NOW() - interval '3 days', NULL, 'Connection timeout to survey API', NOW() - interval '3 days'),
    ('survey-import', 'c0', 'failed', NOW() - interval '30 hours', NULL, 'Invalid payload: missing respondent_id', NOW() - interval '30 hours'),
    ('survey-import', 'c0', 'failed', NOW() - interval '10 days', NULL, 'Upstream schema changed', NOW() - interval '10 days'),
    ('survey-import', 'c0', 'failed', NOW() - interval '25 hours', NULL, NULL, NOW() - interval '25 hours'),
    ('survey-import', NULL, 'pending', NULL, NULL, NULL, NULL),
    ('crm-sync',      NULL, 'pending', NULL, NULL, NULL, NULL)
) AS v(flow, inst, status, claimed, completed, err, updated);
";

// Runbook 003, "Performance Monitoring Queries" and "Data Corruption Detection", verbatim.
const PROCESSING_RATE_BY_HOUR: &str = "-- Processing rate by hour (last 24 hours)
SELECT
    DATE_TRUNC('hour', claimed_at) as hour,
    COUNT(*) as records_processed,
    COUNT(CASE WHEN status = 'completed' THEN 1 END) as completed,
    ROUND(AVG(EXTRACT(EPOCH FROM (completed_at - claimed_at))/60), 2) as avg_minutes
FROM processing_queue
WHERE claimed_at >= NOW() - INTERVAL '24 hours'
GROUP BY DATE_TRUNC('hour', claimed_at)
ORDER BY hour DESC;";

const TOP_ERRORS: &str = "-- Top error messages (last 7 days)
SELECT
    error_message,
    COUNT(*) as error_count,
    COUNT(DISTINCT flow_name) as affected_flows
FROM processing_queue
WHERE status = 'failed'
AND updated_at >= NOW() - INTERVAL '7 days'
AND error_message IS NOT NULL
GROUP BY error_message
ORDER BY error_count DESC
LIMIT 10;";

const FLOW_PERFORMANCE: &str = "-- Performance by flow (last 24 hours)
SELECT
    flow_name,
    COUNT(*) as total_processed,
    COUNT(CASE WHEN status = 'completed' THEN 1 END) as completed,
    ROUND((COUNT(CASE WHEN status = 'completed' THEN 1 END) * 100.0 / COUNT(*)), 2) as success_rate,
    ROUND(AVG(EXTRACT(EPOCH FROM (completed_at - claimed_at))/60), 2) as avg_processing_minutes
FROM processing_queue
WHERE claimed_at >= NOW() - INTERVAL '24 hours'
GROUP BY flow_name
ORDER BY total_processed DESC;";

const STATUS_COUNTS: &str = "-- Check for data integrity issues
SELECT
    status,
    COUNT(*) as count,
    MIN(created_at) as oldest,
    MAX(updated_at) as newest
FROM processing_queue
GROUP BY status;";

/// The runbook's orphan rule ("records stuck in processing for > 2 hours"; it gives no SQL).
const ORPHANED: &str = "SELECT COUNT(*) AS orphaned_records
FROM processing_queue
WHERE status = 'processing'
AND claimed_at < NOW() - INTERVAL '2 hours'";

/// One of each column type the source maps.
const TYPES: &str = "SELECT true AS b, 5::information_schema.cardinal_number AS dom, 7::int2 AS i2, 2147483647::int4 AS i4, 9007199254740993::int8 AS i8,
       1.5::float4 AS f4, 'NaN'::float8 AS f8nan, 'NaN'::numeric AS nnan, 12345.678::numeric AS n,
       'x'::char(3) AS bpchar, 'v'::varchar AS vc, DATE '2026-01-02' AS d, TIME '10:11:12' AS t,
       TIMESTAMP '2026-01-02 03:04:05.5' AS ts, INTERVAL '1 day 1 hour 30 minutes' AS iv,
       '{\"a\": [1, 2]}'::jsonb AS jb, '{\"b\": null}'::json AS j,
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, ARRAY['a', NULL, 'c'] AS arr,
       ARRAY[]::int[] AS empty, NULL::text AS nothing";

fn source(pg: &Postgres) -> PostgresSource {
    let mut o = PostgresOptions::new("UNUSED_IN_THIS_TEST");
    o.dsn = Some(pg.dsn());
    PostgresSource::new(o).unwrap()
}

fn sql(query: &str) -> tripline::rule::QuerySpec {
    spec("sql", json!({ "query": query }))
}

fn seeded() -> Option<Postgres> {
    let pg = Postgres::start()?;
    pg.create_processing_queue();
    pg.psql("tripline", SEED);
    Some(pg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_003_queries_run_as_written_against_seeded_rows() {
    let Some(pg) = seeded() else { return };
    let src = source(&pg);
    let specs = [
        sql(PROCESSING_RATE_BY_HOUR),
        sql(TOP_ERRORS),
        sql(ORPHANED),
        sql(STATUS_COUNTS),
        sql(FLOW_PERFORMANCE),
        spec(
            "sql",
            json!({ "query": STATUS_COUNTS, "series": { "label": "status", "value": "count" } }),
        ),
        sql(TYPES),
    ];
    let out = src.fetch(&specs, &super::ctx(30)).await;

    // Processing rate by hour: four hour buckets, newest first.
    let rate = table(&out[0]);
    let got: Vec<(Value, Value, Value)> = rate
        .rows
        .iter()
        .map(|r| {
            (
                r["records_processed"].clone(),
                r["completed"].clone(),
                r["avg_minutes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!(1), json!(0), Value::Null),
            (json!(4), json!(3), json!(4.0)),
            (json!(2), json!(2), json!(15.0)),
            (json!(3), json!(0), Value::Null),
        ],
        "{:?}",
        rate.rows
    );
    let hours: Vec<&str> = rate
        .rows
        .iter()
        .map(|r| r["hour"].as_str().unwrap())
        .collect();
    assert!(hours.windows(2).all(|w| w[0] > w[1]), "{hours:?}");
    let newest = chrono::DateTime::parse_from_rfc3339(hours[0]).unwrap();
    assert_eq!(newest.timestamp() % 3600, 0, "{}", hours[0]);
    assert!(hours[0].ends_with('Z'));

    // Top errors of the last 7 days: the old one and the NULL one are out.
    let errors = table(&out[1]);
    assert_eq!(
        errors.rows,
        vec![
            [
                (
                    "error_message".to_string(),
                    json!("Connection timeout to survey API")
                ),
                ("error_count".to_string(), json!(3)),
                ("affected_flows".to_string(), json!(2)),
            ]
            .into_iter()
            .collect(),
            [
                (
                    "error_message".to_string(),
                    json!("Invalid payload: missing respondent_id")
                ),
                ("error_count".to_string(), json!(1)),
                ("affected_flows".to_string(), json!(1)),
            ]
            .into_iter()
            .collect(),
        ]
    );

    // Orphans: the three claimed five hours ago, not the one claimed just now.
    assert_eq!(table(&out[2]).rows[0]["orphaned_records"], json!(3));

    // Failed counts per status.
    let counts = table(&out[3]);
    let by_status = |s: &str| {
        counts
            .rows
            .iter()
            .find(|r| r["status"] == json!(s))
            .map(|r| r["count"].clone())
    };
    assert_eq!(by_status("failed"), Some(json!(6)));
    assert_eq!(by_status("completed"), Some(json!(6)));
    assert_eq!(by_status("processing"), Some(json!(4)));
    assert_eq!(by_status("pending"), Some(json!(2)));
    assert!(counts.rows[0]["oldest"].as_str().unwrap().ends_with('Z'));

    // Performance by flow: numeric ROUND(...) columns come back as numbers.
    let flows = table(&out[4]);
    assert_eq!(flows.rows[0]["flow_name"], json!("survey-import"));
    assert_eq!(flows.rows[0]["total_processed"], json!(7));
    assert_eq!(flows.rows[0]["success_rate"], json!(42.86));
    assert_eq!(flows.rows[0]["avg_processing_minutes"], json!(5.33));
    assert_eq!(flows.rows[1]["flow_name"], json!("crm-sync"));
    assert_eq!(flows.rows[1]["success_rate"], json!(66.67));
    assert_eq!(flows.rows[1]["avg_processing_minutes"], json!(13.0));

    // The same counts as labelled series.
    let types = &table(&out[6]).rows[0];
    let expect = json!({
        "b": true, "dom": 5, "i2": 7, "i4": 2147483647, "i8": 9007199254740993i64,
        "f4": 1.5, "f8nan": "NaN", "nnan": "NaN", "n": 12345.678,
        "bpchar": "x  ", "vc": "v", "d": "2026-01-02", "t": "10:11:12",
        "ts": "2026-01-02T03:04:05.500Z", "iv": 91800.0,
        "jb": {"a": [1, 2]}, "j": {"b": null},
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "arr": ["a", null, "c"],
        "empty": [], "nothing": null,
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&types[k], v, "column {k}");
    }

    let set = series_set(&out[5]);
    assert_eq!(set.len(), 4);
    let failed = set
        .iter()
        .find(|s| s.labels.get("status").map(String::as_str) == Some("failed"))
        .unwrap();
    assert_eq!(failed.name, "count");
    assert_eq!(failed.last(), Some(6.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_statements_are_refused_by_the_read_only_transaction() {
    let Some(pg) = seeded() else { return };
    let src = source(&pg);
    let cases = [
        (
            "INSERT INTO processing_queue (flow_name) VALUES ('intruder')",
            "cannot execute INSERT in a read-only transaction",
        ),
        (
            // PostgreSQL names the outer statement for a data-modifying CTE.
            "WITH gone AS (DELETE FROM processing_queue RETURNING id) SELECT COUNT(*) FROM gone",
            "cannot execute SELECT in a read-only transaction",
        ),
        (
            "UPDATE processing_queue SET status = 'pending' WHERE status = 'failed'",
            "cannot execute UPDATE in a read-only transaction",
        ),
        (
            "SELECT 1; DELETE FROM processing_queue",
            "cannot insert multiple commands into a prepared statement",
        ),
        (
            "DROP TABLE processing_queue",
            "cannot execute DROP TABLE in a read-only transaction",
        ),
    ];
    for (query, message) in cases {
        let o = fetch_one(&src, sql(query)).await;
        let f = failure(&o);
        assert_eq!(f.source, "sql");
        assert!(f.message.contains(message), "{query}: {}", f.message);
    }
    // statement_timeout is set per query.
    let o = fetch_one(
        &src,
        spec(
            "sql",
            json!({ "query": "SELECT pg_sleep(5)", "timeout": "300ms" }),
        ),
    )
    .await;
    assert!(
        failure(&o)
            .message
            .contains("canceling statement due to statement timeout"),
        "{:?}",
        o
    );
    // Nothing was written, and the source (and its pooled connection) still answers.
    assert_eq!(
        pg.psql("tripline", "SELECT COUNT(*) FROM processing_queue"),
        "18"
    );
    let o = fetch_one(&src, sql("SELECT COUNT(*) AS n FROM processing_queue")).await;
    assert_eq!(table(&o).rows[0]["n"], json!(18));
    // A type the source cannot read says how to fix the query.
    let o = fetch_one(&src, sql("SELECT '127.0.0.1'::inet AS addr")).await;
    assert!(failure(&o).message.contains("cast it"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_used_and_verified_as_the_connection_string_asks() {
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let q = sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    let source = |dsn: String, ca: Option<std::path::PathBuf>| {
        let mut o = PostgresOptions::new("UNUSED_IN_THIS_TEST");
        o.dsn = Some(dsn);
        o.ca_file = ca;
        PostgresSource::new(o).unwrap()
    };
    // Trusting the test CA: an encrypted, verified connection, with sslmode=require and with
    // the default (prefer).
    for dsn in [format!("{} sslmode=require", pg.dsn()), pg.dsn()] {
        let out = fetch_one(&source(dsn, Some(pg.ca_file())), q.clone()).await;
        assert_eq!(table(&out).rows[0]["ssl"], json!(true));
    }
    // Without it the server's certificate is not trusted.
    let out = fetch_one(
        &source(format!("{} sslmode=require", pg.dsn()), None),
        q.clone(),
    )
    .await;
    let m = failure(&out).message.to_lowercase();
    assert!(m.contains("certificate"), "{m}");
    assert!(!m.contains("pg-secret-do-not-print"), "{m}");
    // sslmode=disable: plain text.
    let out = fetch_one(&source(format!("{} sslmode=disable", pg.dsn()), None), q).await;
    assert_eq!(table(&out).rows[0]["ssl"], json!(false));
    // A CA file that cannot be read is a configuration error.
    let mut o = PostgresOptions::new("UNUSED_IN_THIS_TEST");
    o.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(PostgresSource::new(o)
        .unwrap_err()
        .contains("/nonexistent/ca.pem"));
}
