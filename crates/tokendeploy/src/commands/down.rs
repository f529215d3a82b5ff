use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use tokendeploy_deploy::down::{Resource, down, to_delete};
use tokendeploy_deploy::{Aws, Progress, Snapshot, Stack, snapshot};
use tokendeploy_package::CodeSource;

use crate::cli::DownArgs;
use crate::commands::connect;
use crate::regions::{self, Finished, Regions};
use crate::{Outcome, UsageError};

pub async fn run(args: DownArgs) -> Result<Outcome> {
    let regions = match args.all_regions {
        false => regions::parse(args.aws.region.as_deref(), &args.aws.name)?,
        true => regions::holding(&args.aws).await?,
    };
    if let (Regions::Several(list), false) = (&regions, args.yes) {
        // One question for every region, before anything is deleted anywhere.
        let reads = list.iter().map(|region| doomed_in(&args, Some(region.clone())));
        let found = futures::future::try_join_all(reads).await?;
        let doomed: Vec<(String, Vec<Resource>)> =
            list.iter().cloned().zip(found.into_iter().map(|read| read.doomed)).collect();
        if doomed.iter().any(|(_, resources)| !resources.is_empty()) {
            confirm(&args.aws.name, &doomed)?;
        }
    }
    let one_region = matches!(regions, Regions::One(_));
    let in_region = async |region, _: Option<CodeSource>, progress: &dyn Progress, _: &dyn Fn(&str)| {
        let Read { aws, stack, found, doomed } = doomed_in(&args, region).await?;
        if one_region && !doomed.is_empty() && !args.yes {
            confirm(&stack.name, &[(stack.region.clone(), doomed)])?;
        }
        // With nothing of ours left this deletes nothing and reports what was left alone.
        let report = down(&aws, &stack, &found, progress).await?;
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
    regions::run(regions, &args.output, None, in_region).await
}

/// The stack in one region as `down` found it, and what it would delete.
struct Read {
    aws: Aws,
    stack: Stack,
    found: Snapshot,
    doomed: Vec<Resource>,
}

async fn doomed_in(args: &DownArgs, region: Option<String>) -> Result<Read> {
    let (aws, stack) = connect(&args.aws, region).await?;
    let found = snapshot::read(&aws, &stack).await?;
    let doomed = to_delete(&found, &stack);
    Ok(Read { aws, stack, found, doomed })
}

/// Asks on a terminal; elsewhere (CI) refuses at once rather than wait for an answer.
/// `doomed`: what goes, by region.
fn confirm(name: &str, doomed: &[(String, Vec<Resource>)]) -> Result<()> {
    let count: usize = doomed.iter().map(|(_, resources)| resources.len()).sum();
    let regions: Vec<&str> = doomed.iter().map(|(region, _)| region.as_str()).collect();
    let regions = regions.join(", ");
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "down would delete {count} resources of stack {name} in {regions}; pass --yes to delete without a terminal to confirm on"
        ))
        .into());
    }
    let mut stderr = std::io::stderr();
    for (region, resources) in doomed.iter().filter(|(_, resources)| !resources.is_empty()) {
        writeln!(stderr, "tokendeploy down will delete, in {region}:")?;
        for resource in resources {
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
