//! A Prometheus-source rule replayed by Tripline and by `vmalert -replay` (Debian's
//! victoria-metrics package) over the same day of history in a real Prometheus (Debian's), which
//! both query: the firing intervals must be the same, queue by queue.
//!
//! The history is backfilled with `promtool tsdb create-blocks-from openmetrics` (one sample a
//! minute for four queues: an incident, a flapping queue that never lasts `for`, a gap in the
//! samples longer than Prometheus's 5-minute lookback in the middle of an incident, and an
//! incident still firing at the end). vmalert writes its `ALERTS` series to a VictoriaMetrics
//! single node, read back with `/api/v1/export`. Needs `TRIPLINE_PROMETHEUS` (promtool beside it)
//! and `TRIPLINE_VMALERT` (victoria-metrics beside it): scripts/lib.

use crate::support::{bin, free_port, real_part, receiver::Receiver};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RULE: &str = r#"
const RULE = #{ id: "test/deep-queue", severity: "warning", params: #{ threshold: 100 } };
fn query(p) { #{ depth: prometheus(#{ query: "queue_depth" }) } }
fn evaluate(d, p) {
    for s in d.depth {
        let v = s.last();
        if v != () && v > p.threshold {
            fire(#{ summary: `${s.labels.queue}: ${v} waiting`, labels: #{ queue: s.labels.queue }, value: v });
        }
    }
}
"#;

const VMALERT_RULES: &str = "groups:\n  - name: depth\n    interval: 1m\n    rules:\n      \
     - alert: DeepQueue\n        expr: queue_depth > 100\n        for: 5m\n";

/// The depth of `queue` at minute `m` of the day; None: no sample.
fn depth(queue: &str, m: i64) -> Option<f64> {
    let high = 250.0;
    match queue {
        // 03:00–03:20.
        "a" if (180..=200).contains(&m) => Some(high),
        // Three 3-minute bursts, one minute apart: pending, never firing.
        "b" if (600..603).contains(&m) || (604..607).contains(&m) || (608..611).contains(&m) => {
            Some(high)
        }
        // 23:50 to the end.
        "c" if m >= 1430 => Some(high),
        // 14:50–15:20 with no sample 15:00–15:09: the lookback carries 5 minutes of it.
        "d" if (900..910).contains(&m) => None,
        "d" if (890..=920).contains(&m) => Some(high),
        _ => Some(10.0),
    }
}

pub(super) struct Killed(pub(super) Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    crate::support::prometheus::http_get(port, path)
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
}

/// Starts `cmd` (given a free port by `args`) until `ready` answers on that port.
/// Writes `queue_depth` for each of `queues` at every minute `m` in `0..=minutes` after `start`
/// (`depth(queue, m)`; `None` leaves a gap), backfills it under `d` with promtool, and starts
/// Prometheus on that TSDB; returns the child and its port.
pub(super) fn backfilled_prometheus(
    d: &Path,
    promtool: &Path,
    prometheus: &Path,
    queues: &[&str],
    start: i64,
    minutes: i64,
    depth: fn(&str, i64) -> Option<f64>,
) -> (Child, u16) {
    let mut om = String::from("# TYPE queue_depth gauge\n");
    for q in queues {
        for m in 0..=minutes {
            if let Some(v) = depth(q, m) {
                om.push_str(&format!(
                    "queue_depth{{queue=\"{q}\"}} {v} {}\n",
                    start + m * 60
                ));
            }
        }
    }
    om.push_str("# EOF\n");
    std::fs::write(d.join("data.om"), om).unwrap();
    let data = d.join("prom-data");
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(d.join("data.om"))
        .arg(&data)
        .output()
        .expect("promtool");
    assert!(out.status.success(), "{}", bin::stderr(&out));
    std::fs::write(d.join("prometheus.yml"), "global:\n  scrape_interval: 1m\n").unwrap();
    serve(
        prometheus,
        |port| {
            vec![
                format!("--config.file={}", d.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", data.display()),
                "--storage.tsdb.retention.time=400d".into(),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn".into(),
            ]
        },
        "/-/ready",
        &d.join("prometheus.log"),
    )
}

pub(super) fn serve(
    exe: &Path,
    args: impl Fn(u16) -> Vec<String>,
    ready: &str,
    log: &Path,
) -> (Child, u16) {
    for _ in 0..3 {
        let port = free_port();
        let mut child = Command::new(exe)
            .args(args(port))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if get(port, ready).is_some() {
                return (child, port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "{} did not start: {}",
        exe.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

pub(super) fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// queue → (pending since, firing start, end; None = still firing at the range's end).
type Intervals = BTreeMap<String, Vec<(i64, i64, Option<i64>)>>;

#[test]
fn a_prometheus_rule_backtest_matches_vmalert_replay() {
    let Some(prometheus) = real_part("TRIPLINE_PROMETHEUS", "prometheus", |p| p.exists()) else {
        return;
    };
    let Some(vmalert) = real_part("TRIPLINE_VMALERT", "vmalert", |p| p.exists()) else {
        return;
    };
    let sibling = |of: &PathBuf, name: &str| of.with_file_name(name);
    let promtool = sibling(&prometheus, "promtool");
    let vm = sibling(&vmalert, "victoria-metrics");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A day ending an hour ago on the hour (inside Prometheus's retention, out of its head).
    let now = chrono::Utc::now().timestamp();
    let end = now - now.rem_euclid(3600) - 3600;
    let start = end - 86_400;
    let (p_child, p_port) = backfilled_prometheus(
        d,
        &promtool,
        &prometheus,
        &["a", "b", "c", "d"],
        start,
        1440,
        depth,
    );
    let mut guard = Killed(vec![p_child]);
    let (v_child, v_port) = serve(
        &vm,
        |port| {
            vec![
                format!("-storageDataPath={}", d.join("vm-data").display()),
                format!("-httpListenAddr=127.0.0.1:{port}"),
                "-loggerLevel=ERROR".into(),
            ]
        },
        "/health",
        &d.join("vm.log"),
    );
    guard.0.push(v_child);

    // vmalert: one evaluation a minute (the group's interval, and the query step).
    std::fs::write(d.join("rules.yml"), VMALERT_RULES).unwrap();
    let started = Instant::now();
    let out = Command::new(&vmalert)
        .arg(format!("-rule={}", d.join("rules.yml").display()))
        .arg(format!("-datasource.url=http://127.0.0.1:{p_port}"))
        .arg("-datasource.queryStep=1m")
        .arg(format!("-remoteWrite.url=http://127.0.0.1:{v_port}"))
        .arg(format!("-replay.timeFrom={}", rfc(start)))
        .arg(format!("-replay.timeTo={}", rfc(end)))
        .arg("-replay.disableProgressBar")
        .arg("-loggerLevel=ERROR")
        .output()
        .expect("vmalert");
    let vmalert_secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}{}",
        bin::stdout(&out),
        bin::stderr(&out)
    );
    get(v_port, "/internal/force_flush").expect("force_flush");
    let export = get(v_port, "/api/v1/export?match%5B%5D=ALERTS").expect("export");
    // Per queue and state, the evaluation instants.
    let mut states: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = (
            v["metric"]["queue"].as_str().unwrap().to_string(),
            v["metric"]["alertstate"].as_str().unwrap().to_string(),
        );
        let e = states.entry(key).or_default();
        e.extend(
            v["timestamps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap() / 1000),
        );
    }
    // Runs of consecutive firing instants are intervals; each begins pending at the run of
    // pending instants just before it; it ends at the next instant (unless that is past the end).
    let mut theirs: Intervals = BTreeMap::new();
    for ((queue, state), ts) in &states {
        if state != "firing" {
            continue;
        }
        let mut ts = ts.clone();
        ts.sort();
        let pending = states
            .get(&(queue.clone(), "pending".into()))
            .cloned()
            .unwrap_or_default();
        let mut runs: Vec<(i64, i64)> = vec![];
        for t in ts {
            match runs.last_mut() {
                Some((_, last)) if t == *last + 60 => *last = t,
                _ => runs.push((t, t)),
            }
        }
        for (first, last) in runs {
            let mut since = first;
            while pending.contains(&(since - 60)) {
                since -= 60;
            }
            let end_at = (last + 60 <= end).then_some(last + 60);
            theirs
                .entry(queue.clone())
                .or_default()
                .push((since, first, end_at));
        }
    }

    // Tripline over the same range, every minute, `for = "5m"`.
    let hook = Receiver::start();
    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::write(d.join("rules/deep-queue.rhai"), RULE).unwrap();
    std::fs::write(
        d.join("tripline.toml"),
        format!(
            "rules_dirs = [\"rules\"]\n\n[store]\ntype = \"memory\"\n\n[sources.prometheus]\n\
             type = \"prometheus\"\nurl = \"http://127.0.0.1:{p_port}\"\n\n[[receiver]]\n\
             type = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n\n[route]\nreceiver = \"hook\"\n\n\
             [[rule]]\nuse = \"test/deep-queue\"\nname = \"DeepQueue\"\nevery = \"0 * * * * *\"\n\
             for = \"5m\"\n",
            hook.url("/hook")
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = bin::run(
        d,
        &[
            "backtest",
            "--config",
            "tripline.toml",
            "--from",
            &rfc(start),
            "--to",
            &rfc(end),
            "--format",
            "json",
            "--no-progress",
        ],
    );
    let tripline_secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", bin::stderr(&out));
    let r: Value = serde_json::from_str(&bin::stdout(&out)).unwrap();
    let at = |v: &Value| {
        v.as_str()
            .map(|s| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp())
    };
    let mut ours: Intervals = BTreeMap::new();
    for s in r["instances"][0]["subjects"].as_array().unwrap() {
        let queue = s["labels"]["queue"].as_str().unwrap().to_string();
        for i in s["intervals"].as_array().unwrap() {
            ours.entry(queue.clone()).or_default().push((
                at(&i["pending_since"]).unwrap(),
                at(&i["start"]).unwrap(),
                at(&i["end"]),
            ));
        }
    }
    eprintln!(
        "vmalert -replay {vmalert_secs:.2}s, tripline backtest {tripline_secs:.2}s ({}); \
         intervals (minutes from the start): {:?}",
        bin::stderr(&out).lines().last().unwrap_or(""),
        ours.iter()
            .map(|(q, v)| (
                q.clone(),
                v.iter()
                    .map(|(p, s, e)| (
                        (p - start) / 60,
                        (s - start) / 60,
                        e.map(|e| (e - start) / 60)
                    ))
                    .collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
    );
    // The hand-computed timeline, which both must give: a fires 03:05, resolves 03:21; b never;
    // d fires 14:55, resolves 15:05 (lookback over), pending again 15:10, fires 15:15 to 15:21;
    // c pending 23:50, firing 23:55 to the end.
    let m = |x: i64| start + x * 60;
    let want: Intervals = [
        ("a".to_string(), vec![(m(180), m(185), Some(m(201)))]),
        ("c".to_string(), vec![(m(1430), m(1435), None)]),
        (
            "d".to_string(),
            vec![
                (m(890), m(895), Some(m(905))),
                (m(910), m(915), Some(m(921))),
            ],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(theirs, want, "vmalert -replay");
    assert_eq!(ours, want, "tripline backtest");
    assert!(hook.requests().is_empty(), "a receiver was called");
}
