//! The plan: what should exist, compared with what exists, as one typed change a resource.
//! Plain data: computing it makes no AWS call, so `up`, `plan` and `status` decide with the
//! same code and the decisions are tested without a network.

use std::collections::BTreeMap;

use crate::desired::Desired;
use crate::resources::function::{self, CodeChange, EnvironmentChange, FunctionChange};
use crate::resources::log_group::{self, LogGroupChange};
use crate::resources::permission::{self, PermissionChange};
use crate::resources::rest_api::{self, ApiPlan};
use crate::resources::role::{self, RoleChange};
use crate::snapshot::Snapshot;
use crate::vocabulary::{Action, Planned, Step, Summary};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub role: RoleChange,
    pub code: CodeChange,
    pub log_group: LogGroupChange,
    pub function: FunctionChange,
    pub environment: EnvironmentChange,
    pub api: ApiPlan,
    pub permission: PermissionChange,
}

impl Plan {
    /// Plans from our resources in `snapshot` (someone else's count as absent: `up` refuses
    /// them before it plans).
    pub fn new(desired: &Desired, snapshot: &Snapshot) -> Self {
        let function = snapshot.function.ours();
        let api = snapshot.api.ours();
        Self {
            role: role::plan(snapshot.role.ours()),
            code: function::plan_code(desired, function),
            log_group: log_group::plan(snapshot.log_group.ours()),
            function: function::plan_function(desired, function),
            environment: function::plan_environment(desired, function),
            api: rest_api::plan(desired, api),
            permission: permission::plan(desired, api.map(|api| api.id.as_str()), &snapshot.permissions),
        }
    }

    /// Every step's change as a person reads it.
    pub fn summaries(&self) -> BTreeMap<Step, Summary> {
        let mut summaries = BTreeMap::from([
            (Step::Role, self.role.summary()),
            (Step::Package, self.code.summary()),
            (Step::LogGroup, self.log_group.summary()),
            (Step::Function, self.function.summary()),
            (Step::Environment, self.environment.summary()),
            (Step::Permission, self.permission.summary()),
        ]);
        summaries.extend(self.api.summaries());
        summaries
    }

    pub fn action(&self, step: Step) -> Action {
        self.summaries()[&step].action
    }

    pub fn is_unchanged(&self) -> bool {
        self.summaries().values().all(|summary| summary.action == Action::Unchanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Lookup;

    #[test]
    fn an_empty_account_plans_a_create_for_every_step() {
        let desired = Desired::example("sha", &[]);
        let empty = Snapshot {
            role: Lookup::Absent,
            log_group: Lookup::Absent,
            function: Lookup::Absent,
            permissions: Default::default(),
            api: Lookup::Absent,
            apis: Default::default(),
        };
        let plan = Plan::new(&desired, &empty);
        for step in Step::ALL {
            assert_eq!(plan.action(step), Action::Create, "{step}");
        }
        assert!(!plan.is_unchanged());
    }
}
