//! `up`: read what exists, plan, and carry the plan out, independent chains side by side.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tokendeploy_package::Artifact;

use crate::aws::Aws;
use crate::desired::{Desired, FunctionEnvironment, invoke_url};
use crate::error::{PackageFailed, Result};
use crate::plan::Plan;
use crate::resources::rest_api::{self, ApiState, methods, resource, stage};
use crate::resources::{function, log_group, permission, role};
use crate::snapshot::{self, Snapshot};
use crate::stack::{STAGE, Stack};
use crate::steps::run_step;
use crate::vocabulary::{Action, Planned, Progress, Step, StepReport};

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
    pub snapshot: Snapshot,
    pub artifact: Artifact,
    pub plan: Plan,
    pub package_report: StepReport,
}

/// Checks the credentials, then packages the code (on a blocking thread) while reading the
/// stack, and plans. `environment` gives the wanted variables, knowing what exists.
pub async fn prepare(
    aws: &Aws,
    stack: &Stack,
    environment: impl FnOnce(&Snapshot) -> FunctionEnvironment,
    package: impl FnOnce() -> anyhow::Result<Artifact> + Send + 'static,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let account = aws.account_id().await?;
    progress.started(Step::Package);
    let packaging = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        package().map(|artifact| (artifact, started.elapsed()))
    });
    let (packaged, snapshot) = tokio::join!(packaging, snapshot::read(aws, stack));
    let (artifact, package_time) =
        packaged.context("the packaging thread failed")?.map_err(|e| anyhow::Error::new(PackageFailed(e)))?;
    let snapshot = snapshot?;
    let environment = environment(&snapshot);
    let desired =
        Desired { stack: stack.clone(), account, code_sha256: artifact.code_sha256.clone(), environment };
    let plan = Plan::new(&desired, &snapshot);
    let package_report = StepReport::new(Step::Package, plan.code.action(), package_time);
    Ok(Prepared { desired, snapshot, artifact, plan, package_report })
}

/// Brings the stack to the plan. Safe to run again at any point: a second run finishes what
/// an interrupted one started, and changes nothing when nothing changed.
pub async fn up(
    aws: &Aws,
    stack: &Stack,
    environment: FunctionEnvironment,
    package: impl FnOnce() -> anyhow::Result<Artifact> + Send + 'static,
    progress: &dyn Progress,
) -> Result<UpReport> {
    let prepared = prepare(aws, stack, |_| environment, package, progress).await?;
    prepared.snapshot.refuse_foreign(stack)?;
    progress.finished(&prepared.package_report);
    Ok(carry_out(aws, &prepared, progress).await?)
}

async fn carry_out(aws: &Aws, prepared: &Prepared, progress: &dyn Progress) -> anyhow::Result<UpReport> {
    let Prepared { desired, snapshot, artifact, plan, package_report } = prepared;
    let stack = &desired.stack;
    // Role -> log group -> function -> environment beside the API chain: the API needs only
    // the function's ARN, which is known before the function exists.
    let (function_chain, api_chain) = (
        function_chain(aws, desired, plan, &artifact.bytes, progress),
        api_chain(aws, desired, plan, snapshot.api.ours(), progress),
    );
    let ((role_arn, function_arn, function_reports), (api_id, api_reports)) =
        tokio::try_join!(function_chain, api_chain)?;

    let change = &plan.permission;
    let grant = permission::apply(aws, desired, change, &api_id, progress);
    let ((), permission_report) = run_step(progress, Step::Permission, change.action(), grant).await?;

    let mut steps: Vec<StepReport> = [package_report.clone(), permission_report]
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

/// Role, log group, function, environment; returns the role's and the function's ARNs.
async fn function_chain(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    zip: &[u8],
    progress: &dyn Progress,
) -> anyhow::Result<(String, String, [StepReport; 4])> {
    let stack = &desired.stack;
    let (role_arn, role_report) =
        run_step(progress, Step::Role, plan.role.action(), role::apply(aws, stack, &plan.role)).await?;
    let logs = log_group::apply(aws, stack, &plan.log_group);
    let ((), logs_report) = run_step(progress, Step::LogGroup, plan.log_group.action(), logs).await?;
    let function = function::apply_function(aws, desired, &plan.function, zip, progress);
    let ((function_arn, adopted), function_report) =
        run_step(progress, Step::Function, plan.function.action(), function).await?;
    // A function a twin run made carries that run's variables: plan them against ours again.
    let replanned = adopted.map(|adopted| function::plan_environment(desired, Some(&adopted)));
    let environment = replanned.as_ref().unwrap_or(&plan.environment);
    let set = function::apply_environment(aws, desired, environment, progress);
    let ((), environment_report) = run_step(progress, Step::Environment, environment.action(), set).await?;
    Ok((role_arn, function_arn, [role_report, logs_report, function_report, environment_report]))
}

/// REST API, `{proxy+}`, methods, integrations, stage; returns the API's id.
async fn api_chain(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    observed: Option<&ApiState>,
    progress: &dyn Progress,
) -> anyhow::Result<(String, [StepReport; 5])> {
    let change = &plan.api.api;
    let made = rest_api::apply(aws, &desired.stack, change, observed, progress);
    let (current, api_report) = run_step(progress, Step::RestApi, change.action(), made).await?;
    // Made now, or finished by another run meanwhile: plan its parts from what is there.
    let api_changes = change.action() != Action::Unchanged;
    let replanned =
        (Some(&current) != observed).then(|| rest_api::plan_parts(desired, Some(&current), api_changes));
    let parts = replanned.as_ref().unwrap_or(&plan.api.parts);
    let api_id = current.id.as_str();

    let proxy = resource::apply(aws, api_id, &current.resources, &parts.resources, progress);
    let (proxy_id, proxy_report) =
        run_step(progress, Step::ProxyResource, parts.resources.action(), proxy).await?;
    let put = methods::apply(aws, api_id, &proxy_id, &parts.methods, progress);
    let ((), methods_report) = run_step(progress, Step::Methods, parts.methods.action(), put).await?;
    let integrate =
        methods::apply_integrations(aws, desired, api_id, &proxy_id, &parts.integrations, progress);
    let ((), integrations_report) =
        run_step(progress, Step::Integrations, parts.integrations.action(), integrate).await?;
    let deploy = stage::apply(aws, desired, api_id, &parts.stage, progress);
    let ((), stage_report) = run_step(progress, Step::Deployment, parts.stage.action(), deploy).await?;
    Ok((current.id.clone(), [api_report, proxy_report, methods_report, integrations_report, stage_report]))
}
