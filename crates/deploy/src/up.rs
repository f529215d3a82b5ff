//! `up`: read what exists, plan, and carry the plan out, independent chains side by side.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tokendeploy_config::SECRET_ARN;
use tokendeploy_config::origins::AllowedOrigins;
use tokendeploy_package::Artifact;
use tokio::sync::oneshot;

use crate::agreement::{self, Sides};
use crate::aws::{APIGATEWAY_NOT_FOUND, Aws};
use crate::desired::{Desired, FunctionEnvironment, Gateway, Security, aws_invoke_url, invoke_url};
use crate::error::{AwsCallFailed, ConcurrentRun, PackageFailed, Result};
use crate::plan::Plan;
use crate::resources::http_api::{self, HttpApiState};
use crate::resources::rest_api::{
    self, ApiChange, ApiState, PartsPlan, Settle,
    api_key::{self, KeptKey},
    gateway_responses, methods, resource, stage,
    usage_plan::{self, UsagePlanChange},
};
use crate::resources::secret_access::{self, SecretAccessChange};
use crate::resources::{function, function_url, log_group, permission, role, secret};
use crate::serving::{self, Probed};
use crate::snapshot::{self, Snapshot};
use crate::stack::{STAGE, Stack};
use crate::steps::run_step;
use crate::twins::{self, Gateway as _, MadeTwice as _};
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
    /// `x86_64` or `arm64`, as Lambda's `Architectures` names it.
    pub architecture: String,
    /// `rest`, `http` or `url`, as `--gateway` names it.
    pub gateway: &'static str,
    /// The API's id and stage (with `--gateway rest`, `prod`; with `--gateway http`, `$default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The function URL as Lambda gives it (with `--gateway url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_url: Option<String>,
    /// The URL that answers token requests: with an endpoint override, the emulator's.
    pub invoke_url: String,
    /// AWS's own URL for token requests (the same as `invoke_url` without an override).
    pub aws_invoke_url: String,
    /// With `--secret-store secrets-manager`: the secret the function reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// With `--api-key`: the key's id (its value is shown only when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// The key's value: set by the caller, only when the user asked to see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// With `up --verify`: whether the stack answers, set by the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::VerifyReport>,
    /// What the user should know beyond the steps: a twin run's key kept instead of this
    /// run's. Printed on stderr as well.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
    security: Security,
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
    let secret_arn = snapshot.secret.ours().map(|secret| secret.arn.as_str());
    let desired = Desired::new(stack.clone(), account, &artifact, environment, security, secret_arn);
    let plan = Plan::new(&desired, &snapshot);
    let package_report = StepReport::new(Step::Package, &plan.code.summary(), package_time);
    Ok(Prepared { desired, snapshot, artifact, plan, package_report })
}

/// Brings the stack to the plan. Safe to run again at any point: a second run finishes what
/// an interrupted one started, and changes nothing when nothing changed.
pub async fn up(
    aws: &Aws,
    stack: &Stack,
    environment: FunctionEnvironment,
    security: Security,
    package: impl FnOnce() -> anyhow::Result<Artifact> + Send + 'static,
    progress: &dyn Progress,
) -> Result<UpReport> {
    let prepared = prepare(aws, stack, |_| environment, security, package, progress).await?;
    prepared.snapshot.refuse_foreign(stack, prepared.desired.secret.is_some())?;
    progress.finished(&prepared.package_report);
    // Boxed, here and below: the chains' state is large, and a future this deep would
    // otherwise sit on the caller's stack (a test thread has 2 MB).
    let report = Box::pin(carry_out(aws, &prepared, progress)).await?;
    if !agreement::at_stake(&prepared.desired, &prepared.plan) {
        return Ok(report);
    }
    Ok(Box::pin(until_agreed(aws, prepared, report, progress)).await?)
}

/// How many times a run brings a stack that disagrees with itself to its own settings before
/// it gives up: each time, a twin run with other settings undid it meanwhile.
const AGREEMENT_ROUNDS: usize = 3;

/// Reads again what must agree ([`agreement`]), once this run's changes are done. Agreeing and
/// as wanted: done. Agreeing with a twin run's settings: the stack works, and this run stops
/// saying so. Disagreeing: a twin run set it apart meanwhile, and this run plans again and
/// carries its plan out again.
async fn until_agreed(
    aws: &Aws,
    mut prepared: Prepared,
    mut report: UpReport,
    progress: &dyn Progress,
) -> anyhow::Result<UpReport> {
    let stack = prepared.desired.stack.clone();
    for _ in 0..AGREEMENT_ROUNDS {
        let sides = Sides::read(aws, &stack, report.api_id.as_deref()).await?;
        let broken = sides.disagreements();
        if broken.is_empty() {
            let changed = sides.differences(&prepared.desired);
            return match changed.is_empty() {
                true => Ok(report),
                false => Err(ConcurrentRun::ChangedSettings { stack: stack.name.clone(), changed }.into()),
            };
        }
        progress.note(
            Step::Permission,
            &format!(
                "another run of this stack changed it meanwhile ({}): planning again",
                broken.join("; ")
            ),
        );
        prepared = replan(aws, &prepared).await?;
        let again = Box::pin(carry_out(aws, &prepared, progress)).await?;
        report = report.followed_by(again);
    }
    let sides = Sides::read(aws, &stack, report.api_id.as_deref()).await?;
    let (broken, changed) = (sides.disagreements(), sides.differences(&prepared.desired));
    match (broken.is_empty(), changed.is_empty()) {
        (true, true) => Ok(report),
        (true, false) => Err(ConcurrentRun::ChangedSettings { stack: stack.name, changed }.into()),
        (false, _) => Err(ConcurrentRun::KeptDisagreeing { stack: stack.name, broken }.into()),
    }
}

/// Reads the stack again and plans for the same wants, as [`prepare`] does, without
/// packaging again (the code is uploaded by now).
async fn replan(aws: &Aws, prepared: &Prepared) -> Result<Prepared> {
    let stack = &prepared.desired.stack;
    let snapshot = snapshot::read(aws, stack).await?;
    snapshot.refuse_foreign(stack, prepared.desired.secret.is_some())?;
    let desired =
        prepared.desired.with_found_secret(snapshot.secret.ours().map(|secret| secret.arn.as_str()));
    let plan = Plan::new(&desired, &snapshot);
    let (artifact, package_report) = (prepared.artifact.clone(), prepared.package_report.clone());
    Ok(Prepared { desired, snapshot, artifact, plan, package_report })
}

impl UpReport {
    /// This report, with what a following round of the same run did: its ids, and each step
    /// it changed.
    fn followed_by(self, again: UpReport) -> UpReport {
        let mut steps = self.steps;
        for report in again.steps.iter().filter(|report| report.action != Action::Unchanged) {
            match steps.iter_mut().find(|first| first.step == report.step) {
                Some(first) => *first = report.clone(),
                None => steps.push(report.clone()),
            }
        }
        let notes = self.notes.into_iter().chain(again.notes.iter().cloned()).collect();
        UpReport { steps, notes, ..again }
    }
}

async fn carry_out(aws: &Aws, prepared: &Prepared, progress: &dyn Progress) -> anyhow::Result<UpReport> {
    let Prepared { desired, artifact, package_report, .. } = prepared;
    let stack = &desired.stack;
    // The function chain and the gateway's side by side. A REST API needs only the function's
    // ARN, known before the function exists; the two chains meet twice: a new API waits to
    // learn whether this run made the role (then no twin run can be making the stack), and
    // the permission waits for the API's id. An HTTP API needs the ARN only too; a function URL
    // is made once the function is.
    let (claim, claimed) = oneshot::channel();
    let (gateway_known, gateway_id) = oneshot::channel();
    let function_chain =
        Box::pin(function_chain(aws, prepared, &artifact.bytes, progress, claim, gateway_id));
    let (function_side, gateway_side) = match desired.gateway() {
        Gateway::Rest => {
            let api_chain = Box::pin(api_chain(aws, prepared, progress, claimed, gateway_known));
            let (function_side, api_side) = tokio::try_join!(function_chain, api_chain)?;
            (function_side, api_side)
        }
        Gateway::Http => {
            let http_chain = Box::pin(http_chain(aws, prepared, progress, claimed, gateway_known));
            tokio::try_join!(function_chain, http_chain)?
        }
        Gateway::Url => {
            let _ = gateway_known.send(None);
            let function_side = function_chain.await?;
            (function_side, Box::pin(url_side(aws, prepared, progress)).await?)
        }
    };
    let skipped = skip_other_gateways(progress, prepared).await?;
    let GatewaySide { api_id, http_api, function_url, key, reports: gateway_reports } = gateway_side;
    let endpoint = aws.endpoint_url.as_deref();
    let (invoke_url, aws_invoke_url) = match (&api_id, &http_api, &function_url) {
        (_, Some(api), _) => (http_api::token_url(api, endpoint), http_api::token_url(api, None)),
        (Some(api_id), None, _) => (invoke_url(api_id, stack, endpoint), aws_invoke_url(api_id, stack)),
        (None, None, Some(url)) => {
            (function_url::token_url(url, endpoint), function_url::token_url(url, None))
        }
        (None, None, None) => anyhow::bail!("the gateway gave no URL"),
    };
    // The new gateway serves: what served before goes.
    if prepared.plan.retires_a_gateway() {
        let made = api_id.as_deref().or(http_api.as_ref().map(|api| api.id.as_str()));
        await_new_gateway(aws, desired, &invoke_url, made.or(function_url.as_deref()), progress).await?;
    }
    let retired = Box::pin(retire_other_gateways(aws, prepared, progress)).await?;
    let FunctionSide { role_arn, function_arn, secret_arn, reports: function_reports } = function_side;
    let (api_key_id, notes) = match key {
        Some(KeptKey { id, twin }) => (Some(id), twin.into_iter().collect()),
        None => (None, vec![]),
    };

    let mut steps: Vec<StepReport> = std::iter::once(package_report.clone())
        .chain(function_reports)
        .chain(gateway_reports)
        .chain(skipped)
        .chain(retired)
        .collect();
    steps.sort_by_key(|report| report.step);
    let stage = match desired.gateway() {
        Gateway::Rest => Some(STAGE),
        Gateway::Http => Some(http_api::STAGE),
        Gateway::Url => None,
    };
    Ok(UpReport {
        name: stack.name.clone(),
        region: stack.region.clone(),
        account: desired.account.clone(),
        role_arn,
        function_arn,
        code_sha256: artifact.code_sha256.clone(),
        architecture: artifact.arch.lambda_name().to_string(),
        gateway: desired.gateway().name(),
        stage: stage.map(str::to_string),
        api_id,
        function_url,
        invoke_url,
        aws_invoke_url,
        secret_arn,
        api_key_id,
        api_key: None,
        verify: None,
        notes,
        steps,
    })
}

/// Waits for the gateway just made (`made`: its id, or the function URL) to answer through
/// `url` before the one it replaces goes ([`serving`]). One another run removed meanwhile
/// stops this run, as [`twins::settle`] does.
async fn await_new_gateway(
    aws: &Aws,
    desired: &Desired,
    url: &str,
    made: Option<&str>,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let stack = &desired.stack;
    let gateway = desired.gateway();
    let made = made.context("the new gateway has no id")?;
    let (kind, step) = match gateway {
        Gateway::Rest => (rest_api::KIND, Step::RestApi),
        Gateway::Http => (http_api::KIND, Step::HttpApi),
        Gateway::Url => (function_url::KIND, Step::FunctionUrl),
    };
    progress.note(step, &format!("asking {url} before the gateway it replaces goes"));
    let still_there = || async move {
        anyhow::Ok(match gateway {
            Gateway::Rest => rest_api::RestApis::list(aws, stack).await?.iter().any(|api| api.id() == made),
            Gateway::Http => http_api::HttpApis::list(aws, stack).await?.iter().any(|api| api.id == made),
            Gateway::Url => function_url::find(aws, stack).await?.is_some(),
        })
    };
    let origins = desired.environment.variables.get("ALLOWED_ORIGINS");
    let origin = crate::verify::origin_to_ask(origins.and_then(|o| AllowedOrigins::parse(o)).as_ref());
    match serving::await_serving(gateway, url, &origin, serving::WAIT, still_there).await? {
        Probed::Serves => Ok(()),
        Probed::Gone => {
            let (stack, id) = (stack.name.clone(), made.to_string());
            Err(ConcurrentRun::RemovedGateway { stack, kind, id }.into())
        }
    }
}

/// What the gateway's side made: a REST API (and its key), an HTTP API or a function URL.
struct GatewaySide {
    api_id: Option<String>,
    http_api: Option<HttpApiState>,
    function_url: Option<String>,
    key: Option<KeptKey>,
    reports: Vec<StepReport>,
}

/// A step with nothing to do in this stack, told as such ("not asked for").
async fn skipped(progress: &dyn Progress, step: Step, plan: &Plan) -> anyhow::Result<StepReport> {
    Ok(run_step(progress, step, plan.summary(step), async { Ok(()) }).await?.1)
}

/// The function URL and the reserved concurrency, once the function exists; the REST API's
/// steps are not asked for.
async fn url_side(aws: &Aws, prepared: &Prepared, progress: &dyn Progress) -> anyhow::Result<GatewaySide> {
    let Prepared { desired, plan, snapshot, .. } = prepared;
    let change = &plan.function_url;
    let apply = function_url::apply(aws, desired, change, snapshot.function_url.as_ref(), progress);
    let (url, report) = run_step(progress, Step::FunctionUrl, change.summary(), apply).await?;
    let url = url.context("Lambda gave no function URL")?;
    Ok(GatewaySide {
        api_id: None,
        http_api: None,
        function_url: Some(url),
        key: None,
        reports: vec![report],
    })
}

/// The HTTP API, then its routes beside its stage; its id told to `api_known` once it is
/// there (made now, and settled with any twin run that made one at the same moment).
async fn http_chain(
    aws: &Aws,
    prepared: &Prepared,
    progress: &dyn Progress,
    claimed: oneshot::Receiver<Option<String>>,
    api_known: oneshot::Sender<Option<String>>,
) -> anyhow::Result<GatewaySide> {
    let Prepared { desired, plan, snapshot, .. } = prepared;
    let observed = snapshot.http_api.as_ref();
    let change = &plan.http_api.api;
    let role_maker = role_maker(snapshot, claimed);
    let apply = http_api::apply(aws, desired, change, observed, role_maker, progress);
    let (current, api_report) = run_step(progress, Step::HttpApi, change.summary(), apply).await?;
    let _ = api_known.send(Some(current.id.clone()));
    // Made now: its parts are planned against what is there.
    let replanned = (Some(&current) != observed).then(|| http_api::plan_parts(desired, Some(&current)));
    let (routes, stage) = replanned.as_ref().or(plan.http_api.parts.as_ref()).context("no parts planned")?;
    let set_routes = http_api::apply_routes(aws, desired, &current.id, routes);
    let set_stage = http_api::apply_stage(aws, desired, &current.id, stage);
    let parts = tokio::try_join!(
        run_step(progress, Step::HttpRoutes, routes.summary(), set_routes),
        run_step(progress, Step::HttpStage, stage.summary(), set_stage),
    );
    let (((), routes_report), ((), stage_report)) = match parts {
        // Gone under this run: a twin kept another copy and removed this one.
        Err(error) if AwsCallFailed::answered(&error, APIGATEWAY_NOT_FOUND) => {
            let (stack, id) = (desired.stack.name.clone(), current.id.clone());
            return Err(ConcurrentRun::RemovedFoundGateway { stack, kind: http_api::KIND, id }.into());
        }
        parts => parts?,
    };
    let reports = vec![api_report, routes_report, stage_report];
    Ok(GatewaySide {
        api_id: Some(current.id.clone()),
        http_api: Some(current),
        function_url: None,
        key: None,
        reports,
    })
}

/// The run that made the role: told by the function chain when this run tried to make it;
/// else the run found to have made it moments ago (it may be building the stack now).
async fn role_maker(snapshot: &Snapshot, claimed: oneshot::Receiver<Option<String>>) -> Option<String> {
    let found_maker = snapshot.role.ours().and_then(|role| role.maker_at_work()).map(str::to_string);
    claimed.await.ok().flatten().or(found_maker)
}

/// The parts of the gateways not asked for, told as such (their objects are told of once what
/// served before is removed, [`retire_other_gateways`]).
async fn skip_other_gateways(
    progress: &dyn Progress,
    prepared: &Prepared,
) -> anyhow::Result<Vec<StepReport>> {
    let gateway = prepared.desired.gateway();
    let rest_parts = rest_api::STEPS.into_iter().filter(|step| *step != Step::RestApi);
    let rest_parts = rest_parts.filter(|_| gateway != Gateway::Rest);
    let http_parts = [Step::HttpRoutes, Step::HttpStage].into_iter().filter(|_| gateway != Gateway::Http);
    let mut reports = Vec::new();
    for step in rest_parts.chain(http_parts) {
        reports.push(skipped(progress, step, &prepared.plan).await?);
    }
    Ok(reports)
}

/// Removes what served the stack before and is no longer asked for, now that the gateway
/// asked for serves: a function URL (and the concurrency reserved for it), or the REST APIs
/// with their usage plans and keys (plans first: API Gateway will not delete an API a plan
/// binds); then the old gateway's invoke permissions. Each step not to do is told so.
async fn retire_other_gateways(
    aws: &Aws,
    prepared: &Prepared,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<StepReport>> {
    let Prepared { desired, plan, .. } = prepared;
    let stack = &desired.stack;
    let gateway = desired.gateway();
    // Each gateway not asked for, side by side.
    let url = async {
        if gateway == Gateway::Url {
            return Ok(vec![]);
        }
        let change = &plan.function_url;
        let retire = function_url::retire(aws, stack, change, progress);
        Ok(vec![run_step(progress, Step::FunctionUrl, change.summary(), retire).await?.1])
    };
    let rest = async {
        if gateway == Gateway::Rest {
            return Ok(vec![]);
        }
        let plans = match &plan.usage_plan {
            UsagePlanChange::Delete { plans } => plans.as_slice(),
            _ => &[],
        };
        let unbind = usage_plan::delete(aws, plans, progress);
        let plan_report = run_step(progress, Step::UsagePlan, plan.usage_plan.summary(), unbind).await?.1;
        let keys = api_key::apply(aws, stack, &plan.api_key);
        let key_report = run_step(progress, Step::ApiKey, plan.api_key.summary(), keys).await?.1;
        let apis = match &plan.api.api {
            ApiChange::Retire { remove } => remove.as_slice(),
            _ => &[],
        };
        let delete = async {
            for id in apis {
                rest_api::delete(aws, id, progress).await?;
            }
            anyhow::Ok(())
        };
        let api_report = run_step(progress, Step::RestApi, plan.api.api.summary(), delete).await?.1;
        anyhow::Ok(vec![plan_report, key_report, api_report])
    };
    let http = async {
        if gateway == Gateway::Http {
            return Ok(vec![]);
        }
        let apis = match &plan.http_api.api {
            http_api::ApiChange::Retire { remove } => remove.as_slice(),
            _ => &[],
        };
        let delete = async {
            for id in apis {
                http_api::delete(aws, id).await?;
            }
            anyhow::Ok(())
        };
        Ok(vec![run_step(progress, Step::HttpApi, plan.http_api.api.summary(), delete).await?.1])
    };
    let (url, rest, http) = tokio::try_join!(url, rest, http)?;
    permission::retire_gateway(aws, desired, &plan.permission).await?;
    Ok(url.into_iter().chain(rest).chain(http).collect())
}

/// What the function chain made.
struct FunctionSide {
    role_arn: String,
    function_arn: String,
    secret_arn: Option<String>,
    reports: Vec<StepReport>,
}

/// Role and secret, then the secret's read policy, the function and its environment, beside
/// the log group (needed only once the function runs); then a secret no longer wanted goes, and
/// once the API's id is known, the invoke permission. `claim` is told which run made the role,
/// when this run tried to make it.
async fn function_chain(
    aws: &Aws,
    prepared: &Prepared,
    zip: &[u8],
    progress: &dyn Progress,
    claim: oneshot::Sender<Option<String>>,
    gateway_id: oneshot::Receiver<Option<String>>,
) -> anyhow::Result<FunctionSide> {
    let Prepared { desired, plan, snapshot, .. } = prepared;
    let stack = &desired.stack;
    let function = async {
        let role = role::apply(aws, stack, &plan.role, |made_by| {
            let _ = claim.send(made_by);
        });
        let role = run_step(progress, Step::Role, plan.role.summary(), role);
        // The secret first, so the function never runs without it; one no longer wanted goes
        // last, once the function no longer reads it.
        let secret = async {
            let change = &plan.secret;
            let kept = (!change.is_delete()).then(|| secret::apply(aws, desired, change, progress));
            match kept {
                Some(apply) => run_step(progress, Step::Secret, change.summary(), apply).await.map(Some),
                None => Ok(None),
            }
        };
        let ((role_arn, role_report), secret) = tokio::try_join!(role, secret)?;
        let (secret_arn, secret_report) = secret.unzip();
        let secret_arn = secret_arn.flatten();
        // A secret made now has a new ARN: the function and the policy get that one.
        let made = secret_arn.as_deref().filter(|arn| desired.secret_arn() != Some(*arn));
        let with_arn = made.map(|arn| desired.with_secret_arn(arn));
        let desired = with_arn.as_ref().unwrap_or(desired);
        let access = match made {
            Some(_) => secret_access::plan(desired, snapshot.secret_access.as_ref()),
            None => plan.secret_access.clone(),
        };
        let access_report = match access.is_delete() {
            true => None,
            false => {
                let put = secret_access::apply(aws, desired, &access);
                Some(run_step(progress, Step::SecretAccess, access.summary(), put).await?.1)
            }
        };
        let function = function::apply_function(aws, desired, &plan.function, zip, progress);
        let ((function_arn, adopted), function_report) =
            run_step(progress, Step::Function, plan.function.summary(), function).await?;
        // A function a twin run made carries that run's variables, and a new secret a new ARN:
        // plan them against ours again.
        let observed = adopted.as_ref().or(snapshot.function.ours());
        let replanned =
            (adopted.is_some() || made.is_some()).then(|| function::plan_environment(desired, observed));
        let environment = replanned.as_ref().unwrap_or(&plan.environment);
        let set = function::apply_environment(aws, desired, environment, progress);
        let ((), environment_report) =
            run_step(progress, Step::Environment, environment.summary(), set).await?;
        let removed = remove_secret(aws, desired, plan, &access, progress).await?;
        // Nothing told: the gateway's chain failed, and its error is the one to tell; it ends
        // the join once the chain has finished what it must (its key step may still run).
        let Ok(api_id) = gateway_id.await else { return std::future::pending().await };
        let change = &plan.permission;
        let grant = permission::apply(aws, desired, change, api_id.as_deref(), progress);
        let ((), permission_report) = run_step(progress, Step::Permission, change.summary(), grant).await?;
        let reports = [Some(role_report), secret_report, access_report, Some(function_report)]
            .into_iter()
            .chain([Some(environment_report), Some(permission_report)])
            .flatten()
            .chain(removed)
            .collect::<Vec<_>>();
        anyhow::Ok((role_arn, function_arn, secret_arn, reports))
    };
    let logs = log_group::apply(aws, stack, &plan.log_group);
    let logs = run_step(progress, Step::LogGroup, plan.log_group.summary(), logs);
    let ((role_arn, function_arn, secret_arn, mut reports), ((), logs)) =
        tokio::try_join!(Box::pin(function), Box::pin(logs))?;
    reports.push(logs);
    Ok(FunctionSide { role_arn, function_arn, secret_arn, reports })
}

/// The secret and its read policy when no longer wanted, side by side: run once the function's
/// environment no longer names the secret.
async fn remove_secret(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    access: &SecretAccessChange,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<StepReport>> {
    if !access.is_delete() && !plan.secret.is_delete() {
        return Ok(vec![]);
    }
    // A twin run may have set the function to read the secret since this run's change: the
    // secret then stays, and the check that follows tells.
    let function = function::find(aws, &desired.stack).await?;
    if function.ours().is_some_and(|function| function.environment.contains_key(SECRET_ARN)) {
        let kept = "another run of this stack set the function to read the secret meanwhile: it is kept";
        progress.note(Step::Secret, kept);
        return Ok(vec![]);
    }
    let policy = async {
        if !access.is_delete() {
            return Ok(None);
        }
        let delete = secret_access::apply(aws, desired, access);
        run_step(progress, Step::SecretAccess, access.summary(), delete).await.map(|(_, report)| Some(report))
    };
    let secret = async {
        if !plan.secret.is_delete() {
            return Ok(None);
        }
        let delete = secret::apply(aws, desired, &plan.secret, progress);
        run_step(progress, Step::Secret, plan.secret.summary(), delete).await.map(|(_, report)| Some(report))
    };
    let (policy, secret) = tokio::try_join!(policy, secret)?;
    Ok([policy, secret].into_iter().flatten().collect())
}

/// REST API, `{proxy+}`, methods, integrations, stage and its limits, beside the API key;
/// then the usage plan binding the key to the stage. Returns the API's id, told to `api_known`
/// as soon as it is settled, and the key's. A new API is built while this run settles with any
/// twin run that may have made one at the same moment (the REST API step lasts until then).
async fn api_chain(
    aws: &Aws,
    prepared: &Prepared,
    progress: &dyn Progress,
    claimed: oneshot::Receiver<Option<String>>,
    api_known: oneshot::Sender<Option<String>>,
) -> anyhow::Result<GatewaySide> {
    let Prepared { desired, plan, snapshot, .. } = prepared;
    let observed = snapshot.api.ours();
    let change = &plan.api.api;
    let (found, to_build) = oneshot::channel();
    let api_step = run_step(progress, Step::RestApi, change.summary(), async {
        let role_maker = role_maker(snapshot, claimed);
        let (current, settle) =
            rest_api::apply(aws, &desired.stack, change, observed, role_maker, progress).await?;
        let _ = found.send(current.clone());
        if settle == Settle::WithTwins {
            twins::settle::<rest_api::RestApis>(aws, &desired.stack, &current.id, progress).await?;
        }
        let _ = api_known.send(Some(current.id.clone()));
        Ok(current)
    });
    // The deployment waits for the key: one enabled again is served only once redeployed.
    let (key_done, key_settled) = oneshot::channel::<()>();
    let parts = async {
        // No API: the REST API step failed, and its error is the one to tell.
        let Ok(current) = to_build.await else { return Ok(None) };
        let key_settled = async { key_settled.await.ok().unwrap_or(()) };
        build_parts(aws, desired, plan, observed, &current, key_settled, progress).await.map(Some)
    };
    // A key no longer wanted goes once the methods no longer ask for it.
    let key = async {
        let change = &plan.api_key;
        let kept = (!change.is_delete()).then(|| api_key::apply(aws, &desired.stack, change));
        let applied = match kept {
            Some(apply) => run_step(progress, Step::ApiKey, change.summary(), apply).await.map(Some),
            None => Ok(None),
        };
        let _ = key_done.send(());
        applied
    };
    // Joined, not tried: a key step stopped half way (made, not yet settled with twins') would
    // leave its key behind, so it finishes whatever the others did.
    let (api, parts, key) = tokio::join!(Box::pin(api_step), Box::pin(parts), key);
    let ((current, api_report), parts, key) = (api?, parts?, key?);
    let parts = parts.context("the REST API's parts were not built")?;
    let (key, key_report) = key.unzip();
    let key = key.flatten();
    let key_id = key.as_ref().map(|key| key.id.clone());
    // Planned again with the API and the key as they now are (either may be new).
    let usage_plan = usage_plan::plan(desired, Some(&current.id), key_id.as_deref(), &snapshot.usage_plans);
    let bind = usage_plan::apply(aws, &desired.stack, &current.id, key_id.as_deref(), &usage_plan, progress);
    let ((), plan_report) = run_step(progress, Step::UsagePlan, usage_plan.summary(), bind).await?;
    let key_report = match key_report {
        Some(report) => report,
        None => {
            let delete = api_key::apply(aws, &desired.stack, &plan.api_key);
            run_step(progress, Step::ApiKey, plan.api_key.summary(), delete).await?.1
        }
    };
    let reports = [api_report].into_iter().chain(parts).chain([key_report, plan_report]).collect();
    Ok(GatewaySide { api_id: Some(current.id), http_api: None, function_url: None, key, reports })
}

/// The API's parts: `{proxy+}`, methods, integrations, beside the gateway responses; once
/// those and the key (`key_settled`) are done, the stage, then its limits.
async fn build_parts(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    observed: Option<&ApiState>,
    current: &ApiState,
    key_settled: impl Future<Output = ()>,
    progress: &dyn Progress,
) -> anyhow::Result<[StepReport; 6]> {
    // Made now, or finished by another run meanwhile: plan its parts from what is there.
    let api_changes = plan.api.api.action() != Action::Unchanged;
    let replanned = (Some(current) != observed || plan.api.parts.is_none())
        .then(|| rest_api::plan_parts(desired, Some(current), api_changes, plan.api_key.enables()));
    let parts: &PartsPlan = replanned.as_ref().or(plan.api.parts.as_ref()).context("no parts planned")?;
    let api_id = current.id.as_str();

    let routes = async {
        let proxy = resource::apply(aws, api_id, &current.resources, &parts.resources, progress);
        let (proxy_id, proxy_report) =
            run_step(progress, Step::ProxyResource, parts.resources.summary(), proxy).await?;
        let put = methods::apply(aws, api_id, &proxy_id, &parts.methods, progress);
        let ((), methods_report) = run_step(progress, Step::Methods, parts.methods.summary(), put).await?;
        let integrate =
            methods::apply_integrations(aws, desired, api_id, &proxy_id, &parts.integrations, progress);
        let ((), integrations_report) =
            run_step(progress, Step::Integrations, parts.integrations.summary(), integrate).await?;
        anyhow::Ok([proxy_report, methods_report, integrations_report])
    };
    let change = &parts.gateway_responses;
    let responses = gateway_responses::apply(aws, desired, api_id, change, progress);
    let responses = run_step(progress, Step::GatewayResponses, change.summary(), responses);
    let (routes, ((), responses_report), ()) = tokio::try_join!(routes, responses, async {
        key_settled.await;
        Ok(())
    })?;
    let deploy = stage::apply(aws, desired, api_id, &parts.stage, progress);
    let ((), stage_report) = run_step(progress, Step::Deployment, parts.stage.summary(), deploy).await?;
    let limit = stage::apply_throttle(aws, desired, api_id, &parts.throttle, progress);
    let ((), throttle_report) = run_step(progress, Step::Throttling, parts.throttle.summary(), limit).await?;
    let [proxy_report, methods_report, integrations_report] = routes;
    Ok([proxy_report, methods_report, integrations_report, responses_report, stage_report, throttle_report])
}
