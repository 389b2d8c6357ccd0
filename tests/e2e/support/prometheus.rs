//! A throwaway Prometheus (Debian's 2.42 binary, temp data dir, loopback, `scrape_interval: 1s`)
//! scraping a tiny exporter this module serves with runbook 004's `intelliflow_*` metrics; and
//! `HttpServer`, a loopback HTTP server answering canned responses (exporter, 500s, probes).
//! `Prometheus::builder()` adds alerting rules and an Alertmanager-compatible target (Tripline's
//! `POST /api/v2/alerts`). Needs `TRIPLINE_PROMETHEUS`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an `HttpServer` answers: status, content type, body. Called once per request with the
/// whole request as text (`GET /path HTTP/1.1`, the header lines, the body).
pub type Responder = dyn Fn(&str) -> (u16, &'static str, String) + Send + Sync;

/// A loopback HTTP/1.1 server on its own thread, one connection at a time, `Connection: close`.
pub struct HttpServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub hits: Arc<AtomicU64>,
}

impl HttpServer {
    pub fn start(respond: Arc<Responder>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicU64::new(0));
        let (s, h) = (stop.clone(), hits.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        h.fetch_add(1, Ordering::Relaxed);
                        let _ = serve(conn, &*respond);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
        });
        HttpServer { port, stop, hits }
    }

    /// Always answers `status` with `body`.
    pub fn fixed(status: u16, content_type: &'static str, body: &str) -> HttpServer {
        let body = body.to_string();
        Self::start(Arc::new(move |_| (status, content_type, body.clone())))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, respond: &Responder) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the head, then as much body as Content-Length says.
    let head_end = loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf).into_owned();
    let (status, ctype, body) = respond(&request);
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Sends `request` (as received by an `HttpServer`) on to `port` as HTTP/1.0, so the server
/// closes the connection after answering: (status, body), or `None` if nothing answered.
pub fn forward(port: u16, request: &str) -> Option<(u16, String)> {
    let (first, rest) = request.split_once("\r\n")?;
    let first = first.replacen("HTTP/1.1", "HTTP/1.0", 1);
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "{first}\r\n{rest}").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, body.to_string()))
}

/// A GET over plain TCP: (status, body), or `None` if nothing answered.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, body.to_string()))
}

/// The exporter's metrics, as IntelliFlow's workers expose them (runbook 004). The processed
/// counter grows by 10 per scrape so rates are non-zero.
pub fn intelliflow_metrics(scrape: u64) -> String {
    format!(
        "# HELP intelliflow_queue_depth Jobs waiting per queue.\n\
         # TYPE intelliflow_queue_depth gauge\n\
         intelliflow_queue_depth{{queue=\"intelliflow:events\"}} 1500\n\
         intelliflow_queue_depth{{queue=\"intelliflow:notifications:email\"}} 12\n\
         # HELP intelliflow_queue_dlq_depth Jobs in the dead letter queue.\n\
         # TYPE intelliflow_queue_dlq_depth gauge\n\
         intelliflow_queue_dlq_depth{{queue=\"intelliflow:events\"}} 120\n\
         intelliflow_queue_dlq_depth{{queue=\"intelliflow:notifications:email\"}} 3\n\
         # HELP intelliflow_circuit_breaker_state 0 closed, 1 half-open, 2 open.\n\
         # TYPE intelliflow_circuit_breaker_state gauge\n\
         intelliflow_circuit_breaker_state{{worker=\"notifications-worker\"}} 2\n\
         intelliflow_circuit_breaker_state{{worker=\"events-worker\"}} 0\n\
         # HELP intelliflow_worker_jobs_processed_total Jobs processed.\n\
         # TYPE intelliflow_worker_jobs_processed_total counter\n\
         intelliflow_worker_jobs_processed_total{{worker=\"events-worker\"}} {}\n",
        scrape * 10
    )
}

pub struct Prometheus {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    pub exporter: HttpServer,
}

fn prometheus_bin() -> Option<PathBuf> {
    super::real_part("TRIPLINE_PROMETHEUS", "prometheus", |p| p.exists())
}

/// Sends Prometheus's alerts to an Alertmanager-compatible endpoint (`alerting.alertmanagers`,
/// API v2), with a bearer token.
struct AlertmanagerTarget {
    addr: String,
    token: String,
}

/// What to start Prometheus with beyond the exporter scrape: alerting rules, where to send the
/// alerts, and how many scrapes to wait for. `Prometheus::start(n)` is `builder().min_scrapes(n)`.
#[derive(Default)]
pub struct PrometheusBuilder {
    min_scrapes: u32,
    rules: Option<String>,
    alertmanager: Option<AlertmanagerTarget>,
}

impl PrometheusBuilder {
    /// Returns once Prometheus holds at least `n` scrapes of the exporter.
    pub fn min_scrapes(mut self, n: u32) -> Self {
        self.min_scrapes = n;
        self
    }

    /// A rule file (YAML: `groups: ...`), evaluated every second.
    pub fn rules(mut self, yaml: &str) -> Self {
        self.rules = Some(yaml.to_string());
        self
    }

    /// Sends alerts to `POST http://{addr}/api/v2/alerts` with `Authorization: Bearer {token}`.
    pub fn alertmanager(mut self, addr: &str, token: &str) -> Self {
        self.alertmanager = Some(AlertmanagerTarget {
            addr: addr.to_string(),
            token: token.to_string(),
        });
        self
    }

    fn config(&self, exporter_port: u16) -> String {
        let mut c = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: events-worker\n    static_configs:\n      \
             - targets: ['127.0.0.1:{exporter_port}']\n"
        );
        if self.rules.is_some() {
            c.push_str("rule_files: [rules.yml]\n");
        }
        if let Some(am) = &self.alertmanager {
            c.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - api_version: v2\n      timeout: 5s\n      \
                 authorization:\n        type: Bearer\n        credentials: '{}'\n      \
                 static_configs:\n        - targets: ['{}']\n",
                am.token, am.addr
            ));
        }
        c
    }

    /// Starts the exporter and Prometheus; `None` if Prometheus is not available and not
    /// required.
    pub fn start(self) -> Option<Prometheus> {
        let exe = prometheus_bin()?;
        let scrapes = Arc::new(Mutex::new(0u64));
        let exporter = HttpServer::start(Arc::new(move |line: &str| {
            if line.starts_with("GET /metrics") {
                let mut n = scrapes.lock().unwrap();
                *n += 1;
                (200, "text/plain; version=0.0.4", intelliflow_metrics(*n))
            } else {
                (404, "text/plain", "not found".into())
            }
        }));
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, self.config(exporter.port)).unwrap();
        if let Some(rules) = &self.rules {
            std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        }
        let min_scrapes = self.min_scrapes;
        for _ in 0..3 {
            let port = super::free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut cmd = Command::new(&exe);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn");
            if self.alertmanager.is_some() {
                // Prometheus evaluates its rules at once on start, but learns its Alertmanagers
                // from service discovery, which hands over targets only on its next tick (5 s):
                // the first batch goes to no Alertmanager and is dropped
                // (`prometheus_notifications_dropped_total`), and an alert counts as sent when it
                // is queued, so the next attempt waits for the resend delay (default 1m). Resend
                // every evaluation instead, as a short-lived test instance should.
                cmd.arg("--rules.alert.resend-delay=1s");
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start prometheus");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break; // exited: most likely the port was taken
                }
                let enough = http_get(
                    port,
                    &format!("/api/v1/query?query=count_over_time(up%5B1m%5D)%3E%3D{min_scrapes}"),
                )
                .is_some_and(|(s, b)| s == 200 && b.contains("\"value\""));
                let up = http_get(port, "/api/v1/targets")
                    .is_some_and(|(s, b)| s == 200 && b.contains("\"health\":\"up\""));
                if up && enough {
                    return Some(Prometheus {
                        child: Some(child),
                        dir,
                        port,
                        exporter,
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "prometheus did not start or never scraped the exporter; log:\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
    }
}

impl Prometheus {
    pub fn builder() -> PrometheusBuilder {
        PrometheusBuilder::default()
    }

    /// Starts the exporter and Prometheus, and returns once Prometheus holds at least
    /// `min_scrapes` scrapes of it; `None` if Prometheus is not available and not required.
    pub fn start(min_scrapes: u32) -> Option<Prometheus> {
        Self::builder().min_scrapes(min_scrapes).start()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What Prometheus logged (warnings and errors) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The sample lines of Prometheus's own metrics whose name starts with `prefix`.
    pub fn own_metrics(&self, prefix: &str) -> String {
        http_get(self.port, "/metrics")
            .map(|(_, body)| {
                body.lines()
                    .filter(|l| l.starts_with(prefix))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
