//! The HTML report opened in a real browser: Debian's `chromium`, headless. The fixture day of
//! `fixture_day` with `--set errors.missing=breaching` (so the diff view is there too) is written
//! with `--format html`; Chromium renders it, a probe script appended to a copy of the page
//! measures what was laid out (the chart's data path, threshold line and shaded spans, every
//! table's rows) and logs it to the console, and a screenshot is taken of the page as written.
//! The page must be self-contained (no script, no external resource) and log nothing of its own.
//! Needs `TRIPLINE_CHROMIUM` (scripts/lib/backtest.sh); `TRIPLINE_BACKTEST_SCREENSHOT=PATH` also
//! copies the screenshot there (how docs/backtest.png is made).

use super::fixture_day::write_day;
use crate::support::{bin, real_part, receiver::Receiver};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Appended before `</body>` of a copy of the report: what the browser laid out, as JSON in a
/// `<pre id="probe">` (read back with --dump-dom) and on the console (proving the console is read).
const PROBE: &str = r#"<script>
(() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const drawn = (e) => { const b = e.getBBox(); return b.width > 0 && b.height > 0; };
  const svgs = [...document.querySelectorAll('svg.chart')];
  const out = {
    charts: svgs.filter(box).length,
    data_paths: svgs.map(s => [...s.querySelectorAll('path.data')].filter(p => drawn(p) && p.getTotalLength() > 0).length),
    threshold_lines: svgs.map(s => [...s.querySelectorAll('line.threshold')].filter(l => l.getBBox().width > 0).length),
    firing: svgs.map(s => [...s.querySelectorAll('rect.firing')].filter(drawn).length),
    pending: svgs.map(s => [...s.querySelectorAll('rect.pending')].filter(drawn).length),
    tables: Object.fromEntries([...document.querySelectorAll('table')].map((t, i) =>
      [t.id || t.className || String(i), [...t.rows].filter(box).length])),
  };
  document.body.insertAdjacentHTML('beforeend', '<pre id="probe">' + JSON.stringify(out) + '</pre>');
  console.log('tripline-probe ' + JSON.stringify(out));
})();
</script>"#;

fn chromium() -> Option<PathBuf> {
    real_part("TRIPLINE_CHROMIUM", "chromium", |p| p.exists())
}

/// Runs headless Chromium on `page` with `extra` flags; killed if it has not finished in 120 s
/// (a guard against a hung browser, not a measurement).
fn run_chromium(chromium: &Path, profile: &Path, extra: &[String], page: &Path) -> Output {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("chromium status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("chromium output")
}

/// Console messages Chromium logged (`...:INFO:CONSOLE:54] "text", source: ...`).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn the_html_report_renders_in_headless_chromium_with_chart_and_tables() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    write_day(dir.path(), &hook.url("/hook"));
    let out = bin::run(
        dir.path(),
        &[
            "backtest",
            "--config",
            "tripline.toml",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-01T23:59:59Z",
            "--set",
            "errors.missing=breaching",
            "--format",
            "html",
            "--out",
            "report",
            "--no-progress",
        ],
    );
    assert!(out.status.success(), "{}", bin::stderr(&out));
    let page = dir.path().join("report/backtest.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: opens with no network and runs nothing.
    assert!(!html.contains("<script"), "the report has a script");
    for attr in ["src=", "href=", "url("] {
        assert!(!html.contains(attr), "the report loads a resource ({attr})");
    }

    let probed = dir.path().join("report/probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let dom = run_chromium(
        &chromium,
        &dir.path().join("profile-dom"),
        &["--dump-dom".into()],
        &probed,
    );
    assert!(dom.status.success(), "{}", bin::stderr(&dom));
    let dumped = bin::stdout(&dom);
    // The last one: the first is in the script's own text.
    let probe: Value = dumped
        .rsplit("<pre id=\"probe\">")
        .next()
        .and_then(|s| s.split("</pre>").next())
        .and_then(|s| serde_json::from_str(&s.replace("&quot;", "\"")).ok())
        .unwrap_or_else(|| panic!("no probe output in the DOM:\n{dumped}"));
    assert_eq!(probe["charts"], 1, "{probe}");
    assert_eq!(probe["data_paths"], serde_json::json!([1]), "{probe}");
    assert_eq!(probe["threshold_lines"], serde_json::json!([1]), "{probe}");
    // After --set: the same three firing intervals (one longer); three pendings before them and
    // the three flapping ones that never fired. The chart is of the first run.
    assert_eq!(probe["firing"], serde_json::json!([3]), "{probe}");
    assert_eq!(probe["pending"], serde_json::json!([6]), "{probe}");
    // Header row + one per instance, receiver, interval, diff entry.
    assert_eq!(
        probe["tables"],
        serde_json::json!({ "instances": 2, "notifications": 2, "intervals": 4, "diff": 4 }),
        "{probe}"
    );
    // The console carried the probe's line and nothing else: no error of the page's own.
    let stderr = bin::stderr(&dom);
    let console = console_lines(&stderr);
    assert_eq!(console.len(), 1, "console: {console:#?}");
    assert!(console[0].contains("tripline-probe"), "{console:#?}");

    // The screenshot, of the page as written.
    let shot = dir.path().join("backtest.png");
    let ss = run_chromium(
        &chromium,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1100".into(),
            "--hide-scrollbars".into(),
        ],
        &page,
    );
    assert!(ss.status.success(), "{}", bin::stderr(&ss));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((dim(16), dim(20)), (1200, 1100), "IHDR width, height");
    assert!(
        console_lines(&bin::stderr(&ss)).is_empty(),
        "{}",
        bin::stderr(&ss)
    );
    if let Some(to) = std::env::var_os("TRIPLINE_BACKTEST_SCREENSHOT") {
        std::fs::copy(&shot, to).unwrap();
    }
    assert!(hook.requests().is_empty(), "a receiver was called");
}
