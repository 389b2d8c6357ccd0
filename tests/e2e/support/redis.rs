//! A throwaway Redis server on a free loopback port (`--save '' --appendonly no`), killed on
//! drop, and a minimal RESP client to seed it. Needs `TRIPLINE_REDIS_SERVER`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub port: u16,
}

fn redis_server() -> Option<PathBuf> {
    super::real_part("TRIPLINE_REDIS_SERVER", "redis-server", |p| p.exists())
}

/// A reply as text: status and bulk strings as they are, integers as digits, errors as `ERR …`
/// prefixed with `-`, arrays as their elements joined by newlines.
fn read_reply(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1.min(line.len()));
    Ok(match kind {
        "+" | ":" => rest.to_string(),
        "-" => format!("-{rest}"),
        "$" => {
            let n: i64 = rest.parse().unwrap_or(-1);
            if n < 0 {
                return Ok(String::new());
            }
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf)?;
            String::from_utf8_lossy(&buf[..n as usize]).into_owned()
        }
        "*" => {
            let n: i64 = rest.parse().unwrap_or(0);
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            items.join("\n")
        }
        _ => line.to_string(),
    })
}

impl Redis {
    /// Starts a server, or `None` if Redis is not available and not required.
    pub fn start() -> Option<Redis> {
        let exe = redis_server()?;
        let dir = tempfile::tempdir().expect("temp dir");
        // A port can be taken between choosing and binding: try a few.
        for _ in 0..3 {
            let port = super::free_port();
            let mut child = Command::new(&exe)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--dir", dir.path().to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break; // exited: most likely the port was taken
                }
                if ping(port) {
                    return Some(Redis {
                        child: Some(child),
                        _dir: dir,
                        port,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn try_cmd(&self, args: &[&str]) -> std::io::Result<String> {
        command(self.port, args)
    }

    /// Runs one command, panicking on an error reply.
    pub fn cmd(&self, args: &[&str]) -> String {
        let r = self.try_cmd(args).expect("redis command");
        assert!(!r.starts_with('-'), "redis {args:?}: {r}");
        r
    }

    /// Kills the server now (fault tests).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(port: u16) -> bool {
    command(port, &["PING"]).is_ok_and(|p| p == "PONG")
}

fn command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    read_reply(&mut BufReader::new(s))
}
