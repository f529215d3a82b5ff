//! The HTTP API (`--gateway http`): API Gateway's lighter API kind, at $1.00 a million requests.
//! One API `<name>`, tagged, with CORS in its own configuration from ALLOWED_ORIGINS (API Gateway
//! then answers preflights and puts its CORS headers in place of the function's); a Lambda proxy
//! integration with payload 2.0; a route `METHOD /token` for each method the function answers
//! but OPTIONS; stage `$default`, deployed automatically, every route throttled by
//! `--rate-limit` and `--burst-limit`. Its invoke permission is [`super::permission`]'s.
//! When the function checks callers' tokens with a key set, the API's own JWT authorizer
//! ([`JwtAuthorizer`]) checks them first on every route, so a request without a valid token is
//! turned away (401) before the function runs and is paid for.
//!
//! API Gateway developer guide: "Working with HTTP APIs", "Configuring CORS for an HTTP API",
//! "Throttling requests to your HTTP API", "Working with stages for HTTP APIs", "Controlling
//! access to HTTP APIs with JWT authorizers"; API reference (v2): CreateApi, CreateIntegration,
//! CreateRoute, CreateStage, UpdateStage, CreateAuthorizer, GetAuthorizers.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, bail};
use aws_sdk_apigatewayv2::types::{
    AuthorizationType, AuthorizerType, IntegrationType, JwtConfiguration, ProtocolType, RouteSettings,
};
use futures::future::try_join_all;

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt, MAX_PAGES, error_code};
use crate::desired::{Desired, Gateway, JwtAuthorizer, Throttle};
use crate::error::AwsCallFailed;
use crate::resources::cors::{self, Cors};
use crate::stack::{RUN_TAG, Stack, run_id};
use crate::twins::{self, MadeTwice};
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const KIND: &str = "HTTP API";
/// The stage that serves the API at its root, without a path of its own.
pub const STAGE: &str = "$default";
/// API Gateway's answer to making what is there already (a route key, a stage name).
const CONFLICT: &str = "ConflictException";
/// The payload format the function reads (it reads 1.0 too; 2.0 is the HTTP API's own).
const PAYLOAD_FORMAT: &str = "2.0";
/// The JWT authorizer `up` makes; one of this name no longer asked for is removed.
const AUTHORIZER_NAME: &str = "tokendeploy-jwt";
/// Where the JWT authorizer finds the caller's token: the header the function reads it from
/// (`Bearer <token>`, or the token alone).
const IDENTITY_SOURCE: &str = "$request.header.Authorization";

/// One HTTP API named as the stack's, read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpApiState {
    pub id: String,
    /// `https://{id}.execute-api.{region}.amazonaws.com`, as API Gateway gives it.
    pub endpoint: String,
    /// API Gateway's creation time, in whole seconds.
    pub created: i64,
    /// The run that made it.
    pub run: Option<String>,
    pub cors: Cors,
    pub integrations: Vec<IntegrationState>,
    pub authorizers: Vec<AuthorizerState>,
    /// By route key (`GET /token`).
    pub routes: BTreeMap<String, RouteState>,
    pub stage: Option<StageState>,
    /// Other HTTP APIs of this stack (a twin run's, or a lost answer's): removed.
    pub duplicates: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationState {
    pub id: String,
    pub kind: String,
    pub uri: String,
    pub payload_format: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteState {
    pub id: String,
    pub target: String,
    pub authorization: String,
    pub authorizer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerState {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub identity_source: Vec<String>,
    pub issuer: String,
    pub audience: Vec<String>,
}

impl AuthorizerState {
    fn checks_as(&self, wanted: &JwtAuthorizer) -> bool {
        self.kind == "JWT"
            && self.identity_source == [IDENTITY_SOURCE]
            && self.issuer == wanted.issuer
            && self.audience == [wanted.audience.clone()]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageState {
    pub auto_deploy: bool,
    pub throttle: Option<Throttle>,
}

impl HttpApiState {
    /// Made by another run moments ago, and not finished (no stage yet): that run is building
    /// it now.
    fn being_built_by_another_run(&self) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let recent = (now.as_secs() as i64).saturating_sub(self.created) < 60;
        let another = self.run.as_deref().is_some_and(|run| run != run_id());
        self.stage.is_none() && recent && another
    }
}

impl MadeTwice for HttpApiState {
    fn id(&self) -> &str {
        &self.id
    }
    fn created(&self) -> i64 {
        self.created
    }
}

/// The HTTP APIs named as the stack's: ours, read whole and oldest first, and others' ids.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub ours: Vec<HttpApiState>,
    pub foreign: Vec<String>,
}

impl Found {
    /// The stack's API, of several of ours the one to keep, by the rule a REST API's is kept:
    /// the one made by the run that made the role (`role_maker`: it won the stack, and its
    /// twins go on with its API), else the one that serves (it has its stage), else the oldest.
    /// The others are its duplicates, to remove, but for those another run is building now:
    /// that run removes its own if it must. (Keeping the oldest alone, a late run removed the
    /// role maker's API while the maker's twins went on with it.)
    pub fn stack_api(&self, role_maker: Option<&str>) -> Option<HttpApiState> {
        let rank = |api: &HttpApiState| {
            let by_maker = role_maker.is_some() && api.run.as_deref() == role_maker;
            (!by_maker, api.stage.is_none(), api.created, api.id.clone())
        };
        let kept = self.ours.iter().min_by_key(|api| rank(api))?;
        let others = self.ours.iter().filter(|api| api.id != kept.id && !api.being_built_by_another_run());
        let duplicates = others.map(|api| api.id.clone()).collect();
        Some(HttpApiState { duplicates, ..kept.clone() })
    }
}

/// The stack's HTTP APIs, listed (ours not yet read whole).
async fn list(aws: &Aws, stack: &Stack) -> Result<(Vec<HttpApiState>, Vec<String>)> {
    let (mut ours, mut foreign) = (Vec::new(), Vec::new());
    let mut next = None;
    for _ in 0..MAX_PAGES {
        let page = aws.apigatewayv2.get_apis().max_results("500").set_next_token(next.clone()).send().await;
        let page = page.aws_context("listing HTTP APIs")?;
        for api in page.items().iter().filter(|api| api.name() == Some(stack.api_name())) {
            let tags: HashMap<String, String> = api.tags().cloned().unwrap_or_default();
            let id = api.api_id().unwrap_or_default().to_string();
            if !stack.owns(&tags) {
                foreign.push(id);
                continue;
            }
            let cors = api.cors_configuration().map(|cors| Cors {
                allow_origins: cors.allow_origins().to_vec(),
                allow_methods: cors.allow_methods().to_vec(),
                allow_headers: cors.allow_headers().iter().map(|h| h.to_ascii_lowercase()).collect(),
                max_age: cors.max_age().unwrap_or_default(),
            });
            ours.push(HttpApiState {
                id,
                endpoint: api.api_endpoint().unwrap_or_default().to_string(),
                created: api.created_date().map(|d| d.secs()).unwrap_or_default(),
                run: tags.get(RUN_TAG).cloned(),
                cors: cors.unwrap_or_default(),
                integrations: vec![],
                authorizers: vec![],
                routes: BTreeMap::new(),
                stage: None,
                duplicates: vec![],
            });
        }
        next = match page.next_token() {
            Some(token) if Some(token) != next.as_deref() => Some(token.to_string()),
            _ => return Ok((ours, foreign)),
        };
    }
    bail!("listing HTTP APIs: API Gateway still had more after {MAX_PAGES} pages")
}

/// Every HTTP API named as the stack's, ours read whole side by side.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Found> {
    let (listed, foreign) = list(aws, stack).await?;
    let read_whole = listed.into_iter().map(|api| async move {
        match read(aws, api).await {
            Ok(api) => Ok(Some(api)),
            // Listed, then removed before it was read whole (a twin run retiring it): gone.
            Err(error) if AwsCallFailed::answered(&error, APIGATEWAY_NOT_FOUND) => Ok(None),
            Err(error) => Err(error),
        }
    });
    let mut ours: Vec<HttpApiState> = try_join_all(read_whole).await?.into_iter().flatten().collect();
    twins::oldest_first(&mut ours);
    Ok(Found { ours, foreign })
}

/// `api` with its integrations, authorizers, routes and stage.
async fn read(aws: &Aws, api: HttpApiState) -> Result<HttpApiState> {
    let v2 = &aws.apigatewayv2;
    let id = api.id.as_str();
    let integrations = async {
        let listed = v2.get_integrations().api_id(id).max_results("500").send().await;
        let listed = listed.aws_context(format!("reading the integrations of HTTP API {id}"))?;
        anyhow::Ok(
            listed
                .items()
                .iter()
                .map(|integration| IntegrationState {
                    id: integration.integration_id().unwrap_or_default().to_string(),
                    kind: integration.integration_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    uri: integration.integration_uri().unwrap_or_default().to_string(),
                    payload_format: integration.payload_format_version().unwrap_or_default().to_string(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let routes = async {
        let listed = v2.get_routes().api_id(id).max_results("500").send().await;
        let listed = listed.aws_context(format!("reading the routes of HTTP API {id}"))?;
        anyhow::Ok(
            listed
                .items()
                .iter()
                .map(|route| {
                    let state = RouteState {
                        id: route.route_id().unwrap_or_default().to_string(),
                        target: route.target().unwrap_or_default().to_string(),
                        authorization: route
                            .authorization_type()
                            .map(|t| t.as_str())
                            .unwrap_or("NONE")
                            .to_string(),
                        authorizer: route.authorizer_id().filter(|id| !id.is_empty()).map(str::to_string),
                    };
                    (route.route_key().unwrap_or_default().to_string(), state)
                })
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let authorizers = async {
        let listed = v2.get_authorizers().api_id(id).max_results("500").send().await;
        let listed = listed.aws_context(format!("reading the authorizers of HTTP API {id}"))?;
        anyhow::Ok(
            listed
                .items()
                .iter()
                .map(|authorizer| {
                    let jwt = authorizer.jwt_configuration();
                    AuthorizerState {
                        id: authorizer.authorizer_id().unwrap_or_default().to_string(),
                        name: authorizer.name().unwrap_or_default().to_string(),
                        kind: authorizer
                            .authorizer_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        identity_source: authorizer.identity_source().to_vec(),
                        issuer: jwt.and_then(|jwt| jwt.issuer()).unwrap_or_default().to_string(),
                        audience: jwt.map(|jwt| jwt.audience().to_vec()).unwrap_or_default(),
                    }
                })
                .collect::<Vec<_>>(),
        )
    };
    let stage = async {
        let found = v2.get_stage().api_id(id).stage_name(STAGE).send().await;
        let found =
            found.or_absent(APIGATEWAY_NOT_FOUND, format!("reading stage {STAGE} of HTTP API {id}"))?;
        anyhow::Ok(found.map(|stage| {
            let settings = stage.default_route_settings();
            let rate = settings.and_then(|s| s.throttling_rate_limit());
            let burst = settings.and_then(|s| s.throttling_burst_limit());
            StageState {
                auto_deploy: stage.auto_deploy().unwrap_or(false),
                throttle: rate
                    .zip(burst)
                    .map(|(rate_limit, burst_limit)| Throttle { rate_limit, burst_limit }),
            }
        }))
    };
    let (integrations, authorizers, routes, stage) =
        tokio::try_join!(integrations, authorizers, routes, stage)?;
    Ok(HttpApiState { integrations, authorizers, routes, stage, ..api })
}

/// What `up` does to the API object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiChange {
    Create,
    /// Its CORS is set as wanted.
    SetCors,
    /// Other HTTP APIs of this stack are removed; this one is kept.
    RemoveDuplicates {
        remove: Vec<String>,
    },
    Unchanged,
    /// Another gateway is asked for: the stack's HTTP APIs go once that one serves.
    Retire {
        remove: Vec<String>,
    },
    NotAskedFor,
}

impl Planned for ApiChange {
    fn summary(&self) -> Summary {
        match self {
            ApiChange::Create => Summary::create("no HTTP API yet"),
            ApiChange::SetCors => Summary::update("CORS changed"),
            ApiChange::RemoveDuplicates { remove } => {
                Summary::update(format!("more HTTP APIs of this stack: removes {}", remove.join(", ")))
            }
            ApiChange::Unchanged => Summary::unchanged(),
            ApiChange::Retire { remove } => Summary::delete(format!(
                "another gateway is asked for: removes {} once that one serves",
                remove.join(", ")
            )),
            ApiChange::NotAskedFor => Summary::not_asked_for(),
        }
    }
}

/// What `up` does to the JWT authorizer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthorizerChange {
    /// None is asked for: ours go (`remove`) once no route uses them.
    #[default]
    NotAskedFor,
    Create(JwtAuthorizer),
    /// The authorizer `id` is set to check as wanted.
    Set {
        id: String,
        wanted: JwtAuthorizer,
    },
    Unchanged(String),
}

impl AuthorizerChange {
    /// The authorizer's id, when it exists.
    fn id(&self) -> Option<&str> {
        match self {
            AuthorizerChange::Set { id, .. } | AuthorizerChange::Unchanged(id) => Some(id),
            AuthorizerChange::NotAskedFor | AuthorizerChange::Create(_) => None,
        }
    }
}

/// What `up` does to the integration, the JWT authorizer and the routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutesChange {
    /// `None`: make one; else the integration to set as wanted when `set_integration`.
    pub integration: Option<String>,
    pub set_integration: bool,
    pub authorizer: AuthorizerChange,
    /// Authorizers `up` made and no longer asks for: removed once the routes are set.
    pub remove_authorizers: Vec<String>,
    /// Route keys to make.
    pub add: Vec<String>,
    /// Route ids of ours to set again (target or authorization not as made).
    pub fix: Vec<String>,
    /// Routes `up` did not make (id, key): removed.
    pub remove: Vec<(String, String)>,
}

impl Planned for RoutesChange {
    fn summary(&self) -> Summary {
        if self.integration.is_none() {
            return Summary::create("no Lambda proxy integration yet");
        }
        let mut wrong = Vec::new();
        if self.set_integration {
            wrong.push("the integration is not a Lambda proxy (payload 2.0) to the function".to_string());
        }
        match &self.authorizer {
            AuthorizerChange::Create(_) => wrong.push("no JWT authorizer yet".to_string()),
            AuthorizerChange::Set { .. } => {
                wrong.push("the JWT authorizer checks another issuer, audience or header".to_string())
            }
            AuthorizerChange::NotAskedFor | AuthorizerChange::Unchanged(_) => {}
        }
        if !self.remove_authorizers.is_empty() {
            wrong.push("a JWT authorizer no longer asked for".to_string());
        }
        if !self.add.is_empty() {
            wrong.push(format!("missing routes: {}", self.add.join(", ")));
        }
        if !self.fix.is_empty() {
            wrong.push("routes with another target or authorization".to_string());
        }
        if !self.remove.is_empty() {
            let keys: Vec<&str> = self.remove.iter().map(|(_, key)| key.as_str()).collect();
            wrong.push(format!("routes up did not make: {}", keys.join(", ")));
        }
        if wrong.is_empty() { Summary::unchanged() } else { Summary::update(wrong.join("; ")) }
    }
}

/// What `up` does to stage `$default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageChange {
    Create,
    /// The settings that differ, by name.
    Update(Vec<&'static str>),
    Unchanged,
}

impl Planned for StageChange {
    fn summary(&self) -> Summary {
        match self {
            StageChange::Create => Summary::create("no stage $default yet"),
            StageChange::Update(differs) => Summary::update(format!("{} changed", differs.join(", "))),
            StageChange::Unchanged => Summary::unchanged(),
        }
    }
}

/// The HTTP API's changes, one a step; no parts when the stack asks for another gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpApiPlan {
    pub api: ApiChange,
    pub parts: Option<(RoutesChange, StageChange)>,
}

impl HttpApiPlan {
    pub fn routes_summary(&self) -> Summary {
        self.parts.as_ref().map_or_else(Summary::not_asked_for, |(routes, _)| routes.summary())
    }
    pub fn stage_summary(&self) -> Summary {
        self.parts.as_ref().map_or_else(Summary::not_asked_for, |(_, stage)| stage.summary())
    }
}

pub fn plan(desired: &Desired, observed: Option<&HttpApiState>) -> HttpApiPlan {
    if desired.gateway() != Gateway::Http {
        // One another run is building now is that run's to keep or remove: a twin switching
        // the other way (the agreement check then tells).
        let ours = || {
            let retired = observed.filter(|api| !api.being_built_by_another_run());
            retired.map(|api| std::iter::once(api.id.clone()).chain(api.duplicates.iter().cloned()))
        };
        let api = match ours() {
            Some(ids) => ApiChange::Retire { remove: ids.collect() },
            None => ApiChange::NotAskedFor,
        };
        return HttpApiPlan { api, parts: None };
    }
    let api = match observed {
        None => ApiChange::Create,
        Some(api) if !api.duplicates.is_empty() => {
            ApiChange::RemoveDuplicates { remove: api.duplicates.clone() }
        }
        Some(api) if api.cors != cors::wanted(desired) => ApiChange::SetCors,
        Some(_) => ApiChange::Unchanged,
    };
    HttpApiPlan { api, parts: Some(plan_parts(desired, observed)) }
}

/// The routes `up` makes: one a method the function answers but OPTIONS (API Gateway answers
/// preflights from the API's CORS).
fn wanted_routes(desired: &Desired) -> Vec<String> {
    let methods = desired.methods().iter().filter(|method| **method != "OPTIONS");
    methods.map(|method| format!("{method} {}", tokendeploy_config::TOKEN_PATH)).collect()
}

/// The integration and the routes and the stage, against `observed` (planned again once the
/// API exists, when it was made now).
pub fn plan_parts(desired: &Desired, observed: Option<&HttpApiState>) -> (RoutesChange, StageChange) {
    let function = desired.function_arn();
    let as_made = |integration: &&IntegrationState| {
        integration.kind == "AWS_PROXY"
            && integration.uri == function
            && integration.payload_format == PAYLOAD_FORMAT
    };
    let integrations = observed.map(|api| api.integrations.as_slice()).unwrap_or_default();
    // Of several (a lost answer's, retried), the one the token route already sends to.
    let targeted = |integration: &&IntegrationState| {
        let target = format!("integrations/{}", integration.id);
        observed.is_some_and(|api| api.routes.values().any(|route| route.target == target))
    };
    let chosen = integrations.iter().filter(as_made).find(targeted);
    let chosen = chosen.or(integrations.iter().find(as_made)).or(integrations.first());
    let (integration, set_integration) = match chosen {
        Some(found) => (Some(found.id.clone()), !as_made(&found)),
        None => (None, false),
    };
    let target = integration.as_ref().map(|id| format!("integrations/{id}"));
    let wanted = wanted_routes(desired);
    let none = BTreeMap::new();
    let routes = observed.map_or(&none, |api| &api.routes);
    let (authorizer, remove_authorizers) = plan_authorizer(desired, observed);
    // Guarded by the authorizer when one is asked for (a new one guards every route).
    let guarded_as_wanted = |route: &RouteState| match (&authorizer, authorizer.id()) {
        (AuthorizerChange::NotAskedFor, _) => route.authorization == "NONE",
        (_, id) => route.authorization == "JWT" && id.is_some() && route.authorizer.as_deref() == id,
    };
    let routes_change = RoutesChange {
        add: wanted.iter().filter(|key| !routes.contains_key(*key)).cloned().collect(),
        fix: routes
            .iter()
            .filter(|(key, route)| {
                wanted.contains(key) && (Some(&route.target) != target.as_ref() || !guarded_as_wanted(route))
            })
            .map(|(_, route)| route.id.clone())
            .collect(),
        remove: routes
            .iter()
            .filter(|(key, _)| !wanted.contains(key))
            .map(|(key, route)| (route.id.clone(), key.clone()))
            .collect(),
        integration,
        set_integration,
        authorizer,
        remove_authorizers,
    };
    let stage = match observed.and_then(|api| api.stage.as_ref()) {
        None => StageChange::Create,
        Some(stage) => {
            let differs: Vec<&'static str> = [
                (!stage.auto_deploy, "automatic deployment"),
                (stage.throttle != Some(desired.security.throttle), "limits"),
            ]
            .into_iter()
            .filter_map(|(differs, name)| differs.then_some(name))
            .collect();
            if differs.is_empty() { StageChange::Unchanged } else { StageChange::Update(differs) }
        }
    };
    (routes_change, stage)
}

/// The JWT authorizer's change, and the authorizers of ours that go. Of several (a lost
/// answer's, retried), the one the token routes use; others of ours that check as wanted are
/// left unused, as extra integrations are.
fn plan_authorizer(desired: &Desired, observed: Option<&HttpApiState>) -> (AuthorizerChange, Vec<String>) {
    let authorizers = observed.map(|api| api.authorizers.as_slice()).unwrap_or_default();
    let ours = authorizers.iter().filter(|authorizer| authorizer.name == AUTHORIZER_NAME);
    let Some(wanted) = desired.jwt_authorizer() else {
        return (AuthorizerChange::NotAskedFor, ours.map(|authorizer| authorizer.id.clone()).collect());
    };
    let used = |authorizer: &&AuthorizerState| {
        observed.is_some_and(|api| {
            api.routes.values().any(|route| route.authorizer.as_deref() == Some(authorizer.id.as_str()))
        })
    };
    let chosen = ours.clone().filter(|authorizer| authorizer.checks_as(&wanted)).find(used);
    let chosen =
        chosen.or(ours.clone().find(|authorizer| authorizer.checks_as(&wanted))).or(ours.clone().next());
    let change = match chosen {
        None => AuthorizerChange::Create(wanted),
        Some(found) if found.checks_as(&wanted) => AuthorizerChange::Unchanged(found.id.clone()),
        Some(found) => AuthorizerChange::Set { id: found.id.clone(), wanted },
    };
    (change, vec![])
}

/// Why IDENTITY_ISSUER cannot be an HTTP API's JWT authorizer's issuer, checked before any
/// AWS call: API Gateway reads `{issuer}/.well-known/openid-configuration`.
pub fn issuer_refusal(issuer: &str) -> Option<String> {
    if tokendeploy_config::is_valid_upstream_url(issuer) {
        return None;
    }
    Some("IDENTITY_ISSUER must be an https URL for the HTTP API's JWT authorizer (API Gateway reads the issuer's /.well-known/openid-configuration): set the issuer's URL, or pass --no-jwt-authorizer to leave callers' tokens to the function".into())
}

/// API Gateway's CORS for `cors`.
fn sdk_cors(cors: &Cors) -> aws_sdk_apigatewayv2::types::Cors {
    aws_sdk_apigatewayv2::types::Cors::builder()
        .set_allow_origins(Some(cors.allow_origins.clone()))
        .set_allow_methods(Some(cors.allow_methods.clone()))
        .set_allow_headers(Some(cors.allow_headers.clone()))
        .max_age(cors.max_age)
        .allow_credentials(false)
        .build()
}

/// Carries out the API object's change; returns the API as it now is: a new one as made and
/// settled with any twin run that made one at the same moment. A new API is made beside the
/// role; `role_maker` then says which run made the role: when this one (IAM lets only one of
/// several runs make it), no twin is making the stack, and only this run's own copies (a lost
/// answer, retried) go; otherwise the runs settle ([`twins::settle`]).
pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    change: &ApiChange,
    observed: Option<&HttpApiState>,
    role_maker: impl Future<Output = Option<String>>,
    progress: &dyn Progress,
) -> Result<HttpApiState> {
    let stack = &desired.stack;
    let v2 = &aws.apigatewayv2;
    match (change, observed) {
        (ApiChange::Create, _) | (_, None) => {
            let mut tags: HashMap<String, String> = stack.tags().into_iter().collect();
            tags.insert(RUN_TAG.into(), run_id().into());
            let create = v2
                .create_api()
                .name(stack.api_name())
                .protocol_type(ProtocolType::Http)
                .cors_configuration(sdk_cors(&cors::wanted(desired)))
                .set_tags(Some(tags))
                .send();
            let (made, role_maker) = tokio::join!(create, role_maker);
            let made = made.aws_context(format!("making HTTP API {}", stack.api_name()))?;
            let id = made.api_id().unwrap_or_default().to_string();
            match role_maker {
                Some(maker) if maker == run_id() => {
                    twins::remove_own_copies::<HttpApis>(aws, stack, Some(&id), progress).await?
                }
                // Another run made the role and is making the stack: this run goes on with
                // that run's API, once it is there, and removes its own.
                Some(maker) => {
                    if let Some(theirs) = await_api_of(aws, stack, &maker, progress).await? {
                        twins::remove_own_copies::<HttpApis>(aws, stack, None, progress).await?;
                        return read(aws, theirs).await;
                    }
                    twins::settle::<HttpApis>(aws, stack, &id, progress).await?
                }
                None => twins::settle::<HttpApis>(aws, stack, &id, progress).await?,
            }
            Ok(HttpApiState {
                id,
                endpoint: made.api_endpoint().unwrap_or_default().to_string(),
                created: made.created_date().map(|d| d.secs()).unwrap_or_default(),
                run: Some(run_id().to_string()),
                cors: cors::wanted(desired),
                integrations: vec![],
                authorizers: vec![],
                routes: BTreeMap::new(),
                stage: None,
                duplicates: vec![],
            })
        }
        (ApiChange::SetCors, Some(api)) => {
            let set = v2.update_api().api_id(&api.id).cors_configuration(sdk_cors(&cors::wanted(desired)));
            set.send().await.aws_context(format!("setting the CORS of HTTP API {}", api.id))?;
            Ok(HttpApiState { cors: cors::wanted(desired), ..api.clone() })
        }
        (ApiChange::RemoveDuplicates { remove }, Some(api)) => {
            for duplicate in remove {
                progress.note(Step::HttpApi, &format!("removing duplicate HTTP API {duplicate}"));
                delete(aws, duplicate).await?;
            }
            Ok(HttpApiState { duplicates: vec![], ..api.clone() })
        }
        (ApiChange::Unchanged, Some(api)) => Ok(api.clone()),
        (ApiChange::Retire { .. } | ApiChange::NotAskedFor, Some(_)) => {
            bail!("the stack asks for another gateway than an HTTP API")
        }
    }
}

/// How long a run that found the role made by another waits for that run's HTTP API.
const TWIN_API_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The HTTP API the run `maker` made, once listed; `None` if it is not within
/// [`TWIN_API_WAIT`] (that run died before making it).
async fn await_api_of(
    aws: &Aws,
    stack: &Stack,
    maker: &str,
    progress: &dyn Progress,
) -> Result<Option<HttpApiState>> {
    let started = std::time::Instant::now();
    progress.note(Step::HttpApi, "another run made the role: waiting for its HTTP API");
    while started.elapsed() < TWIN_API_WAIT {
        let (ours, _) = list(aws, stack).await?;
        if let Some(theirs) = ours.into_iter().find(|api| api.run.as_deref() == Some(maker)) {
            progress.note(Step::HttpApi, &format!("going on with the other run's HTTP API {}", theirs.id));
            return Ok(Some(theirs));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Ok(None)
}

/// Makes or sets the integration and the JWT authorizer side by side, then the routes side by
/// side, then removes the authorizers no longer asked for.
pub async fn apply_routes(aws: &Aws, desired: &Desired, api_id: &str, change: &RoutesChange) -> Result<()> {
    let v2 = &aws.apigatewayv2;
    let (integration, authorizer) = tokio::try_join!(
        apply_integration(aws, desired, api_id, change),
        apply_authorizer(aws, api_id, change)
    )?;
    let target = &format!("integrations/{integration}");
    let (authorization, authorizer) = match authorizer {
        Some(id) => (AuthorizationType::Jwt, Some(id)),
        None => (AuthorizationType::None, None),
    };
    let (authorization, authorizer) = (&authorization, &authorizer);
    let add = change.add.iter().map(|key| async move {
        let make = v2.create_route().api_id(api_id).route_key(key).target(target);
        match make
            .authorization_type(authorization.clone())
            .set_authorizer_id(authorizer.clone())
            .send()
            .await
        {
            // There already: our own call's, whose answer was lost (the SDK tried again), or a
            // twin run's to the same function.
            Err(e) if error_code(&e) == Some(CONFLICT) => Ok(()),
            made => made.aws_context(format!("making route {key} of HTTP API {api_id}")).map(drop),
        }
    });
    let fix = change.fix.iter().map(|id| async move {
        let set = v2.update_route().api_id(api_id).route_id(id).target(target);
        let set = set.authorization_type(authorization.clone()).set_authorizer_id(authorizer.clone());
        set.send().await.aws_context(format!("setting route {id} of HTTP API {api_id}")).map(drop)
    });
    let remove = change.remove.iter().map(|(id, key)| async move {
        let removed = v2.delete_route().api_id(api_id).route_id(id).send().await;
        removed
            .or_absent(APIGATEWAY_NOT_FOUND, format!("removing route {key} of HTTP API {api_id}"))
            .map(drop)
    });
    tokio::try_join!(try_join_all(add), try_join_all(fix), try_join_all(remove))?;
    let retire = change.remove_authorizers.iter().map(|id| async move {
        let removed = v2.delete_authorizer().api_id(api_id).authorizer_id(id).send().await;
        removed
            .or_absent(APIGATEWAY_NOT_FOUND, format!("removing JWT authorizer {id} of HTTP API {api_id}"))
            .map(drop)
    });
    try_join_all(retire).await?;
    Ok(())
}

/// Makes or sets the Lambda proxy integration; its id.
async fn apply_integration(
    aws: &Aws,
    desired: &Desired,
    api_id: &str,
    change: &RoutesChange,
) -> Result<String> {
    let v2 = &aws.apigatewayv2;
    let function = desired.function_arn();
    Ok(match (&change.integration, change.set_integration) {
        (Some(id), false) => id.clone(),
        (Some(id), true) => {
            let set = v2
                .update_integration()
                .api_id(api_id)
                .integration_id(id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_uri(&function)
                .payload_format_version(PAYLOAD_FORMAT);
            set.send().await.aws_context(format!("setting the integration of HTTP API {api_id}"))?;
            id.clone()
        }
        (None, _) => {
            let make = v2
                .create_integration()
                .api_id(api_id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_uri(&function)
                .payload_format_version(PAYLOAD_FORMAT);
            let made =
                make.send().await.aws_context(format!("making the integration of HTTP API {api_id}"))?;
            made.integration_id().unwrap_or_default().to_string()
        }
    })
}

/// Makes or sets the JWT authorizer; its id, when one is asked for.
async fn apply_authorizer(aws: &Aws, api_id: &str, change: &RoutesChange) -> Result<Option<String>> {
    let v2 = &aws.apigatewayv2;
    let jwt = |wanted: &JwtAuthorizer| {
        JwtConfiguration::builder().issuer(&wanted.issuer).audience(&wanted.audience).build()
    };
    match &change.authorizer {
        AuthorizerChange::NotAskedFor => Ok(None),
        AuthorizerChange::Unchanged(id) => Ok(Some(id.clone())),
        AuthorizerChange::Set { id, wanted } => {
            let set = v2
                .update_authorizer()
                .api_id(api_id)
                .authorizer_id(id)
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source(IDENTITY_SOURCE)
                .jwt_configuration(jwt(wanted));
            set.send().await.aws_context(format!("setting the JWT authorizer of HTTP API {api_id}"))?;
            Ok(Some(id.clone()))
        }
        AuthorizerChange::Create(wanted) => {
            let make = v2
                .create_authorizer()
                .api_id(api_id)
                .name(AUTHORIZER_NAME)
                .authorizer_type(AuthorizerType::Jwt)
                .identity_source(IDENTITY_SOURCE)
                .jwt_configuration(jwt(wanted));
            let made =
                make.send().await.aws_context(format!("making the JWT authorizer of HTTP API {api_id}"))?;
            Ok(Some(made.authorizer_id().unwrap_or_default().to_string()))
        }
    }
}

/// Makes or sets stage `$default`: deployed automatically, every route's limits.
pub async fn apply_stage(aws: &Aws, desired: &Desired, api_id: &str, change: &StageChange) -> Result<()> {
    let Throttle { rate_limit, burst_limit } = desired.security.throttle;
    let limits = RouteSettings::builder()
        .throttling_rate_limit(rate_limit)
        .throttling_burst_limit(burst_limit)
        .build();
    let v2 = &aws.apigatewayv2;
    let doing = format!("setting stage {STAGE} of HTTP API {api_id}");
    match change {
        StageChange::Unchanged => Ok(()),
        StageChange::Create => {
            let make = v2.create_stage().api_id(api_id).stage_name(STAGE).auto_deploy(true);
            match make.default_route_settings(limits.clone()).send().await {
                // Made meanwhile (a lost answer, a twin run): set as wanted.
                Err(e) if error_code(&e) == Some(CONFLICT) => {
                    Box::pin(apply_stage(aws, desired, api_id, &StageChange::Update(vec![]))).await
                }
                made => made.aws_context(doing).map(drop),
            }
        }
        StageChange::Update(_) => {
            let set = v2
                .update_stage()
                .api_id(api_id)
                .stage_name(STAGE)
                .auto_deploy(true)
                .default_route_settings(limits);
            set.send().await.aws_context(doing).map(drop)
        }
    }
}

/// Deletes the API with its routes, integrations and stages. Gone already is fine.
pub async fn delete(aws: &Aws, id: &str) -> Result<()> {
    let deleted = aws.apigatewayv2.delete_api().api_id(id).send().await;
    deleted.or_absent(APIGATEWAY_NOT_FOUND, format!("deleting HTTP API {id}")).map(drop)
}

/// HTTP APIs as twin runs may each make them.
pub struct HttpApis;

impl twins::Gateway for HttpApis {
    type Copy = HttpApiState;
    const KIND: &'static str = KIND;
    const STEP: Step = Step::HttpApi;

    fn run(copy: &HttpApiState) -> Option<&str> {
        copy.run.as_deref()
    }

    async fn list(aws: &Aws, stack: &Stack) -> Result<Vec<HttpApiState>> {
        Ok(list(aws, stack).await?.0)
    }

    async fn delete(aws: &Aws, id: &str, _: &dyn Progress) -> Result<()> {
        delete(aws, id).await
    }
}

/// The URL that answers token requests at the API's `endpoint`, or with an endpoint override
/// (an emulator) the path tokendeploy's emulator serves it at, which needs no DNS:
/// `ENDPOINT/http-api/{api-id}/token`.
pub fn token_url(api: &HttpApiState, endpoint: Option<&str>) -> String {
    let path = tokendeploy_config::TOKEN_PATH;
    match endpoint {
        Some(endpoint) => format!("{}/http-api/{}{path}", endpoint.trim_end_matches('/'), api.id),
        None => format!("{}{path}", api.endpoint.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Security;
    use crate::vocabulary::Action;

    fn desired(gateway: Gateway) -> Desired {
        Desired::secured(
            "sha",
            &[("ALLOWED_ORIGINS", "https://a.example")],
            Security { gateway, ..Security::default() },
        )
    }

    fn made(desired: &Desired) -> HttpApiState {
        let integration = IntegrationState {
            id: "i1".into(),
            kind: "AWS_PROXY".into(),
            uri: desired.function_arn(),
            payload_format: "2.0".into(),
        };
        let route = RouteState {
            id: "r1".into(),
            target: "integrations/i1".into(),
            authorization: "NONE".into(),
            authorizer: None,
        };
        HttpApiState {
            id: "abc".into(),
            endpoint: "https://abc.execute-api.us-west-1.amazonaws.com".into(),
            created: 1,
            run: None,
            cors: cors::wanted(desired),
            integrations: vec![integration],
            authorizers: vec![],
            routes: BTreeMap::from([("GET /token".to_string(), route)]),
            stage: Some(StageState { auto_deploy: true, throttle: Some(Throttle::DEFAULT) }),
            duplicates: vec![],
        }
    }

    #[test]
    fn an_api_as_made_plans_nothing_and_each_part_that_differs_is_named() {
        let wanted = desired(Gateway::Http);
        let fresh = plan(&wanted, None);
        assert_eq!(fresh.api, ApiChange::Create);
        assert_eq!(fresh.routes_summary().action, Action::Create);
        assert_eq!(fresh.stage_summary().action, Action::Create);
        let done = made(&wanted);
        let unchanged = plan(&wanted, Some(&done));
        assert_eq!(
            (unchanged.api.action(), unchanged.routes_summary(), unchanged.stage_summary()),
            (Action::Unchanged, Summary::unchanged(), Summary::unchanged())
        );
        let mut by_hand = made(&wanted);
        by_hand.routes.clear();
        by_hand.routes.insert(
            "ANY /{proxy+}".into(),
            RouteState {
                id: "r9".into(),
                target: "integrations/i1".into(),
                authorization: "NONE".into(),
                authorizer: None,
            },
        );
        by_hand.stage = Some(StageState { auto_deploy: true, throttle: None });
        by_hand.cors.allow_origins = vec!["*".into()];
        let repaired = plan(&wanted, Some(&by_hand));
        assert_eq!(repaired.api, ApiChange::SetCors);
        assert_eq!(
            repaired.routes_summary(),
            Summary::update("missing routes: GET /token; routes up did not make: ANY /{proxy+}")
        );
        assert_eq!(repaired.stage_summary(), Summary::update("limits changed"));
    }

    /// Livekit behind an HTTP API, callers' tokens checked with a key set.
    fn minting(security: Security) -> Desired {
        let identity = [
            ("TOKEN_PROVIDER", "livekit"),
            ("IDENTITY_JWKS_URL", "https://issuer.example/jwks.json"),
            ("IDENTITY_ISSUER", "https://issuer.example/"),
            ("IDENTITY_AUDIENCE", "app"),
        ];
        Desired::secured("sha", &identity, security)
    }

    fn guarded(desired: &Desired) -> HttpApiState {
        let mut api = made(desired);
        let wanted = desired.jwt_authorizer().unwrap();
        api.authorizers = vec![AuthorizerState {
            id: "a1".into(),
            name: AUTHORIZER_NAME.into(),
            kind: "JWT".into(),
            identity_source: vec![IDENTITY_SOURCE.into()],
            issuer: wanted.issuer,
            audience: vec![wanted.audience],
        }];
        for (key, route) in [("GET /token", "r1"), ("POST /token", "r2")] {
            let route = RouteState {
                id: route.into(),
                target: "integrations/i1".into(),
                authorization: "JWT".into(),
                authorizer: Some("a1".into()),
            };
            api.routes.insert(key.into(), route);
        }
        api
    }

    #[test]
    fn a_key_set_behind_an_http_api_gets_the_apis_jwt_authorizer_on_every_route() {
        let wanted = minting(Security { gateway: Gateway::Http, ..Security::default() });
        let (fresh, _) = plan_parts(&wanted, None);
        assert!(matches!(fresh.authorizer, AuthorizerChange::Create(ref jwt) if jwt.audience == "app"));
        let done = guarded(&wanted);
        let (unchanged, _) = plan_parts(&wanted, Some(&done));
        assert_eq!(unchanged.summary(), Summary::unchanged());
        // Opened by hand: the route without it, the authorizer for another audience.
        let mut opened = guarded(&wanted);
        opened.routes.get_mut("POST /token").unwrap().authorization = "NONE".into();
        opened.authorizers[0].audience = vec!["anyone".into()];
        let (repaired, _) = plan_parts(&wanted, Some(&opened));
        assert_eq!(repaired.fix, ["r2"]);
        assert_eq!(
            repaired.authorizer,
            AuthorizerChange::Set { id: "a1".into(), wanted: wanted.jwt_authorizer().unwrap() }
        );
        assert_eq!(
            repaired.summary(),
            Summary::update(
                "the JWT authorizer checks another issuer, audience or header; routes with another target or authorization"
            )
        );
    }

    #[test]
    fn without_a_key_set_or_with_no_jwt_authorizer_the_routes_are_open_and_ours_goes() {
        let opted_out = Security { gateway: Gateway::Http, jwt_authorizer: false, ..Security::default() };
        let shared_secret = Desired::secured(
            "sha",
            &[
                ("TOKEN_PROVIDER", "livekit"),
                ("IDENTITY_HS256_SECRET", "s"),
                ("IDENTITY_ISSUER", "i"),
                ("IDENTITY_AUDIENCE", "a"),
            ],
            Security { gateway: Gateway::Http, ..Security::default() },
        );
        let trusting = Desired::secured(
            "sha",
            &[
                ("TOKEN_PROVIDER", "livekit"),
                ("IDENTITY_MODE", "Trust"),
                ("IDENTITY_JWKS_URL", "https://i/j"),
            ],
            Security { gateway: Gateway::Http, ..Security::default() },
        );
        let behind_rest = minting(Security::default());
        for desired in [minting(opted_out), shared_secret, trusting, behind_rest] {
            assert_eq!(desired.jwt_authorizer(), None, "{desired:?}");
        }
        let was_guarded = guarded(&minting(Security { gateway: Gateway::Http, ..Security::default() }));
        let (change, _) = plan_parts(&minting(opted_out), Some(&was_guarded));
        assert_eq!(
            (change.fix, change.remove_authorizers),
            (vec!["r1".to_string(), "r2".into()], vec!["a1".to_string()])
        );
    }

    #[test]
    fn an_issuer_api_gateway_cannot_ask_for_keys_is_refused_before_any_call() {
        assert_eq!(issuer_refusal("https://issuer.example/"), None);
        assert_eq!(issuer_refusal("http://127.0.0.1:8080"), None);
        for issuer in ["issuer.example", "http://issuer.example/", "", "https://user:pw@issuer.example/"] {
            assert!(issuer_refusal(issuer).unwrap().contains("--no-jwt-authorizer"), "{issuer}");
        }
    }

    #[test]
    fn another_gateway_retires_every_http_api_of_the_stack() {
        let rest = desired(Gateway::Rest);
        let api = HttpApiState { duplicates: vec!["dup".into()], ..made(&rest) };
        assert_eq!(
            plan(&rest, Some(&api)).api,
            ApiChange::Retire { remove: vec!["abc".into(), "dup".into()] }
        );
        assert_eq!(plan(&rest, None).api.summary(), Summary::not_asked_for());
        assert_eq!(plan(&rest, None).routes_summary(), Summary::not_asked_for());
    }

    #[test]
    fn the_token_url_is_api_gateways_or_the_emulators() {
        let api = made(&desired(Gateway::Http));
        assert_eq!(token_url(&api, None), "https://abc.execute-api.us-west-1.amazonaws.com/token");
        assert_eq!(
            token_url(&api, Some("http://127.0.0.1:5000")),
            "http://127.0.0.1:5000/http-api/abc/token"
        );
    }
}
