//! One module per subcommand. Each parses its flags into a small struct and calls the library.

pub mod ack;
pub mod alerts;
pub mod backtest;
pub mod check;
pub mod deliver;
pub mod demo;
pub mod eval;
pub mod meta;
pub mod notify_preview;
pub mod route_test;
pub mod run;
pub mod silence;
pub mod test;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use tripline::alert::Alert;
use tripline::config::Config;
use tripline::pipeline::status::AlertStatus;
use tripline::Error;

/// Targets of the HTTP client's own logs, held at `warn` whatever the filter asks: at `debug` they
/// name every host connected to ("starting new connection: https://hooks.slack.com/"), and a
/// receiver's URL, host included, can be a secret (issue #17).
const CONNECTION_LOG_TARGETS: [&str; 5] = ["reqwest", "hyper_util", "hyper", "h2", "rustls"];

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logs to stderr; colours only when stderr is a terminal (a file, a pipe or journald gets
/// plain text, not escape codes).
pub fn init_logging(level: &str, json: bool) {
    use std::io::IsTerminal;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    for target in CONNECTION_LOG_TARGETS {
        if let Ok(d) = format!("{target}=warn").parse() {
            filter = filter.add_directive(d);
        }
    }
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!json && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Exit code for an invalid config or rule.
pub const INVALID: u8 = 2;

/// Prints each problem on its own line (`path:line:col: message`) and returns exit code 2.
pub fn report_invalid(e: Error) -> ExitCode {
    let mut err = std::io::stderr().lock();
    for p in e.flatten() {
        let _ = writeln!(err, "{p}");
    }
    ExitCode::from(INVALID)
}

/// Loads a config, printing its problems (exit 2) if it does not parse.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(report_invalid)
}

/// Parses `--at` (RFC 3339; default now).
pub fn parse_at(at: Option<&str>) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(match at {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| anyhow::anyhow!("--at {s:?}: {e}"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    })
}

/// Loads a config and builds its engine on a clock stopped at `--at`. `Err(code)` when the config
/// is invalid (its problems already printed).
pub fn engine_at(
    config: &Path,
    at: Option<&str>,
) -> anyhow::Result<Result<(tripline::Tripline, chrono::DateTime<chrono::Utc>), ExitCode>> {
    Ok(config_engine_at(config, at)?.map(|(_, e, at)| (e, at)))
}

/// A parsed config, its engine and the instant its clock is stopped at.
pub type Loaded = (Config, tripline::Tripline, chrono::DateTime<chrono::Utc>);

/// `engine_at`, handing back the parsed config too (read once, not again for its settings).
pub fn config_engine_at(
    config: &Path,
    at: Option<&str>,
) -> anyhow::Result<Result<Loaded, ExitCode>> {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return Ok(Err(code)),
    };
    let at = parse_at(at)?;
    let opts = tripline::assembly::WireOptions {
        clock: std::sync::Arc::new(tripline::clock::ManualClock::new(at)),
        ..Default::default()
    };
    Ok(match tripline::assembly::build(&cfg, opts) {
        Ok(e) => Ok((cfg, e, at)),
        Err(e) => Err(report_invalid(e)),
    })
}

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// The alert fields the CLI prints as JSON (`GET /api/v1/alerts` prints the same).
pub fn alert_json(a: &Alert, status: Option<&AlertStatus>) -> serde_json::Value {
    tripline::pipeline::status::alert_json(a, status)
}

/// How far before now an explicit `--at` must be to count as a replay of the past (a script's
/// `--at "$(date)"` is a second or so old by the time it runs, and is no replay).
pub const REPLAY_AFTER: chrono::Duration = chrono::Duration::minutes(1);

/// Whether `--at` names an instant in the past (a replay).
pub fn is_replay(at: Option<&str>, resolved: chrono::DateTime<chrono::Utc>) -> bool {
    at.is_some() && resolved < chrono::Utc::now() - REPLAY_AFTER
}

/// Prints alerts for people: worst first, two lines each, runbook link included, and why an
/// alert is muted when `statuses` knows.
pub fn print_alerts(
    alerts: &[Alert],
    statuses: Option<&BTreeMap<String, AlertStatus>>,
    out: &mut dyn Write,
) {
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by(|a, b| {
        b.is_active()
            .cmp(&a.is_active())
            .then(b.severity.cmp(&a.severity))
            .then(a.labels.get("alertname").cmp(&b.labels.get("alertname")))
            .then(a.fingerprint.cmp(&b.fingerprint))
    });
    if sorted.is_empty() {
        let _ = writeln!(out, "no alerts");
    }
    for a in sorted {
        let name = a
            .labels
            .get("alertname")
            .map(|s| s.as_str())
            .unwrap_or(&a.rule);
        let since = a.starts_at.unwrap_or(a.active_since).format("%H:%M:%SZ");
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<24} {}",
            a.state.as_str().to_uppercase(),
            a.severity.as_str(),
            name,
            a.summary
        );
        let mut tail = format!("{:<42} fp={} since={since}", "", a.fingerprint);
        if let Some(r) = &a.runbook {
            tail.push_str(&format!(" runbook={r}"));
        }
        if let Some(e) = a.details.get("error").and_then(|e| e.as_str()) {
            tail.push_str(&format!(" error={e}"));
        }
        if let Some(st) = statuses.and_then(|s| s.get(&a.fingerprint)) {
            if !st.silenced_by.is_empty() {
                tail.push_str(&format!(" silenced_by={}", st.silenced_by.join(",")));
            }
            if !st.inhibited_by.is_empty() {
                tail.push_str(&format!(" inhibited_by={}", st.inhibited_by.join(",")));
            }
            if let Some(k) = &st.acked {
                tail.push_str(&format!(
                    " acked_by={} acked_at={}",
                    k.by,
                    k.at.format("%H:%M:%SZ")
                ));
            }
        }
        let _ = writeln!(out, "{tail}");
    }
}
