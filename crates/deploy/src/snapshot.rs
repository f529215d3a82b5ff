//! What exists for a stack: every resource with the stack's names, ours or not, read once and
//! side by side. `up`, `plan` and `status` plan from it; `down` deletes from it.

use anyhow::Result;
use serde_json::Value;

use crate::aws::Aws;
use crate::error::ForeignResource;
use crate::resources::Lookup;
use crate::resources::function::{self, FunctionState};
use crate::resources::log_group::{self, LogGroupState};
use crate::resources::permission::{self, PolicyState};
use crate::resources::rest_api::api_key::{self, ApiKeyState};
use crate::resources::rest_api::usage_plan::{self, UsagePlanState};
use crate::resources::rest_api::{self, ApiList, ApiState};
use crate::resources::role::{self, RoleState};
use crate::resources::secret::{self, SecretState};
use crate::resources::secret_access;
use crate::stack::{SECRET_POLICY_NAME, Stack};
use crate::vocabulary::Step;

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub role: Lookup<RoleState>,
    pub log_group: Lookup<LogGroupState>,
    pub function: Lookup<FunctionState>,
    /// The function's resource policy; read only when the function is ours.
    pub permissions: PolicyState,
    /// The stack's REST API: with several of ours, the one kept (the others are its duplicates).
    pub api: Lookup<ApiState>,
    /// Every REST API named as the stack's, ours and others'.
    pub apis: ApiList,
    pub secret: Lookup<SecretState>,
    /// The role's policy for reading the secret; read only when the role is ours.
    pub secret_access: Option<Value>,
    /// Our API keys, oldest first.
    pub api_keys: Vec<ApiKeyState>,
    /// Our usage plans.
    pub usage_plans: Vec<UsagePlanState>,
}

/// One resource found by the stack's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub step: Step,
    pub kind: &'static str,
    pub id: String,
    pub ours: bool,
}

/// Reads every resource of the stack, independent ones side by side. Changes nothing.
pub async fn read(aws: &Aws, stack: &Stack) -> crate::error::Result<Snapshot> {
    // Boxed: the SDK's futures are large, and nine side by side would crowd a thread's stack.
    let (function, log_group, permissions, role, apis) = tokio::try_join!(
        Box::pin(function::find(aws, stack)),
        Box::pin(log_group::find(aws, stack)),
        Box::pin(permission::find(aws, stack)),
        Box::pin(role::find(aws, stack)),
        Box::pin(rest_api::find(aws, stack)),
    )?;
    let (secret, secret_access, api_keys, usage_plans) = tokio::try_join!(
        Box::pin(secret::find(aws, stack)),
        Box::pin(secret_access::find(aws, stack)),
        Box::pin(api_key::find(aws, stack)),
        Box::pin(usage_plan::find(aws, stack)),
    )?;
    // The log group and the policy belong to the function: ours only with it.
    let function_is_ours = function.is_ours() == Some(true);
    let log_group = log_group::lookup(log_group, function_is_ours);
    let permissions = if function_is_ours { permissions } else { PolicyState::default() };
    let api = apis.stack_api(role.ours().and_then(|role| role.made_by_run.as_deref()));
    let apis = apis.list;
    let secret_access = secret_access.filter(|_| role.is_ours() == Some(true));
    Ok(Snapshot {
        role,
        log_group,
        function,
        permissions,
        api,
        apis,
        secret,
        secret_access,
        api_keys,
        usage_plans,
    })
}

impl Snapshot {
    /// Every resource found by the stack's names, in the order `down` deletes them.
    pub fn found(&self, stack: &Stack) -> Vec<Found> {
        let apis = (self.apis.ours.iter().map(|api| (&api.id, true)))
            .chain(self.apis.foreign.iter().map(|id| (id, false)))
            .map(|(id, ours)| (Step::RestApi, rest_api::KIND, id.clone(), Some(ours)));
        let permissions = self
            .permissions
            .ours
            .keys()
            .map(|sid| (Step::Permission, permission::KIND, sid.clone(), Some(true)));
        let keyed = (self.usage_plans.iter().map(|plan| (Step::UsagePlan, usage_plan::KIND, &plan.id)))
            .chain(self.api_keys.iter().map(|key| (Step::ApiKey, api_key::KIND, &key.id)))
            .map(|(step, kind, id)| (step, kind, id.clone(), Some(true)));
        let secret_access = self
            .secret_access
            .as_ref()
            .map(|_| (Step::SecretAccess, secret_access::KIND, SECRET_POLICY_NAME.to_string(), Some(true)));
        let named = [
            (Step::Function, function::KIND, stack.function_name().to_string(), self.function.is_ours()),
            (Step::LogGroup, log_group::KIND, stack.log_group_name(), self.log_group.is_ours()),
            (Step::Secret, secret::KIND, stack.secret_name(), self.secret.is_ours()),
            (Step::Role, role::KIND, stack.role_name(), self.role.is_ours()),
        ];
        let all = keyed.chain(apis).chain(permissions).chain(named).chain(secret_access);
        all.filter_map(|(step, kind, id, ours)| ours.map(|ours| Found { step, kind, id, ours })).collect()
    }

    /// The first resource with the stack's name that is someone else's: `up` cannot make the
    /// stack while it is there. (An API of another's beside ours does not block, nor a secret
    /// of another's when the stack keeps its secret in the function's environment:
    /// `secret_wanted` is false.)
    pub fn blocking(&self, stack: &Stack, secret_wanted: bool) -> Option<ForeignResource> {
        let api_blocks = matches!(self.api, Lookup::Foreign);
        let blocks = |found: &Found| match found.step {
            Step::RestApi => api_blocks,
            Step::Secret => secret_wanted,
            _ => true,
        };
        let blocking = self.found(stack).into_iter().find(|found| !found.ours && blocks(found))?;
        let name = if blocking.step == Step::RestApi { stack.api_name().to_string() } else { blocking.id };
        Some(ForeignResource { kind: blocking.kind.to_string(), name, stack: stack.name.clone() })
    }

    /// Refuses, as `up` and `plan` do, when something of the stack's is someone else's.
    pub fn refuse_foreign(&self, stack: &Stack, secret_wanted: bool) -> Result<()> {
        match self.blocking(stack, secret_wanted) {
            Some(foreign) => Err(foreign.into()),
            None => Ok(()),
        }
    }
}
