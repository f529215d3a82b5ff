//! The REST API: REGIONAL, a `{proxy+}` resource under its root, GET and OPTIONS methods with
//! Lambda proxy integrations, deployed to stage `prod`.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::retry::RetryConfig;
use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IntegrationType, Op, PatchOperation};

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt, error_code};
use crate::desired::Desired;
use crate::plan::{Action, Change, Plan, Step};
use crate::progress::{Progress, StepReport, run_step};
use crate::resources::foreign;
use crate::stack::{STACK_TAG, STAGE, Stack};

/// GET serves tokens; OPTIONS reaches the function too, which answers CORS preflights.
pub const METHODS: [&str; 2] = ["GET", "OPTIONS"];
pub const PROXY_PATH: &str = "/{proxy+}";
const PROXY_PART: &str = "{proxy+}";
const AUTHORIZATION: &str = "NONE";
const INTEGRATION_TYPE: &str = "AWS_PROXY";
/// Lambda proxy integrations always call Lambda with POST, whatever the client's method.
const INTEGRATION_METHOD: &str = "POST";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiState {
    pub id: String,
    pub root_id: String,
    pub proxy: Option<ProxyState>,
    /// The description of the deployment stage `prod` serves; `None` with no stage.
    pub deployed: Option<String>,
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

/// The REST APIs named as the stack's: ids of ours (normally at most one) and of others'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiList {
    pub ours: Vec<String>,
    pub foreign: Vec<String>,
}

pub async fn list(aws: &Aws, stack: &Stack) -> Result<ApiList> {
    let mut list = ApiList::default();
    let mut position = None;
    loop {
        let page = aws
            .apigateway
            .get_rest_apis()
            .limit(500)
            .set_position(position)
            .send()
            .await
            .aws_context("listing REST APIs")?;
        for api in page.items().iter().filter(|api| api.name() == Some(stack.api_name())) {
            let id = api.id().unwrap_or_default().to_string();
            match stack.owns(&api.tags().cloned().unwrap_or_default()) {
                true => list.ours.push(id),
                false => list.foreign.push(id),
            }
        }
        position = page.position().map(str::to_string);
        if position.is_none() {
            return Ok(list);
        }
    }
}

/// The stack's REST API with its resources, methods and stage, for `up`: with none of ours,
/// another's of that name is refused, and two of ours cannot be told apart.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Option<ApiState>> {
    let name = stack.api_name();
    let list = list(aws, stack).await?;
    let id = match list.ours.as_slice() {
        [] if !list.foreign.is_empty() => return Err(foreign(KIND, name, stack)),
        [] => return Ok(None),
        [id] => id.clone(),
        ids => bail!(
            "{} REST APIs named {name:?} carry {STACK_TAG}={}: {}; run `tokendeploy down` to remove them all, then up again",
            ids.len(),
            stack.name,
            ids.join(", ")
        ),
    };
    read(aws, &id).await.map(Some)
}

async fn read(aws: &Aws, id: &str) -> Result<ApiState> {
    let resources = aws
        .apigateway
        .get_resources()
        .rest_api_id(id)
        .limit(500)
        .send()
        .await
        .aws_context(format!("reading the resources of REST API {id}"))?;
    let path_id = |path: &str| {
        resources.items().iter().find(|r| r.path() == Some(path)).and_then(|r| r.id().map(str::to_string))
    };
    let root_id = path_id("/").with_context(|| format!("REST API {id} has no root resource"))?;
    let proxy = match path_id(PROXY_PATH) {
        None => None,
        Some(proxy_id) => Some(ProxyState { methods: read_methods(aws, id, &proxy_id).await?, id: proxy_id }),
    };
    Ok(ApiState { id: id.to_string(), root_id, proxy, deployed: read_stage(aws, id).await? })
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

async fn read_stage(aws: &Aws, api_id: &str) -> Result<Option<String>> {
    let found = aws.apigateway.get_stage().rest_api_id(api_id).stage_name(STAGE).send().await;
    let Some(stage) =
        found.or_absent(APIGATEWAY_NOT_FOUND, format!("reading stage {STAGE} of REST API {api_id}"))?
    else {
        return Ok(None);
    };
    let Some(deployment_id) = stage.deployment_id() else {
        return Ok(Some(String::new()));
    };
    let deployment = aws
        .apigateway
        .get_deployment()
        .rest_api_id(api_id)
        .deployment_id(deployment_id)
        .send()
        .await
        .aws_context(format!("reading deployment {deployment_id} of REST API {api_id}"))?;
    Ok(Some(deployment.description().unwrap_or_default().to_string()))
}

/// The API chain's steps: REST API, `{proxy+}` resource, methods, integrations, deployment.
pub fn plan(desired: &Desired, observed: Option<&ApiState>) -> Vec<(Step, Change)> {
    let proxy = observed.and_then(|api| api.proxy.as_ref());
    let methods = proxy.map(|p| &p.methods);
    let rest_api = match observed {
        None => Change::create("no REST API yet"),
        Some(_) => Change::unchanged(),
    };
    let proxy_resource = match proxy {
        None => Change::create(format!("no {PROXY_PATH} resource yet")),
        Some(_) => Change::unchanged(),
    };
    let method_change = per_method(methods, "method", |_| true, |m| m.authorization == AUTHORIZATION);
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
    let deployment = match observed.and_then(|api| api.deployed.as_ref()) {
        None => Change::create(format!("no stage {STAGE} yet")),
        Some(_) if api_changes => Change::update("the API changes"),
        Some(description) if *description != deployment_description(desired) => {
            Change::update(format!("stage {STAGE} serves an older version of the API"))
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

    let ((api_id, root_id), report) = run_step(progress, Step::RestApi, plan.action(Step::RestApi), async {
        match observed {
            Some(state) => Ok((state.id.clone(), state.root_id.clone())),
            None => create_api(aws, &desired.stack).await,
        }
    })
    .await?;
    reports.push(report);

    let proxy = observed.and_then(|s| s.proxy.as_ref());
    let (proxy_id, report) =
        run_step(progress, Step::ProxyResource, plan.action(Step::ProxyResource), async {
            if let Some(proxy) = proxy {
                return Ok(proxy.id.clone());
            }
            let created = api
                .create_resource()
                .rest_api_id(&api_id)
                .parent_id(&root_id)
                .path_part(PROXY_PART)
                .send()
                .await
                .aws_context(format!("creating resource {PROXY_PATH} in REST API {api_id}"))?;
            created.id().map(str::to_string).context("API Gateway returned a resource without an id")
        })
        .await?;
    reports.push(report);

    let existing = |method: &str| proxy.and_then(|p| p.methods.get(method));
    let (_, report) = run_step(progress, Step::Methods, plan.action(Step::Methods), async {
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
                    api.put_method()
                        .rest_api_id(&api_id)
                        .resource_id(&proxy_id)
                        .http_method(method)
                        .authorization_type(AUTHORIZATION)
                        .send()
                        .await
                        .aws_context(format!("adding method {method} to REST API {api_id}"))?;
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

async fn create_api(aws: &Aws, stack: &Stack) -> Result<(String, String)> {
    let name = stack.api_name();
    let created = aws
        .apigateway
        .create_rest_api()
        .name(name)
        .description(format!("tokendeploy token server {}", stack.name))
        .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
        .set_tags(Some(stack.tags().into_iter().collect::<HashMap<_, _>>()))
        .send()
        .await
        .aws_context(format!("creating REST API {name}"))?;
    let id = created.id().context("API Gateway returned a REST API without an id")?.to_string();
    let root_id = created.root_resource_id().map(str::to_string);
    let root_id = match root_id {
        Some(root_id) => root_id,
        None => read(aws, &id).await?.root_id,
    };
    Ok((id, root_id))
}

/// API Gateway allows about one DeleteRestApi every 30 seconds per account.
const DELETE_RETRY_LIMIT: Duration = Duration::from_secs(300);

/// Deletes the API with its stages and deployments, waiting out API Gateway's rate limit.
/// Gone already is fine.
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
            Err(e)
                if error_code(&e) == Some("TooManyRequestsException")
                    && started.elapsed() < DELETE_RETRY_LIMIT =>
            {
                let message =
                    format!("API Gateway allows one deletion every 30 s; retrying in {} s", pause.as_secs());
                progress.note(Step::RestApi, &message);
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
    fn a_stage_serving_an_older_api_is_redeployed() {
        let desired = desired();
        let mut api = complete(&desired);
        api.deployed = Some("made by hand".into());
        assert_eq!(plan(&desired, Some(&api))[4].1.action, Action::Update);
    }
}
