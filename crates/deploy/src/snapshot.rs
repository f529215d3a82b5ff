//! What exists for a stack: every resource with the stack's names, ours or not, read once and
//! side by side. `up`, `plan` and `status` plan from it; `down` deletes from it.

use anyhow::Result;
use serde_json::Value;

use crate::aws::Aws;
use crate::error::ForeignResource;
use crate::resources::Lookup;
use crate::resources::function::{self, FunctionState};
use crate::resources::function_url::{self, UrlState};
use crate::resources::http_api::{self, HttpApiState};
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
    /// The function's URL; read only when the function is ours.
    pub function_url: Option<UrlState>,
    /// The stack's REST API: with several of ours, the one kept (the others are its duplicates).
    pub api: Lookup<ApiState>,
    /// Every REST API named as the stack's, ours and others'.
    pub apis: ApiList,
    /// The stack's HTTP API: with several of ours, the one kept (the others are its duplicates).
    pub http_api: Option<HttpApiState>,
    /// Every HTTP API named as the stack's, ours and others'.
    pub http_apis: http_api::Found,
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
    // Boxed: the SDK's futures are large, and ten side by side would crowd a thread's stack.
    // One wave: no read needs an id another read finds.
    let (
        (function, function_url),
        log_group,
        permissions,
        role,
        apis,
        http_apis,
        secret,
        secret_access,
        api_keys,
        usage_plans,
    ) = tokio::try_join!(
        Box::pin(async { tokio::try_join!(function::find(aws, stack), function_url::find(aws, stack)) }),
        Box::pin(log_group::find(aws, stack)),
        Box::pin(permission::find(aws, stack)),
        Box::pin(role::find(aws, stack)),
        Box::pin(rest_api::find(aws, stack)),
        Box::pin(http_api::find(aws, stack)),
        Box::pin(secret::find(aws, stack)),
        Box::pin(secret_access::find(aws, stack)),
        Box::pin(api_key::find(aws, stack)),
        Box::pin(usage_plan::find(aws, stack)),
    )?;
    // The log group and the policy belong to the function: ours only with it.
    let function_is_ours = function.is_ours() == Some(true);
    let log_group = log_group::lookup(log_group, function_is_ours);
    let permissions = if function_is_ours { permissions } else { PolicyState::default() };
    let function_url = function_url.filter(|_| function_is_ours);
    // The run that made the role won the stack: its gateway is the one kept.
    let role_maker = role.ours().and_then(|role| role.made_by_run.as_deref());
    let api = apis.stack_api(role_maker);
    let apis = apis.list;
    let http_api = http_apis.stack_api(role_maker);
    let secret_access = secret_access.filter(|_| role.is_ours() == Some(true));
    Ok(Snapshot {
        role,
        log_group,
        function,
        permissions,
        function_url,
        api,
        apis,
        http_api,
        http_apis,
        secret,
        secret_access,
        api_keys,
        usage_plans,
    })
}

impl Snapshot {
    /// Every resource found by the stack's names, in the order `down` deletes them.
    pub fn found(&self, stack: &Stack) -> Vec<Found> {
        let mut found: Vec<(u8, Found)> = Step::ALL
            .into_iter()
            .flat_map(|step| {
                let (order, found) = self.found_of(step, stack);
                found.into_iter().map(move |(kind, id, ours)| (order, Found { step, kind, id, ours }))
            })
            .collect();
        found.sort_by_key(|(order, _)| *order);
        found.into_iter().map(|(_, found)| found).collect()
    }

    /// What was found for `step` (kind, id, ours), and when `down` deletes it (lowest first):
    /// plans before the keys and APIs they bind, the function before its log group, the role
    /// last. A `match`, so a new step does not compile until `down` knows how it goes.
    fn found_of(&self, step: Step, stack: &Stack) -> (u8, Vec<(&'static str, String, bool)>) {
        let named = |kind, name: String, ours: Option<bool>| {
            ours.map(|ours| (kind, name, ours)).into_iter().collect()
        };
        match step {
            Step::UsagePlan => {
                (0, self.usage_plans.iter().map(|plan| (usage_plan::KIND, plan.id.clone(), true)).collect())
            }
            Step::ApiKey => {
                (1, self.api_keys.iter().map(|key| (api_key::KIND, key.id.clone(), true)).collect())
            }
            Step::RestApi => {
                let ours = self.apis.ours.iter().map(|api| (rest_api::KIND, api.id.clone(), true));
                (
                    2,
                    ours.chain(self.apis.foreign.iter().map(|id| (rest_api::KIND, id.clone(), false)))
                        .collect(),
                )
            }
            Step::HttpApi => {
                let ours = self.http_apis.ours.iter().map(|api| (http_api::KIND, api.id.clone(), true));
                let foreign = self.http_apis.foreign.iter().map(|id| (http_api::KIND, id.clone(), false));
                (2, ours.chain(foreign).collect())
            }
            Step::Permission => {
                (3, self.permissions.ours.keys().map(|sid| (permission::KIND, sid.clone(), true)).collect())
            }
            Step::Function => {
                (4, named(function::KIND, stack.function_name().to_string(), self.function.is_ours()))
            }
            Step::LogGroup => (5, named(log_group::KIND, stack.log_group_name(), self.log_group.is_ours())),
            Step::Secret => (6, named(secret::KIND, stack.secret_name(), self.secret.is_ours())),
            Step::Role => (7, named(role::KIND, stack.role_name(), self.role.is_ours())),
            Step::SecretAccess => {
                let policy = self
                    .secret_access
                    .as_ref()
                    .map(|_| (secret_access::KIND, SECRET_POLICY_NAME.to_string(), true));
                (8, policy.into_iter().collect())
            }
            // Parts of a resource above, deleted with it; packaging makes nothing in AWS.
            Step::FunctionUrl
            | Step::HttpRoutes
            | Step::HttpStage
            | Step::Package
            | Step::Environment
            | Step::ProxyResource
            | Step::Methods
            | Step::Integrations
            | Step::GatewayResponses
            | Step::Deployment
            | Step::Throttling => (9, vec![]),
        }
    }

    /// The first resource with the stack's name that is someone else's: `up` cannot make the
    /// stack while it is there. (An API of another's beside ours does not block, nor a secret
    /// of another's when the stack keeps its secret in the function's environment:
    /// `secret_wanted` is false.)
    pub fn blocking(&self, stack: &Stack, secret_wanted: bool) -> Option<ForeignResource> {
        let api_blocks = matches!(self.api, Lookup::Foreign);
        let blocks = |found: &Found| match found.step {
            Step::RestApi => api_blocks,
            // Names do not make HTTP APIs unique: another's beside ours is no concern.
            Step::HttpApi => false,
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
