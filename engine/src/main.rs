//! The `tripline` command: a thin shell over the library.

// Every command exits quietly when its output is a closed pipe (`tripline … | head`), as
// ripgrep does: these shadow std's `print!`/`println!`, which panic with "failed printing to
// stdout: Broken pipe", in every module below, and `eprintln!`, which would panic the same way
// on a closed stderr. Errors returned up to `main` are handled there.
macro_rules! print {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            crate::quiet_on_closed_pipe(e);
        }
    }};
}
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            crate::quiet_on_closed_pipe(e);
        }
    }};
}
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod cli;

/// Ends the process at once, successfully and silently, when stdout was closed by its reader;
/// any other failure to write the output is reported.
fn quiet_on_closed_pipe(e: std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("tripline: cannot write the output: {e}");
    std::process::exit(1);
}

/// Whether an error is, at bottom, stdout closed by its reader.
fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tripline",
    version,
    about = "Alerting and triage rules engine: Rhai rules over CloudWatch, logs and more"
)]
struct Args {
    /// Log level filter (also RUST_LOG), e.g. `info` or `tripline=debug`.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    /// Log line format: `text`, or `json` (one JSON object per line, for log shippers).
    #[arg(long, global = true, env = "TRIPLINE_LOG_FORMAT", value_enum, default_value_t = cli::LogFormat::Text)]
    log_format: cli::LogFormat,
    /// Same as `--log-format json`.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate the built-in campaign-workers demo (fixture data, SQLite state, console output).
    Demo(cli::demo::DemoArgs),
    /// Validate a config and every rule it references; exit 2 with path:line:col lines if not valid.
    Check(cli::check::CheckArgs),
    /// Run rule fixture cases (`*.test.toml`) and print `N passed, N failed`.
    Test(cli::test::TestArgs),
    /// Run one evaluation cycle at an instant, persist state, print the alerts.
    Eval(cli::eval::EvalArgs),
    /// List the alerts in the store.
    Alerts(cli::alerts::AlertsArgs),
    /// Add, list or expire silences.
    Silence(cli::silence::SilenceArgs),
    /// Acknowledge a firing alert: its escalation stops.
    Ack(cli::ack::AckArgs),
    /// Flush the notification pipeline and deliver the outbox (resumes undelivered entries).
    Deliver(cli::deliver::DeliverArgs),
    /// Render what a receiver would be sent for sample alerts, without sending.
    NotifyPreview(cli::notify_preview::NotifyPreviewArgs),
    /// Print the receivers an alert with the given labels would reach.
    RouteTest(cli::route_test::RouteTestArgs),
    /// Replay rules over a past range: firing intervals, notifications that would have been sent,
    /// and with --set/--compare the difference. Sends nothing.
    Backtest(cli::backtest::BacktestArgs),
    /// Run as a daemon: cron schedules, HTTP health/metrics/API, SIGHUP reload, SIGTERM drain.
    Run(cli::run::RunArgs),
    /// Print a shell completion script: `tripline completions bash > /etc/bash_completion.d/tripline`.
    Completions(cli::meta::CompletionsArgs),
    /// Print the manual page (roff): `tripline man | man -l -`.
    Man,
    /// Print the JSON Schema of tripline.toml, for editors (e.g. Taplo / Even Better TOML).
    ConfigSchema,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Rule tests fail rules on purpose; their warnings would drown the report.
    let level = if matches!(args.command, Some(Command::Test(_))) && args.log == "warn" {
        "error"
    } else {
        args.log.as_str()
    };
    cli::init_logging(
        level,
        args.log_json || matches!(args.log_format, cli::LogFormat::Json),
    );
    // The daemon, backtests and deliveries get a worker per core; a one-shot command (`eval`,
    // `check`, `alerts`, …) runs on this thread alone: no worker threads to start, and no
    // hand-offs between them (start-up time is most of such a command's run).
    let one_shot = !matches!(
        args.command,
        Some(Command::Run(_) | Command::Backtest(_) | Command::Deliver(_))
    );
    let built = if one_shot {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tripline: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        match args.command.unwrap_or(Command::Demo(Default::default())) {
            Command::Demo(a) => cli::demo::run(a).await,
            Command::Check(a) => cli::check::run(a).await,
            Command::Test(a) => cli::test::run(a).await,
            Command::Eval(a) => cli::eval::run(a).await,
            Command::Alerts(a) => cli::alerts::run(a).await,
            Command::Silence(a) => cli::silence::run(a).await,
            Command::Ack(a) => cli::ack::run(a).await,
            Command::Deliver(a) => cli::deliver::run(a).await,
            Command::NotifyPreview(a) => cli::notify_preview::run(a).await,
            Command::RouteTest(a) => cli::route_test::run(a).await,
            Command::Run(a) => cli::run::run(a).await,
            Command::Backtest(a) => cli::backtest::run(a).await,
            Command::Completions(a) => cli::meta::completions(a, Args::command()),
            Command::Man => cli::meta::man(Args::command()),
            Command::ConfigSchema => cli::meta::config_schema(),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) if is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tripline: {e:#}");
            ExitCode::from(1)
        }
    }
}
