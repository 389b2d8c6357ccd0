//! Starts `tripline run` and finds the address it listens on.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Daemon {
    pub child: Child,
    pub addr: String,
    /// Everything the daemon wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `tripline run --config CONFIG` in `dir` with `env`, waiting for its listening line.
    pub fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(super::bin::tripline_bin());
        cmd.args(["run", "--config", config, "--log", "info"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tripline run");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("tripline: listening on http://") {
                    let _ = tx.send(addr.to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("tripline run did not start: {}", log.lock().unwrap())
            });
        Daemon { child, addr, log }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Polls `cond` every 100 ms for up to `secs` seconds (waiting on an observable condition of
    /// a real process, which has no clock to inject).
    pub fn wait_for(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..secs * 10 {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; log:\n{}",
            self.log.lock().unwrap()
        );
    }

    /// Waits for the process to exit and returns its code.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        for _ in 0..secs * 10 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!(
            "daemon did not exit within {secs}s; log:\n{}",
            self.log.lock().unwrap()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
