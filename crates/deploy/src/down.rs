//! `down`: find what `up` made for the stack, and delete exactly that.

use anyhow::Result;
use serde::Serialize;

use crate::aws::Aws;
use crate::plan::{Action, Step};
use crate::progress::{Progress, run_step};
use crate::resources::rest_api::ApiList;
use crate::resources::{Lookup, function, log_group, permission, rest_api, role};
use crate::stack::{STACK_TAG, Stack};

/// Everything with the stack's names, ours or not.
pub struct Inventory {
    apis: ApiList,
    function: Lookup<function::FunctionState>,
    permissions: permission::PolicyState,
    log_group: Lookup<log_group::LogGroupState>,
    role: Lookup<role::RoleState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The step name of the resource kind, as in `up`'s report.
    pub kind: &'static str,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub kind: &'static str,
    pub id: String,
    pub reason: String,
}

/// What `down --output json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub name: String,
    pub region: String,
    pub deleted: Vec<Resource>,
    pub skipped: Vec<Skipped>,
}

pub async fn inventory(aws: &Aws, stack: &Stack) -> Result<Inventory> {
    let function_and_logs = async {
        let function = function::find(aws, stack).await?;
        let ours = function.is_ours() == Some(true);
        let permissions = if ours { permission::find(aws, stack).await? } else { Default::default() };
        let log_group = log_group::find(aws, stack, ours).await?;
        anyhow::Ok((function, permissions, log_group))
    };
    let (apis, (function, permissions, log_group), role) =
        tokio::try_join!(rest_api::list(aws, stack), function_and_logs, role::find(aws, stack))?;
    Ok(Inventory { apis, function, permissions, log_group, role })
}

impl Inventory {
    /// Ours, in the order `down` deletes them.
    pub fn to_delete(&self, stack: &Stack) -> Vec<Resource> {
        let ours = self.found(stack).into_iter().filter(|(_, _, ours)| *ours);
        ours.map(|(step, id, _)| Resource { kind: step.name(), id }).collect()
    }

    /// Resources with the stack's names that are not ours, left alone.
    pub fn foreign(&self, stack: &Stack) -> Vec<Skipped> {
        let reason = format!("not tagged {STACK_TAG}={}", stack.name);
        let foreign = self.found(stack).into_iter().filter(|(_, _, ours)| !*ours);
        foreign.map(|(step, id, _)| Skipped { kind: step.name(), id, reason: reason.clone() }).collect()
    }

    /// Every resource found by the stack's names: its kind, its id, and whether it is ours.
    fn found(&self, stack: &Stack) -> Vec<(Step, String, bool)> {
        let apis = (self.apis.ours.iter().map(|api| (&api.id, true)))
            .chain(self.apis.foreign.iter().map(|id| (id, false)))
            .map(|(id, ours)| (Step::RestApi, id.clone(), ours));
        let permissions = self.permissions.ours.keys().map(|sid| (Step::Permission, sid.clone(), true));
        let named = [
            (Step::Function, stack.function_name().to_string(), self.function.is_ours()),
            (Step::LogGroup, stack.log_group_name(), self.log_group.is_ours()),
            (Step::Role, stack.role_name(), self.role.is_ours()),
        ];
        let named = named.into_iter().filter_map(|(step, id, ours)| ours.map(|ours| (step, id, ours)));
        apis.chain(permissions).chain(named).collect()
    }
}

/// Deletes what [`Inventory::to_delete`] lists: the APIs first (they stop traffic, and their
/// rate limit is slowest), beside the function, its permission and logs, then the role.
pub async fn down(
    aws: &Aws,
    stack: &Stack,
    inventory: &Inventory,
    progress: &dyn Progress,
) -> Result<DownReport> {
    let apis = async {
        for api in &inventory.apis.ours {
            run_step(progress, Step::RestApi, Action::Delete, rest_api::delete(aws, &api.id, progress))
                .await?;
        }
        anyhow::Ok(())
    };
    let function_side = async {
        if let Lookup::Ours(_) = inventory.function {
            if !inventory.permissions.ours.is_empty() {
                let remove = permission::delete(aws, stack, &inventory.permissions);
                run_step(progress, Step::Permission, Action::Delete, remove).await?;
            }
            run_step(progress, Step::Function, Action::Delete, function::delete(aws, stack)).await?;
        }
        // After the function: an invocation in between would make Lambda write to it again.
        if let Lookup::Ours(_) = inventory.log_group {
            run_step(progress, Step::LogGroup, Action::Delete, log_group::delete(aws, stack)).await?;
        }
        if let Lookup::Ours(observed) = &inventory.role {
            run_step(progress, Step::Role, Action::Delete, role::delete(aws, stack, observed)).await?;
        }
        anyhow::Ok(())
    };
    tokio::try_join!(apis, function_side)?;
    Ok(DownReport {
        name: stack.name.clone(),
        region: stack.region.clone(),
        deleted: inventory.to_delete(stack),
        skipped: inventory.foreign(stack),
    })
}
