//! `logs`: the function's log, a line a request; `--follow` until Ctrl-C (or SIGTERM).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokendeploy_deploy::logs::{self, Entry, Tail};

use crate::Outcome;
use crate::cli::{LogsArgs, OutputFormat};
use crate::commands::connect;
use crate::regions::{self, Regions};

/// How often `--follow` reads again.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// How far back each read of `--follow` reaches: CloudWatch Logs may take a while to show an
/// event, and seen events are not shown twice.
const FOLLOW_OVERLAP_MS: i64 = 60_000;

pub async fn run(args: LogsArgs) -> Result<Outcome> {
    let (regions, named) = match regions::parse(args.aws.region.as_deref(), &args.aws.name)? {
        Regions::One(region) => (vec![region], false),
        Regions::Several(list) => (list.into_iter().map(Some).collect(), true),
    };
    // Every region's tail stops on the same signal.
    let (stopped, stop_seen) = tokio::sync::watch::channel(false);
    let args = &args;
    let tails = regions.into_iter().map(|region| tail(args, region, named, stop_seen.clone()));
    let tails = futures::future::try_join_all(tails);
    if args.follow {
        let stop = crate::signals::stop()?;
        tokio::pin!(tails);
        tokio::select! {
            finished = &mut tails => { finished?; }
            _ = stop => {
                let _ = stopped.send(true);
                tails.await?;
            }
        }
    } else {
        tails.await?;
    }
    Ok(Outcome::Done)
}

/// The function's log in `region`: what is there since `--since`, then with `--follow` what
/// comes until `stop_seen` turns true; each line named with its region when `named`.
async fn tail(
    args: &LogsArgs,
    region: Option<String>,
    named: bool,
    mut stop_seen: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let (aws, stack) = connect(&args.aws, region).await?;
    let region = named.then_some(stack.region.as_str());
    let since = now_ms() - args.since.as_millis() as i64;
    let mut tail = Tail::default();
    let events = aws.checked(logs::read(&aws, &stack, since)).await?;
    let mut latest = events.iter().map(|event| event.timestamp).max().unwrap_or(since);
    show(&tail.feed(&events, now_ms()), args.output, region)?;
    if !args.follow {
        return show(&tail.flush(), args.output, region);
    }
    loop {
        tokio::select! {
            _ = stop_seen.changed() => break,
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let events = logs::read(&aws, &stack, since.max(latest - FOLLOW_OVERLAP_MS)).await?;
        latest = events.iter().map(|event| event.timestamp).max().unwrap_or(latest).max(latest);
        show(&tail.feed(&events, now_ms()), args.output, region)?;
    }
    show(&tail.flush(), args.output, region)
}

/// Each entry as a line on stdout, led by its region (a `region` member in JSON) when given; a
/// closed stdout is an error (exit 1), never a panic.
fn show(entries: &[Entry], format: OutputFormat, region: Option<&str>) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    for entry in entries {
        let line = match (format, region) {
            (OutputFormat::Text, None) => entry.line(),
            (OutputFormat::Text, Some(region)) => format!("{region:<15} {}", entry.line()),
            (OutputFormat::Json, None) => serde_json::to_string(entry)?,
            (OutputFormat::Json, Some(region)) => {
                let mut json = serde_json::to_value(entry)?;
                json["region"] = region.into();
                serde_json::to_string(&json)?
            }
        };
        writeln!(stdout, "{line}").context("writing the log to standard output")?;
    }
    stdout.flush().context("writing the log to standard output")
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
