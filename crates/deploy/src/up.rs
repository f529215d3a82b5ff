//! `up`: read what exists, plan, and carry the plan out, independent chains side by side.

use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use tokendeploy_package::Artifact;

use crate::aws::Aws;
use crate::desired::{Desired, FunctionEnvironment, invoke_url};
use crate::plan::{Observed, Plan, Step};
use crate::progress::{Progress, StepReport, run_step};
use crate::resources::{function, log_group, permission, rest_api, role};
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

/// Everything `up`, `plan` and `status` know before changing anything.
pub struct Prepared {
    pub desired: Desired,
    pub observed: Observed,
    pub artifact: Artifact,
    pub plan: Plan,
    pub package_report: StepReport,
}

/// Reads every resource of the stack at once. Changes nothing; refuses foreign resources.
pub async fn observe(aws: &Aws, stack: &Stack) -> Result<Observed> {
    let function_and_logs = async {
        let function =
            function::find(aws, stack).await?.ours_or_refuse(function::KIND, stack.function_name(), stack)?;
        let log_group = log_group::find(aws, stack, function.is_some()).await?;
        let log_group = log_group.ours_or_refuse(log_group::KIND, &stack.log_group_name(), stack)?;
        anyhow::Ok((function, log_group))
    };
    let role = async { role::find(aws, stack).await?.ours_or_refuse(role::KIND, &stack.role_name(), stack) };
    let (role, (function, log_group), api, permissions) =
        tokio::try_join!(role, function_and_logs, rest_api::find(aws, stack), permission::find(aws, stack),)?;
    Ok(Observed { role, log_group, function, api, permissions })
}

/// Checks the credentials, then packages the code (on a blocking thread) while reading the
/// stack, and plans. `environment` gives the wanted variables, knowing what exists.
pub async fn prepare(
    aws: &Aws,
    stack: &Stack,
    environment: impl FnOnce(&Observed) -> FunctionEnvironment,
    package: impl FnOnce() -> Result<Artifact> + Send + 'static,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let account = aws.account_id().await?;
    progress.started(Step::Package);
    let packaging = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        package().map(|artifact| (artifact, started.elapsed()))
    });
    let (packaged, observed) = tokio::join!(packaging, observe(aws, stack));
    let (artifact, package_time) = packaged.context("the packaging thread failed")??;
    let observed = observed?;
    let environment = environment(&observed);
    let desired =
        Desired { stack: stack.clone(), account, code_sha256: artifact.code_sha256.clone(), environment };
    let plan = Plan::new(&desired, &observed);
    let package_report = StepReport::new(Step::Package, plan.action(Step::Package), package_time);
    Ok(Prepared { desired, observed, artifact, plan, package_report })
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
    let Prepared { desired, observed, artifact, plan, package_report } =
        prepare(aws, stack, |_| environment, package, progress).await?;
    progress.finished(&package_report);

    // Role -> log group -> function -> environment beside the API chain: the API needs only
    // the function's ARN, which is known before the function exists.
    let action = |step| plan.action(step);
    let function_chain = async {
        let role = observed.role.as_ref();
        let (role_arn, role_report) = run_step(
            progress,
            Step::Role,
            action(Step::Role),
            role::apply(aws, stack, action(Step::Role), role),
        )
        .await?;
        let logs = observed.log_group.as_ref();
        let ((), logs_report) = run_step(
            progress,
            Step::LogGroup,
            action(Step::LogGroup),
            log_group::apply(aws, stack, action(Step::LogGroup), logs),
        )
        .await?;
        let function = observed.function.as_ref();
        let ((function_arn, adopted), function_report) = run_step(
            progress,
            Step::Function,
            action(Step::Function),
            function::apply_function(
                aws,
                &desired,
                action(Step::Function),
                function,
                &artifact.bytes,
                progress,
            ),
        )
        .await?;
        // A function a twin run made carries that run's variables: compare them with ours.
        let (function, environment_action) = match &adopted {
            Some(adopted) => (Some(adopted), function::plan_environment(&desired, Some(adopted)).action),
            None => (function, action(Step::Environment)),
        };
        let ((), environment_report) = run_step(
            progress,
            Step::Environment,
            environment_action,
            function::apply_environment(aws, &desired, environment_action, function, progress),
        )
        .await?;
        anyhow::Ok((role_arn, function_arn, [role_report, logs_report, function_report, environment_report]))
    };
    let api_chain = rest_api::apply(aws, &desired, &plan, observed.api.as_ref(), progress);
    let ((role_arn, function_arn, function_reports), (api_id, api_reports)) =
        tokio::try_join!(function_chain, api_chain)?;

    let ((), permission_report) = run_step(progress, Step::Permission, plan.action(Step::Permission), {
        permission::apply(
            aws,
            &desired,
            plan.action(Step::Permission),
            &api_id,
            &observed.permissions,
            progress,
        )
    })
    .await?;

    let mut steps: Vec<StepReport> =
        [package_report, permission_report].into_iter().chain(function_reports).chain(api_reports).collect();
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
