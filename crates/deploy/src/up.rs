//! `up`: read what exists, plan, and carry the plan out, independent chains side by side.

use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use tokendeploy_package::Artifact;

use crate::aws::Aws;
use crate::desired::{Desired, FunctionEnvironment, invoke_url};
use crate::plan::{Observed, Plan, Step};
use crate::progress::{Progress, StepReport, run_step};
use crate::resources::{function, permission, rest_api, role};
use crate::stack::{STAGE, Stack};

/// What `up --output json` prints. Field names are a stable interface: add, never rename.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub name: String,
    pub region: String,
    pub account: String,
    pub role_arn: String,
    pub function_arn: String,
    pub code_sha256: String,
    pub api_id: String,
    pub stage: String,
    pub invoke_url: String,
    pub steps: Vec<StepReport>,
}

/// Everything `up` and `plan` know before changing anything.
pub struct Prepared {
    pub desired: Desired,
    pub observed: Observed,
    pub artifact: Artifact,
    pub plan: Plan,
    package_seconds: f64,
}

/// Reads every resource of the stack at once. Changes nothing; refuses foreign resources.
pub async fn observe(aws: &Aws, stack: &Stack) -> Result<Observed> {
    let (role, function, api, permissions) = tokio::try_join!(
        role::find(aws, stack),
        function::find(aws, stack),
        rest_api::find(aws, stack),
        permission::find(aws, stack),
    )?;
    Ok(Observed {
        role,
        function,
        api,
        permissions,
    })
}

/// Checks the credentials, then packages the code (on a blocking thread) while reading the
/// stack, and plans.
pub async fn prepare(
    aws: &Aws,
    stack: &Stack,
    environment: FunctionEnvironment,
    package: impl FnOnce() -> Result<Artifact> + Send + 'static,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let account = aws.account_id().await?;
    progress.started(Step::Package);
    let packaging = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        package().map(|artifact| (artifact, started.elapsed().as_secs_f64()))
    });
    let (packaged, observed) = tokio::join!(packaging, observe(aws, stack));
    let (artifact, package_seconds) = packaged.context("the packaging thread failed")??;
    let observed = observed?;
    let desired = Desired {
        stack: stack.clone(),
        account,
        code_sha256: artifact.code_sha256.clone(),
        environment,
    };
    let plan = Plan::new(&desired, &observed);
    Ok(Prepared {
        desired,
        observed,
        artifact,
        plan,
        package_seconds,
    })
}

/// Brings the stack to the plan. Safe to run again at any point: a second run finishes what
/// an interrupted one started, and changes nothing when nothing changed.
pub async fn up(
    aws: &Aws,
    stack: &Stack,
    environment: FunctionEnvironment,
    package: impl FnOnce() -> Result<Artifact> + Send + 'static,
    progress: &dyn Progress,
) -> Result<UpReport> {
    let Prepared {
        desired,
        observed,
        artifact,
        plan,
        package_seconds,
    } = prepare(aws, stack, environment, package, progress).await?;
    let package_report = StepReport {
        step: Step::Package,
        action: plan.action(Step::Package),
        seconds: (package_seconds * 1000.0).round() / 1000.0,
    };
    progress.finished(&package_report);

    // Role -> function -> environment beside the API chain: the API needs only the function's
    // ARN, which is known before the function exists.
    let function_chain = async {
        let (role_arn, role_report) = run_step(progress, Step::Role, plan.action(Step::Role), {
            role::apply(aws, stack, plan.action(Step::Role), observed.role.as_ref())
        })
        .await?;
        let (function_arn, function_report) =
            run_step(progress, Step::Function, plan.action(Step::Function), {
                let action = plan.action(Step::Function);
                function::apply_function(
                    aws,
                    &desired,
                    action,
                    observed.function.as_ref(),
                    &artifact.bytes,
                    progress,
                )
            })
            .await?;
        let ((), environment_report) = run_step(
            progress,
            Step::Environment,
            plan.action(Step::Environment),
            {
                let action = plan.action(Step::Environment);
                function::apply_environment(
                    aws,
                    &desired,
                    action,
                    observed.function.as_ref(),
                    progress,
                )
            },
        )
        .await?;
        anyhow::Ok((
            role_arn,
            function_arn,
            [role_report, function_report, environment_report],
        ))
    };
    let api_chain = rest_api::apply(aws, &desired, &plan, observed.api.as_ref(), progress);
    let ((role_arn, function_arn, function_reports), (api_id, api_reports)) =
        tokio::try_join!(function_chain, api_chain)?;

    let ((), permission_report) =
        run_step(progress, Step::Permission, plan.action(Step::Permission), {
            permission::apply(
                aws,
                &desired,
                plan.action(Step::Permission),
                &api_id,
                &observed.permissions,
            )
        })
        .await?;

    let mut steps: Vec<StepReport> = [package_report, permission_report]
        .into_iter()
        .chain(function_reports)
        .chain(api_reports)
        .collect();
    steps.sort_by_key(|report| report.step);
    Ok(UpReport {
        name: stack.name.clone(),
        region: stack.region.clone(),
        account: desired.account.clone(),
        role_arn,
        function_arn,
        code_sha256: artifact.code_sha256.clone(),
        invoke_url: invoke_url(&api_id, &stack.region),
        api_id,
        stage: STAGE.to_string(),
        steps,
    })
}
