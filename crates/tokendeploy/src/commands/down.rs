use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use tokendeploy_deploy::down::{Resource, down, to_delete};
use tokendeploy_deploy::snapshot;

use crate::cli::DownArgs;
use crate::commands::connect;
use crate::display::{Console, print_result};
use crate::{Outcome, UsageError};

pub async fn run(args: DownArgs) -> Result<Outcome> {
    let (aws, stack) = connect(&args.aws).await?;
    let found = snapshot::read(&aws, &stack).await?;
    let doomed = to_delete(&found, &stack);
    if !doomed.is_empty() && !args.yes {
        confirm(&stack.name, &stack.region, &doomed)?;
    }
    // With nothing of ours left this deletes nothing and reports what was left alone.
    let console = Console::new(&args.output);
    let report = down(&aws, &stack, &found, &console).await;
    console.clear();
    print_result(args.output.output, &report?, |report| {
        let mut lines = Vec::new();
        if report.deleted.is_empty() {
            lines.push(format!("nothing to delete for stack {} in {}", report.name, report.region));
        }
        lines.extend(report.deleted.iter().map(|r| format!("deleted {} {}", r.kind, r.id)));
        lines.extend(report.skipped.iter().map(|s| format!("left {} {}: {}", s.kind, s.id, s.reason)));
        lines.join("\n")
    })?;
    Ok(Outcome::Done)
}

/// Asks on a terminal; elsewhere (CI) refuses at once rather than wait for an answer.
fn confirm(name: &str, region: &str, doomed: &[Resource]) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "down would delete {} resources of stack {name} in {region}; pass --yes to delete without a terminal to confirm on",
            doomed.len()
        ))
        .into());
    }
    let mut stderr = std::io::stderr();
    writeln!(stderr, "tokendeploy down will delete, in {region}:")?;
    for resource in doomed {
        writeln!(stderr, "  {} {}", resource.kind, resource.id)?;
    }
    write!(stderr, "Delete these {} resources of stack {name}? [y/N] ", doomed.len())?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(UsageError("nothing was deleted".into()).into())
    }
}
