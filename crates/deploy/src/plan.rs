//! The plan: what should exist, compared with what exists, as one action per step.
//!
//! Computing it makes no AWS call, so `up` and `plan` decide with the same code and the
//! decisions are tested without a network.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::desired::Desired;
use crate::resources::{function, log_group, permission, rest_api, role};

/// The steps of `up`, in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Role,
    Package,
    LogGroup,
    Function,
    Environment,
    RestApi,
    ProxyResource,
    Methods,
    Integrations,
    Deployment,
    Permission,
}

impl Step {
    pub const ALL: [Step; 11] = [
        Step::Role,
        Step::Package,
        Step::LogGroup,
        Step::Function,
        Step::Environment,
        Step::RestApi,
        Step::ProxyResource,
        Step::Methods,
        Step::Integrations,
        Step::Deployment,
        Step::Permission,
    ];

    /// The stable name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Step::Role => "role",
            Step::Package => "package",
            Step::LogGroup => "log_group",
            Step::Function => "function",
            Step::Environment => "environment",
            Step::RestApi => "rest_api",
            Step::ProxyResource => "proxy_resource",
            Step::Methods => "methods",
            Step::Integrations => "integrations",
            Step::Deployment => "deployment",
            Step::Permission => "permission",
        }
    }

    /// What a person reads.
    pub fn title(self) -> &'static str {
        match self {
            Step::Role => "execution role",
            Step::Package => "package bootstrap",
            Step::LogGroup => "log group",
            Step::Function => "Lambda function",
            Step::Environment => "function environment",
            Step::RestApi => "REST API",
            Step::ProxyResource => "{proxy+} resource",
            Step::Methods => "GET and OPTIONS methods",
            Step::Integrations => "Lambda proxy integrations",
            Step::Deployment => "stage prod",
            Step::Permission => "invoke permission",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "created")]
    Create,
    #[serde(rename = "updated")]
    Update,
    #[serde(rename = "unchanged")]
    Unchanged,
    /// Only `down` deletes.
    #[serde(rename = "deleted")]
    Delete,
}

impl Action {
    /// As a plan reads: what `up` would do.
    pub fn planned(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "no change",
            Action::Delete => "delete",
        }
    }

    /// As a report reads: what `up` did.
    pub fn done(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Unchanged => "unchanged",
            Action::Delete => "deleted",
        }
    }
}

/// One step's decision, with why (never a secret value: variable names at most).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: Action,
    pub reason: String,
}

impl Change {
    pub fn create(reason: impl Into<String>) -> Self {
        Self { action: Action::Create, reason: reason.into() }
    }
    pub fn update(reason: impl Into<String>) -> Self {
        Self { action: Action::Update, reason: reason.into() }
    }
    pub fn unchanged() -> Self {
        Self { action: Action::Unchanged, reason: "as wanted".into() }
    }
}

/// What exists now, as far as `up` cares. `None` means absent.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub role: Option<role::RoleState>,
    pub log_group: Option<log_group::LogGroupState>,
    pub function: Option<function::FunctionState>,
    pub api: Option<rest_api::ApiState>,
    /// The function's resource policy.
    pub permissions: permission::PolicyState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub changes: BTreeMap<Step, Change>,
}

impl Plan {
    pub fn new(desired: &Desired, observed: &Observed) -> Self {
        let mut changes = BTreeMap::new();
        changes.insert(Step::Role, role::plan(observed.role.as_ref()));
        changes.insert(Step::Package, function::plan_code(desired, observed.function.as_ref()));
        changes.insert(Step::LogGroup, log_group::plan(observed.log_group.as_ref()));
        changes.insert(Step::Function, function::plan_function(desired, observed.function.as_ref()));
        changes.insert(Step::Environment, function::plan_environment(desired, observed.function.as_ref()));
        changes.extend(rest_api::plan(desired, observed.api.as_ref()));
        changes.insert(
            Step::Permission,
            permission::plan(
                desired,
                observed.api.as_ref().map(|api| api.id.as_str()),
                &observed.permissions,
            ),
        );
        Self { changes }
    }

    pub fn change(&self, step: Step) -> &Change {
        &self.changes[&step]
    }

    pub fn action(&self, step: Step) -> Action {
        self.change(step).action
    }

    pub fn is_unchanged(&self) -> bool {
        self.changes.values().all(|change| change.action == Action::Unchanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_account_plans_a_create_for_every_step() {
        let desired = Desired::example("sha", &[]);
        let plan = Plan::new(&desired, &Observed::default());
        for step in Step::ALL {
            assert_eq!(plan.action(step), Action::Create, "{step}");
        }
        assert!(!plan.is_unchanged());
    }
}
