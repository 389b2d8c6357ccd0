//! The daemon's API under hostile requests: every one answered with a 4xx, none closing the
//! connection unanswered, none costing unbounded memory or time.

use crate::support::daemon::Daemon;
use crate::support::http::request;
use std::io::{Read, Write};

/// Offers a body of `len` bytes with `Expect: 100-continue` and returns the status and body of
/// the answer. A server that refuses by size answers before the body is sent (as curl sees it);
/// sending the body first would race the server's close (EPIPE or a reset on the client side).
fn offer_body(addr: &str, path: &str, auth: &str, len: usize) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

const TOKEN: &str = "h0stile";

fn daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tripline.toml"),
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\ntype = \"memory\"\n",
    )
    .unwrap();
    let d = Daemon::start(
        dir.path(),
        "tripline.toml",
        &[("TRIPLINE_API_TOKEN", TOKEN)],
    );
    (dir, d)
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
        .to_string()
}

#[test]
fn hostile_silences_and_bodies_get_4xx_answers() {
    let (_dir, mut d) = daemon();
    let auth = format!("Bearer {TOKEN}");
    let headers = [("Authorization", auth.as_str())];
    let post = |path: &str, body: &str| request(&d.addr, "POST", path, &headers, body).unwrap();

    let r = post(
        "/api/v1/silences",
        r#"{"matchers": ["team=db"], "duration": "99999999999999999h"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        error_of(&r.body),
        "duration \"99999999999999999h\" is too large (at most 106751d, about 292 years)"
    );

    // The longest duration still fits when added to the latest start RFC 3339 can write.
    let r = post(
        "/api/v1/silences",
        r#"{"matchers": ["team=db"], "starts_at": "9999-12-31T23:59:59Z", "duration": "106751d"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);

    // A 1 MB regex is refused by size before anything reads or compiles it.
    let (status, body) = offer_body(&d.addr, "/api/v1/silences", &auth, 1_000_000);
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        error_of(&body),
        "request body too large: at most 65536 bytes for this endpoint"
    );
    let long = format!(
        r#"{{"matchers": ["team=~{}"], "duration": "1h"}}"#,
        "a".repeat(5000)
    );
    let r = post("/api/v1/silences", &long);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        error_of(&r.body),
        "a matcher is at most 4096 bytes; one is 5006"
    );

    let (status, body) = offer_body(&d.addr, "/api/v2/alerts", &auth, 5 * 1024 * 1024);
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        error_of(&body),
        "request body too large: at most 4194304 bytes for this endpoint"
    );
    let (status, body) = offer_body(&d.addr, "/api/v1/alerts/abc/ack", &auth, 5000);
    assert_eq!(status, 413, "{body}");

    // The daemon is still up and answering after all of it.
    let r = request(&d.addr, "GET", "/api/v1/silences", &headers, "").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(d.child.try_wait().unwrap(), None, "the daemon exited");
    d.signal("TERM");
    d.wait_exit(10);
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let (_dir, mut d) = daemon();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {TOKEN}");
        let r = request(
            &d.addr,
            "GET",
            "/api/v1/silences",
            &[("Authorization", auth.as_str())],
            "",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
    }
    for wrong in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        "bearer".into(),
    ] {
        let r = request(
            &d.addr,
            "GET",
            "/api/v1/silences",
            &[("Authorization", wrong.as_str())],
            "",
        )
        .unwrap();
        assert_eq!(r.status, 401, "{wrong}: {}", r.body);
    }
    d.signal("TERM");
    d.wait_exit(10);
}
