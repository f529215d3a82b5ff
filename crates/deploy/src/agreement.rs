//! Parts of the stack that must agree for it to answer, and that a twin `up` run with other
//! settings can set apart: the secret the function reads (`TOKEN_SECRET_ARN`) and that secret
//! and its read policy; methods that want an API key and a key bound to the stage; a gateway
//! that serves the function (two runs switching each way may each remove the other's). Each run
//! that changed one side reads both again at its end ([`Sides::read`]): a run exits 0 only
//! when the stack agrees and is as it wanted, and a run that finds it broken (a twin removed
//! what this run's change relies on, or this run removed what a twin's relies on) brings it
//! to its own settings again; one that finds it working with a twin's settings leaves it so.

use anyhow::Result;
use serde_json::Value;
use tokendeploy_config::SECRET_ARN;

use crate::aws::Aws;
use crate::desired::{Desired, Gateway, SecretStore};
use crate::plan::Plan;
use crate::resources::rest_api::api_key::{self, ApiKeyState};
use crate::resources::rest_api::usage_plan::{self, UsagePlanState};
use crate::resources::rest_api::{self};
use crate::resources::secret::{self, SecretState};
use crate::resources::{function, function_url, http_api, secret_access};
use crate::stack::{STAGE, Stack};
use crate::vocabulary::{Action, Planned};

/// Whether `plan` changes a side of a pair in a way a twin's change of the other side can
/// undo: it points the function at a secret, or makes the methods want a key (a twin may
/// remove the secret or the key meanwhile); or it changes a secret, its policy, a key or a
/// plan (a twin may rely on them). A change away from the secret or the key alone is not:
/// whichever run's lands last, nothing of the other's is removed by it. (A fresh stack without
/// those flags reads nothing again.)
pub fn at_stake(desired: &Desired, plan: &Plan) -> bool {
    let changed = |action: Action| action != Action::Unchanged;
    let reads_secret = desired.secret.is_some() && changed(plan.environment.action());
    let methods_change = plan.api.parts.as_ref().is_some_and(|parts| changed(parts.methods.action()));
    let wants_key = desired.security.api_key && methods_change;
    let own =
        [plan.secret.action(), plan.secret_access.action(), plan.api_key.action(), plan.usage_plan.action()];
    let retires_a_gateway = plan.function_url.is_retire()
        || matches!(plan.api.api, rest_api::ApiChange::Retire { .. })
        || matches!(plan.http_api.api, http_api::ApiChange::Retire { .. });
    reads_secret || wants_key || retires_a_gateway || own.into_iter().any(changed)
}

/// Both sides of each pair, as they are now.
#[derive(Debug, Clone, PartialEq)]
pub struct Sides {
    /// The function's `TOKEN_SECRET_ARN`: `None` when it keeps its secret in its environment.
    pub reads_secret: Option<String>,
    pub secret: Option<SecretState>,
    /// The role's read policy, when it has one.
    pub policy: Option<Value>,
    /// Some method on `{proxy+}` wants an API key.
    pub wants_key: bool,
    /// Our API keys, oldest first.
    pub keys: Vec<ApiKeyState>,
    pub plans: Vec<UsagePlanState>,
    /// The REST API's id; `None` behind another gateway (no methods, no keys).
    pub api_id: Option<String>,
    /// The gateways of the stack that exist: a REST API of ours, a function URL.
    pub gateways: Vec<Gateway>,
}

impl Sides {
    pub async fn read(aws: &Aws, stack: &Stack, api_id: Option<&str>) -> Result<Self> {
        // The API read whole only while it is there: a twin switching gateways may remove it.
        let api = async {
            let apis = rest_api::list(aws, stack).await?;
            let ours = |id: &str| apis.ours.iter().any(|api| api.id == id);
            let has_api = !apis.ours.is_empty();
            match api_id.filter(|id| ours(id)) {
                Some(id) => rest_api::read(aws, id).await.map(|api| (has_api, Some(api))),
                None => Ok((has_api, None)),
            }
        };
        let (reads_secret, secret, policy, (has_api, api), keys, plans, url, http) = tokio::try_join!(
            function::variable(aws, stack, SECRET_ARN),
            secret::find(aws, stack),
            secret_access::find(aws, stack),
            api,
            api_key::find(aws, stack),
            usage_plan::find(aws, stack),
            function_url::find(aws, stack),
            http_api::find(aws, stack),
        )?;
        let has_http = http.ours.iter().any(|api| api.stage.is_some());
        let gateways = [(has_api, Gateway::Rest), (has_http, Gateway::Http), (url.is_some(), Gateway::Url)];
        let gateways = gateways.into_iter().filter_map(|(there, gateway)| there.then_some(gateway)).collect();
        let methods = api.iter().flat_map(|api| api.methods.values());
        Ok(Self {
            reads_secret,
            secret: secret.ours().cloned(),
            policy,
            wants_key: methods.into_iter().any(|method| method.api_key_required),
            keys,
            plans,
            api_id: api_id.map(str::to_string),
            gateways,
        })
    }

    /// What keeps the stack from answering, each a short sentence; empty when it agrees.
    pub fn disagreements(&self) -> Vec<String> {
        let mut broken = Vec::new();
        if self.gateways.is_empty() {
            broken.push("no gateway serves the function".to_string());
        }
        if let Some(arn) = &self.reads_secret {
            let secret = self.secret.as_ref().filter(|secret| secret.arn == *arn);
            match secret {
                None => broken.push(format!("the function reads secret {arn}, which is gone")),
                Some(secret) if secret.scheduled_for_deletion => {
                    broken.push(format!("the function reads secret {arn}, which is being deleted"))
                }
                Some(_) if self.policy.as_ref() != Some(&secret_access::document(arn)) => {
                    broken.push(format!("the function's role may not read secret {arn}"))
                }
                Some(_) => {}
            }
        }
        if let (true, Some(api_id)) = (self.wants_key, &self.api_id) {
            let stage = usage_plan::stage_ref(api_id);
            let bound = |key: &ApiKeyState| {
                let binds =
                    |plan: &UsagePlanState| plan.stages.contains(&stage) && plan.key_ids.contains(&key.id);
                key.enabled && self.plans.iter().any(binds)
            };
            if !self.keys.iter().any(bound) {
                broken.push(format!("the methods want an API key and no key is bound to stage {STAGE}"))
            }
        }
        broken
    }

    /// Where the stack's settings differ from `desired`'s, in words; empty when they do not.
    pub fn differences(&self, desired: &Desired) -> Vec<String> {
        let store = match self.reads_secret {
            Some(_) => SecretStore::SecretsManager,
            None => SecretStore::Environment,
        };
        let mut changed = Vec::new();
        for gateway in self.gateways.iter().filter(|gateway| **gateway != desired.gateway()) {
            changed.push(format!("the stack is served by {}", gateway.described()));
        }
        if !self.gateways.is_empty() && !self.gateways.contains(&desired.gateway()) {
            changed.push(format!("{} no longer serves it", desired.gateway().described()));
        }
        if store != desired.security.secret_store {
            changed.push(format!("the secret is now kept in {}", store.described()));
        }
        if self.wants_key != desired.security.api_key {
            changed.push(match self.wants_key {
                true => "API keys are now required".to_string(),
                false => "API keys are no longer required".to_string(),
            });
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Security;

    fn sides() -> Sides {
        Sides {
            reads_secret: None,
            secret: None,
            policy: None,
            wants_key: false,
            keys: vec![],
            plans: vec![],
            api_id: Some("api".into()),
            gateways: vec![Gateway::Rest],
        }
    }

    fn reading(arn: &str) -> Sides {
        Sides {
            reads_secret: Some(arn.into()),
            secret: Some(SecretState { arn: arn.into(), values: None, scheduled_for_deletion: false }),
            policy: Some(secret_access::document(arn)),
            ..sides()
        }
    }

    fn keyed(enabled: bool, bound: bool) -> Sides {
        let plan = UsagePlanState {
            id: "plan".into(),
            stages: vec![usage_plan::stage_ref("api")],
            key_ids: if bound { vec!["key".into()] } else { vec![] },
        };
        Sides {
            wants_key: true,
            keys: vec![ApiKeyState { id: "key".into(), enabled, created: 0 }],
            plans: vec![plan],
            ..sides()
        }
    }

    #[test]
    fn a_function_agrees_with_a_secret_that_is_there_and_readable_by_its_role() {
        assert!(sides().disagreements().is_empty(), "in the environment");
        assert!(reading("arn:s").disagreements().is_empty());
        let gone = Sides { secret: None, ..reading("arn:s") };
        assert_eq!(gone.disagreements(), ["the function reads secret arn:s, which is gone"]);
        let other = Sides { reads_secret: Some("arn:old".into()), ..reading("arn:s") };
        assert_eq!(other.disagreements(), ["the function reads secret arn:old, which is gone"]);
        let mut deleting = reading("arn:s");
        deleting.secret.as_mut().unwrap().scheduled_for_deletion = true;
        assert_eq!(deleting.disagreements(), ["the function reads secret arn:s, which is being deleted"]);
        let unreadable = Sides { policy: None, ..reading("arn:s") };
        assert_eq!(unreadable.disagreements(), ["the function's role may not read secret arn:s"]);
    }

    #[test]
    fn methods_that_want_a_key_agree_with_an_enabled_key_bound_to_the_stage() {
        assert!(keyed(true, true).disagreements().is_empty());
        let missing = ["the methods want an API key and no key is bound to stage prod"];
        assert_eq!(keyed(false, true).disagreements(), missing, "disabled");
        assert_eq!(keyed(true, false).disagreements(), missing, "not bound");
        assert_eq!(Sides { keys: vec![], ..keyed(true, true) }.disagreements(), missing, "no key");
        assert!(Sides { wants_key: false, ..keyed(true, false) }.disagreements().is_empty());
    }

    #[test]
    fn differences_name_the_settings_a_twin_run_left() {
        let in_manager = Desired::secured(
            "sha",
            &[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", "s"), ("ALLOWED_ORIGINS", "*")],
            Security { secret_store: SecretStore::SecretsManager, ..Security::default() },
        );
        assert!(reading("arn:s").differences(&in_manager).is_empty());
        assert_eq!(
            sides().differences(&in_manager),
            ["the secret is now kept in the function's environment"]
        );
        let keyless = Desired::keyed(false);
        assert_eq!(keyed(true, true).differences(&keyless), ["API keys are now required"]);
        assert_eq!(sides().differences(&Desired::keyed(true)), ["API keys are no longer required"]);
    }

    #[test]
    fn a_stack_agrees_while_a_gateway_serves_it_and_names_the_one_a_twin_left() {
        let none = Sides { gateways: vec![], ..sides() };
        assert_eq!(none.disagreements(), ["no gateway serves the function"]);
        let rest = Desired::keyed(false);
        assert!(sides().differences(&rest).is_empty());
        let url = Sides { gateways: vec![Gateway::Url], ..sides() };
        assert_eq!(
            url.differences(&rest),
            ["the stack is served by a function URL", "a REST API no longer serves it"]
        );
        let both = Sides { gateways: vec![Gateway::Rest, Gateway::Url], ..sides() };
        assert_eq!(both.differences(&rest), ["the stack is served by a function URL"]);
    }
}
