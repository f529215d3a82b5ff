//! The `tokendeploy` command line: parses arguments, gathers the function's settings, and hands
//! the work to `tokendeploy-deploy` and `tokendeploy-package`.

mod cli;
mod commands;
mod display;
mod settings;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;

/// Input the user must fix (exit 2), as opposed to a failure on the way (exit 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `status` found the stack incomplete, drifted or not ours to sort out (exit 3).
    OutOfSync,
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
    match commands::run(cli).await {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::OutOfSync) => ExitCode::from(3),
        Err(error) => {
            // `{:#}` keeps the whole context chain on one line.
            display::say(&format!("error: {error:#}"));
            if error.downcast_ref::<UsageError>().is_some() { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}

/// clap's usage error on one line: what is wrong and the values it takes, without the
/// usage block (`--help` shows that).
fn one_line(rendered: &str) -> String {
    let useful = rendered.lines().map(str::trim).filter(|line| {
        !line.is_empty() && !line.starts_with("Usage:") && !line.starts_with("For more information")
    });
    format!("{} (see tokendeploy --help)", useful.collect::<Vec<_>>().join("; "))
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
