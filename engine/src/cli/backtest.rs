//! `tripline backtest`: replay rules over a past range (`Tripline::backtest`) and print the
//! firing intervals, the notifications that would have been sent, and with `--set` or
//! `--compare` the difference between two versions. Nothing is sent and no state is kept.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tripline::backtest::{self, BacktestOptions, BacktestRange, BacktestReport, Setting};

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum ReportFormat {
    #[default]
    Text,
    Json,
    Html,
}

#[derive(clap::Args)]
pub struct BacktestArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Start of the range: RFC 3339, or an offset from now such as `-7d`.
    #[arg(long)]
    from: String,
    /// End of the range (included): RFC 3339, an offset such as `-1h`, or `now`.
    #[arg(long, default_value = "now")]
    to: String,
    /// Only these rule instances (names or rule ids); repeatable.
    #[arg(long = "rule")]
    rules: Vec<String>,
    /// Change an instance for a second run and compare: `errors.threshold=5`, `errors.for=10m`.
    #[arg(long = "set")]
    set: Vec<String>,
    /// Compare with the same range replayed on another config.
    #[arg(long)]
    compare: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Write the report into this directory (`backtest.txt`, `.json` or `.html`) instead of
    /// standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar on standard error.
    #[arg(long)]
    no_progress: bool,
    /// Replay without the evaluation memo (the reference the memo is tested against).
    #[arg(long, hide = true)]
    reference: bool,
}

fn instant(
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if s == "now" {
        return Ok(now);
    }
    tripline::source::fixture::parse_time(s, now).map_err(|e| anyhow::anyhow!(e))
}

/// The engine a config describes, for replaying: receivers whose secrets are not set here are
/// fine (nothing is sent), and the store is opened only when it is an existing SQLite file (for
/// its silences); otherwise a throw-away one.
fn engine(path: &Path) -> anyhow::Result<Result<tripline::Tripline, ExitCode>> {
    let cfg = match super::load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(Err(code)),
    };
    let store: Arc<dyn tripline::store::Store> = match &cfg.raw.store {
        tripline::config::StoreConfig::Sqlite(tripline::store::SqliteConfig { path })
            if cfg.resolve(path).exists() =>
        {
            tripline::assembly::build_store(&cfg)?
        }
        _ => Arc::new(tripline::store::SqliteStore::in_memory()?),
    };
    let opts = tripline::assembly::WireOptions {
        store: Some(store),
        allow_missing_secrets: true,
        ..Default::default()
    };
    Ok(tripline::assembly::build(&cfg, opts).map_err(super::report_invalid))
}

fn progress_bar(hidden: bool) -> (indicatif::ProgressBar, backtest::ProgressFn) {
    let bar = if hidden {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} instants, {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let b = bar.clone();
    let f: backtest::ProgressFn = Arc::new(move |p: &backtest::Progress| {
        b.set_length(p.instants_total as u64);
        b.set_position(p.instants_done as u64);
        b.set_prefix(if p.fetching {
            "fetching history"
        } else {
            "replaying"
        });
        b.set_message(format!("{} requests", p.requests));
    });
    (bar, f)
}

pub async fn run(a: BacktestArgs) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let range = BacktestRange {
        from: instant(&a.from, now).map_err(|e| anyhow::anyhow!("--from: {e}"))?,
        to: instant(&a.to, now).map_err(|e| anyhow::anyhow!("--to: {e}"))?,
    };
    let settings = a
        .set
        .iter()
        .map(|s| Setting::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!(e))?;
    let base = match engine(&a.config)? {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let other = match &a.compare {
        None => None,
        Some(p) => match engine(p)? {
            Ok(e) => Some(e),
            Err(code) => return Ok(code),
        },
    };
    let (bar, progress) = progress_bar(a.no_progress);
    let opts = BacktestOptions {
        rules: a.rules.clone(),
        settings: vec![],
        now: Some(now),
        progress: Some(progress.clone()),
        reference: a.reference,
    };
    let before = match base.backtest(range, opts.clone()).await {
        Ok(r) => r,
        Err(e) => {
            bar.finish_and_clear();
            return Err(e.into());
        }
    };
    let after: Option<BacktestReport> = if other.is_some() || !settings.is_empty() {
        bar.reset();
        let engine = other.as_ref().unwrap_or(&base);
        let opts = BacktestOptions {
            settings: settings.clone(),
            ..opts
        };
        match engine.backtest(range, opts).await {
            Ok(r) => Some(r),
            Err(e) => {
                bar.finish_and_clear();
                return Err(e.into());
            }
        }
    } else {
        None
    };
    bar.finish_and_clear();
    let diff = after.as_ref().map(|b| backtest::diff(&before, b));

    let (body, ext) = match a.format {
        ReportFormat::Text => {
            let mut s = backtest::report::text(&before);
            if let (Some(b), Some(d)) = (&after, &diff) {
                s.push_str("\n--- after ");
                s.push_str(&match &a.compare {
                    Some(p) => p.display().to_string(),
                    None => settings
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
                s.push('\n');
                s.push_str(&backtest::report::text(b));
                s.push('\n');
                s.push_str(&backtest::report::diff_text(d));
            }
            (s, "txt")
        }
        ReportFormat::Json => {
            let v = match (&after, &diff) {
                (Some(b), Some(d)) => {
                    serde_json::json!({ "before": before, "after": b, "diff": d })
                }
                _ => serde_json::to_value(&before)?,
            };
            (serde_json::to_string_pretty(&v)? + "\n", "json")
        }
        ReportFormat::Html => {
            let other = after.as_ref().zip(diff.as_deref());
            (backtest::report::html(&before, other), "html")
        }
    };
    match &a.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("--out {}: {e}", dir.display()))?;
            let file = dir.join(format!("backtest.{ext}"));
            std::fs::write(&file, body)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
            println!("wrote {}", file.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout().lock().write_all(body.as_bytes())?;
        }
    }
    eprintln!("{}", backtest::report::summary_line(&before));
    if let Some(b) = &after {
        eprintln!("{}", backtest::report::summary_line(b));
    }
    Ok(ExitCode::SUCCESS)
}
