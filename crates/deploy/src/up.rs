//! `up`: read what exists, plan, and carry the plan out, independent chains side by side.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tokendeploy_package::Artifact;
use tokio::sync::oneshot;

use crate::aws::Aws;
use crate::desired::{Desired, FunctionEnvironment, invoke_url};
use crate::error::{PackageFailed, Result};
use crate::plan::Plan;
use crate::resources::rest_api::{self, ApiState, Settle, methods, resource, stage};
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
    progress.started(Step::Package);
    let packaging = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        package().map(|artifact| (artifact, started.elapsed()))
    });
    // The credentials check, the packaging and the reads side by side; the check's failure
    // speaks first (it says best what is wrong: the endpoint, the credentials) and stops the
    // rest at once.
    let reads = async { tokio::join!(packaging, snapshot::read(aws, stack)) };
    let account = aws.account_id();
    tokio::pin!(reads, account);
    let (account, (packaged, snapshot)) = tokio::select! {
        account = &mut account => (account?, reads.await),
        read = &mut reads => (account.await?, read),
    };
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
    // The function chain and the API chain side by side: the API needs only the function's
    // ARN, known before the function exists. They meet twice: a new API waits to learn whether
    // this run made the role (then no twin run can be making the stack), and the permission
    // waits for the API's id.
    let (claim, claimed) = oneshot::channel();
    let (api_known, api_id) = oneshot::channel();
    let function_chain =
        Box::pin(function_chain(aws, desired, plan, &artifact.bytes, progress, claim, api_id));
    let api_chain =
        Box::pin(api_chain(aws, desired, plan, snapshot.api.ours(), progress, claimed, api_known));
    let ((role_arn, function_arn, function_reports), (api_id, api_reports)) =
        tokio::try_join!(function_chain, api_chain)?;

    let mut steps: Vec<StepReport> =
        std::iter::once(package_report.clone()).chain(function_reports).chain(api_reports).collect();
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

/// Role, then function, then its environment, beside the log group (needed only once the
/// function runs); then, once the API's id is known, the invoke permission. Returns the
/// role's and the function's ARNs. `claim` is told which run made the role, when this run
/// tried to make it.
async fn function_chain(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    zip: &[u8],
    progress: &dyn Progress,
    claim: oneshot::Sender<Option<String>>,
    api_id: oneshot::Receiver<String>,
) -> anyhow::Result<(String, String, [StepReport; 5])> {
    let stack = &desired.stack;
    let function = async {
        let role = role::apply(aws, stack, &plan.role, |made_by| {
            let _ = claim.send(made_by);
        });
        let (role_arn, role_report) = run_step(progress, Step::Role, plan.role.action(), role).await?;
        let function = function::apply_function(aws, desired, &plan.function, zip, progress);
        let ((function_arn, adopted), function_report) =
            run_step(progress, Step::Function, plan.function.action(), function).await?;
        // A function a twin run made carries that run's variables: plan them against ours again.
        let replanned = adopted.map(|adopted| function::plan_environment(desired, Some(&adopted)));
        let environment = replanned.as_ref().unwrap_or(&plan.environment);
        let set = function::apply_environment(aws, desired, environment, progress);
        let ((), environment_report) =
            run_step(progress, Step::Environment, environment.action(), set).await?;
        // No id: the API chain failed, and its error is the one to tell.
        let api_id = api_id.await.context("the REST API was not made")?;
        let change = &plan.permission;
        let grant = permission::apply(aws, desired, change, &api_id, progress);
        let ((), permission_report) = run_step(progress, Step::Permission, change.action(), grant).await?;
        let reports = [role_report, function_report, environment_report, permission_report];
        anyhow::Ok((role_arn, function_arn, reports))
    };
    let logs = log_group::apply(aws, stack, &plan.log_group);
    let logs = run_step(progress, Step::LogGroup, plan.log_group.action(), logs);
    let ((role_arn, function_arn, [role, function, environment, permission]), ((), logs)) =
        tokio::try_join!(Box::pin(function), Box::pin(logs))?;
    Ok((role_arn, function_arn, [role, logs, function, environment, permission]))
}

/// REST API, `{proxy+}`, methods, integrations, stage; returns the API's id, told to
/// `api_known` as soon as it is settled. A new API is built while this run settles with any
/// twin run that may have made one at the same moment (the REST API step lasts until then).
async fn api_chain(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    observed: Option<&ApiState>,
    progress: &dyn Progress,
    claimed: oneshot::Receiver<Option<String>>,
    api_known: oneshot::Sender<String>,
) -> anyhow::Result<(String, [StepReport; 5])> {
    let change = &plan.api.api;
    let (found, to_build) = oneshot::channel();
    let api_step = run_step(progress, Step::RestApi, change.action(), async {
        // Told only when this run tried to make the role: otherwise no run claimed the stack.
        let role_maker = async { claimed.await.ok().flatten() };
        let (current, settle) =
            rest_api::apply(aws, &desired.stack, change, observed, role_maker, progress).await?;
        let _ = found.send(current.clone());
        if settle == Settle::WithTwins {
            rest_api::settle(aws, &desired.stack, &current.id, progress).await?;
        }
        let _ = api_known.send(current.id.clone());
        Ok(current)
    });
    let parts = async {
        // No API: the REST API step failed, and its error is the one to tell.
        let Ok(current) = to_build.await else { return Ok(None) };
        build_parts(aws, desired, plan, observed, &current, progress).await.map(Some)
    };
    let ((current, api_report), parts) = tokio::try_join!(Box::pin(api_step), Box::pin(parts))?;
    let [proxy, methods, integrations, stage] = parts.context("the REST API's parts were not built")?;
    Ok((current.id, [api_report, proxy, methods, integrations, stage]))
}

/// The API's parts, in order: `{proxy+}`, methods, integrations, stage.
async fn build_parts(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    observed: Option<&ApiState>,
    current: &ApiState,
    progress: &dyn Progress,
) -> anyhow::Result<[StepReport; 4]> {
    // Made now, or finished by another run meanwhile: plan its parts from what is there.
    let api_changes = plan.api.api.action() != Action::Unchanged;
    let replanned =
        (Some(current) != observed).then(|| rest_api::plan_parts(desired, Some(current), api_changes));
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
    Ok([proxy_report, methods_report, integrations_report, stage_report])
}
