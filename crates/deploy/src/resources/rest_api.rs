//! The REST API: REGIONAL, a `{proxy+}` resource under its root, GET and OPTIONS methods with
//! Lambda proxy integrations, deployed to stage `prod`.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::retry::RetryConfig;
use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IntegrationType, Op, PatchOperation};

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt, MAX_PAGES, error_code, is_transient};
use crate::desired::Desired;
use crate::plan::{Action, Change, Plan, Step};
use crate::progress::{Progress, StepReport, run_step};
use crate::resources::foreign;
use crate::stack::{STAGE, Stack};

pub use tokendeploy_config::METHODS;
pub const PROXY_PATH: &str = "/{proxy+}";
const PROXY_PART: &str = "{proxy+}";
const AUTHORIZATION: &str = "NONE";
const INTEGRATION_TYPE: &str = "AWS_PROXY";
/// Lambda proxy integrations always call Lambda with POST, whatever the client's method.
const INTEGRATION_METHOD: &str = "POST";
/// API Gateway's answer to making what exists already.
const CONFLICT: &str = "ConflictException";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiState {
    pub id: String,
    pub root_id: String,
    pub proxy: Option<ProxyState>,
    /// The description of the deployment stage `prod` serves; `None` with no stage.
    pub deployed: Option<String>,
    /// Resources and methods `up` did not make (a route someone added by hand).
    pub extra: Vec<Extra>,
    /// Other REST APIs of this stack (a twin run's, or a lost answer's): removed.
    pub duplicates: Vec<String>,
    /// When and by which run it was made (see [`RUN_TAG`]), when known.
    pub made: Option<ApiSummary>,
}

impl ApiState {
    /// Every part `up` makes is there: a run that made it has finished with it.
    fn is_built(&self) -> bool {
        let methods = self.proxy.as_ref().map(|p| &p.methods);
        let integrated =
            |m: &str| methods.and_then(|all| all.get(m)).is_some_and(|m| m.integration.is_some());
        self.deployed.is_some() && METHODS.iter().all(|m| integrated(m))
    }

    /// Made by another run moments ago, and not finished: that run is building it now.
    fn being_built_by_another_run(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let recent = |made: &ApiSummary| (now.as_secs() as i64).saturating_sub(made.created) < 60;
        let another = |made: &ApiSummary| made.run.as_deref() != Some(run_id());
        !self.is_built() && self.made.as_ref().is_some_and(|made| recent(made) && another(made))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyState {
    pub id: String,
    pub methods: BTreeMap<String, MethodState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodState {
    pub authorization: String,
    pub integration: Option<IntegrationState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationState {
    pub kind: String,
    pub http_method: String,
    pub uri: String,
}

/// Part of the API that `up` did not make and removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extra {
    Resource {
        id: String,
        path: String,
    },
    Method {
        resource_id: String,
        path: String,
        method: String,
    },
    /// A stage beside `prod`: it keeps serving whatever deployment it was given.
    Stage {
        name: String,
    },
}

impl Extra {
    /// The step that removes it.
    fn step(&self) -> Step {
        match self {
            Self::Resource { .. } => Step::ProxyResource,
            Self::Method { .. } => Step::Methods,
            Self::Stage { .. } => Step::Deployment,
        }
    }
}

impl std::fmt::Display for Extra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Resource { path, .. } => f.write_str(path),
            Self::Method { path, method, .. } => write!(f, "{method} {path}"),
            Self::Stage { name } => write!(f, "stage {name}"),
        }
    }
}

fn wanted_integration(desired: &Desired) -> IntegrationState {
    IntegrationState {
        kind: INTEGRATION_TYPE.into(),
        http_method: INTEGRATION_METHOD.into(),
        uri: desired.integration_uri(),
    }
}

/// What the `prod` deployment records, so a later `up` can tell whether the stage serves
/// the API as it should be, with no local state.
pub fn deployment_description(desired: &Desired) -> String {
    format!("tokendeploy: {} {PROXY_PATH} -> {}", METHODS.join(", "), desired.function_arn())
}

pub const KIND: &str = "REST API";

/// Marks the REST API with the `up` run that made it, so a run can tell a copy of its own
/// (a lost answer, retried) from one a twin run made at the same moment.
const RUN_TAG: &str = "tokendeploy:run";

/// This process's run id: random enough that two runs never share one.
fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        format!("{:016x}", hasher.finish())
    })
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

impl ApiList {
    /// The first made, and of those made in the same second the lowest id: a rule every
    /// run applies alike.
    fn oldest(&self) -> Option<&ApiSummary> {
        self.ours.iter().min_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)))
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

/// The stack's REST API with its resources, methods and stage, for `up`: with none of ours,
/// another's of that name is refused. With several of ours, the one the stage serves is
/// kept (or the oldest) and the others are listed as duplicates.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Option<ApiState>> {
    let list = list(aws, stack).await?;
    if list.ours.is_empty() {
        return match list.foreign.is_empty() {
            true => Ok(None),
            false => Err(foreign(KIND, stack.api_name(), stack)),
        };
    }
    let mut states = Vec::new();
    for api in &list.ours {
        states.push((api, read(aws, &api.id).await?));
    }
    // Keep the one traffic reaches (the stage serves it), else the oldest.
    let rank =
        |(api, state): &(&ApiSummary, ApiState)| (state.deployed.is_none(), api.created, api.id.clone());
    let keep = (0..states.len()).min_by_key(|i| rank(&states[*i])).unwrap_or(0);
    let (made, mut kept) = states.swap_remove(keep);
    kept.made = Some(made.clone());
    kept.duplicates = states.into_iter().map(|(api, _)| api.id.clone()).collect();
    Ok(Some(kept))
}

async fn read(aws: &Aws, id: &str) -> Result<ApiState> {
    let mut resources = Vec::new();
    let mut position: Option<String> = None;
    for page in 0.. {
        if page == MAX_PAGES {
            bail!("reading the resources of REST API {id}: still more after {MAX_PAGES} pages");
        }
        let answer = aws
            .apigateway
            .get_resources()
            .rest_api_id(id)
            .limit(500)
            .embed("methods")
            .set_position(position.clone())
            .send()
            .await
            .aws_context(format!("reading the resources of REST API {id}"))?;
        resources.extend(answer.items().iter().cloned());
        match answer.position() {
            Some(next) if Some(next) != position.as_deref() => position = Some(next.to_string()),
            _ => break,
        }
    }
    let resources = resources.as_slice();
    let root_id = resources
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id().map(str::to_string))
        .with_context(|| format!("REST API {id} has no root resource"))?;
    // A second `{proxy+}` (a twin run's) is extra like any other resource.
    let proxy_id = resources.iter().filter(|r| r.path() == Some(PROXY_PATH)).filter_map(|r| r.id()).min();
    let mut extra = Vec::new();
    for resource in resources {
        let (id, path) = (resource.id().unwrap_or_default(), resource.path().unwrap_or_default());
        let methods =
            resource.resource_methods().map(|m| m.keys().cloned().collect()).unwrap_or_else(Vec::new);
        let wanted_methods: &[&str] = if Some(id) == proxy_id { &METHODS } else { &[] };
        if id != root_id && Some(id) != proxy_id {
            extra.push(Extra::Resource { id: id.into(), path: path.into() });
            continue;
        }
        for method in methods.into_iter().filter(|m| !wanted_methods.contains(&m.as_str())) {
            extra.push(Extra::Method { resource_id: id.into(), path: path.into(), method });
        }
    }
    let stages = aws
        .apigateway
        .get_stages()
        .rest_api_id(id)
        .send()
        .await
        .aws_context(format!("reading the stages of REST API {id}"))?;
    let prod = stages.item().iter().find(|s| s.stage_name() == Some(STAGE));
    let other_stages = stages.item().iter().filter_map(|s| s.stage_name()).filter(|name| *name != STAGE);
    extra.extend(other_stages.map(|name| Extra::Stage { name: name.to_string() }));
    // Children before parents, so each deletion finds its resource still there.
    extra.sort_by_key(|e| std::cmp::Reverse(e.to_string().len()));
    let proxy = match proxy_id {
        None => None,
        Some(proxy_id) => {
            Some(ProxyState { methods: read_methods(aws, id, proxy_id).await?, id: proxy_id.to_string() })
        }
    };
    Ok(ApiState {
        made: None,
        id: id.to_string(),
        root_id,
        proxy,
        deployed: match prod {
            Some(stage) => Some(deployment_of(aws, id, stage.deployment_id()).await?),
            None => None,
        },
        extra,
        duplicates: vec![],
    })
}

async fn read_methods(aws: &Aws, api_id: &str, resource_id: &str) -> Result<BTreeMap<String, MethodState>> {
    let mut methods = BTreeMap::new();
    for method in METHODS {
        let found = aws
            .apigateway
            .get_method()
            .rest_api_id(api_id)
            .resource_id(resource_id)
            .http_method(method)
            .send()
            .await;
        let doing = format!("reading method {method} of REST API {api_id}");
        let Some(output) = found.or_absent(APIGATEWAY_NOT_FOUND, doing)? else {
            continue;
        };
        let integration = output.method_integration().map(|i| IntegrationState {
            kind: i.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            http_method: i.http_method().unwrap_or_default().to_string(),
            uri: i.uri().unwrap_or_default().to_string(),
        });
        let authorization = output.authorization_type().unwrap_or_default().to_string();
        methods.insert(method.to_string(), MethodState { authorization, integration });
    }
    Ok(methods)
}

/// The description of the deployment a stage serves (empty when it serves none).
async fn deployment_of(aws: &Aws, api_id: &str, deployment_id: Option<&str>) -> Result<String> {
    let Some(deployment_id) = deployment_id else {
        return Ok(String::new());
    };
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

/// The API chain's steps: REST API, `{proxy+}` resource, methods, integrations, deployment.
pub fn plan(desired: &Desired, observed: Option<&ApiState>) -> Vec<(Step, Change)> {
    let proxy = observed.and_then(|api| api.proxy.as_ref());
    let methods = proxy.map(|p| &p.methods);
    let rest_api = match observed {
        None => Change::create("no REST API yet"),
        Some(api) if !api.duplicates.is_empty() => Change::update(format!(
            "{} more REST APIs of this stack: removes {}, keeps {}",
            api.duplicates.len(),
            api.duplicates.join(", "),
            api.id
        )),
        Some(_) => Change::unchanged(),
    };
    let extra = |step: Step| -> Vec<String> {
        let all = observed.map(|api| api.extra.as_slice()).unwrap_or_default();
        all.iter().filter(|e| e.step() == step).map(Extra::to_string).collect()
    };
    let proxy_resource = match (proxy, extra(Step::ProxyResource)) {
        (None, _) => Change::create(format!("no {PROXY_PATH} resource yet")),
        (Some(_), extra) if !extra.is_empty() => {
            Change::update(format!("resources up did not make: {}", extra.join(", ")))
        }
        (Some(_), _) => Change::unchanged(),
    };
    let mut method_change = per_method(methods, "method", |_| true, |m| m.authorization == AUTHORIZATION);
    let extra_methods = extra(Step::Methods);
    if !extra_methods.is_empty() {
        let reason = format!("methods up did not make: {}", extra_methods.join(", "));
        method_change = match method_change.action {
            Action::Unchanged => Change::update(reason),
            _ => {
                Change { action: method_change.action, reason: format!("{}; {reason}", method_change.reason) }
            }
        };
    }
    let wanted = wanted_integration(desired);
    let integration_change = per_method(
        methods,
        "integration",
        |m| m.integration.is_some(),
        |m| m.integration.as_ref() == Some(&wanted),
    );
    let api_changes = [&rest_api, &proxy_resource, &method_change, &integration_change]
        .iter()
        .any(|c| c.action != Action::Unchanged);
    let other_stages = extra(Step::Deployment);
    let deployment = match observed.and_then(|api| api.deployed.as_ref()) {
        None => Change::create(format!("no stage {STAGE} yet")),
        Some(_) if api_changes => Change::update("the API changes"),
        Some(description) if *description != deployment_description(desired) => {
            Change::update(format!("stage {STAGE} serves an older version of the API"))
        }
        Some(_) if !other_stages.is_empty() => {
            Change::update(format!("stages up did not make: {}", other_stages.join(", ")))
        }
        Some(_) => Change::unchanged(),
    };
    vec![
        (Step::RestApi, rest_api),
        (Step::ProxyResource, proxy_resource),
        (Step::Methods, method_change),
        (Step::Integrations, integration_change),
        (Step::Deployment, deployment),
    ]
}

/// Create when no method has `what` yet, update when some has it missing or wrong.
fn per_method(
    methods: Option<&BTreeMap<String, MethodState>>,
    what: &str,
    exists: impl Fn(&MethodState) -> bool,
    is_right: impl Fn(&MethodState) -> bool,
) -> Change {
    let state = |method: &str| methods.and_then(|all| all.get(method));
    let wrong: Vec<&str> = METHODS.iter().copied().filter(|m| !state(m).is_some_and(&is_right)).collect();
    if wrong.is_empty() {
        Change::unchanged()
    } else if !METHODS.iter().any(|m| state(m).is_some_and(&exists)) {
        Change::create(format!("{what} for {}", wrong.join(", ")))
    } else {
        Change::update(format!("{what} of {} missing or different", wrong.join(", ")))
    }
}

/// Runs the API chain's steps in order; returns the API's id and the step reports.
pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    plan: &Plan,
    observed: Option<&ApiState>,
    progress: &dyn Progress,
) -> Result<(String, Vec<StepReport>)> {
    let api = &aws.apigateway;
    let mut reports = Vec::new();

    let (current, report) = run_step(progress, Step::RestApi, plan.action(Step::RestApi), async {
        match observed {
            Some(state) => {
                for duplicate in &state.duplicates {
                    progress.note(Step::RestApi, &format!("removing duplicate REST API {duplicate}"));
                    delete(aws, duplicate, progress).await?;
                }
                wait_for_its_builder(aws, state.clone(), progress).await
            }
            // A new API: read back, as it may be a copy made by a lost answer, not empty.
            None => read(aws, &create_api(aws, &desired.stack, progress).await?).await,
        }
    })
    .await?;
    reports.push(report);
    let api_id = current.id.clone();
    let extra = |step: Step| current.extra.iter().filter(move |e| e.step() == step);

    let proxy = current.proxy.as_ref();
    let (proxy_id, report) =
        run_step(progress, Step::ProxyResource, plan.action(Step::ProxyResource), async {
            for resource in extra(Step::ProxyResource) {
                let Extra::Resource { id, path } = resource else { continue };
                let deleted = api.delete_resource().rest_api_id(&api_id).resource_id(id).send().await;
                deleted.or_absent(
                    APIGATEWAY_NOT_FOUND,
                    format!("removing resource {path} from REST API {api_id}"),
                )?;
            }
            if let Some(proxy) = proxy {
                return Ok(proxy.id.clone());
            }
            let created = api
                .create_resource()
                .rest_api_id(&api_id)
                .parent_id(&current.root_id)
                .path_part(PROXY_PART)
                .send()
                .await;
            // A lost answer, retried, makes a second one (API Gateway refuses it with a
            // conflict, moto makes it): keep the one `read` picks, remove any other.
            if let Err(e) = &created
                && error_code(e) != Some(CONFLICT)
            {
                created.aws_context(format!("creating resource {PROXY_PATH} in REST API {api_id}"))?;
            }
            let now = read(aws, &api_id).await?;
            for copy in
                now.extra.iter().filter(|e| matches!(e, Extra::Resource { path, .. } if path == PROXY_PATH))
            {
                let Extra::Resource { id, .. } = copy else { continue };
                let deleted = api.delete_resource().rest_api_id(&api_id).resource_id(id).send().await;
                deleted.or_absent(
                    APIGATEWAY_NOT_FOUND,
                    format!("removing a copy of {PROXY_PATH} from REST API {api_id}"),
                )?;
            }
            now.proxy
                .map(|p| p.id)
                .with_context(|| format!("REST API {api_id} has no {PROXY_PATH} after making it"))
        })
        .await?;
    reports.push(report);

    let existing = |method: &str| proxy.and_then(|p| p.methods.get(method));
    let (_, report) = run_step(progress, Step::Methods, plan.action(Step::Methods), async {
        for method in extra(Step::Methods) {
            let Extra::Method { resource_id, path, method } = method else { continue };
            let deleted = api
                .delete_method()
                .rest_api_id(&api_id)
                .resource_id(resource_id)
                .http_method(method)
                .send()
                .await;
            deleted.or_absent(
                APIGATEWAY_NOT_FOUND,
                format!("removing method {method} {path} from REST API {api_id}"),
            )?;
        }
        for method in METHODS {
            match existing(method) {
                Some(state) if state.authorization == AUTHORIZATION => {}
                Some(_) => {
                    api.update_method()
                        .rest_api_id(&api_id)
                        .resource_id(&proxy_id)
                        .http_method(method)
                        .patch_operations(
                            PatchOperation::builder()
                                .op(Op::Replace)
                                .path("/authorizationType")
                                .value(AUTHORIZATION)
                                .build(),
                        )
                        .send()
                        .await
                        .aws_context(format!("updating method {method} in REST API {api_id}"))?;
                }
                None => {
                    let put = api
                        .put_method()
                        .rest_api_id(&api_id)
                        .resource_id(&proxy_id)
                        .http_method(method)
                        .authorization_type(AUTHORIZATION)
                        .send()
                        .await;
                    // There already: our own call whose answer was lost, retried; the
                    // integration below is put over it either way.
                    if !matches!(&put, Err(e) if error_code(e) == Some(CONFLICT)) {
                        put.aws_context(format!("adding method {method} to REST API {api_id}"))?;
                    }
                }
            }
        }
        Ok(())
    })
    .await?;
    reports.push(report);

    let wanted = wanted_integration(desired);
    let (_, report) = run_step(progress, Step::Integrations, plan.action(Step::Integrations), async {
        for method in METHODS {
            if existing(method).and_then(|m| m.integration.as_ref()) == Some(&wanted) {
                continue;
            }
            api.put_integration()
                .rest_api_id(&api_id)
                .resource_id(&proxy_id)
                .http_method(method)
                .r#type(IntegrationType::AwsProxy)
                .integration_http_method(INTEGRATION_METHOD)
                .uri(&wanted.uri)
                .send()
                .await
                .aws_context(format!("integrating method {method} of REST API {api_id} with the function"))?;
        }
        Ok(())
    })
    .await?;
    reports.push(report);

    let action = plan.action(Step::Deployment);
    let (_, report) = run_step(progress, Step::Deployment, action, async {
        if action == Action::Unchanged {
            return Ok(());
        }
        for stage in extra(Step::Deployment) {
            let Extra::Stage { name } = stage else { continue };
            let deleted = api.delete_stage().rest_api_id(&api_id).stage_name(name).send().await;
            deleted
                .or_absent(APIGATEWAY_NOT_FOUND, format!("removing stage {name} from REST API {api_id}"))?;
        }
        api.create_deployment()
            .rest_api_id(&api_id)
            .stage_name(STAGE)
            .description(deployment_description(desired))
            .send()
            .await
            .aws_context(format!("deploying REST API {api_id} to stage {STAGE}"))?;
        Ok(())
    })
    .await?;
    reports.push(report);

    Ok((api_id, reports))
}

/// How long a run waits for another to finish building the API, and how long that other may
/// go without changing it before it counts as gone (killed).
const BUILDER_WAIT: Duration = Duration::from_secs(30);
const BUILDER_QUIET: Duration = Duration::from_secs(3);

/// An API another run made moments ago and has not finished is being built by that run:
/// wait for it rather than build it twice (which would race over `{proxy+}`), then go on
/// from what it built. A builder that stops changing it (killed) is waited for no longer.
async fn wait_for_its_builder(aws: &Aws, mut state: ApiState, progress: &dyn Progress) -> Result<ApiState> {
    let (started, mut changed) = (std::time::Instant::now(), std::time::Instant::now());
    while state.being_built_by_another_run()
        && started.elapsed() < BUILDER_WAIT
        && changed.elapsed() < BUILDER_QUIET
    {
        progress.note(Step::RestApi, "another run is building this REST API; waiting for it to finish");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = ApiState { made: state.made.clone(), ..read(aws, &state.id).await? };
        if now != state {
            changed = std::time::Instant::now();
        }
        state = now;
    }
    Ok(state)
}

/// A twin `up` run that made the stack's REST API at the same moment as this one.
#[derive(Debug)]
pub struct ConcurrentRun {
    pub stack: String,
    pub kept: String,
    pub removed: Vec<String>,
}

impl std::fmt::Display for ConcurrentRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another tokendeploy up of stack {} made its REST API ({}) at the same moment; this run removed its own copy ({}) and stopped before changing the API: run up again once the other has finished",
            self.stack,
            self.kept,
            self.removed.join(", ")
        )
    }
}

impl std::error::Error for ConcurrentRun {}

/// How long after making an API to look for twins: API Gateway's creation times are whole
/// seconds, so by then any API made in the same second is listed too.
const SETTLE: Duration = Duration::from_millis(1200);

/// Makes the stack's REST API, then settles with any twin run: of all the stack's APIs, the
/// oldest stays. A run whose own is not the oldest removes its own and, when the oldest is a
/// twin's, stops with [`ConcurrentRun`]; a copy from our own lost answer is simply adopted.
async fn create_api(aws: &Aws, stack: &Stack, progress: &dyn Progress) -> Result<String> {
    let name = stack.api_name();
    let mut tags: HashMap<String, String> = stack.tags().into_iter().collect();
    tags.insert(RUN_TAG.into(), run_id().into());
    aws.apigateway
        .create_rest_api()
        .name(name)
        .description(format!("tokendeploy token server {}", stack.name))
        .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
        .set_tags(Some(tags))
        .send()
        .await
        .aws_context(format!("creating REST API {name}"))?;
    progress.note(Step::RestApi, "checking that no other run made one at the same moment");
    tokio::time::sleep(SETTLE).await;
    let list = list(aws, stack).await?;
    let oldest = list.oldest().cloned().with_context(|| format!("REST API {name} vanished once made"))?;
    let ours = |api: &&ApiSummary| api.run.as_deref() == Some(run_id());
    let removed: Vec<String> =
        list.ours.iter().filter(ours).filter(|api| api.id != oldest.id).map(|api| api.id.clone()).collect();
    for id in &removed {
        delete(aws, id, progress).await?;
    }
    if oldest.run.as_deref() != Some(run_id()) {
        return Err(ConcurrentRun { stack: stack.name.clone(), kept: oldest.id, removed }.into());
    }
    Ok(oldest.id)
}

/// API Gateway allows about one DeleteRestApi every 30 seconds per account.
const DELETE_RETRY_LIMIT: Duration = Duration::from_secs(300);

/// Deletes the API with its stages and deployments, waiting out API Gateway's rate limit
/// and its passing failures. Gone already is fine.
pub async fn delete(aws: &Aws, id: &str, progress: &dyn Progress) -> Result<()> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_secs(5);
    loop {
        let result = aws
            .apigateway
            .delete_rest_api()
            .rest_api_id(id)
            .customize()
            // Our own loop retries, so the wait shows in the progress display.
            .config_override(
                aws_sdk_apigateway::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        match result {
            Ok(_) => return Ok(()),
            Err(e) if error_code(&e) == Some(APIGATEWAY_NOT_FOUND) => return Ok(()),
            Err(e) if is_transient(&e) && started.elapsed() < DELETE_RETRY_LIMIT => {
                let why = match error_code(&e) {
                    Some("TooManyRequestsException") => {
                        "API Gateway allows one deletion every 30 s".to_string()
                    }
                    Some(code) => format!("API Gateway answered {code}"),
                    None => "API Gateway did not answer".to_string(),
                };
                progress.note(Step::RestApi, &format!("{why}; retrying in {} s", pause.as_secs()));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e).aws_context(format!("deleting REST API {id}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired::example("", &[])
    }

    fn complete(desired: &Desired) -> ApiState {
        let method = MethodState {
            authorization: AUTHORIZATION.into(),
            integration: Some(wanted_integration(desired)),
        };
        ApiState {
            id: "api".into(),
            root_id: "root".into(),
            proxy: Some(ProxyState {
                id: "proxy".into(),
                methods: METHODS.iter().map(|m| (m.to_string(), method.clone())).collect(),
            }),
            deployed: Some(deployment_description(desired)),
            extra: vec![],
            duplicates: vec![],
            made: None,
        }
    }

    fn actions(changes: Vec<(Step, Change)>) -> Vec<Action> {
        changes.into_iter().map(|(_, c)| c.action).collect()
    }

    #[test]
    fn a_missing_api_is_created_whole() {
        assert_eq!(actions(plan(&desired(), None)), vec![Action::Create; 5]);
    }

    #[test]
    fn a_complete_api_needs_nothing() {
        let desired = desired();
        assert_eq!(actions(plan(&desired, Some(&complete(&desired)))), vec![Action::Unchanged; 5]);
    }

    #[test]
    fn a_wrong_integration_is_fixed_and_redeployed() {
        let desired = desired();
        let mut api = complete(&desired);
        let get = api.proxy.as_mut().unwrap().methods.get_mut("GET").unwrap();
        get.integration.as_mut().unwrap().uri = "arn:elsewhere".into();
        let changes = plan(&desired, Some(&api));
        assert_eq!(changes[3].1, Change::update("integration of GET missing or different"));
        assert_eq!(changes[4].1.action, Action::Update);
    }

    #[test]
    fn an_api_left_half_made_is_completed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.proxy.as_mut().unwrap().methods.remove("OPTIONS");
        for method in api.proxy.as_mut().unwrap().methods.values_mut() {
            method.integration = None;
        }
        api.deployed = None;
        assert_eq!(
            actions(plan(&desired, Some(&api))),
            vec![Action::Unchanged, Action::Unchanged, Action::Update, Action::Create, Action::Create]
        );
    }

    #[test]
    fn routes_up_did_not_make_and_duplicates_are_drift_and_redeployed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.extra = vec![
            Extra::Resource { id: "r".into(), path: "/evil".into() },
            Extra::Method { resource_id: "p".into(), path: PROXY_PATH.into(), method: "POST".into() },
        ];
        api.duplicates = vec!["twin".into()];
        let changes = plan(&desired, Some(&api));
        assert_eq!(changes[0].1, Change::update("1 more REST APIs of this stack: removes twin, keeps api"));
        assert_eq!(changes[1].1, Change::update("resources up did not make: /evil"));
        assert_eq!(changes[2].1, Change::update("methods up did not make: POST /{proxy+}"));
        assert_eq!(changes[4].1.action, Action::Update, "the stage must stop serving them");
    }

    #[test]
    fn a_stage_serving_an_older_api_is_redeployed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.deployed = Some("made by hand".into());
        assert_eq!(plan(&desired, Some(&api))[4].1.action, Action::Update);
    }
}
