//! `logs`: the function's log, a line a request; `--follow` until Ctrl-C (or SIGTERM).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokendeploy_deploy::logs::{self, Entry, Tail};

use crate::Outcome;
use crate::cli::{LogsArgs, OutputFormat};
use crate::commands::{connect, one_region};

/// How often `--follow` reads again.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// How far back each read of `--follow` reaches: CloudWatch Logs may take a while to show an
/// event, and seen events are not shown twice.
const FOLLOW_OVERLAP_MS: i64 = 60_000;

pub async fn run(args: LogsArgs) -> Result<Outcome> {
    let (aws, stack) = connect(&args.aws, one_region(&args.aws, "logs")?).await?;
    let since = now_ms() - args.since.as_millis() as i64;
    let mut tail = Tail::default();
    let events = logs::read(&aws, &stack, since).await?;
    let mut latest = events.iter().map(|event| event.timestamp).max().unwrap_or(since);
    show(&tail.feed(&events, now_ms()), args.output)?;
    if args.follow {
        let stop = crate::signals::stop()?;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
            }
            let events = logs::read(&aws, &stack, since.max(latest - FOLLOW_OVERLAP_MS)).await?;
            latest = events.iter().map(|event| event.timestamp).max().unwrap_or(latest).max(latest);
            show(&tail.feed(&events, now_ms()), args.output)?;
        }
    }
    show(&tail.flush(), args.output)?;
    Ok(Outcome::Done)
}

/// Each entry as a line on stdout; a closed stdout is an error (exit 1), never a panic.
fn show(entries: &[Entry], format: OutputFormat) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    for entry in entries {
        let line = match format {
            OutputFormat::Text => entry.line(),
            OutputFormat::Json => serde_json::to_string(entry)?,
        };
        writeln!(stdout, "{line}").context("writing the log to standard output")?;
    }
    stdout.flush().context("writing the log to standard output")
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
