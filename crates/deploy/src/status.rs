//! `status`: what exists for the stack, and how it differs from what `up` would make now.

use serde::Serialize;

use crate::desired::{FunctionEnvironment, invoke_url};
use crate::plan::{Action, Observed, Step};

use crate::up::Prepared;

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
    /// Every resource exists.
    pub complete: bool,
    /// Complete, and `up` would change nothing.
    pub in_sync: bool,
    pub invoke_url: Option<String>,
    pub resources: Vec<ResourceStatus>,
    /// How existing resources differ from what `up` would make (names, never values).
    pub drift: Vec<Drift>,
    /// What `up` would create.
    pub missing: Vec<&'static str>,
}

/// The variables to compare: those known here, and for the rest the deployed value, so a
/// secret that is not at hand is checked for presence only.
pub fn environment_to_compare(
    known: FunctionEnvironment,
    names: &[&str],
    observed: &Observed,
) -> FunctionEnvironment {
    let deployed = observed.function.as_ref().map(|f| &f.environment);
    let FunctionEnvironment { mut variables, managed } = known;
    for name in names {
        if !variables.contains_key(*name)
            && let Some(value) = deployed.and_then(|env| env.get(*name))
        {
            variables.insert(name.to_string(), value.clone());
        }
        // Absent both here and there: an empty wish makes the plan call it missing.
        variables.entry(name.to_string()).or_default();
    }
    FunctionEnvironment { variables, managed }
}

pub fn status(prepared: &Prepared) -> StatusReport {
    let Prepared { desired, observed, plan, .. } = prepared;
    let stack = &desired.stack;
    let api = observed.api.as_ref();
    let proxy = api.and_then(|a| a.proxy.as_ref());
    let methods =
        proxy.map(|p| p.methods.keys().cloned().collect::<Vec<_>>().join(", ")).filter(|m| !m.is_empty());
    let integrations = proxy
        .map(|p| p.methods.iter().filter(|(_, m)| m.integration.is_some()).map(|(n, _)| n.clone()))
        .map(|names| names.collect::<Vec<_>>().join(", "))
        .filter(|i| !i.is_empty());
    let permissions = (!observed.permissions.ours.is_empty())
        .then(|| observed.permissions.ours.keys().cloned().collect::<Vec<_>>().join(", "));
    let ids = [
        (Step::Role, observed.role.as_ref().map(|r| r.arn.clone())),
        (Step::LogGroup, observed.log_group.as_ref().map(|g| g.name.clone())),
        (Step::Function, observed.function.as_ref().map(|f| f.arn.clone())),
        (Step::RestApi, api.map(|a| a.id.clone())),
        (Step::ProxyResource, proxy.map(|p| p.id.clone())),
        (Step::Methods, methods),
        (Step::Integrations, integrations),
        (Step::Deployment, api.and_then(|a| a.deployed.as_ref()).map(|_| crate::stack::STAGE.to_string())),
        (Step::Permission, permissions),
    ];
    let missing: Vec<&'static str> = Step::ALL
        .iter()
        .filter(|step| **step != Step::Package && plan.action(**step) == Action::Create)
        .map(|step| step.name())
        .collect();
    let drift = Step::ALL
        .iter()
        .filter(|step| plan.action(**step) == Action::Update)
        .map(|step| Drift { kind: step.name(), reason: plan.change(*step).reason.clone() })
        .collect();
    let complete = missing.is_empty();
    StatusReport {
        name: stack.name.clone(),
        region: stack.region.clone(),
        complete,
        in_sync: complete && plan.is_unchanged(),
        invoke_url: api.filter(|a| a.deployed.is_some()).map(|a| invoke_url(&a.id, &stack.region)),
        resources: ids.into_iter().map(|(step, id)| ResourceStatus { kind: step.name(), id }).collect(),
        drift,
        missing,
    }
}
