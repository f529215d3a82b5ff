use anyhow::Result;
use serde::Serialize;
use tokendeploy_deploy::Progress;
use tokendeploy_deploy::discover::holds_stack;
use tokendeploy_deploy::status::{StatusReport, environment_to_compare, status};
use tokendeploy_deploy::up::prepare;
use tokendeploy_package::CodeSource;

use crate::Outcome;
use crate::cli::StatusArgs;
use crate::commands::{code_source, connect, find_stack};
use crate::display::print_result;
use crate::regions::{self, Finished, Regions};
use crate::settings::{always_set, known_environment, provider_of};

/// What `status --output json` prints when a resource with the stack's name is not the
/// stack's: there is nothing `up` could bring in sync.
#[derive(Serialize)]
struct NotOurs {
    name: String,
    region: String,
    complete: bool,
    in_sync: bool,
    problem: String,
}

/// Exits 0 when complete and in sync, 3 when not (incomplete, drifted, or blocked by a
/// resource that is someone else's), 1 when it could not find out.
pub async fn run(StatusArgs { deploy: args, all_regions }: StatusArgs) -> Result<Outcome> {
    let known = known_environment(args.settings.env_file.as_deref(), args.flags())?;
    let always_set = always_set(provider_of(&known.variables));
    let security = args.security.security()?;
    let (source, code_line) = code_source(&args.code, args.arch.into(), true)?;
    let regions = match all_regions {
        false => regions::parse(args.aws.region.as_deref(), &args.aws.name)?,
        // The regions where the stack has anything, as several (even one or none, so the
        // result has the same shape).
        true => {
            let found =
                find_stack(&args.aws, async |aws, stack| Ok(holds_stack(&aws, &stack).await?.then_some(())));
            Regions::Several(found.await?.into_iter().map(|(region, ())| region).collect())
        }
    };
    if matches!(&regions, Regions::Several(list) if list.is_empty()) {
        // Nowhere is as incomplete as a stack gets.
        let nowhere = serde_json::json!({ "regions": [], "exit_code": 3 });
        let name = &args.aws.name;
        print_result(args.output.output, &nowhere, |_| {
            format!("stack {name}: in none of the account's regions")
        })?;
        return Ok(Outcome::OutOfSync);
    }
    let in_region = async |region, source: CodeSource, progress: &dyn Progress, tell: &dyn Fn(&str)| {
        let (aws, stack) = connect(&args.aws, region).await?;
        tell(&code_line);
        let known = known.clone();
        let environment = |observed: &_| environment_to_compare(known, &always_set, observed);
        let prepared =
            prepare(&aws, &stack, environment, security, move || source.artifact(), progress).await?;
        if let Some(foreign) = prepared.snapshot.blocking(&stack, prepared.desired.secret.is_some()) {
            let problem = foreign.to_string();
            let report =
                NotOurs { name: stack.name, region: stack.region, complete: false, in_sync: false, problem };
            return Finished::of(Outcome::OutOfSync, &report, |r| {
                format!("stack {} in {}: {}", r.name, r.region, r.problem)
            });
        }
        let report = status(&prepared, aws.endpoint_url.as_deref());
        let outcome = if report.in_sync { Outcome::Done } else { Outcome::OutOfSync };
        Finished::of(outcome, &report, text)
    };
    regions::run(regions, &args.output, source, in_region).await
}

fn text(report: &StatusReport) -> String {
    let state = match (report.complete, report.in_sync) {
        (_, true) => "complete and in sync",
        (true, false) => "complete, but differs from what up would make",
        (false, _) => "incomplete",
    };
    let mut lines = vec![format!("stack {} in {}: {state}", report.name, report.region)];
    for resource in &report.resources {
        lines.push(format!("  {:<17} {}", resource.kind, resource.id.as_deref().unwrap_or("-- missing")));
    }
    lines.extend(report.drift.iter().map(|drift| format!("  drift: {}: {}", drift.kind, drift.reason)));
    if let Some(url) = &report.invoke_url {
        lines.push(format!("invoke URL: {url}"));
    }
    lines.join("\n")
}
