//! `tripline silence add|list|expire`: silences live in the store, so they reach a running daemon.

use super::{load_config, report_invalid, Format};
use std::path::PathBuf;
use std::process::ExitCode;
use tripline::clock::parse_duration;
use tripline::config::wire;
use tripline::pipeline::silence::Silence;

#[derive(clap::Args)]
pub struct SilenceArgs {
    #[command(subcommand)]
    command: SilenceCommand,
}

#[derive(clap::Subcommand)]
enum SilenceCommand {
    /// Mute alerts matching every MATCHER (`team=db`, `function=~prd-.*`, `env!=dev`).
    Add {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long from the start (default 1h); or give --until.
        #[arg(long, conflicts_with = "until")]
        duration: Option<String>,
        /// End instant (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Start instant (RFC 3339); default now.
        #[arg(long)]
        starts: Option<String>,
        #[arg(long, env = "USER", default_value = "unknown")]
        author: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// List silences (active and pending; `--all` adds expired ones).
    List {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// End a silence now.
    Expire {
        #[arg(long, short)]
        config: PathBuf,
        id: String,
    },
}

fn instant(
    s: &Option<String>,
    what: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    s.as_ref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| format!("{what} {s:?} is not an RFC 3339 instant such as 2026-12-02T18:00:00Z ({e})"))
        })
        .transpose()
}

/// The silence `silence add`'s arguments describe, or what is wrong with them.
fn silence_from_args(
    matchers: &[String],
    starts: &Option<String>,
    until: &Option<String>,
    duration: &Option<String>,
    author: String,
    comment: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Silence, String> {
    let parsed = tripline::pipeline::silence::parse_matchers(matchers)?;
    let starts_at = instant(starts, "--starts")?.unwrap_or(now);
    let ends_at = match instant(until, "--until")? {
        Some(t) => t,
        None => {
            let d = parse_duration(duration.as_deref().unwrap_or("1h"))
                .map_err(|e| format!("--duration: {e}"))?;
            starts_at.checked_add_signed(d).ok_or_else(|| {
                format!("--duration: {d} from {starts_at} is past the year 262143")
            })?
        }
    };
    Silence::new(&parsed, starts_at, ends_at, author, comment, now)
}

pub async fn run(a: SilenceArgs) -> anyhow::Result<ExitCode> {
    let config = match &a.command {
        SilenceCommand::Add { config, .. }
        | SilenceCommand::List { config, .. }
        | SilenceCommand::Expire { config, .. } => config,
    };
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = match wire::build_store(&cfg) {
        Ok(s) => s,
        Err(e) => return Ok(report_invalid(e)),
    };
    let now = chrono::Utc::now();
    match a.command {
        SilenceCommand::Add {
            matchers,
            duration,
            until,
            starts,
            author,
            comment,
            ..
        } => {
            // A bad argument is a usage error: exit 2, as clap's own and an invalid config's.
            let s = match silence_from_args(
                &matchers, &starts, &until, &duration, author, comment, now,
            ) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("tripline: {e}");
                    return Ok(ExitCode::from(super::INVALID));
                }
            };
            store.add_silence(&s).await?;
            println!("{}", s.id);
        }
        SilenceCommand::List { all, format, .. } => {
            let list: Vec<Silence> = store
                .list_silences()
                .await?
                .into_iter()
                .filter(|s| all || !s.is_expired(now))
                .collect();
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                Format::Text => {
                    for s in &list {
                        let state = if s.is_expired(now) {
                            "expired"
                        } else if s.is_active(now) {
                            "active"
                        } else {
                            "pending"
                        };
                        println!(
                            "{}  {state:<7}  {} → {}  by {}  {}  {}",
                            s.id,
                            s.starts_at.to_rfc3339(),
                            s.ends_at.to_rfc3339(),
                            s.created_by,
                            s.matchers.join(" "),
                            s.comment
                        );
                    }
                }
            }
        }
        SilenceCommand::Expire { id, .. } => {
            let known = store.list_silences().await?;
            if let Some(s) = known.iter().find(|s| s.id == id && s.is_expired(now)) {
                eprintln!(
                    "tripline: silence {id} already expired at {}",
                    s.ends_at.to_rfc3339()
                );
                return Ok(ExitCode::from(1));
            }
            if !store.expire_silence(&id, now).await? {
                eprintln!("tripline: no silence with id {id}");
                return Ok(ExitCode::from(1));
            }
            println!("expired {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
