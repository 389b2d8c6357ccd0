//! What the ecosystem expects of a command-line tool, generated from the CLI and the config types
//! themselves so that they cannot drift: shell completions (clap_complete), a man page
//! (clap_mangen) and the config file's JSON Schema (schemars).

use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn completions(a: CompletionsArgs, mut cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "tripline", &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `tripline.1`: the top-level page, each subcommand a section of it.
pub fn man(cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"TRIPLINE {}\"", name.to_uppercase())?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", roff_escape(&about.to_string()))?;
        }
        let usage = sub
            .clone()
            .bin_name(format!("tripline {name}"))
            .render_usage();
        writeln!(
            out,
            ".PP\n\\fB{}\\fR",
            roff_escape(&usage.to_string().replace("Usage: ", ""))
        )?;
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let flag = match (arg.get_long(), arg.get_short()) {
                (Some(l), Some(s)) => format!("\\-{s}, \\-\\-{l}"),
                (Some(l), None) => format!("\\-\\-{l}"),
                (None, Some(s)) => format!("\\-{s}"),
                (None, None) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
            };
            writeln!(out, ".TP\n{flag}")?;
            if let Some(h) = arg.get_help() {
                writeln!(out, "{}", roff_escape(&h.to_string()))?;
            }
        }
    }
    std::io::stdout().lock().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Text safe in a roff paragraph: backslashes doubled, a leading `.` or `'` shielded.
fn roff_escape(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn config_schema() -> anyhow::Result<ExitCode> {
    let schema = tripline::config::json_schema();
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
