//! `verify`, and what `up --verify` shares with it.

use std::time::Duration;

use anyhow::{Context, Result};
use tokendeploy_deploy::verify::{VerifyOptions, VerifyReport, verify};
use tokendeploy_deploy::{Aws, Progress, Stack};

use crate::cli::{VerifyArgs, VerifyFlags};
use crate::commands::connect;
use crate::display::say;
use crate::regions::{self, Finished};
use crate::{Outcome, UsageError};

pub async fn run(args: VerifyArgs) -> Result<Outcome> {
    let options = options(&args.checking)?;
    let regions = regions::parse(args.aws.region.as_deref(), &args.aws.name)?;
    let in_region = async |region, _: (), _: &dyn Progress, tell: &dyn Fn(&str)| {
        let (aws, stack) = connect(&args.aws, region).await?;
        let report = aws.checked(check(&aws, &stack, &options, tell)).await?;
        Finished::of(outcome(&report), &report, text)
    };
    regions::run(regions, &args.output, (), in_region).await
}

/// The options the flags give, read before any AWS call: a bearer file that cannot be read is
/// bad input.
pub fn options(flags: &VerifyFlags) -> Result<VerifyOptions> {
    let bearer = match &flags.bearer_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                UsageError(format!("cannot read --bearer-file {}: {error}", path.display()))
            })?;
            let token = text.trim().to_string();
            if token.is_empty() || token.contains(char::is_whitespace) {
                return Err(UsageError(format!(
                    "--bearer-file {} must hold one token from the app's sign-in, and nothing else",
                    path.display()
                ))
                .into());
            }
            Some(token)
        }
        None => {
            std::env::var("TOKENDEPLOY_BEARER").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
        }
    };
    Ok(VerifyOptions { bearer, wait: Duration::from_secs(flags.wait) })
}

/// Verifies, telling the waits through `tell`; a failure is told on stderr (what answered and
/// how, and the function's log lines).
pub async fn check(
    aws: &Aws,
    stack: &Stack,
    options: &VerifyOptions,
    tell: &dyn Fn(&str),
) -> Result<VerifyReport> {
    let note = |line: &str| tell(&format!("verify: {line}"));
    let report = verify(aws, stack, options, &note).await.context("verifying the stack")?;
    if let Some(problem) = &report.problem {
        say(&format!("error: {problem}"));
        for line in &report.function_logs {
            say(&format!("  function log: {line}"));
        }
    }
    Ok(report)
}

pub fn outcome(report: &VerifyReport) -> Outcome {
    if report.ok { Outcome::Done } else { Outcome::Failed }
}

/// A line a check, and whether the stack answers.
pub fn text(report: &VerifyReport) -> String {
    let mut lines: Vec<String> = report
        .checks
        .iter()
        .map(|check| {
            format!("{:<10} {:<6} {}", check.name, if check.ok { "ok" } else { "FAILED" }, check.said)
        })
        .collect();
    let verdict = if report.ok { "answers" } else { "does not answer as it should" };
    lines.push(format!(
        "stack {} in {} {verdict} at {} (origin {})",
        report.name, report.region, report.url, report.origin
    ));
    lines.join("\n")
}
