//! The methods on `{proxy+}` and their integrations, described as data ([`MethodSpec`]): which
//! HTTP method, how it is authorised, whether it needs an API key, where it goes.

use std::collections::BTreeMap;

use anyhow::Result;
use aws_sdk_apigateway::types::{IntegrationType, Resource};
use futures::future::try_join_all;
use tokendeploy_config::ProviderKind;

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt, error_code};
use crate::desired::Desired;
use crate::resources::rest_api::resource::PROXY_PATH;
use crate::retry::{APIGATEWAY_BUSY_LIMIT, APIGATEWAY_CONFLICT, Backoff, apigateway_busy, retrying};
use crate::vocabulary::{Planned, Progress, Step, Summary};

/// One method `up` puts on `{proxy+}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSpec {
    pub http_method: &'static str,
    /// API Gateway's `authorizationType`.
    pub authorization: &'static str,
    pub api_key_required: bool,
    pub integration: Integration,
}

/// Where a method's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integration {
    /// The function, with the whole request (`AWS_PROXY`).
    LambdaProxy,
}

/// The methods the function answers, each sent to the function: the function itself decides
/// who gets a token, and answers CORS preflights. With `--api-key`, API Gateway asks for the
/// key first on every method but OPTIONS: a browser's preflight never carries it.
pub fn wanted(desired: &Desired) -> Vec<MethodSpec> {
    let spec = |http_method| MethodSpec {
        http_method,
        authorization: "NONE",
        api_key_required: desired.security.api_key && http_method != "OPTIONS",
        integration: Integration::LambdaProxy,
    };
    desired.methods().iter().copied().map(spec).collect()
}

impl Integration {
    fn state(self, desired: &Desired) -> IntegrationState {
        match self {
            Integration::LambdaProxy => IntegrationState {
                kind: "AWS_PROXY".into(),
                // Lambda proxy integrations always call Lambda with POST, whatever the method.
                http_method: "POST".into(),
                uri: desired.integration_uri(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodState {
    pub authorization: String,
    pub api_key_required: bool,
    pub integration: Option<IntegrationState>,
}

impl MethodState {
    fn is_as(&self, spec: &MethodSpec) -> bool {
        self.authorization == spec.authorization && self.api_key_required == spec.api_key_required
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationState {
    pub kind: String,
    pub http_method: String,
    pub uri: String,
}

/// A method on the root or `{proxy+}` that `up` did not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraMethod {
    pub resource_id: String,
    pub path: String,
    pub method: String,
}

impl std::fmt::Display for ExtraMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// The methods on the root, and on `{proxy+}` those no provider's function answers. (Which
/// of the others are wanted depends on the provider: [`plan`] decides.)
pub fn extra(resources: &[Resource], root_id: &str, proxy_id: Option<&str>) -> Vec<ExtraMethod> {
    let known = ProviderKind::every_method();
    let mut extra = Vec::new();
    for resource in resources {
        let id = resource.id().unwrap_or_default();
        let allowed: &[&str] = if Some(id) == proxy_id { &known } else { &[] };
        if id != root_id && Some(id) != proxy_id {
            continue; // the whole resource goes
        }
        let methods = resource.resource_methods().into_iter().flat_map(|m| m.keys());
        for method in methods.filter(|m| !allowed.contains(&m.as_str())) {
            let path = resource.path().unwrap_or_default().into();
            extra.push(ExtraMethod { resource_id: id.into(), path, method: method.clone() });
        }
    }
    extra
}

/// The methods any provider's function answers found on `{proxy+}`, by HTTP method, from the
/// resources as read with their methods embedded (integrations included): no call per method.
pub fn found(resources: &[Resource], proxy_id: &str) -> BTreeMap<String, MethodState> {
    let proxy = resources.iter().find(|r| r.id() == Some(proxy_id));
    let on_proxy = proxy.and_then(|p| p.resource_methods());
    let mut methods = BTreeMap::new();
    for http_method in ProviderKind::every_method() {
        let Some(method) = on_proxy.and_then(|all| all.get(http_method)) else {
            continue;
        };
        let integration = method.method_integration().map(|i| IntegrationState {
            kind: i.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            http_method: i.http_method().unwrap_or_default().to_string(),
            uri: i.uri().unwrap_or_default().to_string(),
        });
        methods.insert(
            http_method.to_string(),
            MethodState {
                authorization: method.authorization_type().unwrap_or_default().to_string(),
                api_key_required: method.api_key_required().unwrap_or_default(),
                integration,
            },
        );
    }
    methods
}

/// Reads by itself the integration of each method the embedded reading showed without one.
/// API Gateway's reference does not say that `embed=methods` carries each method's
/// `methodIntegration` (moto's does): if AWS left it out, every `up` would make the
/// integrations again. A method really without one costs one call each time it is read.
pub async fn confirm_integrations(
    aws: &Aws,
    api_id: &str,
    proxy_id: &str,
    methods: &mut BTreeMap<String, MethodState>,
) -> Result<()> {
    let missing = methods.iter_mut().filter(|(_, method)| method.integration.is_none());
    let reads = missing.map(|(http_method, method)| async move {
        let read = aws
            .apigateway
            .get_integration()
            .rest_api_id(api_id)
            .resource_id(proxy_id)
            .http_method(http_method.as_str())
            .send()
            .await;
        let doing = format!("reading the integration of {http_method} {PROXY_PATH} of REST API {api_id}");
        method.integration = read.or_absent(APIGATEWAY_NOT_FOUND, doing)?.map(|i| IntegrationState {
            kind: i.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            http_method: i.http_method().unwrap_or_default().to_string(),
            uri: i.uri().unwrap_or_default().to_string(),
        });
        anyhow::Ok(())
    });
    try_join_all(reads).await.map(drop)
}

/// What `up` does to the methods (not their integrations: [`IntegrationChange`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodChange {
    pub remove: Vec<ExtraMethod>,
    pub put: Vec<MethodSpec>,
    /// Present, but authorised or keyed otherwise.
    pub update: Vec<MethodSpec>,
    /// None of the wanted methods exists yet.
    none_yet: bool,
}

impl Planned for MethodChange {
    fn summary(&self) -> Summary {
        let wrong: Vec<&str> = self.put.iter().chain(&self.update).map(|spec| spec.http_method).collect();
        let mut summary = match (wrong.is_empty(), self.none_yet) {
            (true, _) => Summary::unchanged(),
            (false, true) => Summary::create(format!("method for {}", wrong.join(", "))),
            (false, false) => Summary::update(format!("method of {} missing or different", wrong.join(", "))),
        };
        if !self.remove.is_empty() {
            let extra: Vec<String> = self.remove.iter().map(ExtraMethod::to_string).collect();
            let reason = format!("methods up did not make: {}", extra.join(", "));
            summary = match summary.action {
                crate::vocabulary::Action::Unchanged => Summary::update(reason),
                action => Summary { action, reason: format!("{}; {reason}", summary.reason) },
            };
        }
        summary
    }
}

/// `proxy`: `{proxy+}`'s id and path, where it exists: methods found there that this provider's
/// function does not answer (POST, after a minting provider) are removed.
pub fn plan(
    desired: &Desired,
    observed: &BTreeMap<String, MethodState>,
    extra: &[ExtraMethod],
    proxy: Option<(&str, &str)>,
) -> MethodChange {
    let wanted = wanted(desired);
    let (mut put, mut update) = (Vec::new(), Vec::new());
    for spec in &wanted {
        match observed.get(spec.http_method) {
            None => put.push(*spec),
            Some(state) if !state.is_as(spec) => update.push(*spec),
            Some(_) => {}
        }
    }
    let mut remove = extra.to_vec();
    if let Some((resource_id, path)) = proxy {
        let unwanted =
            observed.keys().filter(|method| !wanted.iter().any(|spec| spec.http_method == *method));
        remove.extend(unwanted.map(|method| ExtraMethod {
            resource_id: resource_id.into(),
            path: path.into(),
            method: method.clone(),
        }));
    }
    MethodChange { remove, none_yet: observed.is_empty(), put, update }
}

pub async fn apply(
    aws: &Aws,
    api_id: &str,
    proxy_id: &str,
    change: &MethodChange,
    progress: &dyn Progress,
) -> Result<()> {
    let api = &aws.apigateway;
    let note = |message: &str| progress.note(Step::Methods, message);
    for extra in &change.remove {
        let ExtraMethod { resource_id, path, method } = extra;
        let deleted =
            api.delete_method().rest_api_id(api_id).resource_id(resource_id).http_method(method).send().await;
        deleted.or_absent(
            APIGATEWAY_NOT_FOUND,
            format!("removing method {method} {path} from REST API {api_id}"),
        )?;
    }
    // Each method on its own, side by side (API Gateway's refusals of concurrent changes to one
    // API are waited out).
    let put_method = |spec: &MethodSpec| {
        let spec = *spec;
        async move {
            let put = || {
                api.put_method()
                    .rest_api_id(api_id)
                    .resource_id(proxy_id)
                    .http_method(spec.http_method)
                    .authorization_type(spec.authorization)
                    .api_key_required(spec.api_key_required)
                    .send()
            };
            let put = retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_busy, note, put).await;
            // There already: our own call whose answer was lost, retried; the integration is put
            // over it either way.
            match put {
                Err(e) if error_code(&e) == Some(APIGATEWAY_CONFLICT) => Ok(()),
                put => put
                    .aws_context(format!("adding method {} to REST API {api_id}", spec.http_method))
                    .map(drop),
            }
        }
    };
    // A method authorised or keyed otherwise is made again rather than patched (moto has no
    // UpdateMethod; on AWS both do): clients see the change only once the stage is redeployed.
    // Its integration goes with it, and is planned again (`plan_parts`).
    let replace = change.update.iter().map(|spec| async move {
        let delete = || {
            api.delete_method().rest_api_id(api_id).resource_id(proxy_id).http_method(spec.http_method).send()
        };
        retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_busy, note, delete).await.or_absent(
            APIGATEWAY_NOT_FOUND,
            format!("replacing method {} in REST API {api_id}", spec.http_method),
        )?;
        put_method(spec).await
    });
    let put = change.put.iter().map(put_method);
    tokio::try_join!(try_join_all(replace), try_join_all(put))?;
    Ok(())
}

/// The methods whose integration `up` puts (again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationChange {
    pub put: Vec<MethodSpec>,
    /// No wanted method has an integration yet.
    none_yet: bool,
}

impl Planned for IntegrationChange {
    fn summary(&self) -> Summary {
        let wrong: Vec<&str> = self.put.iter().map(|spec| spec.http_method).collect();
        match (wrong.is_empty(), self.none_yet) {
            (true, _) => Summary::unchanged(),
            (false, true) => Summary::create(format!("integration for {}", wrong.join(", "))),
            (false, false) => {
                Summary::update(format!("integration of {} missing or different", wrong.join(", ")))
            }
        }
    }
}

pub fn plan_integrations(desired: &Desired, observed: &BTreeMap<String, MethodState>) -> IntegrationChange {
    let current = |spec: &MethodSpec| observed.get(spec.http_method).and_then(|m| m.integration.as_ref());
    let wanted = wanted(desired);
    let put: Vec<MethodSpec> = wanted
        .iter()
        .copied()
        .filter(|spec| current(spec) != Some(&spec.integration.state(desired)))
        .collect();
    let none_yet = wanted.iter().all(|spec| current(spec).is_none());
    IntegrationChange { put, none_yet }
}

pub async fn apply_integrations(
    aws: &Aws,
    desired: &Desired,
    api_id: &str,
    proxy_id: &str,
    change: &IntegrationChange,
    progress: &dyn Progress,
) -> Result<()> {
    let note = |message: &str| progress.note(Step::Integrations, message);
    let put = change.put.iter().map(|spec| async move {
        let method = spec.http_method;
        let wanted = spec.integration.state(desired);
        let put = || {
            aws.apigateway
                .put_integration()
                .rest_api_id(api_id)
                .resource_id(proxy_id)
                .http_method(method)
                .r#type(IntegrationType::from(wanted.kind.as_str()))
                .integration_http_method(&wanted.http_method)
                .uri(&wanted.uri)
                .send()
        };
        retrying(APIGATEWAY_BUSY_LIMIT, Backoff::SHORT, apigateway_busy, note, put)
            .await
            .aws_context(format!("integrating method {method} of REST API {api_id} with the function"))
            .map(drop)
    });
    try_join_all(put).await?;
    Ok(())
}

/// GET and every other method found are there with their integrations: nothing is left to
/// build (whichever provider the run that builds it deploys).
pub fn all_integrated(observed: &BTreeMap<String, MethodState>) -> bool {
    observed.contains_key("GET") && observed.values().all(|method| method.integration.is_some())
}
