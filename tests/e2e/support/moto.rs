//! A real moto server (a local implementation of the AWS APIs) for the AWS tests.
//!
//! `scripts/moto.sh` installs it into `.venv`; `TRIPLINE_MOTO_SERVER` names its `moto_server`
//! script. Without it a test prints a note and returns early, unless
//! `TRIPLINE_REQUIRE_REAL_PARTS=1` (CI, `scripts/test`), where that is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// A running moto server, killed when dropped.
pub struct Moto {
    child: Option<Child>,
    server: String,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port, or returns `None` (after saying why) when it is not set up.
    pub fn start() -> Option<Moto> {
        let server = match std::env::var("TRIPLINE_MOTO_SERVER") {
            Ok(s) if !s.is_empty() => s,
            _ => {
                let msg = "TRIPLINE_MOTO_SERVER is not set: run `scripts/moto.sh` and export TRIPLINE_MOTO_SERVER=$PWD/.venv/bin/moto_server (scripts/test does both)";
                if std::env::var("TRIPLINE_REQUIRE_REAL_PARTS").is_ok_and(|v| v == "1") {
                    panic!("{msg}");
                }
                eprintln!("note: skipping an AWS test: {msg}");
                return None;
            }
        };
        let mut m = Moto {
            child: None,
            server,
            port: super::free_port(),
        };
        m.spawn();
        Some(m)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.server)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.server));
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = self.http("GET", "/moto-api/data.json") {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("moto_server exited with {status} before answering");
            }
            assert!(
                Instant::now() < until,
                "moto_server did not answer on port {} within 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (to rehearse an outage); `restart` brings it back on the same port,
    /// empty.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Forgets everything moto holds.
    pub fn reset(&self) {
        let (status, body) = self.http("POST", "/moto-api/reset").expect("reset moto");
        assert_eq!(status, 200, "reset: {body}");
    }

    /// Everything moto holds, as `/moto-api/data.json` shows it.
    pub fn data(&self) -> serde_json::Value {
        let (status, body) = self
            .http("GET", "/moto-api/data.json")
            .expect("read moto data");
        assert_eq!(status, 200, "data.json: {body}");
        serde_json::from_str(&body).expect("data.json is JSON")
    }

    /// Messages published to the SNS topic named `topic` (its `sent_notifications`), each as
    /// moto records it: `[message_id, message, subject, message_attributes, group_id]`.
    pub fn sns_messages(&self, topic: &str) -> Vec<serde_json::Value> {
        let data = self.data();
        let arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:{topic}");
        let mut out = Vec::new();
        // data.json nests by service → model → list of objects; topics are under sns.Topic.
        if let Some(topics) = data.pointer("/sns/Topic").and_then(|t| t.as_array()) {
            for t in topics.iter().filter(|t| t["arn"] == arn.as_str()) {
                if let Some(sent) = t["sent_notifications"].as_array() {
                    out.extend(sent.iter().cloned());
                }
            }
        }
        out
    }

    /// The SDK config the tests seed with: moto's endpoint, a fixed region, test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await
    }

    /// Environment for a `tripline` process talking to this moto: test credentials only, no
    /// profile or instance metadata lookups.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials".into(),
            ),
        ]
    }

    /// A minimal HTTP/1.1 exchange (the tests need no HTTP client beyond this).
    fn http(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4)
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let chunked = head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        let body = if chunked {
            dechunk(&raw[split..])
        } else {
            raw[split..].to_vec()
        };
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&s[..eol]).trim(), 16).unwrap_or(0);
        let rest = &s[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}
