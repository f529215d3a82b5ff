//! Stage `prod` and the deployment it serves. The deployment's description records what it
//! was made from, so a later `up` can tell whether the stage serves the API as wanted, with no
//! local state. Any other stage is one `up` did not make: removed.

use anyhow::Result;
use aws_sdk_apigateway::types::{Op, PatchOperation, Stage};

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt};
use crate::desired::{Desired, Throttle};
use crate::resources::rest_api::resource::PROXY_PATH;
use crate::retry::{APIGATEWAY_BUSY_LIMIT, Backoff, apigateway_busy, retrying};
use crate::stack::STAGE;
use crate::vocabulary::{Planned, Progress, Step, Summary};

/// What the `prod` deployment records.
pub fn deployment_description(desired: &Desired) -> String {
    format!("tokendeploy: {} {PROXY_PATH} -> {}", desired.methods().join(", "), desired.function_arn())
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stages {
    /// The description of the deployment `prod` serves (empty when it serves none); `None`
    /// with no stage `prod`.
    pub deployed: Option<String>,
    /// Stages beside `prod`: each keeps serving whatever deployment it was given.
    pub extra: Vec<String>,
    /// `prod`'s limits for every method (its `*/*` method settings), when set.
    pub throttle: Option<Throttle>,
    /// `prod`'s method settings for one resource and method (`~1{proxy+}/GET`): overrides of
    /// the `*/*` ones, none of which `up` makes.
    pub overrides: Vec<String>,
    /// Settings of `prod` that `up` leaves off and someone turned on ([`Unwanted`]).
    pub unwanted: Vec<Unwanted>,
}

/// A setting of stage `prod` that `up` keeps off: each changes what callers get, or puts
/// their bearer tokens and the tokens answered where others can read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unwanted {
    /// Caching for every method: one caller's token answered to another.
    Caching,
    /// A cache cluster for the stage.
    CacheCluster,
    /// Full requests and answers in the execution logs: bearer tokens and minted tokens.
    DataTrace,
    /// Execution logs (`ERROR` or `INFO`), which can hold request headers.
    ExecutionLogging,
    /// A canary: some of the traffic served by another deployment.
    Canary,
}

impl Unwanted {
    pub const ALL: [Unwanted; 5] = [
        Unwanted::Caching,
        Unwanted::CacheCluster,
        Unwanted::DataTrace,
        Unwanted::ExecutionLogging,
        Unwanted::Canary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Unwanted::Caching => "caching",
            Unwanted::CacheCluster => "a cache cluster",
            Unwanted::DataTrace => "data tracing",
            Unwanted::ExecutionLogging => "execution logging",
            Unwanted::Canary => "a canary",
        }
    }

    /// Whether `stage` has it on.
    fn is_on(self, stage: &Stage) -> bool {
        let every = stage.method_settings().and_then(|all| all.get(EVERY_METHOD));
        match self {
            Unwanted::Caching => every.is_some_and(|setting| setting.caching_enabled()),
            Unwanted::CacheCluster => stage.cache_cluster_enabled(),
            Unwanted::DataTrace => every.is_some_and(|setting| setting.data_trace_enabled()),
            Unwanted::ExecutionLogging => {
                every.and_then(|setting| setting.logging_level()).is_some_and(|level| level != "OFF")
            }
            Unwanted::Canary => stage.canary_settings().is_some(),
        }
    }

    /// The patch that turns it off.
    fn off(self) -> PatchOperation {
        let replace = |path: &str, value: &str| {
            PatchOperation::builder().op(Op::Replace).path(path).value(value).build()
        };
        match self {
            Unwanted::Caching => replace(&format!("/{EVERY_METHOD}/caching/enabled"), "false"),
            Unwanted::CacheCluster => replace("/cacheClusterEnabled", "false"),
            Unwanted::DataTrace => replace(&format!("/{EVERY_METHOD}/logging/dataTrace"), "false"),
            Unwanted::ExecutionLogging => replace(&format!("/{EVERY_METHOD}/logging/loglevel"), "OFF"),
            Unwanted::Canary => PatchOperation::builder().op(Op::Remove).path("/canarySettings").build(),
        }
    }
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
    let settings = prod.and_then(|stage| stage.method_settings());
    let throttle = settings.and_then(|all| all.get(EVERY_METHOD)).map(|setting| Throttle {
        rate_limit: setting.throttling_rate_limit(),
        burst_limit: setting.throttling_burst_limit(),
    });
    let mut overrides: Vec<String> =
        settings.into_iter().flat_map(|all| all.keys()).filter(|key| *key != EVERY_METHOD).cloned().collect();
    overrides.sort();
    let unwanted =
        prod.map(|stage| Unwanted::ALL.into_iter().filter(|setting| setting.is_on(stage)).collect());
    let extra = extra.map(str::to_string).collect();
    Ok(Stages { deployed, extra, throttle, overrides, unwanted: unwanted.unwrap_or_default() })
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

/// What `up` does to the stage's limits and settings. A redeployment keeps them: they belong
/// to the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleChange {
    Unchanged,
    Set {
        /// The limits for every method, when not as wanted: those found, if any.
        limits: Option<Option<Throttle>>,
        /// Method settings of one resource and method, removed.
        overrides: Vec<String>,
        /// Turned off.
        unwanted: Vec<Unwanted>,
    },
}

impl Planned for ThrottleChange {
    fn summary(&self) -> Summary {
        let ThrottleChange::Set { limits, overrides, unwanted } = self else {
            return Summary::unchanged();
        };
        if *limits == Some(None) && overrides.is_empty() && unwanted.is_empty() {
            return Summary::create("no limits yet");
        }
        let mut wrong = Vec::new();
        match limits {
            Some(None) => wrong.push("no limits".to_string()),
            Some(Some(was)) => wrong.push(format!("limits {}/s, burst {}", was.rate_limit, was.burst_limit)),
            None => {}
        }
        if !overrides.is_empty() {
            wrong.push(format!("settings of single methods: {}", overrides.join(", ")));
        }
        if !unwanted.is_empty() {
            let names: Vec<&str> = unwanted.iter().map(|setting| setting.name()).collect();
            wrong.push(format!("{} on", names.join(", ")));
        }
        Summary::update(wrong.join("; "))
    }
}

/// `observed`: the stages, `None` for an API yet to be made (its stage gets limits once made).
pub fn plan_throttle(desired: &Desired, observed: Option<&Stages>) -> ThrottleChange {
    let was = observed.and_then(|stages| stages.throttle);
    let limits = (was != Some(desired.security.throttle)).then_some(was);
    let overrides = observed.map(|stages| stages.overrides.clone()).unwrap_or_default();
    let unwanted = observed.map(|stages| stages.unwanted.clone()).unwrap_or_default();
    match limits.is_none() && overrides.is_empty() && unwanted.is_empty() {
        true => ThrottleChange::Unchanged,
        false => ThrottleChange::Set { limits, overrides, unwanted },
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
    let ThrottleChange::Set { limits, overrides, unwanted } = change else {
        return Ok(());
    };
    let Throttle { rate_limit, burst_limit } = desired.security.throttle;
    let set = |path: &str, value: String| {
        PatchOperation::builder()
            .op(Op::Replace)
            .path(format!("/{EVERY_METHOD}/throttling/{path}"))
            .value(value)
            .build()
    };
    let mut operations = match limits {
        Some(_) => vec![set("rateLimit", rate_limit.to_string()), set("burstLimit", burst_limit.to_string())],
        None => vec![],
    };
    let remove = |key: &String| PatchOperation::builder().op(Op::Remove).path(format!("/{key}")).build();
    operations.extend(overrides.iter().map(remove));
    operations.extend(unwanted.iter().map(|setting| setting.off()));
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
