//! A throwaway Prometheus (Debian's 2.42 binary, temp data dir, loopback, `scrape_interval: 1s`)
//! scraping a tiny exporter this module serves with runbook 004's `intelliflow_*` metrics; and
//! `HttpServer`, a loopback HTTP server answering canned responses (exporter, 500s, probes).
//! Needs `TRIPLINE_PROMETHEUS`.

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
    _dir: tempfile::TempDir,
    pub port: u16,
    pub exporter: HttpServer,
}

fn prometheus_bin() -> Option<PathBuf> {
    match std::env::var_os("TRIPLINE_PROMETHEUS") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.exists(),
                "TRIPLINE_PROMETHEUS={} does not exist",
                p.display()
            );
            Some(p)
        }
        None if std::env::var("TRIPLINE_REQUIRE_REAL_PARTS").as_deref() == Ok("1") => panic!(
            "TRIPLINE_PROMETHEUS is not set: install prometheus (scripts/lib/services.sh, \
             install_test_deps_services) and export its path"
        ),
        None => {
            eprintln!("note: TRIPLINE_PROMETHEUS is not set; skipping this Prometheus test");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Prometheus {
    /// Starts the exporter and Prometheus, and returns once Prometheus holds at least
    /// `min_scrapes` scrapes of it; `None` if Prometheus is not available and not required.
    pub fn start(min_scrapes: u32) -> Option<Prometheus> {
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
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: events-worker\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{}']\n",
                exporter.port
            ),
        )
        .unwrap();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&exe)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
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
                        _dir: dir,
                        port,
                        exporter,
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not start or never scraped the exporter");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
