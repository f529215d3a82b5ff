//! The REST API: REGIONAL, a `{proxy+}` resource under its root ([`resource`]), methods with
//! Lambda proxy integrations ([`methods`]), deployed to stage `prod` ([`stage`]). This module
//! is the API object itself: finding the stack's, making it (settling with a twin run that
//! made one at the same moment), and deleting it.

pub mod api_key;
pub mod gateway_responses;
pub mod methods;
pub mod resource;
pub mod stage;
pub mod usage_plan;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::retry::RetryConfig;
use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType};

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt, MAX_PAGES};
use crate::desired::{Desired, Gateway};
use crate::error::{AwsCallFailed, ConcurrentRun};
use crate::resources::Lookup;
use crate::retry::{
    APIGATEWAY_BUSY_LIMIT, Backoff, apigateway_deletion_refused, apigateway_passing_failure, retrying,
};
use crate::stack::{RUN_TAG, Stack, run_id};
use crate::twins;
use crate::vocabulary::{Action, Planned, Progress, Step, Summary};

use gateway_responses::{GatewayResponseChange, GatewayResponses};
use methods::{ExtraMethod, IntegrationChange, MethodChange, MethodState};
use resource::{ResourceChange, Resources};
use stage::{DeployReason, StageChange, Stages, ThrottleChange};

pub const KIND: &str = "REST API";

/// The REST API chain's steps, in `up`'s order: the API itself, then its parts.
pub const STEPS: [Step; 7] = [
    Step::RestApi,
    Step::ProxyResource,
    Step::Methods,
    Step::Integrations,
    Step::GatewayResponses,
    Step::Deployment,
    Step::Throttling,
];

#[derive(Debug, Clone, PartialEq)]
pub struct ApiState {
    pub id: String,
    pub resources: Resources,
    /// The wanted methods found on `{proxy+}`.
    pub methods: BTreeMap<String, MethodState>,
    /// Methods on the root or `{proxy+}` that `up` did not make.
    pub extra_methods: Vec<ExtraMethod>,
    pub stages: Stages,
    /// The gateway responses customised on it.
    pub gateway_responses: GatewayResponses,
    /// Other REST APIs of this stack (a twin run's, or a lost answer's): removed.
    pub duplicates: Vec<String>,
    /// When and by which run it was made (see [`RUN_TAG`]), when known.
    pub made: Option<ApiSummary>,
}

impl ApiState {
    /// Every part `up` makes is there: a run that made it has finished with it.
    fn is_built(&self) -> bool {
        self.stages.deployed.is_some() && methods::all_integrated(&self.methods)
    }

    /// Made by another run moments ago, and not finished: that run is building it now.
    pub(crate) fn being_built_by_another_run(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let recent = |made: &ApiSummary| (now.as_secs() as i64).saturating_sub(made.created) < 60;
        let another = |made: &ApiSummary| made.run.as_deref() != Some(run_id());
        !self.is_built() && self.made.as_ref().is_some_and(|made| recent(made) && another(made))
    }
}

/// One REST API named as the stack's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSummary {
    pub id: String,
    /// API Gateway's creation time, in whole seconds.
    pub created: i64,
    /// The run that made it, when tokendeploy did.
    pub run: Option<String>,
}

/// The REST APIs named as the stack's: ours (normally one) and others'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiList {
    pub ours: Vec<ApiSummary>,
    pub foreign: Vec<String>,
}

impl twins::MadeTwice for ApiSummary {
    fn id(&self) -> &str {
        &self.id
    }
    fn created(&self) -> i64 {
        self.created
    }
}

pub async fn list(aws: &Aws, stack: &Stack) -> Result<ApiList> {
    let mut list = ApiList::default();
    let mut position = None;
    for _ in 0..MAX_PAGES {
        let page = aws
            .apigateway
            .get_rest_apis()
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .aws_context("listing REST APIs")?;
        for api in page.items().iter().filter(|api| api.name() == Some(stack.api_name())) {
            let id = api.id().unwrap_or_default().to_string();
            let tags = api.tags().cloned().unwrap_or_default();
            if stack.owns(&tags) {
                let created = api.created_date().map(|d| d.secs()).unwrap_or_default();
                list.ours.push(ApiSummary { id, created, run: tags.get(RUN_TAG).cloned() });
            } else {
                list.foreign.push(id);
            }
        }
        position = match page.position() {
            Some(next) if Some(next) != position.as_deref() => Some(next.to_string()),
            _ => return Ok(list),
        };
    }
    bail!("listing REST APIs: API Gateway still had more after {MAX_PAGES} pages")
}

/// Every REST API named as the stack's, with ours read whole (side by side).
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub list: ApiList,
    ours: Vec<ApiState>,
}

pub async fn find(aws: &Aws, stack: &Stack) -> Result<Found> {
    let mut list = list(aws, stack).await?;
    let read_all = list.ours.iter().map(|api| async move {
        match read(aws, &api.id).await {
            Ok(state) => Ok(Some(ApiState { made: Some(api.clone()), ..state })),
            // Listed, then removed before it was read whole (a twin run retiring it): gone.
            Err(error) if AwsCallFailed::answered(&error, APIGATEWAY_NOT_FOUND) => Ok(None),
            Err(error) => Err(error),
        }
    });
    let ours: Vec<ApiState> = futures::future::try_join_all(read_all).await?.into_iter().flatten().collect();
    list.ours.retain(|api| ours.iter().any(|state| state.id == api.id));
    Ok(Found { list, ours })
}

impl Found {
    /// The stack's API, of several of ours the one to keep: the one made by the run that made
    /// the role (`role_maker`: it won the stack), else the one traffic reaches (the stage serves
    /// it), else the oldest. The others are its duplicates, to remove, but for those another
    /// run is building now: that run removes its own if it must. With none of ours, another's of
    /// that name is foreign.
    pub fn stack_api(&self, role_maker: Option<&str>) -> Lookup<ApiState> {
        let rank = |state: &ApiState| {
            let made = state.made.as_ref();
            let by_maker = role_maker.is_some() && made.and_then(|m| m.run.as_deref()) == role_maker;
            (!by_maker, state.stages.deployed.is_none(), made.map(|m| m.created), state.id.clone())
        };
        let Some(kept) = self.ours.iter().min_by_key(|state| rank(state)) else {
            return if self.list.foreign.is_empty() { Lookup::Absent } else { Lookup::Foreign };
        };
        // An API that names the run building it is left to that run.
        let named_run = |state: &ApiState| state.made.as_ref().is_some_and(|made| made.run.is_some());
        let left_to_its_run = |state: &ApiState| named_run(state) && state.being_built_by_another_run();
        let others = self.ours.iter().filter(|state| state.id != kept.id && !left_to_its_run(state));
        let duplicates = others.map(|state| state.id.clone()).collect();
        Lookup::Ours(ApiState { duplicates, ..kept.clone() })
    }
}

/// The API with its resources, methods, stages and gateway responses.
pub async fn read(aws: &Aws, id: &str) -> Result<ApiState> {
    let (resources, stages, gateway_responses) =
        tokio::try_join!(resource::read(aws, id), stage::read(aws, id), gateway_responses::read(aws, id))?;
    let extra_methods = methods::extra(&resources.all, &resources.root_id, resources.proxy_id.as_deref());
    let methods = match &resources.proxy_id {
        Some(proxy_id) => {
            let mut found = methods::found(&resources.all, proxy_id);
            methods::confirm_integrations(aws, id, proxy_id, &mut found).await?;
            found
        }
        None => BTreeMap::new(),
    };
    Ok(ApiState {
        id: id.to_string(),
        resources,
        methods,
        extra_methods,
        stages,
        gateway_responses,
        duplicates: vec![],
        made: None,
    })
}

/// What `up` does to the API object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiChange {
    Create,
    /// Other REST APIs of this stack are removed; this one is kept.
    RemoveDuplicates {
        keep: String,
        remove: Vec<String>,
    },
    Unchanged,
    /// Another gateway is asked for: the stack's REST APIs go once that one serves.
    Retire {
        remove: Vec<String>,
    },
    NotAskedFor,
}

impl Planned for ApiChange {
    fn summary(&self) -> Summary {
        match self {
            ApiChange::Create => Summary::create("no REST API yet"),
            ApiChange::RemoveDuplicates { keep, remove } => Summary::update(format!(
                "{} more REST APIs of this stack: removes {}, keeps {keep}",
                remove.len(),
                remove.join(", ")
            )),
            ApiChange::Unchanged => Summary::unchanged(),
            ApiChange::Retire { remove } => Summary::delete(format!(
                "another gateway is asked for: removes {} once that one serves",
                remove.join(", ")
            )),
            ApiChange::NotAskedFor => Summary::not_asked_for(),
        }
    }
}

/// The API chain's changes, one a step; no parts when the stack asks for another gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPlan {
    pub api: ApiChange,
    pub parts: Option<PartsPlan>,
}

impl ApiPlan {
    /// One part's change, as a person reads it: "not asked for" without parts.
    pub fn part_summary(&self, part: impl FnOnce(&PartsPlan) -> Summary) -> Summary {
        self.parts.as_ref().map_or_else(Summary::not_asked_for, part)
    }
}

/// The changes inside the API: planned again when the API turns out other than observed (made
/// now, or finished by another run while this one waited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsPlan {
    pub resources: ResourceChange,
    pub methods: MethodChange,
    pub integrations: IntegrationChange,
    pub gateway_responses: GatewayResponseChange,
    pub stage: StageChange,
    pub throttle: ThrottleChange,
}

/// `key_enabled`: the stack's API key is enabled again, a change API Gateway serves only once
/// the API is redeployed (updating-api).
pub fn plan(desired: &Desired, observed: Option<&ApiState>, key_enabled: bool) -> ApiPlan {
    if desired.gateway() != Gateway::Rest {
        // One another run is building now is that run's to keep or remove: a twin switching
        // the other way (the agreement check then tells).
        let ours = observed.filter(|api| !api.being_built_by_another_run());
        let ours = ours.map(|api| std::iter::once(api.id.clone()).chain(api.duplicates.iter().cloned()));
        let api = match ours {
            Some(ids) => ApiChange::Retire { remove: ids.collect() },
            None => ApiChange::NotAskedFor,
        };
        return ApiPlan { api, parts: None };
    }
    let api = match observed {
        None => ApiChange::Create,
        Some(api) if !api.duplicates.is_empty() => {
            ApiChange::RemoveDuplicates { keep: api.id.clone(), remove: api.duplicates.clone() }
        }
        Some(_) => ApiChange::Unchanged,
    };
    let parts = plan_parts(desired, observed, api != ApiChange::Unchanged, key_enabled);
    ApiPlan { api, parts: Some(parts) }
}

/// `api_changes`: the API object itself changes (made, or its duplicates removed);
/// `key_enabled`: as for [`plan`].
pub fn plan_parts(
    desired: &Desired,
    observed: Option<&ApiState>,
    api_changes: bool,
    key_enabled: bool,
) -> PartsPlan {
    let none = BTreeMap::new();
    let found = observed.map_or(&none, |api| &api.methods);
    let extra = observed.map(|api| api.extra_methods.as_slice()).unwrap_or_default();
    let resources = resource::plan(observed.map(|api| &api.resources));
    let proxy =
        observed.and_then(|api| api.resources.proxy_id.as_deref()).map(|id| (id, resource::PROXY_PATH));
    let methods = methods::plan(desired, found, extra, proxy);
    // A method made again loses its integration.
    let mut kept = found.clone();
    for spec in &methods.update {
        kept.entry(spec.http_method.to_string()).and_modify(|method| method.integration = None);
    }
    let integrations = methods::plan_integrations(desired, &kept);
    let gateway_responses = gateway_responses::plan(desired, observed.map(|api| &api.gateway_responses));
    let parts_change =
        [resources.action(), methods.action(), integrations.action(), gateway_responses.action()]
            .iter()
            .any(|a| *a != Action::Unchanged);
    let redeploy = match (api_changes || parts_change, key_enabled) {
        (true, _) => Some(DeployReason::ApiChanges),
        (false, true) => Some(DeployReason::KeyEnabled),
        (false, false) => None,
    };
    let stages = observed.map(|api| &api.stages);
    let stage = stage::plan(desired, stages, redeploy);
    let throttle = stage::plan_throttle(desired, stages);
    PartsPlan { resources, methods, integrations, gateway_responses, stage, throttle }
}

/// Whether a new API must be settled with twin runs that may have made one at the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    WithTwins,
    NotNeeded,
}

/// How long a run that found the role made by another waits for that run's API to appear.
const TWIN_API_WAIT: Duration = Duration::from_secs(10);

/// Carries out the API object's change; returns the API as it now is: a new one as made, or
/// the one found once any other run building it is done; and whether to [`settle`].
///
/// A new API is made beside the role; `role_maker` then says which run made the role, when
/// this run tried to make it (IAM lets only one of several runs make it) or found it made
/// moments ago. The run that made it keeps its API. Another run waits for that run's API,
/// removes its own, and goes on from theirs. Without a maker (the role was there already, or
/// untagged), or when the maker's API does not come (that run died), a run keeps its own and
/// settles.
pub async fn apply(
    aws: &Aws,
    stack: &Stack,
    change: &ApiChange,
    observed: Option<&ApiState>,
    role_maker: impl Future<Output = Option<String>>,
    progress: &dyn Progress,
) -> Result<(ApiState, Settle)> {
    let state = match (change, observed) {
        (ApiChange::Create, _) | (_, None) => {
            // Made beside the role, not after it: the role's maker decides only what happens next.
            let (made, role_maker) = tokio::join!(create(aws, stack, progress), role_maker);
            let Made { state: made, retried } = made?;
            let maker = match role_maker {
                Some(maker) if maker == run_id() => {
                    if retried {
                        twins::remove_own_copies::<RestApis>(aws, stack, Some(&made.id), progress).await?;
                    }
                    return Ok((made, Settle::NotNeeded));
                }
                Some(maker) => maker,
                // The settling removes this run's copies too.
                None => return Ok((made, Settle::WithTwins)),
            };
            let Some(theirs) = await_api_of(aws, stack, &maker, progress).await? else {
                return Ok((made, Settle::WithTwins));
            };
            progress.note(Step::RestApi, &format!("going on with the other run's REST API {}", theirs.id));
            match retried {
                true => twins::remove_own_copies::<RestApis>(aws, stack, None, progress).await?,
                false => delete(aws, &made.id, progress).await?,
            }
            theirs
        }
        (ApiChange::RemoveDuplicates { remove, .. }, Some(state)) => {
            for duplicate in remove {
                progress.note(Step::RestApi, &format!("removing duplicate REST API {duplicate}"));
                delete(aws, duplicate, progress).await?;
            }
            state.clone()
        }
        (ApiChange::Unchanged, Some(state)) => state.clone(),
        // `up` builds no REST API for a stack that asks for another gateway.
        (ApiChange::Retire { .. } | ApiChange::NotAskedFor, Some(_)) => {
            bail!("the stack asks for another gateway than a REST API")
        }
    };
    Ok((wait_for_its_builder(aws, stack, state, progress).await?, Settle::NotNeeded))
}

/// The stack's API the run `maker` is making, once it appears; `None` if it does not in
/// [`TWIN_API_WAIT`] (that run died before making it).
async fn await_api_of(
    aws: &Aws,
    stack: &Stack,
    maker: &str,
    progress: &dyn Progress,
) -> Result<Option<ApiState>> {
    let started = std::time::Instant::now();
    progress.note(Step::RestApi, "another run made the role: waiting for its REST API");
    while started.elapsed() < TWIN_API_WAIT {
        let list = list(aws, stack).await?;
        if let Some(theirs) = list.ours.iter().find(|api| api.run.as_deref() == Some(maker)) {
            let state = read(aws, &theirs.id).await?;
            return Ok(Some(ApiState { made: Some(theirs.clone()), ..state }));
        }
        // Twice a second: well within API Gateway's account-wide rate for reads.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(None)
}

/// How long a run waits for another to finish building the API, and how long that other may
/// go without changing it before it counts as gone (killed).
const BUILDER_WAIT: Duration = Duration::from_secs(30);
const BUILDER_QUIET: Duration = Duration::from_secs(3);

/// An API another run made moments ago and has not finished is being built by that run:
/// wait for it rather than build it twice (which would race over `{proxy+}`), then go on
/// from what it built. A builder that stops changing it (killed) is waited for no longer.
/// One removed meanwhile was a twin's copy it gave up for another's: that one is the stack's.
async fn wait_for_its_builder(
    aws: &Aws,
    stack: &Stack,
    mut state: ApiState,
    progress: &dyn Progress,
) -> Result<ApiState> {
    let (started, mut changed) = (std::time::Instant::now(), std::time::Instant::now());
    while state.being_built_by_another_run()
        && started.elapsed() < BUILDER_WAIT
        && changed.elapsed() < BUILDER_QUIET
    {
        progress.note(Step::RestApi, "another run is building this REST API; waiting for it to finish");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = match read(aws, &state.id).await {
            Ok(now) => ApiState { made: state.made.clone(), ..now },
            Err(error) if AwsCallFailed::answered(&error, APIGATEWAY_NOT_FOUND) => {
                match find(aws, stack).await?.stack_api(None) {
                    Lookup::Ours(kept) => kept,
                    Lookup::Absent | Lookup::Foreign => {
                        let (stack, id) = (stack.name.clone(), state.id.clone());
                        return Err(ConcurrentRun::RemovedFoundGateway { stack, kind: KIND, id }.into());
                    }
                }
            }
            Err(error) => return Err(error),
        };
        if now != state {
            changed = std::time::Instant::now();
        }
        state = now;
    }
    Ok(state)
}

/// Makes the stack's REST API; returns it as made: its root resource from the answer, nothing
/// else yet. [`settle`] then settles with any twin run.
async fn create(aws: &Aws, stack: &Stack, progress: &dyn Progress) -> Result<Made> {
    let name = stack.api_name();
    let mut tags: HashMap<String, String> = stack.tags().into_iter().collect();
    tags.insert(RUN_TAG.into(), run_id().into());
    // Our own retry, not the SDK's: a retried call may have made a copy (a lost answer), to
    // remove once the run knows which API it keeps.
    let attempts = std::cell::Cell::new(0);
    let call = || {
        attempts.set(attempts.get() + 1);
        let once = aws_sdk_apigateway::config::Builder::default().retry_config(RetryConfig::disabled());
        aws.apigateway
            .create_rest_api()
            .name(name)
            .description(format!("tokendeploy token server {}", stack.name))
            .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
            .set_tags(Some(tags.clone()))
            .customize()
            .config_override(once)
            .send()
    };
    let note = |message: &str| progress.note(Step::RestApi, message);
    let made = retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_passing_failure, note, call)
        .await
        .aws_context(format!("creating REST API {name}"))?;
    let id = made.id().with_context(|| format!("API Gateway made REST API {name} without an id"))?;
    let root_id =
        made.root_resource_id().with_context(|| format!("API Gateway made REST API {id} without a root"))?;
    let created = made.created_date().map(|d| d.secs()).unwrap_or_default();
    let state = ApiState {
        id: id.to_string(),
        resources: Resources { root_id: root_id.to_string(), proxy_id: None, extra: vec![], all: vec![] },
        methods: BTreeMap::new(),
        extra_methods: vec![],
        stages: Stages::default(),
        gateway_responses: GatewayResponses::new(),
        duplicates: vec![],
        made: Some(ApiSummary { id: id.to_string(), created, run: Some(run_id().to_string()) }),
    };
    Ok(Made { state, retried: attempts.get() > 1 })
}

/// A REST API this run made.
struct Made {
    state: ApiState,
    /// The call was made more than once: a copy of it may exist.
    retried: bool,
}

/// The REST API, as twin runs may each make it.
pub struct RestApis;

impl twins::Gateway for RestApis {
    type Copy = ApiSummary;
    const KIND: &'static str = KIND;
    const STEP: Step = Step::RestApi;

    fn run(copy: &ApiSummary) -> Option<&str> {
        copy.run.as_deref()
    }

    async fn list(aws: &Aws, stack: &Stack) -> Result<Vec<ApiSummary>> {
        Ok(list(aws, stack).await?.ours)
    }

    async fn delete(aws: &Aws, id: &str, progress: &dyn Progress) -> Result<()> {
        delete(aws, id, progress).await
    }
}

/// API Gateway allows about one DeleteRestApi every 30 seconds per account.
const DELETE_RETRY_LIMIT: Duration = Duration::from_secs(300);

/// Deletes the API with its stages and deployments, waiting out API Gateway's rate limit
/// and its passing failures. Gone already is fine.
pub async fn delete(aws: &Aws, id: &str, progress: &dyn Progress) -> Result<()> {
    let call = || {
        aws.apigateway
            .delete_rest_api()
            .rest_api_id(id)
            .customize()
            // Our own loop retries, so the wait shows in the progress display.
            .config_override(
                aws_sdk_apigateway::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
    };
    let note = |message: &str| progress.note(Step::RestApi, message);
    let deleted = retrying(DELETE_RETRY_LIMIT, Backoff::LONG, apigateway_deletion_refused, note, call).await;
    deleted.or_absent(APIGATEWAY_NOT_FOUND, format!("deleting REST API {id}")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use methods::{IntegrationState, wanted};
    use resource::{ExtraResource, PROXY_PATH};

    fn desired() -> Desired {
        Desired::example("", &[])
    }

    fn complete(desired: &Desired) -> ApiState {
        let method = MethodState {
            authorization: "NONE".into(),
            api_key_required: false,
            integration: Some(IntegrationState {
                kind: "AWS_PROXY".into(),
                http_method: "POST".into(),
                uri: desired.integration_uri(),
            }),
        };
        ApiState {
            id: "api".into(),
            resources: Resources {
                root_id: "root".into(),
                proxy_id: Some("proxy".into()),
                extra: vec![],
                all: vec![],
            },
            methods: wanted(desired)
                .iter()
                .map(|spec| (spec.http_method.to_string(), method.clone()))
                .collect(),
            extra_methods: vec![],
            stages: Stages {
                deployed: Some(stage::deployment_description(desired)),
                throttle: Some(desired.security.throttle),
                ..Stages::default()
            },
            gateway_responses: gateway_responses::TYPES
                .iter()
                .map(|kind| (kind.as_str().to_string(), gateway_responses::wanted(desired)))
                .collect(),
            duplicates: vec![],
            made: None,
        }
    }

    fn actions(plan: &ApiPlan) -> Vec<Action> {
        STEPS.into_iter().map(|step| of(plan, step).action).collect()
    }

    /// `plan`, as API Gateway serves it without a key enabled again.
    fn plan(desired: &Desired, observed: Option<&ApiState>) -> ApiPlan {
        super::plan(desired, observed, false)
    }

    fn of(plan: &ApiPlan, step: Step) -> Summary {
        match step {
            Step::RestApi => plan.api.summary(),
            Step::ProxyResource => plan.part_summary(|parts| parts.resources.summary()),
            Step::Methods => plan.part_summary(|parts| parts.methods.summary()),
            Step::Integrations => plan.part_summary(|parts| parts.integrations.summary()),
            Step::GatewayResponses => plan.part_summary(|parts| parts.gateway_responses.summary()),
            Step::Deployment => plan.part_summary(|parts| parts.stage.summary()),
            Step::Throttling => plan.part_summary(|parts| parts.throttle.summary()),
            other => panic!("{other} is not a REST API step"),
        }
    }

    #[test]
    fn a_missing_api_is_created_whole() {
        assert_eq!(actions(&plan(&desired(), None)), vec![Action::Create; 7]);
    }

    #[test]
    fn a_complete_api_needs_nothing() {
        let desired = desired();
        assert_eq!(actions(&plan(&desired, Some(&complete(&desired)))), vec![Action::Unchanged; 7]);
    }

    #[test]
    fn a_wrong_integration_is_fixed_and_redeployed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.methods.get_mut("GET").unwrap().integration.as_mut().unwrap().uri = "arn:elsewhere".into();
        let plan = plan(&desired, Some(&api));
        assert_eq!(of(&plan, Step::Integrations), Summary::update("integration of GET missing or different"));
        assert_eq!(
            plan.parts.as_ref().unwrap().integrations.put.iter().map(|s| s.http_method).collect::<Vec<_>>(),
            ["GET"]
        );
        assert_eq!(of(&plan, Step::Deployment).action, Action::Update);
    }

    #[test]
    fn an_api_left_half_made_is_completed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.methods.remove("OPTIONS");
        for method in api.methods.values_mut() {
            method.integration = None;
        }
        api.stages.deployed = None;
        api.stages.throttle = None;
        assert_eq!(
            actions(&plan(&desired, Some(&api))),
            vec![
                Action::Unchanged,
                Action::Unchanged,
                Action::Update,
                Action::Create,
                Action::Unchanged,
                Action::Create,
                Action::Create
            ]
        );
    }

    #[test]
    fn limits_changed_by_hand_are_set_back_without_a_redeployment() {
        let desired = desired();
        let mut api = complete(&desired);
        api.stages.throttle = Some(crate::desired::Throttle { rate_limit: 10000.0, burst_limit: 5000 });
        let plan = plan(&desired, Some(&api));
        assert_eq!(of(&plan, Step::Throttling), Summary::update("limits 10000/s, burst 5000"));
        assert_eq!(of(&plan, Step::Deployment).action, Action::Unchanged);
    }

    #[test]
    fn settings_of_single_methods_and_unwanted_stage_settings_are_drift_set_back_in_place() {
        let desired = desired();
        let mut api = complete(&desired);
        api.stages.overrides = vec!["~1{proxy+}/GET".into()];
        api.stages.unwanted = vec![stage::Unwanted::Caching, stage::Unwanted::DataTrace];
        let plan = plan(&desired, Some(&api));
        assert_eq!(
            of(&plan, Step::Throttling),
            Summary::update("settings of single methods: ~1{proxy+}/GET; caching, data tracing on")
        );
        assert_eq!(of(&plan, Step::Deployment).action, Action::Unchanged, "they belong to the stage");
    }

    #[test]
    fn with_an_api_key_every_method_but_options_asks_for_it() {
        let mut desired = desired();
        let open = complete(&desired);
        desired.security.api_key = true;
        let keyed: Vec<_> =
            wanted(&desired).into_iter().map(|spec| (spec.http_method, spec.api_key_required)).collect();
        assert_eq!(keyed, [("GET", true), ("OPTIONS", false)]);
        let plan = plan(&desired, Some(&open));
        assert_eq!(of(&plan, Step::Methods), Summary::update("method of GET missing or different"));
        assert_eq!(of(&plan, Step::Deployment).action, Action::Update, "the stage must serve the change");
        assert_eq!(of(&plan, Step::Throttling).action, Action::Unchanged, "the limits stay with the stage");
    }

    #[test]
    fn routes_up_did_not_make_and_duplicates_are_drift_and_redeployed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.resources.extra = vec![ExtraResource { id: "r".into(), path: "/evil".into() }];
        api.extra_methods =
            vec![ExtraMethod { resource_id: "p".into(), path: PROXY_PATH.into(), method: "POST".into() }];
        api.duplicates = vec!["twin".into()];
        let plan = plan(&desired, Some(&api));
        assert_eq!(
            of(&plan, Step::RestApi),
            Summary::update("1 more REST APIs of this stack: removes twin, keeps api")
        );
        assert_eq!(of(&plan, Step::ProxyResource), Summary::update("resources up did not make: /evil"));
        assert_eq!(of(&plan, Step::Methods), Summary::update("methods up did not make: POST /{proxy+}"));
        assert_eq!(of(&plan, Step::Deployment).action, Action::Update, "the stage must stop serving them");
    }

    #[test]
    fn a_key_enabled_again_is_served_by_a_redeployment() {
        let desired = desired();
        let api = complete(&desired);
        let plan = super::plan(&desired, Some(&api), true);
        assert_eq!(of(&plan, Step::Deployment), Summary::update("the API key is enabled again"));
    }

    #[test]
    fn a_stage_serving_an_older_api_is_redeployed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.stages.deployed = Some("made by hand".into());
        assert_eq!(of(&plan(&desired, Some(&api)), Step::Deployment).action, Action::Update);
    }
}
