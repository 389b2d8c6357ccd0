//! The Teams card: snapshots of the firing, resolved and acknowledged messages (in
//! `snapshots/`), each checked against the documented Adaptive Card 1.4 schema and the Workflows
//! message envelope; colours by severity; links; big groups cut to stay under 28 KB.

use super::payload::{render, BUDGET_BYTES, MAX_ALERTS_SHOWN, MAX_MESSAGE_BYTES};
use crate::alert::{fingerprint, Alert, AlertState, Labels, Severity};
use crate::ingest::GENERATOR_URL;
use crate::notify::{Notification, NotificationStatus};
use chrono::TimeZone;
use serde_json::{json, Value};

pub(super) fn t0() -> crate::clock::Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()
}

pub(super) fn alert(function: &str, severity: Severity, state: AlertState) -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), "LambdaErrors".into());
    labels.insert("function".into(), function.into());
    labels.insert("team".into(), "payments".into());
    let resolved = state == AlertState::Resolved;
    Alert {
        fingerprint: fingerprint("aws/lambda-errors", &labels),
        rule: "aws/lambda-errors".into(),
        instance: "lambda-errors".into(),
        labels,
        state,
        severity,
        summary: format!("LambdaErrors on {function}/payments"),
        runbook: Some("https://runbooks.example.com/lambdaerrors".into()),
        value: Some(42.0),
        details: Default::default(),
        active_since: t0(),
        starts_at: Some(t0()),
        ends_at: resolved.then(|| t0() + chrono::Duration::minutes(5)),
        last_active: t0(),
        updated_at: t0(),
        severity_changed_at: None,
        keep_firing_since: None,
    }
}

fn notification(status: NotificationStatus, alerts: Vec<Alert>) -> Notification {
    Notification {
        id: "n-1".into(),
        receiver: "teams".into(),
        status,
        group_key: "{}:{alertname=\"LambdaErrors\"}".into(),
        group_labels: [("alertname".to_string(), "LambdaErrors".to_string())].into(),
        alerts: alerts.into_iter().map(std::sync::Arc::new).collect(),
        created_at: t0(),
        acknowledged_by: (status == NotificationStatus::Acknowledged).then(|| "ann".into()),
    }
}

/// The group the snapshots show: a critical alert with a detail and a source link, and a
/// warning one resolved (both resolved for the resolved variant).
fn group(status: NotificationStatus) -> Notification {
    let mut a = alert("checkout", Severity::Critical, AlertState::Firing);
    a.details.insert(
        "top_error".into(),
        "TimeoutError: task timed out after 30.00 seconds".into(),
    );
    a.details.insert(
        GENERATOR_URL.into(),
        "https://prometheus.example.com/graph?g0.expr=errors".into(),
    );
    let mut b = alert("refunds", Severity::Warning, AlertState::Resolved);
    if status == NotificationStatus::Resolved {
        a.state = AlertState::Resolved;
        a.ends_at = Some(t0() + chrono::Duration::minutes(10));
        b.ends_at = Some(t0() + chrono::Duration::minutes(10));
    }
    notification(status, vec![a, b])
}

/// Compares `value` with `snapshots/NAME.json` next to this file; `TRIPLINE_UPDATE_SNAPSHOTS=1`
/// (or a missing file) writes it instead.
fn snapshot(name: &str, value: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/notify/teams/snapshots")
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    let update = std::env::var_os("TRIPLINE_UPDATE_SNAPSHOTS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(want) if !update => assert!(
            text == want,
            "{name}: payload differs from {} (TRIPLINE_UPDATE_SNAPSHOTS=1 to accept)\n{text}",
            path.display()
        ),
        _ => std::fs::write(&path, &text).unwrap(),
    }
}

// ---- The documented schema, as far as the card uses it -------------------------------------

/// A property's documented type.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Url,
    OneOf(&'static [&'static str]),
    Elements,
    Facts,
    Actions,
    /// A host extension (`msteams`) the schema leaves to the host.
    Object,
}

/// (property, type, required, schema version that introduced it).
type Props = &'static [(&'static str, Ty, bool, (u32, u32))];

const SPACING: &[&str] = &[
    "default",
    "none",
    "small",
    "medium",
    "large",
    "extraLarge",
    "padding",
];
const CONTAINER_STYLE: &[&str] = &[
    "default",
    "emphasis",
    "good",
    "attention",
    "warning",
    "accent",
];
/// Properties every element may carry (`Element` in the schema).
const COMMON: Props = &[
    ("id", Ty::Str, false, (1, 0)),
    ("spacing", Ty::OneOf(SPACING), false, (1, 0)),
    ("separator", Ty::Bool, false, (1, 0)),
    ("isVisible", Ty::Bool, false, (1, 2)),
];
const TEXT_BLOCK: Props = &[
    ("text", Ty::Str, true, (1, 0)),
    (
        "color",
        Ty::OneOf(&[
            "default",
            "dark",
            "light",
            "accent",
            "good",
            "warning",
            "attention",
        ]),
        false,
        (1, 0),
    ),
    (
        "size",
        Ty::OneOf(&["default", "small", "medium", "large", "extraLarge"]),
        false,
        (1, 0),
    ),
    (
        "weight",
        Ty::OneOf(&["default", "lighter", "bolder"]),
        false,
        (1, 0),
    ),
    ("isSubtle", Ty::Bool, false, (1, 0)),
    ("wrap", Ty::Bool, false, (1, 0)),
];
const FACT_SET: Props = &[("facts", Ty::Facts, true, (1, 0))];
const CONTAINER: Props = &[
    ("items", Ty::Elements, true, (1, 0)),
    ("style", Ty::OneOf(CONTAINER_STYLE), false, (1, 0)),
    ("bleed", Ty::Bool, false, (1, 2)),
];
const ACTION_SET: Props = &[("actions", Ty::Actions, true, (1, 2))];
const OPEN_URL: Props = &[
    ("id", Ty::Str, false, (1, 0)),
    ("title", Ty::Str, false, (1, 0)),
    ("url", Ty::Url, true, (1, 0)),
];
const CARD: Props = &[
    (
        "$schema",
        Ty::OneOf(&[super::payload::CARD_SCHEMA]),
        false,
        (1, 0),
    ),
    ("version", Ty::Str, true, (1, 0)),
    ("body", Ty::Elements, false, (1, 0)),
    ("fallbackText", Ty::Str, false, (1, 0)),
    ("msteams", Ty::Object, false, (1, 0)),
];

/// `good`, `attention` and `warning` Container styles came with schema 1.2 (with `accent`).
fn value_since(prop: &str, v: &str) -> (u32, u32) {
    match (prop, v) {
        ("style", "good" | "attention" | "warning" | "accent") => (1, 2),
        _ => (1, 0),
    }
}

/// Every problem with `v` as an object of `kind` allowing `props` in a card of `version`.
fn check_object(
    path: &str,
    v: &Value,
    kind: &str,
    props: &[Props],
    version: (u32, u32),
    errs: &mut Vec<String>,
) {
    let Some(obj) = v.as_object() else {
        errs.push(format!("{path}: {kind} is not an object"));
        return;
    };
    let all = || props.iter().flat_map(|p| p.iter());
    for (name, _, required, _) in all() {
        if *required && !obj.contains_key(*name) {
            errs.push(format!("{path}: {kind} lacks required `{name}`"));
        }
    }
    for (key, val) in obj {
        if key == "type" {
            continue;
        }
        let at = format!("{path}.{key}");
        let Some((_, ty, _, since)) = all().find(|(n, ..)| n == key) else {
            errs.push(format!("{at}: `{key}` is not a documented {kind} property"));
            continue;
        };
        if *since > version {
            errs.push(format!("{at}: needs schema {since:?}, card is {version:?}"));
        }
        match ty {
            Ty::Str if !val.is_string() => errs.push(format!("{at}: not a string")),
            Ty::Bool if !val.is_boolean() => errs.push(format!("{at}: not a boolean")),
            Ty::Url => match val.as_str() {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
                _ => errs.push(format!("{at}: not an http(s) URL")),
            },
            Ty::OneOf(allowed) => match val.as_str() {
                Some(s) if allowed.contains(&s) => {
                    if value_since(key, s) > version {
                        errs.push(format!("{at}: {s:?} needs a newer schema"));
                    }
                }
                _ => errs.push(format!("{at}: {val} is not one of {allowed:?}")),
            },
            Ty::Object if !val.is_object() => errs.push(format!("{at}: not an object")),
            Ty::Elements => check_list(&at, val, version, errs, check_element),
            Ty::Actions => check_list(&at, val, version, errs, check_action),
            Ty::Facts => check_list(&at, val, version, errs, |p, f, _, errs| {
                for k in ["title", "value"] {
                    if !f[k].is_string() {
                        errs.push(format!("{p}: Fact needs a string `{k}`"));
                    }
                }
                if f.as_object().map(|o| o.len()) != Some(2) {
                    errs.push(format!("{p}: a Fact has only `title` and `value`"));
                }
            }),
            _ => {}
        }
    }
}

type Check = fn(&str, &Value, (u32, u32), &mut Vec<String>);

fn check_list(path: &str, v: &Value, version: (u32, u32), errs: &mut Vec<String>, f: Check) {
    match v.as_array() {
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                f(&format!("{path}[{i}]"), item, version, errs);
            }
        }
        None => errs.push(format!("{path}: not an array")),
    }
}

fn check_element(path: &str, v: &Value, version: (u32, u32), errs: &mut Vec<String>) {
    let kind = v["type"].as_str().unwrap_or("");
    let props: Props = match kind {
        "TextBlock" => TEXT_BLOCK,
        "FactSet" => FACT_SET,
        "Container" => CONTAINER,
        "ActionSet" => ACTION_SET,
        other => {
            errs.push(format!(
                "{path}: element type {other:?} is not one the card uses"
            ));
            return;
        }
    };
    check_object(path, v, kind, &[COMMON, props], version, errs);
}

fn check_action(path: &str, v: &Value, version: (u32, u32), errs: &mut Vec<String>) {
    match v["type"].as_str() {
        Some("Action.OpenUrl") => {
            check_object(path, v, "Action.OpenUrl", &[OPEN_URL], version, errs)
        }
        other => errs.push(format!(
            "{path}: action type {other:?} is not Action.OpenUrl"
        )),
    }
}

/// Every way `body` breaks the Workflows message format or the Adaptive Card 1.4 schema.
fn schema_errors(body: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    if body["type"] != "message" {
        errs.push("message: `type` is not \"message\"".into());
    }
    let Some([att]) = body["attachments"].as_array().map(Vec::as_slice) else {
        errs.push("message: not exactly one attachment".into());
        return errs;
    };
    if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
        errs.push(format!("attachment: contentType {}", att["contentType"]));
    }
    let card = &att["content"];
    if card["type"] != "AdaptiveCard" {
        errs.push("card: `type` is not \"AdaptiveCard\"".into());
    }
    let version = card["version"]
        .as_str()
        .and_then(|v| v.split_once('.'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    match version {
        Some(v) if v <= (1, 4) => check_object("card", card, "AdaptiveCard", &[CARD], v, &mut errs),
        _ => errs.push(format!(
            "card: version {} is not 1.0 to 1.4",
            card["version"]
        )),
    }
    let bytes = serde_json::to_vec(body).unwrap().len();
    if bytes > MAX_MESSAGE_BYTES {
        errs.push(format!("message: {bytes} bytes, over Teams' 28 KB"));
    }
    errs
}

pub(super) fn assert_valid(body: &Value) {
    let errs = schema_errors(body);
    assert!(errs.is_empty(), "{errs:#?}\n{body:#}");
}

fn card(body: &Value) -> &Value {
    &body["attachments"][0]["content"]
}

/// The alert containers of a card (every body element but the header and a "more" line).
fn alert_containers(body: &Value) -> Vec<&Value> {
    card(body)["body"].as_array().unwrap()[1..]
        .iter()
        .filter(|e| e["type"] == "Container")
        .collect()
}

fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => {
            let own = (m.get("type") == Some(&json!("TextBlock")))
                .then(|| m["text"].as_str().unwrap().to_string());
            own.into_iter().chain(m.values().flat_map(texts)).collect()
        }
        Value::Array(a) => a.iter().flat_map(texts).collect(),
        _ => vec![],
    }
}

// ---- Tests -----------------------------------------------------------------------------------

#[test]
fn firing_resolved_and_acknowledged_cards_match_their_snapshots_and_the_schema() {
    for (status, name) in [
        (NotificationStatus::Firing, "teams_firing"),
        (NotificationStatus::Resolved, "teams_resolved"),
        (NotificationStatus::Acknowledged, "teams_acknowledged"),
    ] {
        let body = render(&group(status));
        assert_valid(&body);
        snapshot(name, &body);
    }
}

#[test]
fn the_schema_check_rejects_what_teams_would() {
    let good = render(&group(NotificationStatus::Firing));
    let mut bad = good.clone();
    bad["attachments"][0]["content"]["body"][0]["style"] = json!("danger");
    bad["attachments"][0]["content"]["version"] = json!("1.5");
    bad["attachments"][0]["content"]["body"][1]["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("text");
    bad["attachments"][0]["contentType"] = json!("application/json");
    let errs = schema_errors(&bad).join("\n");
    assert!(errs.contains("version \"1.5\""), "{errs}");
    assert!(errs.contains("contentType"), "{errs}");
    let mut bad = good.clone();
    bad["attachments"][0]["content"]["body"][0]["style"] = json!("danger");
    bad["attachments"][0]["content"]["body"][1]["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("text");
    bad["attachments"][0]["content"]["body"][1]["items"][2]["facts"][0]["value"] = json!(1);
    bad["attachments"][0]["content"]["body"][1]["items"][0]["colour"] = json!("red");
    let errs = schema_errors(&bad).join("\n");
    for want in [
        "\"danger\" is not one of",
        "lacks required `text`",
        "Fact needs a string `value`",
        "`colour` is not a documented TextBlock property",
    ] {
        assert!(errs.contains(want), "{want}: {errs}");
    }
    let mut old = good.clone();
    old["attachments"][0]["content"]["version"] = json!("1.0");
    let errs = schema_errors(&old).join("\n");
    assert!(
        errs.contains("needs schema (1, 2)"),
        "ActionSet, bleed: {errs}"
    );
    assert!(
        errs.contains("\"attention\" needs a newer schema"),
        "{errs}"
    );
}

#[test]
fn colours_follow_the_worst_firing_severity_and_resolution() {
    let header_style = |status, alerts| {
        let body = render(&notification(status, alerts));
        assert_valid(&body);
        card(&body)["body"][0]["style"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let firing = |s| alert("f", s, AlertState::Firing);
    for (sev, want) in [
        (Severity::Critical, "attention"),
        (Severity::High, "attention"),
        (Severity::Warning, "warning"),
        (Severity::Info, "accent"),
    ] {
        assert_eq!(
            header_style(NotificationStatus::Firing, vec![firing(sev)]),
            want
        );
    }
    // The worst firing alert decides; a resolved critical one does not.
    let mut gone = firing(Severity::Critical);
    gone.state = AlertState::Resolved;
    assert_eq!(
        header_style(
            NotificationStatus::Firing,
            vec![firing(Severity::Info), firing(Severity::Warning), gone]
        ),
        "warning"
    );
    let mut done = firing(Severity::Critical);
    done.state = AlertState::Resolved;
    assert_eq!(
        header_style(NotificationStatus::Resolved, vec![done]),
        "good"
    );
    assert_eq!(
        header_style(
            NotificationStatus::Acknowledged,
            vec![firing(Severity::Critical)]
        ),
        "emphasis"
    );
    // Each alert's container by its own state and severity.
    let body = render(&group(NotificationStatus::Firing));
    let styles: Vec<&str> = alert_containers(&body)
        .iter()
        .map(|c| c["style"].as_str().unwrap())
        .collect();
    assert_eq!(styles, ["attention", "good"]);
}

#[test]
fn title_labels_and_links() {
    let body = render(&group(NotificationStatus::Firing));
    let c = card(&body);
    assert_eq!(
        c["body"][0]["items"][0]["text"],
        "[FIRING:1, RESOLVED:1] LambdaErrors"
    );
    let first = alert_containers(&body)[0];
    let facts = &first["items"][2]["facts"];
    assert_eq!(
        facts,
        &json!([{ "title": "function", "value": "checkout" }, { "title": "team", "value": "payments" }]),
        "labels but the group's, as facts"
    );
    // Without group labels every label is a fact, alertname too.
    let mut n = group(NotificationStatus::Firing);
    n.group_labels.clear();
    let body = render(&n);
    assert_valid(&body);
    assert_eq!(
        alert_containers(&body)[0]["items"][2]["facts"][0],
        json!({ "title": "alertname", "value": "LambdaErrors" })
    );
    let actions = &first["items"].as_array().unwrap().last().unwrap()["actions"];
    assert_eq!(
        actions,
        &json!([
            { "type": "Action.OpenUrl", "title": "Runbook", "url": "https://runbooks.example.com/lambdaerrors" },
            { "type": "Action.OpenUrl", "title": "Source", "url": "https://prometheus.example.com/graph?g0.expr=errors" }
        ])
    );
    assert!(
        !texts(first).iter().any(|t| t.contains(GENERATOR_URL)),
        "the source link is a button, not a detail line"
    );
    // A runbook that is no http(s) URL gets no button; no links, no ActionSet.
    let mut a = alert("f", Severity::Warning, AlertState::Firing);
    a.runbook = Some("see the wiki".into());
    let body = render(&notification(NotificationStatus::Firing, vec![a]));
    assert_valid(&body);
    assert!(!body.to_string().contains("ActionSet"), "{body}");
    assert!(card(&body)["fallbackText"]
        .as_str()
        .unwrap()
        .starts_with("[FIRING:1] LambdaErrors: "));
}

#[test]
fn acknowledged_and_resolved_variants_say_so() {
    let body = render(&group(NotificationStatus::Acknowledged));
    let head = texts(&card(&body)["body"][0]);
    assert_eq!(head[0], "[ACKNOWLEDGED] LambdaErrors by ann");
    assert!(
        head.contains(&"Acknowledged by ann".to_string()),
        "{head:?}"
    );
    let body = render(&group(NotificationStatus::Resolved));
    assert_eq!(
        card(&body)["body"][0]["items"][0]["text"],
        "[RESOLVED:2] LambdaErrors"
    );
    assert!(alert_containers(&body).iter().all(|c| c["style"] == "good"));
    assert!(texts(&body)
        .iter()
        .any(|t| t.contains("Resolved: 2026-11-01 10:10 UTC")));
}

#[test]
fn a_large_group_is_cut_with_a_count_and_stays_under_the_size_limit() {
    let alerts: Vec<Alert> = (0..500)
        .map(|i| {
            let mut a = alert(&format!("fn-{i}"), Severity::Warning, AlertState::Firing);
            a.summary = "x".repeat(5000);
            if i % 2 == 1 {
                a.state = AlertState::Resolved;
                a.ends_at = Some(t0());
            }
            a
        })
        .collect();
    let body = render(&notification(NotificationStatus::Firing, alerts));
    assert_valid(&body);
    let bytes = serde_json::to_vec(&body).unwrap().len();
    assert!(bytes <= BUDGET_BYTES, "{bytes} bytes");
    let shown = alert_containers(&body).len();
    assert!((1..=MAX_ALERTS_SHOWN).contains(&shown), "{shown}");
    let last = card(&body)["body"].as_array().unwrap().last().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden = 500 - shown;
    let firing_hidden = (shown..500).filter(|i| i % 2 == 0).count();
    assert_eq!(
        last,
        format!(
            "…and {hidden} more alert(s) not shown ({firing_hidden} firing, {} resolved)",
            hidden - firing_hidden
        )
    );
    assert!(card(&body)["body"][0]["items"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("[FIRING:250, RESOLVED:250]"));
    // Small alerts: the count cap, not the size, cuts.
    let small: Vec<Alert> = (0..30)
        .map(|i| alert(&format!("fn-{i}"), Severity::Info, AlertState::Firing))
        .collect();
    let body = render(&notification(NotificationStatus::Firing, small));
    assert_valid(&body);
    assert_eq!(alert_containers(&body).len(), MAX_ALERTS_SHOWN);
    assert!(body
        .to_string()
        .contains("…and 10 more alert(s) not shown (10 firing, 0 resolved)"));
}

#[test]
fn one_alert_too_big_for_the_card_is_shown_in_short() {
    let mut a = alert("f", Severity::Critical, AlertState::Firing);
    for i in 0..200 {
        a.labels
            .insert(format!("label_{i:03}"), "\u{1}".repeat(400));
    }
    let body = render(&notification(NotificationStatus::Firing, vec![a]));
    assert_valid(&body);
    let bytes = serde_json::to_vec(&body).unwrap().len();
    assert!(bytes <= BUDGET_BYTES, "{bytes} bytes");
    let shown = alert_containers(&body);
    assert_eq!(shown.len(), 1, "the alert is shown");
    assert_eq!(shown[0]["items"][0]["text"], "LambdaErrors on f/payments");
    assert!(!body.to_string().contains("more alert(s)"));
}
