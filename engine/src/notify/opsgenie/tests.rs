//! The Opsgenie receiver: its requests snapshotted and checked field by field against the Alert
//! API's documented format, and delivered through the outbox of an engine built from a config
//! string to a local recording receiver (create then close, 429, 5xx, 4xx, secrets).

use super::*;
use crate::alert::{fingerprint, Labels};
use crate::clock::{ManualClock, Timestamp};
use crate::assembly as wire;
use crate::config::Config;
use crate::notify::outbox::OutboxState;
use crate::Tripline;
use chrono::TimeZone;
use std::path::Path;
use tripline_test_receiver::{Receiver, Reply};

const RUNBOOK: &str = "https://runbooks.example.com/campaign-workers#lambda-errors";

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()
}

fn secs(s: i64) -> Timestamp {
    t0() + chrono::Duration::seconds(s)
}

fn alert(function: &str, severity: Severity, state: AlertState) -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), "LambdaErrors".into());
    labels.insert("function".into(), function.into());
    labels.insert("team".into(), "payments".into());
    let mut details = serde_json::Map::new();
    details.insert(
        "top_errors".into(),
        json!([
            "TypeError: x is undefined",
            "Task timed out after 60.00 seconds"
        ]),
    );
    Alert {
        fingerprint: fingerprint("aws/lambda-errors", &labels),
        rule: "aws/lambda-errors".into(),
        instance: "lambda-errors".into(),
        labels,
        state,
        severity,
        summary: format!("{function}: 25 errors in 5m (threshold 10)"),
        runbook: Some(RUNBOOK.into()),
        value: Some(25.0),
        details,
        active_since: t0(),
        starts_at: Some(t0()),
        ends_at: (state == AlertState::Resolved).then(|| t0() + chrono::Duration::minutes(10)),
        last_active: t0(),
        updated_at: t0(),
        severity_changed_at: None,
        keep_firing_since: None,
    }
}

fn notification(status: NotificationStatus, alerts: Vec<Alert>) -> Notification {
    Notification {
        id: "n1".into(),
        receiver: "og".into(),
        status,
        group_key: "{}:{alertname=\"LambdaErrors\"}".into(),
        group_labels: [("alertname".to_string(), "LambdaErrors".to_string())].into(),
        alerts: alerts.into_iter().map(std::sync::Arc::new).collect(),
        created_at: t0(),
        acknowledged_by: (status == NotificationStatus::Acknowledged).then(|| "ann".into()),
    }
}

/// Compares `value` with `snapshots/NAME.json` in this folder.
fn snapshot(name: &str, value: &Value) {
    tripline_test_receiver::snapshot(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/notify/opsgenie/snapshots"),
        name,
        value,
    );
}

fn chars(v: &Value) -> usize {
    v.as_str().expect("a string").chars().count()
}

/// A create-alert body as the Alert API documents it: only its fields, `message` required,
/// every length and count within its limit, string-valued details.
fn assert_documented_create(body: &Value) {
    let o = body.as_object().expect("an object");
    const FIELDS: &[&str] = &[
        "message",
        "alias",
        "description",
        "responders",
        "visibleTo",
        "actions",
        "tags",
        "details",
        "entity",
        "source",
        "priority",
        "user",
        "note",
    ];
    for k in o.keys() {
        assert!(FIELDS.contains(&k.as_str()), "undocumented field {k}");
    }
    let message = chars(&body["message"]);
    assert!((1..=MESSAGE_MAX).contains(&message), "message: {message}");
    assert!((1..=ALIAS_MAX).contains(&chars(&body["alias"])));
    assert!(chars(&body["description"]) <= DESCRIPTION_MAX);
    assert!(chars(&body["entity"]) <= ENTITY_MAX);
    assert!(chars(&body["source"]) <= SOURCE_MAX);
    assert!(["P1", "P2", "P3", "P4", "P5"].contains(&body["priority"].as_str().unwrap()));
    let tags = body["tags"].as_array().expect("tags");
    assert!(tags.len() <= TAGS_MAX, "{} tags", tags.len());
    for t in tags {
        assert!((1..=TAG_MAX).contains(&chars(t)), "tag {t}");
        assert!(!t.as_str().unwrap().contains([',', ' ']), "tag {t}");
    }
    let details = body["details"].as_object().expect("details");
    let total: usize = details
        .iter()
        .map(|(k, v)| k.chars().count() + chars(v))
        .sum();
    assert!(total <= DETAILS_MAX, "details: {total} characters");
}

/// A close or acknowledge body: `user`, `source`, `note`, within their limits.
fn assert_documented_action(body: &Value) {
    let o = body.as_object().expect("an object");
    for k in o.keys() {
        assert!(["user", "source", "note"].contains(&k.as_str()), "{k}");
    }
    assert!(chars(&body["user"]) <= USER_MAX);
    assert!(chars(&body["source"]) <= SOURCE_MAX);
    assert!(chars(&body["note"]) <= NOTE_MAX);
}

fn bodies(rs: &[Request]) -> Value {
    Value::Array(
        rs.iter()
            .map(|r| json!({ "request": format!("POST {}", r.path_and_query()), "body": r.body }))
            .collect(),
    )
}

#[test]
fn create_close_and_acknowledge_requests_match_their_snapshots_and_the_documented_format() {
    let critical = alert("cmp-save-data", Severity::Critical, AlertState::Firing);
    let warning = alert("cmp-load-data", Severity::Warning, AlertState::Firing);
    let fp = critical.fingerprint.clone();

    let firing = requests(&notification(
        NotificationStatus::Firing,
        vec![critical.clone(), warning.clone()],
    ));
    assert_eq!(firing.len(), 2, "one request per alert");
    for r in &firing {
        assert_eq!(r.action, Action::Create);
        assert_eq!(r.path_and_query(), "/v2/alerts");
        assert_documented_create(&r.body);
    }
    assert_eq!(firing[0].body["alias"], json!(fp));
    assert_eq!(firing[0].body["priority"], "P1");
    assert_eq!(firing[1].body["priority"], "P3");
    assert_eq!(firing[0].body["source"], "tripline");
    assert_eq!(firing[0].body["entity"], "cmp-save-data");
    assert_eq!(firing[0].body["details"]["runbook_url"], RUNBOOK);
    assert_eq!(firing[0].body["details"]["team"], "payments");
    assert!(firing[0].body["description"]
        .as_str()
        .unwrap()
        .ends_with(&format!("Runbook: {RUNBOOK}")));
    snapshot("create", &bodies(&firing));

    let resolved = requests(&notification(
        NotificationStatus::Resolved,
        vec![resolved_alert(&critical)],
    ));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].action, Action::Close);
    assert_eq!(
        resolved[0].path_and_query(),
        format!("/v2/alerts/{fp}/close?identifierType=alias")
    );
    assert_documented_action(&resolved[0].body);
    snapshot("close", &bodies(&resolved));

    // Only the open alert of the group can be acknowledged.
    let acked = requests(&notification(
        NotificationStatus::Acknowledged,
        vec![critical.clone(), resolved_alert(&warning)],
    ));
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0].action, Action::Acknowledge);
    assert_eq!(
        acked[0].path_and_query(),
        format!("/v2/alerts/{fp}/acknowledge?identifierType=alias")
    );
    assert_eq!(acked[0].body["user"], "ann");
    assert_documented_action(&acked[0].body);
    snapshot("acknowledge", &bodies(&acked));
}

fn resolved_alert(a: &Alert) -> Alert {
    let mut a = a.clone();
    a.state = AlertState::Resolved;
    a.ends_at = Some(t0() + chrono::Duration::minutes(10));
    a
}

#[test]
fn a_blank_summary_still_gives_the_required_message() {
    let mut a = alert("f", Severity::Info, AlertState::Firing);
    a.summary = "  ".into();
    let r = &requests(&notification(NotificationStatus::Firing, vec![a.clone()]))[0];
    assert_eq!(r.body["message"], "LambdaErrors");
    assert_documented_create(&r.body);
    a.labels.remove("alertname");
    let r = &requests(&notification(NotificationStatus::Firing, vec![a]))[0];
    assert_eq!(r.body["message"], "aws/lambda-errors");
}

#[test]
fn priorities_follow_severity() {
    let got: Vec<&str> = [
        Severity::Critical,
        Severity::High,
        Severity::Warning,
        Severity::Info,
    ]
    .into_iter()
    .map(priority)
    .collect();
    assert_eq!(got, ["P1", "P2", "P3", "P5"]);
    // `error` is the config's spelling of high.
    assert_eq!(priority("error".parse().unwrap()), "P2");
}

#[test]
fn a_huge_alert_keeps_every_documented_limit() {
    let mut a = alert("f", Severity::High, AlertState::Firing);
    a.summary = "x".repeat(500);
    a.fingerprint = "f".repeat(600);
    for i in 0..60 {
        a.labels.insert(
            format!("label_{i:02}"),
            format!("value with, commas {}", "v".repeat(80)),
        );
    }
    a.labels.insert("host".into(), "h".repeat(700));
    for i in 0..40 {
        a.details
            .insert(format!("detail_{i}"), json!("d".repeat(3_000)));
    }
    let r = &requests(&notification(NotificationStatus::Firing, vec![a]))[0];
    assert_documented_create(&r.body);
    assert_eq!(chars(&r.body["message"]), MESSAGE_MAX);
    assert_eq!(chars(&r.body["alias"]), ALIAS_MAX);
    assert_eq!(r.body["tags"].as_array().unwrap().len(), TAGS_MAX);
    // The runbook survives the cuts, in the description and the details.
    assert!(r.body["description"]
        .as_str()
        .unwrap()
        .ends_with(&format!("Runbook: {RUNBOOK}")));
    assert_eq!(r.body["details"]["runbook_url"], RUNBOOK);
    let left_out: usize = r.body["details"]["details_not_shown"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(left_out > 0);
}

fn config(url: &str, key_env: &str, notify: &str) -> String {
    format!(
        r#"
stock_rules = false
[store]
type = "memory"

[notify]
{notify}

[[receiver]]
type = "opsgenie"
name = "og"
api_key_env = "{key_env}"
url = "{url}"

[route]
receiver = "og"
group_wait = "0s"
group_interval = "0s"
"#
    )
}

/// An engine from config text on a manual clock at t0, its API key in `key_env`.
fn engine(toml: &str) -> Tripline {
    let cfg = Config::parse(Path::new("tripline.toml"), toml.to_string()).unwrap();
    wire::build(
        &cfg,
        wire::WireOptions {
            clock: Arc::new(ManualClock::new(t0())),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A key unlike anything else in a request or an error, set in a variable of this test's own.
fn key(var: &str) -> String {
    let key = format!("og-{var}-5f0c2b9e");
    std::env::set_var(var, &key);
    key
}

#[test]
fn an_alert_is_created_then_closed_through_the_outbox() {
    let og = Receiver::start_with(Reply::Status(202));
    let key = key("TRIPLINE_TEST_OG_KEY_CREATE_CLOSE");
    let e = engine(&config(
        &og.url("/og"),
        "TRIPLINE_TEST_OG_KEY_CREATE_CLOSE",
        "",
    ));
    let a = alert("cmp-save-data", Severity::Critical, AlertState::Firing);
    rt().block_on(async {
        e.store()
            .save_alerts(std::slice::from_ref(&a), &[])
            .await
            .unwrap();
        e.notify_at(secs(0)).await.unwrap();
        e.store()
            .save_alerts(&[resolved_alert(&a)], &[])
            .await
            .unwrap();
        for s in 1..=5 {
            e.notify_at(secs(s)).await.unwrap();
        }
    });
    let reqs = og.accepted();
    let seen: Vec<(String, String)> = reqs
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST".to_string(), "/og/v2/alerts".to_string()),
            (
                "POST".to_string(),
                format!("/og/v2/alerts/{}/close?identifierType=alias", a.fingerprint)
            ),
        ]
    );
    for r in &reqs {
        assert_eq!(r.header("authorization"), Some(&*format!("GenieKey {key}")));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let created = reqs[0].json();
    assert_documented_create(&created);
    assert_eq!(created["alias"], json!(a.fingerprint));
    assert_eq!(created["priority"], "P1");
    assert_documented_action(&reqs[1].json());
    let entries = rt().block_on(e.store().outbox_entries()).unwrap();
    assert!(entries.iter().all(|x| x.state == OutboxState::Delivered));
}

/// Saves one firing alert, then runs the engine's notification pass at each second up to
/// `until`; returns the seconds at which the receiver got a request.
async fn tries(e: &Tripline, og: &Receiver, until: i64) -> Vec<i64> {
    e.store()
        .save_alerts(&[alert("f", Severity::Warning, AlertState::Firing)], &[])
        .await
        .unwrap();
    let mut tried_at = Vec::new();
    for s in 0..=until {
        let before = og.requests().len();
        e.notify_at(secs(s)).await.unwrap();
        if og.requests().len() > before {
            tried_at.push(s);
        }
    }
    tried_at
}

#[test]
fn a_429_waits_for_retry_after_then_delivers() {
    let og = Receiver::start_with(Reply::Status(202));
    og.then(vec![Reply::TooManyRequests {
        retry_after_secs: 4,
    }]);
    key("TRIPLINE_TEST_OG_KEY_429");
    let e = engine(&config(
        &og.url("/og"),
        "TRIPLINE_TEST_OG_KEY_429",
        "backoff = \"1s\"",
    ));
    rt().block_on(async {
        // Retry-After said 4 s (not the 1 s backoff).
        assert_eq!(tries(&e, &og, 8).await, [0, 4]);
        let entries = e.store().outbox_entries().await.unwrap();
        assert_eq!(entries[0].state, OutboxState::Delivered);
        assert_eq!(entries[0].throttled, 1);
    });
    assert_eq!(og.accepted().len(), 1);
}

#[test]
fn server_errors_are_retried_with_backoff_then_deliver() {
    let og = Receiver::start_with(Reply::Status(202));
    og.then(vec![Reply::Status(500), Reply::Status(503)]);
    key("TRIPLINE_TEST_OG_KEY_5XX");
    let e = engine(&config(
        &og.url("/og"),
        "TRIPLINE_TEST_OG_KEY_5XX",
        "backoff = \"1s\"\nmax_backoff = \"1m\"",
    ));
    rt().block_on(async {
        assert_eq!(tries(&e, &og, 6).await, [0, 1, 3]);
        let entries = e.store().outbox_entries().await.unwrap();
        assert_eq!(entries[0].state, OutboxState::Delivered);
        assert_eq!(entries[0].attempts, 3);
    });
}

#[test]
fn a_client_error_is_dead_lettered_at_once_and_the_key_is_in_no_error() {
    let og = Receiver::start_with(Reply::Status(422));
    let key = key("TRIPLINE_TEST_OG_KEY_4XX");
    let e = engine(&config(&og.url("/og"), "TRIPLINE_TEST_OG_KEY_4XX", ""));
    let a = alert("f", Severity::Warning, AlertState::Firing);
    let fp = a.fingerprint.clone();
    rt().block_on(async {
        e.store().save_alerts(&[a], &[]).await.unwrap();
        let (_, report) = e.notify_at(secs(0)).await.unwrap();
        assert_eq!(report.dead.len(), 1);
        let message = &report.dead[0].message;
        assert!(
            message.starts_with("permanent error: og: HTTP 422"),
            "{message}"
        );
        assert!(!message.contains(&key), "{message}");
        let entries = e.store().outbox_entries().await.unwrap();
        assert_eq!(entries[0].state, OutboxState::Dead);
        assert!(!entries[0].last_error.as_deref().unwrap().contains(&key));
    });
    // The alert's create went once; any other request is the NotificationFailed meta-alert,
    // which this config routes to the same receiver.
    let creates: Vec<Value> = og.requests().iter().map(|r| r.json()).collect();
    let ours = creates.iter().filter(|b| b["alias"] == json!(fp)).count();
    assert_eq!(ours, 1, "never retried");
    assert!(creates.iter().all(|b| !b.to_string().contains(&key)));
}

#[test]
fn config_errors_name_the_variable_or_option_never_the_key() {
    // Unset: the variable is named, located at the receiver's table.
    let toml = config(
        "http://127.0.0.1:9/og",
        "TRIPLINE_TEST_OG_KEY_NEVER_SET",
        "",
    );
    let cfg = Config::parse(Path::new("tripline.toml"), toml.clone()).unwrap();
    let err = wire::build(&cfg, Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("TRIPLINE_TEST_OG_KEY_NEVER_SET"), "{err}");
    assert!(err.contains("tripline.toml:9:1"), "{err}");
    assert_eq!(
        wire::missing_secrets(&cfg),
        ["tripline.toml:9:1: receiver \"og\": environment variable TRIPLINE_TEST_OG_KEY_NEVER_SET is not set"]
    );
    // A bad `url`: the option is named; the key, which is set, appears nowhere.
    let key = key("TRIPLINE_TEST_OG_KEY_BAD_URL");
    let cfg = Config::parse(
        Path::new("tripline.toml"),
        config("ftp://x", "TRIPLINE_TEST_OG_KEY_BAD_URL", ""),
    )
    .unwrap();
    let err = wire::build(&cfg, Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`url` does not hold an http(s) URL"), "{err}");
    assert!(!err.contains(&key), "{err}");
    // Unknown options and regions are refused where they are written.
    let typo = toml.replace("url = ", "region = \"ap\"\nurl = ");
    let err = Config::parse(Path::new("tripline.toml"), typo)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("tripline.toml:9:1: unknown variant `ap`"),
        "{err}"
    );
}

#[test]
fn region_and_url_choose_the_endpoint() {
    let parse = |extra: &str| -> OpsgenieConfig {
        let toml = format!("name = \"og\"\napi_key_env = \"K\"\n{extra}");
        toml::from_str(&toml).unwrap()
    };
    assert_eq!(parse("").region.url(), "https://api.opsgenie.com");
    assert_eq!(
        parse("region = \"eu\"").region.url(),
        "https://api.eu.opsgenie.com"
    );
    let og = Receiver::start_with(Reply::Status(202));
    std::env::set_var("TRIPLINE_TEST_OG_KEY_REGION", "k");
    let with_url = parse(&format!("region = \"eu\"\nurl = \"{}\"", og.url("/proxy/")));
    let n = OpsgenieConfig {
        api_key_env: "TRIPLINE_TEST_OG_KEY_REGION".into(),
        ..with_url
    }
    .build(&BuildContext {
        aws: &Default::default(),
    })
    .unwrap();
    let acked = notification(
        NotificationStatus::Acknowledged,
        vec![alert("f", Severity::Info, AlertState::Firing)],
    );
    rt().block_on(n.notify(&acked)).unwrap();
    let reqs = og.accepted();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].path,
        format!(
            "/proxy/v2/alerts/{}/acknowledge?identifierType=alias",
            acked.alerts[0].fingerprint
        )
    );
    assert_eq!(reqs[0].json()["user"], "ann");
    assert_eq!(n.cost(&acked), 1);
    assert!(n.tells_acks());
}
