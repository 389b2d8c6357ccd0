//! The real `amtool` (Debian's `prometheus-alertmanager`) against `tripline run`: Tripline's
//! Alertmanager API v2 answers it as Alertmanager would (issue 12, point 9). A silence added
//! with amtool really mutes the alert's notification at a local recording receiver, and
//! expiring it with amtool lets the notification through.

use crate::support::daemon::Daemon;
use crate::support::http::request;
use crate::support::receiver::Receiver;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn amtool_bin() -> Option<PathBuf> {
    crate::support::real_part("TRIPLINE_AMTOOL", "amtool (prometheus-alertmanager)", |p| {
        p.exists()
    })
}

struct Amtool {
    bin: PathBuf,
    url: String,
    /// amtool's `--http.config.file`: the bearer token.
    http_config: PathBuf,
}

impl Amtool {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg(format!("--alertmanager.url={}", self.url))
            .arg(format!("--http.config.file={}", self.http_config.display()))
            .args(args)
            .output()
            .expect("start amtool")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "amtool {args:?}: exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[track_caller]
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

fn names(alerts: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn config(dir: &Path, rx: &Receiver) {
    std::fs::write(
        dir.join("tripline.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\ntype = \"sqlite\"\npath = \"state.db\"\n\n\
             [[receiver]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n\n\
             [route]\nreceiver = \"hook\"\ngroup_by = [\"alertname\"]\ngroup_wait = \"0s\"\n",
            rx.url("/hook")
        ),
    )
    .unwrap();
}

#[test]
fn amtool_queries_alerts_and_its_silences_mute_notifications() {
    let Some(bin) = amtool_bin() else { return };
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &rx);
    let http_config = dir.path().join("amtool-http.yml");
    std::fs::write(
        &http_config,
        "authorization:\n  type: Bearer\n  credentials: s3cret\n",
    )
    .unwrap();
    let d = Daemon::start(
        dir.path(),
        "tripline.toml",
        &[("TRIPLINE_API_TOKEN", "s3cret")],
    );
    let am = Amtool {
        bin,
        url: format!("http://{}", d.addr),
        http_config,
    };
    let told = |name: &str| {
        rx.accepted().iter().any(|r| {
            r.json()["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["labels"]["alertname"] == name))
        })
    };

    // Without the token, amtool's mutations are refused.
    let anonymous = Command::new(&am.bin)
        .arg(format!("--alertmanager.url={}", am.url))
        .args(["silence", "add", "alertname=Muted", "--comment=x"])
        .output()
        .unwrap();
    assert!(!anonymous.status.success());

    let id = am
        .ok(&[
            "silence",
            "add",
            "alertname=Muted",
            "--comment=deploying the muted thing",
            "--author=ann",
            "--duration=2h",
        ])
        .trim()
        .to_string();
    assert!(!id.is_empty());

    // The silenced alert is posted first: any flush that sees Loud has seen Muted too.
    am.ok(&[
        "alert",
        "add",
        "alertname=Muted",
        "severity=critical",
        "--annotation=summary=the muted thing is down",
    ]);
    am.ok(&["alert", "add", "alertname=Loud"]);
    d.wait_for(20, "Loud's notification", || told("Loud"));
    assert!(
        !told("Muted"),
        "the silence did not mute: {:?}",
        rx.accepted()
    );

    // Active alerts by default; the silenced one with --silenced, and why.
    assert_eq!(names(&am.json(&["alert", "query"])), ["Loud"]);
    let silenced = am.json(&["alert", "query", "--silenced"]);
    assert_eq!(names(&silenced), ["Muted"]);
    assert_eq!(silenced[0]["status"]["state"], "suppressed");
    assert_eq!(silenced[0]["status"]["silencedBy"], serde_json::json!([id]));
    assert_eq!(
        silenced[0]["receivers"],
        serde_json::json!([{ "name": "hook" }])
    );
    assert_eq!(
        silenced[0]["annotations"]["summary"],
        "the muted thing is down"
    );
    // A matcher filter, as amtool passes it.
    assert_eq!(
        names(&am.json(&[
            "alert",
            "query",
            "--silenced",
            "--active",
            "alertname=~Lo.*"
        ])),
        ["Loud"]
    );
    let simple = am.ok(&["alert", "query"]);
    assert!(simple.contains("Loud"), "{simple}");

    let silences = am.json(&["silence", "query"]);
    assert_eq!(silences.as_array().unwrap().len(), 1, "{silences:#}");
    assert_eq!(silences[0]["id"], id.as_str());
    assert_eq!(silences[0]["status"]["state"], "active");
    assert_eq!(silences[0]["createdBy"], "ann");
    assert_eq!(
        silences[0]["matchers"],
        serde_json::json!([{ "name": "alertname", "value": "Muted", "isRegex": false, "isEqual": true }])
    );
    assert_eq!(am.ok(&["silence", "query", "-q"]).trim(), id);

    // Expired, the silence mutes no more: the notification goes out.
    am.ok(&["silence", "expire", &id]);
    d.wait_for(20, "Muted's notification once its silence expired", || {
        told("Muted")
    });
    assert!(am
        .json(&["silence", "query"])
        .as_array()
        .unwrap()
        .is_empty());
    let expired = am.json(&["silence", "query", "--expired"]);
    assert_eq!(expired[0]["id"], id.as_str());
    assert_eq!(expired[0]["status"]["state"], "expired");
    assert_eq!(
        names(&am.json(&["alert", "query"])),
        ["Loud", "Muted"],
        "both active now"
    );
    // An unknown silence is a 404, which amtool reports as a failure.
    assert!(!am
        .run(&["silence", "expire", "no-such-silence"])
        .status
        .success());
}

#[test]
fn serves_alertmanager_v2_shapes_for_groups_receivers_status_and_silence_errors() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &rx);
    let d = Daemon::start(
        dir.path(),
        "tripline.toml",
        &[("TRIPLINE_API_TOKEN", "s3cret")],
    );
    let auth = [("Authorization", "Bearer s3cret")];
    let call = |method: &str, path: &str, body: &str| {
        let r = request(&d.addr, method, path, &auth, body).unwrap();
        (r.status, r.body)
    };
    let (st, _) = call(
        "POST",
        "/api/v2/alerts",
        r#"[{"labels":{"alertname":"Down","worker":"email"}},{"labels":{"alertname":"Down","worker":"sms"}}]"#,
    );
    assert_eq!(st, 200);

    let (st, body) = call("GET", "/api/v2/alerts/groups", "");
    assert_eq!(st, 200, "{body}");
    let groups: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups:#}");
    assert_eq!(
        groups[0]["labels"],
        serde_json::json!({ "alertname": "Down" })
    );
    assert_eq!(groups[0]["receiver"]["name"], "hook");
    assert_eq!(groups[0]["alerts"].as_array().unwrap().len(), 2);

    let (_, body) = call("GET", "/api/v2/receivers", "");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!([{ "name": "hook" }])
    );
    let (_, body) = call("GET", "/api/v2/status", "");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["cluster"]["status"], "disabled");
    assert!(status["versionInfo"]["version"].is_string());
    assert!(status["uptime"].is_string());
    assert!(status["config"]["original"]
        .as_str()
        .unwrap()
        .contains("- name: \"hook\""));

    // Alertmanager's validation, with its messages, as 400s with a JSON string body.
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let earlier = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let silence = |starts: &str, ends: &str| {
        format!(
            r#"{{"matchers":[{{"name":"worker","value":"sms","isRegex":false}}],"startsAt":"{starts}","endsAt":"{ends}","createdBy":"ann","comment":""}}"#
        )
    };
    let (st, body) = call("POST", "/api/v2/silences", &silence(&earlier, &past));
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "\"Failed to create silence: end time can't be in the past\""
        )
    );
    let (st, body) = call("POST", "/api/v2/silences", &silence(&past, &earlier));
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "\"Failed to create silence: start time must be before end time\""
        )
    );
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (st, body) = call("POST", "/api/v2/silences", &silence(&past, &later));
    assert_eq!(st, 200, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, body) = call("GET", &format!("/api/v2/silence/{id}"), "");
    assert_eq!(st, 200);
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["status"]["state"], "active");
    // A start in the past means now, as in Alertmanager.
    assert_ne!(got["startsAt"], serde_json::json!(past));
    // Mutations need the token; expiring twice is a no-op; unknown ids are 404s.
    assert_eq!(
        request(&d.addr, "DELETE", &format!("/api/v2/silence/{id}"), &[], "")
            .unwrap()
            .status,
        401
    );
    assert_eq!(call("DELETE", &format!("/api/v2/silence/{id}"), "").0, 200);
    assert_eq!(call("DELETE", &format!("/api/v2/silence/{id}"), "").0, 200);
    assert_eq!(call("DELETE", "/api/v2/silence/nope", "").0, 404);
    assert_eq!(call("GET", "/api/v2/silence/nope", "").0, 404);
    assert_eq!(call("GET", "/api/v2/alerts?active=maybe", "").0, 400);
    assert_eq!(call("GET", "/api/v2/alerts?filter=%3Dbroken", "").0, 400);
}
