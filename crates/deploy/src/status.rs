//! `status`: what exists for the stack, and how it differs from what `up` would make now.

use serde::Serialize;

use crate::desired::{FunctionEnvironment, Gateway, aws_invoke_url, invoke_url};
use crate::resources::{function_url, http_api};
use crate::snapshot::Snapshot;
use crate::stack::{SECRET_POLICY_NAME, STAGE};
use crate::up::Prepared;
use crate::vocabulary::{Action, Step};

#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    /// The step name of the resource kind, as in `up`'s report.
    pub kind: &'static str,
    /// Its identifier (ARN, id or name); `None` when it does not exist.
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub kind: &'static str,
    pub reason: String,
}

/// What `status --output json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub name: String,
    pub region: String,
    /// The gateway asked for: `rest`, `http` or `url`.
    pub gateway: &'static str,
    /// Every resource exists.
    pub complete: bool,
    /// Complete, and `up` would change nothing.
    pub in_sync: bool,
    /// The URL that answers token requests (with an endpoint override, the emulator's).
    pub invoke_url: Option<String>,
    /// AWS's own URL for token requests.
    pub aws_invoke_url: Option<String>,
    pub resources: Vec<ResourceStatus>,
    /// How existing resources differ from what `up` would make (names, never values).
    pub drift: Vec<Drift>,
    /// What `up` would create.
    pub missing: Vec<&'static str>,
}

/// The variables to compare: those known here, and for the rest the deployed value (in the
/// function's environment or its secret), so a secret that is not at hand is checked for
/// presence only.
pub fn environment_to_compare(
    known: FunctionEnvironment,
    names: &[&str],
    snapshot: &Snapshot,
) -> FunctionEnvironment {
    let deployed = snapshot.function.ours().map(|f| &f.environment);
    let in_secret = snapshot.secret.ours().and_then(|secret| secret.values.as_ref());
    let FunctionEnvironment { mut variables, managed } = known;
    for name in names {
        let deployed_value = deployed
            .and_then(|env| env.get(*name))
            .or_else(|| in_secret.and_then(|secret| secret.0.get(*name)));
        if !variables.contains_key(*name)
            && let Some(value) = deployed_value
        {
            variables.insert(name.to_string(), value.clone());
        }
        // Absent both here and there: an empty wish makes the plan call it missing.
        variables.entry(name.to_string()).or_default();
    }
    FunctionEnvironment { variables, managed }
}

/// What identifies the resource `step` makes, as found in `snapshot` (`Some(None)`: absent);
/// `None` for a step that makes no resource of its own (packaging, and the environment: part of the
/// function). A `match`, so a new step
/// does not compile until `status` says how it is found.
fn resource_id(step: Step, snapshot: &Snapshot) -> Option<Option<String>> {
    let api = snapshot.api.ours();
    let joined = |names: Vec<&String>| {
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        (!names.is_empty()).then(|| names.join(", "))
    };
    let id = match step {
        Step::Package | Step::Environment => return None,
        Step::Role => snapshot.role.ours().map(|r| r.arn.clone()),
        Step::LogGroup => snapshot.log_group.ours().map(|g| g.name.clone()),
        Step::Secret => snapshot.secret.ours().map(|s| s.arn.clone()),
        Step::SecretAccess => snapshot.secret_access.as_ref().map(|_| SECRET_POLICY_NAME.to_string()),
        Step::Function => snapshot.function.ours().map(|f| f.arn.clone()),
        Step::RestApi => api.map(|a| a.id.clone()),
        Step::ProxyResource => api.and_then(|a| a.resources.proxy_id.clone()),
        Step::Methods => api.and_then(|a| joined(a.methods.keys().collect())),
        Step::Integrations => api.and_then(|a| {
            joined(a.methods.iter().filter(|(_, m)| m.integration.is_some()).map(|(n, _)| n).collect())
        }),
        Step::GatewayResponses => api.and_then(|a| joined(a.gateway_responses.keys().collect())),
        Step::Deployment => api.and_then(|a| a.stages.deployed.as_ref()).map(|_| STAGE.to_string()),
        Step::Throttling => api
            .and_then(|a| a.stages.throttle)
            .map(|t| format!("{}/s, burst {}", t.rate_limit, t.burst_limit)),
        Step::ApiKey => joined(snapshot.api_keys.iter().map(|key| &key.id).collect()),
        Step::UsagePlan => joined(snapshot.usage_plans.iter().map(|plan| &plan.id).collect()),
        Step::Permission => joined(snapshot.permissions.ours.keys().collect()),
        Step::HttpApi => snapshot.http_api.as_ref().map(|api| api.id.clone()),
        Step::HttpRoutes => snapshot.http_api.as_ref().and_then(|api| joined(api.routes.keys().collect())),
        Step::HttpStage => {
            snapshot.http_api.as_ref().and_then(|api| api.stage.as_ref()).map(|stage| match stage.throttle {
                Some(t) => format!("{}, {}/s, burst {}", http_api::STAGE, t.rate_limit, t.burst_limit),
                None => http_api::STAGE.to_string(),
            })
        }
        Step::FunctionUrl => snapshot.function_url.as_ref().map(|url| {
            let reserved = snapshot.function.ours().and_then(|function| function.reserved_concurrency);
            let bound = reserved.map(|n| format!(", reserved concurrency {n}")).unwrap_or_default();
            format!("{}{bound}", url.url)
        }),
    };
    Some(id)
}

/// `endpoint`: the endpoint override the stack was read through, if any.
pub fn status(prepared: &Prepared, endpoint: Option<&str>) -> StatusReport {
    let Prepared { desired, snapshot, plan, .. } = prepared;
    let stack = &desired.stack;
    let api = snapshot.api.ours();
    // In `up`'s order; a resource only a flag asks for is listed when it exists or is wanted.
    let resources: Vec<ResourceStatus> = Step::ALL
        .into_iter()
        .filter_map(|step| resource_id(step, snapshot).map(|id| (step, id)))
        .filter(|(step, id)| id.is_some() || plan.action(*step) != Action::Unchanged)
        .map(|(step, id)| ResourceStatus { kind: step.name(), id })
        .collect();
    let missing: Vec<&'static str> = Step::ALL
        .into_iter()
        .filter(|step| *step != Step::Package && plan.action(*step) == Action::Create)
        .map(Step::name)
        .collect();
    // Something `up` would remove is drift too: made for a flag no longer given.
    let drift = plan
        .summaries()
        .into_iter()
        .filter(|(_, summary)| matches!(summary.action, Action::Update | Action::Delete))
        .map(|(step, summary)| Drift { kind: step.name(), reason: summary.reason })
        .collect();
    let complete = missing.is_empty();
    // The URL of the gateway asked for, when it serves.
    let (invoke_url, aws_invoke_url) = match desired.gateway() {
        Gateway::Rest => {
            let deployed = api.filter(|a| a.stages.deployed.is_some());
            (
                deployed.map(|a| invoke_url(&a.id, stack, endpoint)),
                deployed.map(|a| aws_invoke_url(&a.id, stack)),
            )
        }
        Gateway::Http => {
            let served = snapshot.http_api.as_ref().filter(|api| api.stage.is_some());
            (
                served.map(|api| http_api::token_url(api, endpoint)),
                served.map(|api| http_api::token_url(api, None)),
            )
        }
        Gateway::Url => {
            let url = snapshot.function_url.as_ref().map(|url| url.url.as_str());
            (
                url.map(|url| function_url::token_url(url, endpoint)),
                url.map(|url| function_url::token_url(url, None)),
            )
        }
    };
    StatusReport {
        name: stack.name.clone(),
        region: stack.region.clone(),
        gateway: desired.gateway().name(),
        complete,
        in_sync: complete && plan.is_unchanged(),
        invoke_url,
        aws_invoke_url,
        resources,
        drift,
        missing,
    }
}
