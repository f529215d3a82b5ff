//! Stage `prod` and the deployment it serves. The deployment's description records what it
//! was made from, so a later `up` can tell whether the stage serves the API as wanted, with no
//! local state. Any other stage is one `up` did not make: removed.

use anyhow::Result;
use aws_sdk_apigateway::types::{Op, PatchOperation};

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt};
use crate::desired::{Desired, Throttle};
use crate::resources::rest_api::resource::PROXY_PATH;
use crate::retry::{APIGATEWAY_BUSY_LIMIT, Backoff, apigateway_busy, retrying};
use crate::stack::STAGE;
use crate::vocabulary::{Action, Planned, Progress, Step, Summary};

/// What the `prod` deployment records.
pub fn deployment_description(desired: &Desired) -> String {
    format!("tokendeploy: {} {PROXY_PATH} -> {}", desired.methods().join(", "), desired.function_arn())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// The description of the deployment `prod` serves (empty when it serves none); `None`
    /// with no stage `prod`.
    pub deployed: Option<String>,
    /// Stages beside `prod`: each keeps serving whatever deployment it was given.
    pub extra: Vec<String>,
    /// `prod`'s limits for every method (its `*/*` method settings), when set.
    pub throttle: Option<Throttle>,
}

/// The stages, and the deployments read side by side (one page holds them: `up` makes one a
/// change), so the description of the one `prod` serves is known without another call.
pub async fn read(aws: &Aws, api_id: &str) -> Result<Stages> {
    let api = &aws.apigateway;
    let (stages, deployments) = tokio::join!(
        api.get_stages().rest_api_id(api_id).send(),
        api.get_deployments().rest_api_id(api_id).limit(500).send(),
    );
    let stages = stages.aws_context(format!("reading the stages of REST API {api_id}"))?;
    let deployments = deployments.aws_context(format!("reading the deployments of REST API {api_id}"))?;
    let prod = stages.item().iter().find(|s| s.stage_name() == Some(STAGE));
    let extra = stages.item().iter().filter_map(|s| s.stage_name()).filter(|name| *name != STAGE);
    let deployed = match prod.map(|stage| stage.deployment_id()) {
        None => None,
        Some(None) => Some(String::new()),
        Some(Some(id)) => match deployments.items().iter().find(|d| d.id() == Some(id)) {
            Some(listed) => Some(listed.description().unwrap_or_default().to_string()),
            // Beyond the first page: asked for by itself.
            None => Some(deployment_of(aws, api_id, id).await?),
        },
    };
    let every_method = prod.and_then(|stage| stage.method_settings()).and_then(|all| all.get(EVERY_METHOD));
    let throttle = every_method.map(|setting| Throttle {
        rate_limit: setting.throttling_rate_limit(),
        burst_limit: setting.throttling_burst_limit(),
    });
    Ok(Stages { deployed, extra: extra.map(str::to_string).collect(), throttle })
}

/// The method settings' key for every resource and method of a stage.
const EVERY_METHOD: &str = "*/*";

/// The description of one deployment.
async fn deployment_of(aws: &Aws, api_id: &str, deployment_id: &str) -> Result<String> {
    let deployment = aws
        .apigateway
        .get_deployment()
        .rest_api_id(api_id)
        .deployment_id(deployment_id)
        .send()
        .await
        .aws_context(format!("reading deployment {deployment_id} of REST API {api_id}"))?;
    Ok(deployment.description().unwrap_or_default().to_string())
}

/// What `up` does to the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageChange {
    Unchanged,
    /// Removes the extra stages, then deploys the API to `prod` (made if missing).
    Deploy {
        why: DeployReason,
        remove: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployReason {
    NoStage,
    /// Another part of the API changes: the stage must serve the change.
    ApiChanges,
    /// The API key is enabled again: API Gateway applies that to the stage only with a new
    /// deployment (developer guide, "Maintaining a REST API": ApiKey updates require
    /// redeploying).
    KeyEnabled,
    ServesOlderVersion,
    ExtraStages,
}

impl Planned for StageChange {
    fn summary(&self) -> Summary {
        match self {
            StageChange::Unchanged => Summary::unchanged(),
            StageChange::Deploy { why, remove } => match why {
                DeployReason::NoStage => Summary::create(format!("no stage {STAGE} yet")),
                DeployReason::ApiChanges => Summary::update("the API changes"),
                DeployReason::KeyEnabled => Summary::update("the API key is enabled again"),
                DeployReason::ServesOlderVersion => {
                    Summary::update(format!("stage {STAGE} serves an older version of the API"))
                }
                DeployReason::ExtraStages => {
                    let stages: Vec<String> = remove.iter().map(|name| format!("stage {name}")).collect();
                    Summary::update(format!("stages up did not make: {}", stages.join(", ")))
                }
            },
        }
    }
}

/// `redeploy`: why a change elsewhere must be served (another part of the API changes, the
/// key is enabled again), if it must. `observed`: `None` for an API yet to be made.
pub fn plan(desired: &Desired, observed: Option<&Stages>, redeploy: Option<DeployReason>) -> StageChange {
    let remove = observed.map(|s| s.extra.clone()).unwrap_or_default();
    let why = match (observed.and_then(|s| s.deployed.as_ref()), redeploy) {
        (None, _) => DeployReason::NoStage,
        (Some(_), Some(why)) => why,
        (Some(description), None) if *description != deployment_description(desired) => {
            DeployReason::ServesOlderVersion
        }
        (Some(_), None) if !remove.is_empty() => DeployReason::ExtraStages,
        (Some(_), None) => return StageChange::Unchanged,
    };
    StageChange::Deploy { why, remove }
}

pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    api_id: &str,
    change: &StageChange,
    progress: &dyn Progress,
) -> Result<()> {
    let StageChange::Deploy { remove, .. } = change else {
        return Ok(());
    };
    for name in remove {
        let deleted = aws.apigateway.delete_stage().rest_api_id(api_id).stage_name(name).send().await;
        deleted.or_absent(APIGATEWAY_NOT_FOUND, format!("removing stage {name} from REST API {api_id}"))?;
    }
    let description = deployment_description(desired);
    let deploy = || {
        let deployment = aws.apigateway.create_deployment().rest_api_id(api_id).stage_name(STAGE);
        deployment.description(&description).send()
    };
    let note = |message: &str| progress.note(Step::Deployment, message);
    retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_busy, note, deploy)
        .await
        .aws_context(format!("deploying REST API {api_id} to stage {STAGE}"))?;
    Ok(())
}

/// What `up` does to the stage's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleChange {
    Unchanged,
    /// `was`: the limits found, if any. A redeployment keeps them: they belong to the stage.
    Set {
        was: Option<Throttle>,
    },
}

impl Planned for ThrottleChange {
    fn summary(&self) -> Summary {
        match self {
            ThrottleChange::Unchanged => Summary::unchanged(),
            ThrottleChange::Set { was: None } => Summary::create("no limits yet"),
            ThrottleChange::Set { was: Some(was) } => {
                Summary::update(format!("limits {}/s, burst {}", was.rate_limit, was.burst_limit))
            }
        }
    }
}

/// `observed`: the stages, `None` for an API yet to be made (its stage gets limits once made).
pub fn plan_throttle(desired: &Desired, observed: Option<&Stages>) -> ThrottleChange {
    let was = observed.and_then(|stages| stages.throttle);
    match was == Some(desired.security.throttle) {
        false => ThrottleChange::Set { was },
        true => ThrottleChange::Unchanged,
    }
}

/// Sets `prod`'s limits for every method; run after [`apply`], which makes the stage.
pub async fn apply_throttle(
    aws: &Aws,
    desired: &Desired,
    api_id: &str,
    change: &ThrottleChange,
    progress: &dyn Progress,
) -> Result<()> {
    if change.action() == Action::Unchanged {
        return Ok(());
    }
    let Throttle { rate_limit, burst_limit } = desired.security.throttle;
    let set = |path: &str, value: String| {
        PatchOperation::builder()
            .op(Op::Replace)
            .path(format!("/{EVERY_METHOD}/throttling/{path}"))
            .value(value)
            .build()
    };
    let operations =
        vec![set("rateLimit", rate_limit.to_string()), set("burstLimit", burst_limit.to_string())];
    let update = || {
        let stage = aws.apigateway.update_stage().rest_api_id(api_id).stage_name(STAGE);
        stage.set_patch_operations(Some(operations.clone())).send()
    };
    let note = |message: &str| progress.note(Step::Throttling, message);
    retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_busy, note, update)
        .await
        .aws_context(format!("setting the limits of stage {STAGE} of REST API {api_id}"))?;
    Ok(())
}
