//! A local HTTP receiver standing in for Slack, PagerDuty or any webhook: it listens on
//! 127.0.0.1 (a free port), records every request (method, path, headers, body, the status it
//! answered) and answers as told — 200/202, 429 with `Retry-After`, 500, or not at all (hang).
//! Runs on its own threads, so sync and async tests can use it alike; stops when dropped.
//! Also [`snapshot`], for payloads checked against committed JSON files.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How to answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// Accept the request and never answer (until the client gives up, or 30 s).
    Hang,
    /// Read the request and close the connection without a word.
    Drop,
    /// One of these at random (by weight) for each request, from a seeded generator.
    Random(Vec<(u32, Reply)>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the receiver answered (0 for a hang).
    pub answered: u16,
    /// When the request was read (wall clock of the test process), for pacing checks.
    pub at: Instant,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    replies: Vec<Reply>,
    /// xorshift state for `Reply::Random`.
    rng: u64,
}

impl State {
    fn pick(&mut self, choices: &[(u32, Reply)]) -> Reply {
        if self.rng == 0 {
            self.rng = 0x9e37_79b9_7f4a_7c15;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let total: u64 = choices
            .iter()
            .map(|(w, _)| u64::from(*w))
            .sum::<u64>()
            .max(1);
        let mut n = self.rng % total;
        for (w, r) in choices {
            if n < u64::from(*w) {
                return r.clone();
            }
            n -= u64::from(*w);
        }
        Reply::Status(200)
    }
}

pub struct Receiver {
    addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
    default: Arc<Mutex<Reply>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Starts answering 200 on a free loopback port.
    pub fn start() -> Receiver {
        Receiver::start_with(Reply::Status(200))
    }

    pub fn start_with(reply: Reply) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let default = Arc::new(Mutex::new(reply));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, d, st) = (state.clone(), default.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, d, st) = (s.clone(), d.clone(), st.clone());
                std::thread::spawn(move || serve(conn, s, d, st));
            }
        });
        Receiver {
            addr,
            state,
            default,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The answer from now on (after any queued with `then`).
    pub fn reply(&self, r: Reply) {
        *self.default.lock().unwrap() = r;
    }

    /// Answers the next requests with these, in order, then the default again.
    pub fn then(&self, replies: Vec<Reply>) {
        self.state.0.lock().unwrap().replies.extend(replies);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.0.lock().unwrap().requests.clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.accepted())
            .collect()
    }

    pub fn clear(&self) {
        self.state.0.lock().unwrap().requests.clear();
    }

    /// Waits (at most `timeout`) until `n` requests were answered 2xx; returns whether they were.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.state;
        let mut g = lock.lock().unwrap();
        loop {
            if g.requests.iter().filter(|r| r.accepted()).count() >= n {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    conn: TcpStream,
    state: Arc<(Mutex<State>, Condvar)>,
    default: Arc<Mutex<Reply>>,
    stop: Arc<AtomicBool>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = {
            let mut g = state.0.lock().unwrap();
            let r = if g.replies.is_empty() {
                default.lock().unwrap().clone()
            } else {
                g.replies.remove(0)
            };
            match r {
                Reply::Random(choices) => g.pick(&choices),
                r => r,
            }
        };
        let answered = match &reply {
            Reply::Status(s) => *s,
            Reply::TooManyRequests { .. } => 429,
            Reply::Hang | Reply::Drop | Reply::Random(_) => 0,
        };
        {
            let (lock, cv) = &*state;
            lock.lock().unwrap().requests.push(Request {
                method,
                path,
                headers,
                body,
                answered,
                at: Instant::now(),
            });
            cv.notify_all();
        }
        let response = match reply {
            Reply::Drop | Reply::Random(_) => return,
            Reply::Hang => {
                let until = Instant::now() + Duration::from_secs(30);
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            Reply::Status(s) => {
                let body = if (200..300).contains(&s) {
                    r#"{"status":"success"}"#
                } else {
                    r#"{"status":"error"}"#
                };
                format!("HTTP/1.1 {s} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}", reason(s), body.len())
            }
            Reply::TooManyRequests { retry_after_secs } => {
                let body = "rate limited";
                format!("HTTP/1.1 429 Too Many Requests\r\nretry-after: {retry_after_secs}\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}", body.len())
            }
        };
        if conn
            .write_all(response.as_bytes())
            .and_then(|_| conn.flush())
            .is_err()
        {
            return;
        }
    }
}

fn reason(s: u16) -> &'static str {
    match s {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Compares `value` with `DIR/NAME.json`; `TRIPLINE_UPDATE_SNAPSHOTS=1` (or a missing file)
/// writes it instead. The committed files show a reviewer exactly what a person receives.
pub fn snapshot(dir: &std::path::Path, name: &str, value: &serde_json::Value) {
    let path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var_os("TRIPLINE_UPDATE_SNAPSHOTS").is_some() || !path.exists() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        want,
        "payload differs from {} (TRIPLINE_UPDATE_SNAPSHOTS=1 to accept)",
        path.display()
    );
}
