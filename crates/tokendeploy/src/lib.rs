//! The `tokendeploy` command line: parses arguments, gathers the function's settings, and hands
//! the work to `tokendeploy-deploy` and `tokendeploy-package`.

mod abort;
mod cli;
mod commands;
mod display;
mod embedded;
mod regions;
mod settings;
mod signals;
mod starting_files;

use std::process::ExitCode;

use clap::Parser;
use tokendeploy_deploy::ErrorKind;
/// Input the user must fix (exit 2), as opposed to a failure on the way (exit 1).
pub use tokendeploy_deploy::UsageError;

pub use cli::Cli;
use cli::OutputFormat;

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `status` found the stack incomplete, drifted or not ours to sort out (exit 3).
    OutOfSync,
    /// `verify` (or `up --verify`) ran to its end and found the stack not answering (exit 1):
    /// its report is printed, and why on stderr.
    Failed,
}

/// The exit codes: 0 done, 1 failed, 2 bad usage or input (nothing changed), 3 out of sync.
pub async fn run() -> ExitCode {
    exit_1_on_panic();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print(); // --help and --version
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            display::say(&one_line(&error.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let if_interrupted = commands::if_interrupted(&cli.command);
    let format = commands::output_format(&cli.command);
    let work = commands::run(cli);
    let finished = match if_interrupted {
        // It stops on a signal by design, and says so.
        None => work.await,
        // Signals that cannot be listened for interrupt nothing.
        Some(left) => match signals::stop() {
            Err(_) => work.await,
            Ok(stop) => tokio::select! {
                finished = work => finished,
                signal = stop => {
                    return failed(format, "interrupted", &format!("interrupted ({signal}): {left}"), 1);
                }
            },
        },
    };
    match finished {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::OutOfSync) => ExitCode::from(3),
        Ok(Outcome::Failed) => ExitCode::from(1),
        // `{:#}` keeps the whole context chain on one line.
        Err(error) => failed(format, ErrorKind::of(&error).name(), &format!("{error:#}"), exit_code(&error)),
    }
}

/// A failure: its line on stderr, and with `--output json` an object on stdout too, so a
/// pipeline reading stdout gets JSON either way: `{"error": {"kind", "message"}}`.
fn failed(format: OutputFormat, kind: &str, message: &str, code: u8) -> ExitCode {
    display::say(&format!("error: {message}"));
    if format == OutputFormat::Json {
        let error = serde_json::json!({ "error": { "kind": kind, "message": message } });
        let _ = display::print_result(format, &error, |_| String::new());
    }
    ExitCode::from(code)
}

/// The one place a failure becomes an exit code: 2 for input to fix (nothing changed), 1 for
/// the rest. (A stack out of sync is an [`Outcome`], not a failure.)
pub(crate) fn exit_code(error: &anyhow::Error) -> u8 {
    match ErrorKind::of(error) {
        ErrorKind::Usage => 2,
        ErrorKind::ForeignResource
        | ErrorKind::AwsCall
        | ErrorKind::NotReady
        | ErrorKind::Package
        | ErrorKind::ConcurrentRun
        | ErrorKind::Other => 1,
    }
}

/// clap's usage error on one line: what is wrong and the values it takes, without the
/// usage block (`--help` shows that).
fn one_line(rendered: &str) -> String {
    let useful = rendered.lines().map(str::trim).filter(|line| {
        !line.is_empty() && !line.starts_with("Usage:") && !line.starts_with("For more information")
    });
    // A line that ends in a colon introduces the next one; the others are separate points.
    let mut joined = String::new();
    for line in useful {
        if !joined.is_empty() {
            joined.push_str(if joined.ends_with(':') { " " } else { "; " });
        }
        joined.push_str(line);
    }
    format!("{joined} (see tokendeploy --help)")
}

/// A bug must still end with a failure's exit code, and its message must not carry values
/// (a secret could be one): only where it happened.
fn exit_1_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        display::say(&format!("error: internal error in tokendeploy{place}; please report it"));
        std::process::exit(1);
    }));
}
