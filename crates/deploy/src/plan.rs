//! The plan: what should exist, compared with what exists, as one typed change a resource.
//! Plain data: computing it makes no AWS call, so `up`, `plan` and `status` decide with the
//! same code and the decisions are tested without a network.

use crate::desired::{Desired, Gateway};
use crate::resources::function::{self, CodeChange, EnvironmentChange, FunctionChange};
use crate::resources::function_url::{self, FunctionUrlChange};
use crate::resources::http_api::{self, HttpApiPlan};
use crate::resources::log_group::{self, LogGroupChange};
use crate::resources::permission::{self, PermissionChange};
use crate::resources::rest_api::api_key::{self, ApiKeyChange};
use crate::resources::rest_api::usage_plan::{self, UsagePlanChange};
use crate::resources::rest_api::{self, ApiPlan};
use crate::resources::role::{self, RoleChange};
use crate::resources::secret::{self, SecretChange};
use crate::resources::secret_access::{self, SecretAccessChange};
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
    pub secret: SecretChange,
    pub secret_access: SecretAccessChange,
    pub api_key: ApiKeyChange,
    pub usage_plan: UsagePlanChange,
    pub function_url: FunctionUrlChange,
    pub http_api: HttpApiPlan,
}

impl Plan {
    /// Plans from our resources in `snapshot` (someone else's count as absent: `up` refuses
    /// them before it plans).
    pub fn new(desired: &Desired, snapshot: &Snapshot) -> Self {
        let function = snapshot.function.ours();
        let api = snapshot.api.ours();
        let api_id = api.map(|api| api.id.as_str());
        let api_key = api_key::plan(desired, &snapshot.api_keys);
        // The API the invoke permission names: the gateway's asked for.
        let gateway_id = match desired.gateway() {
            Gateway::Rest => api_id,
            Gateway::Http => snapshot.http_api.as_ref().map(|api| api.id.as_str()),
            Gateway::Url => None,
        };
        Self {
            role: role::plan(&desired.stack, snapshot.role.ours()),
            code: function::plan_code(desired, function),
            log_group: log_group::plan(snapshot.log_group.ours()),
            function: function::plan_function(desired, function),
            environment: function::plan_environment(desired, function),
            api: rest_api::plan(desired, api, api_key.enables()),
            permission: permission::plan(desired, gateway_id, &snapshot.permissions),
            secret: secret::plan(desired, snapshot.secret.ours()),
            secret_access: secret_access::plan(desired, snapshot.secret_access.as_ref()),
            api_key: api_key.clone(),
            usage_plan: usage_plan::plan(desired, api_id, api_key.id(), &snapshot.usage_plans),
            function_url: function_url::plan(desired, function, snapshot.function_url.as_ref()),
            http_api: http_api::plan(desired, snapshot.http_api.as_ref()),
        }
    }

    /// One step's change as a person reads it. A `match`, so a new step does not compile
    /// until the plan says what it changes.
    /// Whether a gateway of another kind than the one asked for goes once the new one serves.
    pub fn retires_a_gateway(&self) -> bool {
        self.function_url.is_retire()
            || matches!(self.api.api, rest_api::ApiChange::Retire { .. })
            || matches!(self.http_api.api, http_api::ApiChange::Retire { .. })
    }

    pub fn summary(&self, step: Step) -> Summary {
        let api = &self.api;
        match step {
            Step::Role => self.role.summary(),
            Step::Package => self.code.summary(),
            Step::LogGroup => self.log_group.summary(),
            Step::Secret => self.secret.summary(),
            Step::SecretAccess => self.secret_access.summary(),
            Step::Function => self.function.summary(),
            Step::Environment => self.environment.summary(),
            Step::RestApi => self.api.api.summary(),
            Step::ProxyResource => api.part_summary(|parts| parts.resources.summary()),
            Step::Methods => api.part_summary(|parts| parts.methods.summary()),
            Step::Integrations => api.part_summary(|parts| parts.integrations.summary()),
            Step::GatewayResponses => api.part_summary(|parts| parts.gateway_responses.summary()),
            Step::Deployment => api.part_summary(|parts| parts.stage.summary()),
            Step::Throttling => api.part_summary(|parts| parts.throttle.summary()),
            Step::ApiKey => self.api_key.summary(),
            Step::UsagePlan => self.usage_plan.summary(),
            Step::Permission => self.permission.summary(),
            Step::FunctionUrl => self.function_url.summary(),
            Step::HttpApi => self.http_api.api.summary(),
            Step::HttpRoutes => self.http_api.routes_summary(),
            Step::HttpStage => self.http_api.stage_summary(),
        }
    }

    /// Every step's change, in `up`'s order.
    pub fn summaries(&self) -> Vec<(Step, Summary)> {
        Step::ALL.into_iter().map(|step| (step, self.summary(step))).collect()
    }

    pub fn action(&self, step: Step) -> Action {
        self.summary(step).action
    }

    pub fn is_unchanged(&self) -> bool {
        Step::ALL.into_iter().all(|step| self.action(step) == Action::Unchanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{SecretStore, Security};
    use crate::resources::Lookup;

    fn empty() -> Snapshot {
        Snapshot {
            role: Lookup::Absent,
            log_group: Lookup::Absent,
            function: Lookup::Absent,
            permissions: Default::default(),
            function_url: None,
            http_api: None,
            http_apis: Default::default(),
            api: Lookup::Absent,
            apis: Default::default(),
            secret: Lookup::Absent,
            secret_access: None,
            api_keys: vec![],
            usage_plans: vec![],
        }
    }

    /// Made only when asked for (the function URL by `--gateway url`).
    const OPTIONAL: [Step; 8] = [
        Step::Secret,
        Step::SecretAccess,
        Step::ApiKey,
        Step::UsagePlan,
        Step::FunctionUrl,
        Step::HttpApi,
        Step::HttpRoutes,
        Step::HttpStage,
    ];

    #[test]
    fn an_empty_account_plans_a_create_for_every_step_asked_for() {
        let plan = Plan::new(&Desired::example("sha", &[]), &empty());
        for step in Step::ALL {
            let wanted = if OPTIONAL.contains(&step) { Action::Unchanged } else { Action::Create };
            assert_eq!(plan.action(step), wanted, "{step}");
        }
        assert!(!plan.is_unchanged());
        let every_flag =
            Security { secret_store: SecretStore::SecretsManager, api_key: true, ..Security::default() };
        let everything =
            Desired::secured("sha", &[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", "s")], every_flag);
        let plan = Plan::new(&everything, &empty());
        let other_gateways = [Step::FunctionUrl, Step::HttpApi, Step::HttpRoutes, Step::HttpStage];
        for step in Step::ALL.into_iter().filter(|step| !other_gateways.contains(step)) {
            assert_eq!(plan.action(step), Action::Create, "{step}");
        }
    }

    #[test]
    fn a_function_url_or_http_api_stack_plans_no_rest_api_and_only_its_own_gateway() {
        let http = [Step::HttpApi, Step::HttpRoutes, Step::HttpStage];
        for (gateway, own) in [(Gateway::Url, &[Step::FunctionUrl][..]), (Gateway::Http, &http[..])] {
            let security = Security { gateway, ..Security::default() };
            let plan = Plan::new(&Desired::secured("sha", &[], security), &empty());
            let rest_api = crate::resources::rest_api::STEPS;
            for step in Step::ALL {
                let wanted = match OPTIONAL.contains(&step) || rest_api.contains(&step) {
                    true if own.contains(&step) => Action::Create,
                    true => Action::Unchanged,
                    false => Action::Create,
                };
                assert_eq!(plan.action(step), wanted, "{gateway:?} {step}");
            }
            assert_eq!(plan.summary(Step::Methods), Summary::not_asked_for());
        }
    }

    #[test]
    fn a_fresh_stack_has_pairs_at_stake_only_with_the_secret_store_or_a_key() {
        use crate::agreement::at_stake;
        let plain = Desired::example("sha", &[]);
        assert!(!at_stake(&plain, &Plan::new(&plain, &empty())), "nothing to read again");
        for security in [
            Security { secret_store: SecretStore::SecretsManager, ..Security::default() },
            Security { api_key: true, ..Security::default() },
        ] {
            let desired =
                Desired::secured("sha", &[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", "s")], security);
            assert!(at_stake(&desired, &Plan::new(&desired, &empty())), "{:?}", desired.security);
        }
    }
}
