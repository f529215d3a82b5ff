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

pub async fn run() -> ExitCode {
    let cli = Cli::parse(); // exits 2 on bad usage, as clap does
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` keeps the whole context chain on one line.
            if error.downcast_ref::<commands::OutOfSync>().is_some() {
                return ExitCode::from(3); // status already said how
            }
            eprintln!("error: {error:#}");
            if error.downcast_ref::<UsageError>().is_some() { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}
