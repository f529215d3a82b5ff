use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};
use tokendeploy_deploy::down::{Resource, down, to_delete};
use tokendeploy_deploy::{Aws, Progress, Snapshot, Stack, discover, snapshot};

use crate::cli::DownArgs;
use crate::commands::{connect, find_stack};
use crate::regions::{self, Finished, Regions};
use crate::{Outcome, UsageError};

pub async fn run(args: DownArgs) -> Result<Outcome> {
    // Each region's stack as read before anything is deleted anywhere, so one question covers
    // every region: by `--all-regions` while it finds the stack (the read starts as soon as a
    // region says it holds it), or for a list without `--yes`. `down` deletes from that read.
    let (regions, read_first) = match args.all_regions {
        true => {
            let found =
                find_stack(&args.aws, async |aws, stack| match discover::holds_stack(&aws, &stack).await? {
                    true => {
                        let region = stack.region.clone();
                        Ok(Some(Read::of(aws, stack).await.with_context(|| format!("in {region}"))?))
                    }
                    false => Ok(None),
                })
                .await?;
            (Regions::Several(found.iter().map(|(region, _)| region.clone()).collect()), found)
        }
        false => match regions::parse(args.aws.region.as_deref(), &args.aws.name)? {
            Regions::Several(list) if !args.yes => {
                let reads = list.iter().map(async |region| {
                    let read =
                        doomed_in(&args, Some(region.clone())).await.with_context(|| format!("in {region}"));
                    anyhow::Ok((region.clone(), read?))
                });
                let found = futures::future::try_join_all(reads).await?;
                (Regions::Several(list), found)
            }
            regions => (regions, Vec::new()),
        },
    };
    if matches!(regions, Regions::Several(_)) && !args.yes {
        let doomed: Vec<(&str, &[Resource])> = read_first
            .iter()
            .filter(|(_, read)| !read.doomed.is_empty())
            .map(|(region, read)| (region.as_str(), read.doomed.as_slice()))
            .collect();
        if !doomed.is_empty() {
            confirm(&args.aws.name, &doomed)?;
        }
    }
    let read_first: HashMap<String, Read> = read_first.into_iter().collect();
    let one_region = matches!(regions, Regions::One(_));
    let in_region = async |region: Option<String>, _: (), progress: &dyn Progress, _: &dyn Fn(&str)| {
        let read_now;
        let read = match region.as_ref().and_then(|region| read_first.get(region)) {
            Some(read) => read,
            None => {
                read_now = doomed_in(&args, region).await?;
                &read_now
            }
        };
        let Read { aws, stack, found, doomed } = read;
        if one_region && !doomed.is_empty() && !args.yes {
            confirm(&stack.name, &[(stack.region.as_str(), doomed.as_slice())])?;
        }
        // With nothing of ours left this deletes nothing and reports what was left alone.
        let report = down(aws, stack, found, progress).await?;
        Finished::of(Outcome::Done, &report, |report| {
            let mut lines = Vec::new();
            if report.deleted.is_empty() {
                lines.push(format!("nothing to delete for stack {} in {}", report.name, report.region));
            }
            lines.extend(report.deleted.iter().map(|r| format!("deleted {} {}", r.kind, r.id)));
            lines.extend(report.skipped.iter().map(|s| format!("left {} {}: {}", s.kind, s.id, s.reason)));
            lines.join("\n")
        })
    };
    regions::run(regions, &args.output, (), in_region).await
}

/// The stack in one region as `down` found it, and what it would delete.
struct Read {
    aws: Aws,
    stack: Stack,
    found: Snapshot,
    doomed: Vec<Resource>,
}

impl Read {
    async fn of(aws: Aws, stack: Stack) -> Result<Self> {
        let found = snapshot::read(&aws, &stack).await?;
        let doomed = to_delete(&found, &stack);
        Ok(Self { aws, stack, found, doomed })
    }
}

/// The stack in the region named (else the profile's), with the credentials checked beside
/// the read; `--all-regions` checks them once, where it lists the account's regions.
async fn doomed_in(args: &DownArgs, region: Option<String>) -> Result<Read> {
    let (aws, stack) = connect(&args.aws, region).await?;
    let checked = aws.clone();
    checked.checked(Read::of(aws, stack)).await
}

/// Asks on a terminal; elsewhere (CI) refuses at once rather than wait for an answer.
/// `doomed`: what goes, by region.
fn confirm(name: &str, doomed: &[(&str, &[Resource])]) -> Result<()> {
    let count: usize = doomed.iter().map(|(_, resources)| resources.len()).sum();
    let regions: Vec<&str> = doomed.iter().map(|(region, _)| *region).collect();
    let regions = regions.join(", ");
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "down would delete {count} resources of stack {name} in {regions}; pass --yes to delete without a terminal to confirm on"
        ))
        .into());
    }
    let mut stderr = std::io::stderr();
    for (region, resources) in doomed {
        writeln!(stderr, "tokendeploy down will delete, in {region}:")?;
        for resource in *resources {
            writeln!(stderr, "  {} {}", resource.kind, resource.id)?;
        }
    }
    write!(stderr, "Delete these {count} resources of stack {name}? [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(UsageError("nothing was deleted".into()).into())
    }
}
