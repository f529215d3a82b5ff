use anyhow::Result;
use tokendeploy_deploy::resources::rest_api::api_key;

use crate::Outcome;
use crate::abort::AbortAfter;
use crate::cli::UpArgs;
use crate::commands::{code_source, connect, security, verify};
use crate::display::{Console, print_result};
use crate::settings::{function_environment, warnings};

pub async fn run(
    UpArgs { deploy: args, show_api_key, verify: and_verify, checking }: UpArgs,
) -> Result<Outcome> {
    // Everything the user can get wrong is checked before the first AWS call.
    let environment = function_environment(args.settings.env_file.as_deref(), args.flags())?;
    let checking = verify::options(&checking)?;
    let (source, code_line) = code_source(&args.code, args.arch.into(), true)?;
    let security = security(&args.security, &environment)?;
    for warning in warnings(&environment) {
        eprintln!("{warning}");
    }
    let (aws, stack) = connect(&args.aws).await?;
    let console = Console::new(&args.output);
    console.tell(&code_line);
    let progress = AbortAfter::from_env(&console);
    let package = move || source.artifact();
    let report = tokendeploy_deploy::up::up(&aws, &stack, environment, security, package, &progress).await;
    console.clear();
    let mut report = report?;
    for note in &report.notes {
        crate::display::say(&format!("note: {note}"));
    }
    if let (true, Some(id)) = (show_api_key, &report.api_key_id) {
        report.api_key = Some(api_key::value(&aws, id).await?);
    }
    if and_verify {
        report.verify = Some(verify::check(&aws, &stack, &checking, &console).await?);
    }
    let outcome = report.verify.as_ref().map_or(Outcome::Done, verify::outcome);
    print_result(args.output.output, &report, |report| {
        let key = report.api_key.as_ref().map(|key| format!("\nx-api-key: {key}"));
        let verified = report.verify.as_ref().map(|checked| format!("\n{}", verify::text(checked)));
        format!("{}{}{}", report.invoke_url, key.unwrap_or_default(), verified.unwrap_or_default())
    })?;
    Ok(outcome)
}
