//! The usage plan that issues the stack's API key for stage `prod` (`up --api-key`). API
//! Gateway accepts a key only on a stage some plan of the key's binds.

use std::time::Duration;

use anyhow::Result;
use aws_config::retry::RetryConfig;
use aws_sdk_apigateway::operation::update_usage_plan::UpdateUsagePlanError;
use aws_sdk_apigateway::types::{ApiStage, Op, PatchOperation};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use futures::future::try_join_all;

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt, MAX_PAGES};
use crate::desired::Desired;
use crate::retry::{
    APIGATEWAY_CONFLICT, Backoff, retrying, usage_plan_still_bound, usage_plan_update_refused,
};
use crate::stack::{STAGE, Stack};
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const KIND: &str = "usage plan";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePlanState {
    pub id: String,
    /// The stages it binds, as `apiId:stage`.
    pub stages: Vec<String>,
    pub key_ids: Vec<String>,
}

/// `apiId:stage`, as API Gateway names a plan's stage in patches.
pub fn stage_ref(api_id: &str) -> String {
    format!("{api_id}:{STAGE}")
}

/// Our plans with the stack's name, with their keys; the first is the one kept.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Vec<UsagePlanState>> {
    let name = stack.api_key_name();
    let mut ours = Vec::new();
    let mut position = None;
    for _ in 0..MAX_PAGES {
        let page = aws.apigateway.get_usage_plans().set_position(position).limit(500).send().await;
        let page = page.aws_context("listing the usage plans")?;
        let plans = page.items().iter().filter(|plan| plan.name() == Some(name));
        ours.extend(plans.filter(|plan| plan.tags().is_some_and(|tags| stack.owns(tags))).map(|plan| {
            let stages = plan
                .api_stages()
                .iter()
                .map(|s| format!("{}:{}", s.api_id().unwrap_or_default(), s.stage().unwrap_or_default()));
            (plan.id().unwrap_or_default().to_string(), stages.collect::<Vec<_>>())
        }));
        position = page.position().map(str::to_string);
        if position.is_none() {
            break;
        }
    }
    let with_keys = ours.into_iter().map(|(id, stages)| async move {
        let keys = aws.apigateway.get_usage_plan_keys().usage_plan_id(&id).limit(500).send().await;
        let keys = keys.or_absent(APIGATEWAY_NOT_FOUND, format!("listing the keys of {KIND} {id}"))?;
        let key_ids =
            keys.map(|keys| keys.items().iter().filter_map(|key| key.id().map(str::to_string)).collect());
        anyhow::Ok(UsagePlanState { id, stages, key_ids: key_ids.unwrap_or_default() })
    });
    try_join_all(with_keys).await
}

/// What `up` does to the plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsagePlanChange {
    /// Made for the stage, with the key bound.
    Create,
    Update {
        id: String,
        add_stage: bool,
        /// Stages of other (older) APIs it still binds.
        remove_stages: Vec<String>,
        bind_key: bool,
        /// Keys other than the stack's.
        unbind_keys: Vec<String>,
        /// Our other plans (a twin run's).
        remove_plans: Vec<UsagePlanState>,
    },
    /// `None`: no plan, and none wanted.
    Unchanged {
        id: Option<String>,
    },
    Delete {
        plans: Vec<UsagePlanState>,
    },
}

impl Planned for UsagePlanChange {
    fn summary(&self) -> Summary {
        let UsagePlanChange::Update { add_stage, remove_stages, bind_key, unbind_keys, remove_plans, .. } =
            self
        else {
            return match self {
                UsagePlanChange::Create => Summary::create("no usage plan yet"),
                UsagePlanChange::Unchanged { id: Some(_) } => Summary::unchanged(),
                UsagePlanChange::Delete { .. } => Summary::delete("--api-key not given"),
                _ => Summary::not_asked_for(),
            };
        };
        let mut wrong = Vec::new();
        if *add_stage {
            wrong.push(format!("stage {STAGE} not bound"));
        }
        if !remove_stages.is_empty() {
            wrong.push(format!("binds other stages: {}", remove_stages.join(", ")));
        }
        if *bind_key {
            wrong.push("the stack's API key not bound".to_string());
        }
        if !unbind_keys.is_empty() {
            wrong.push(format!("binds other keys: {}", unbind_keys.join(", ")));
        }
        if !remove_plans.is_empty() {
            let ids: Vec<&str> = remove_plans.iter().map(|plan| plan.id.as_str()).collect();
            wrong.push(format!("more plans of the stack: removes {}", ids.join(", ")));
        }
        Summary::update(wrong.join("; "))
    }
}

impl UsagePlanChange {
    pub fn is_delete(&self) -> bool {
        matches!(self, UsagePlanChange::Delete { .. })
    }
}

/// `api_id` and `key_id`: the stack's API and key, `None` while yet to be made (planned again
/// once they are).
pub fn plan(
    desired: &Desired,
    api_id: Option<&str>,
    key_id: Option<&str>,
    observed: &[UsagePlanState],
) -> UsagePlanChange {
    match (desired.security.api_key, observed) {
        (false, []) => UsagePlanChange::Unchanged { id: None },
        (false, plans) => UsagePlanChange::Delete { plans: plans.to_vec() },
        (true, []) => UsagePlanChange::Create,
        (true, plans) => plan_found(api_id, key_id, plans),
    }
}

/// Whether `plan` binds the stage of `api_id` and the key `key_id` (when they are known).
fn is_whole(plan: &UsagePlanState, api_id: Option<&str>, key_id: Option<&str>) -> bool {
    let binds_stage = api_id.is_some_and(|api_id| plan.stages.contains(&stage_ref(api_id)));
    binds_stage && key_id.is_some_and(|key_id| plan.key_ids.iter().any(|bound| bound == key_id))
}

/// Of several plans, the one kept: of those binding the stage and the key, the lowest id, a
/// rule every run applies alike (usage plans carry no creation time); then the others.
fn kept_first(api_id: Option<&str>, key_id: Option<&str>, plans: &[UsagePlanState]) -> Vec<UsagePlanState> {
    let mut sorted = plans.to_vec();
    sorted.sort_by_cached_key(|plan| (!is_whole(plan, api_id, key_id), plan.id.clone()));
    sorted
}

/// The change to the plans found, the stack wanting one.
fn plan_found(api_id: Option<&str>, key_id: Option<&str>, found: &[UsagePlanState]) -> UsagePlanChange {
    let sorted = kept_first(api_id, key_id, found);
    let [kept, others @ ..] = sorted.as_slice() else {
        return UsagePlanChange::Create;
    };
    let wanted_stage = api_id.map(stage_ref);
    let add_stage = wanted_stage.as_ref().is_none_or(|stage| !kept.stages.contains(stage));
    let remove_stages: Vec<String> =
        kept.stages.iter().filter(|stage| Some(*stage) != wanted_stage.as_ref()).cloned().collect();
    let bind_key = key_id.is_none_or(|key| !kept.key_ids.iter().any(|bound| bound == key));
    let unbind_keys: Vec<String> =
        kept.key_ids.iter().filter(|bound| Some(bound.as_str()) != key_id).cloned().collect();
    let id = kept.id.clone();
    if !add_stage && remove_stages.is_empty() && !bind_key && unbind_keys.is_empty() && others.is_empty() {
        return UsagePlanChange::Unchanged { id: Some(id) };
    }
    UsagePlanChange::Update {
        id,
        add_stage,
        remove_stages,
        bind_key,
        unbind_keys,
        remove_plans: others.to_vec(),
    }
}

/// Carries out `change`, planned with the API's and the key's ids as they now are.
pub async fn apply(
    aws: &Aws,
    stack: &Stack,
    api_id: &str,
    key_id: Option<&str>,
    change: &UsagePlanChange,
    progress: &dyn Progress,
) -> Result<()> {
    let api = &aws.apigateway;
    match change {
        UsagePlanChange::Unchanged { .. } => Ok(()),
        UsagePlanChange::Delete { plans } => delete(aws, plans, progress).await,
        UsagePlanChange::Create => {
            // Made by a twin run since the stack was read: the one kept is brought up to date.
            // The others are left to the runs that made them (they may be binding them now);
            // settling then removes whichever whole ones lose.
            let found = find(aws, stack).await?;
            if let Some(first) = kept_first(Some(api_id), key_id, &found).into_iter().next() {
                let change = plan_found(Some(api_id), key_id, std::slice::from_ref(&first));
                Box::pin(apply(aws, stack, api_id, key_id, &change, progress)).await?;
                return settle(aws, stack, api_id, key_id, progress).await;
            }
            let id = create(aws, stack, api_id).await?;
            if let Some(key_id) = key_id {
                bind(aws, &id, key_id).await?;
            }
            settle(aws, stack, api_id, key_id, progress).await
        }
        UsagePlanChange::Update { id, add_stage, remove_stages, bind_key, unbind_keys, remove_plans } => {
            let patch = |op: Op, stage: &str| {
                PatchOperation::builder().op(op).path("/apiStages").value(stage).build()
            };
            let mut operations: Vec<_> = remove_stages.iter().map(|stage| patch(Op::Remove, stage)).collect();
            if *add_stage {
                operations.push(patch(Op::Add, &stage_ref(api_id)));
            }
            if !operations.is_empty() {
                update(aws, id, operations, progress)
                    .await
                    .aws_context(format!("binding stage {STAGE} to {KIND} {id}"))?;
            }
            if let (true, Some(key_id)) = (bind_key, key_id) {
                bind(aws, id, key_id).await?;
            }
            for key in unbind_keys {
                let unbound = api.delete_usage_plan_key().usage_plan_id(id).key_id(key).send().await;
                unbound.or_absent(APIGATEWAY_NOT_FOUND, format!("unbinding key {key} from {KIND} {id}"))?;
            }
            delete(aws, remove_plans, progress).await
        }
    }
}

async fn create(aws: &Aws, stack: &Stack, api_id: &str) -> Result<String> {
    let name = stack.api_key_name();
    let stage = ApiStage::builder().api_id(api_id).stage(STAGE).build();
    let created = aws
        .apigateway
        .create_usage_plan()
        .name(name)
        .description(format!("Issues the API key of the tokendeploy token server {}", stack.name))
        .api_stages(stage)
        .set_tags(Some(stack.tags().into_iter().collect()))
        .send()
        .await
        .aws_context(format!("creating the {KIND} {name}"))?;
    Ok(created.id().unwrap_or_default().to_string())
}

/// Settles with twin runs that made a plan at the same moment: of the plans binding the stage
/// and the key, the one [`kept_first`] stays and the others go, whichever run made them. A
/// run's plan binds both before the run settles, so the one kept is always whole, and every
/// run keeps the same one.
async fn settle(
    aws: &Aws,
    stack: &Stack,
    api_id: &str,
    key_id: Option<&str>,
    progress: &dyn Progress,
) -> Result<()> {
    let found = find(aws, stack).await?;
    let whole: Vec<_> = found.into_iter().filter(|plan| is_whole(plan, Some(api_id), key_id)).collect();
    match kept_first(Some(api_id), key_id, &whole).split_first() {
        Some((_, twins)) if !twins.is_empty() => delete(aws, twins, progress).await,
        _ => Ok(()),
    }
}

/// How long a usage plan change may wait out API Gateway: its quota of one UpdateUsagePlan
/// every 20 s an account (API Gateway quotas), shared with twin runs and other stacks.
const UPDATE_LIMIT: Duration = Duration::from_secs(300);

/// One UpdateUsagePlan, waiting out API Gateway's quota on it in view (our own retry, not the
/// SDK's, so the wait shows).
async fn update(
    aws: &Aws,
    id: &str,
    operations: Vec<PatchOperation>,
    progress: &dyn Progress,
) -> Result<(), SdkError<UpdateUsagePlanError, HttpResponse>> {
    let call = || {
        let once = aws_sdk_apigateway::config::Builder::default().retry_config(RetryConfig::disabled());
        let update = aws.apigateway.update_usage_plan().usage_plan_id(id);
        update.set_patch_operations(Some(operations.clone())).customize().config_override(once).send()
    };
    let note = |message: &str| progress.note(Step::UsagePlan, message);
    retrying(UPDATE_LIMIT, Backoff::LONG, usage_plan_update_refused, note, call).await.map(drop)
}

async fn bind(aws: &Aws, plan_id: &str, key_id: &str) -> Result<()> {
    let bound = aws
        .apigateway
        .create_usage_plan_key()
        .usage_plan_id(plan_id)
        .key_id(key_id)
        .key_type("API_KEY")
        .send()
        .await;
    // A conflict: a twin run bound the same key to this plan a moment ago, as wanted.
    bound.or_absent(APIGATEWAY_CONFLICT, format!("binding API key {key_id} to {KIND} {plan_id}")).map(drop)
}

/// How long API Gateway may go on counting a plan's stages once they were removed.
const UNBOUND_LIMIT: Duration = Duration::from_secs(60);

/// Deletes the plans one after another (each unbinding counts against API Gateway's quota of
/// one UpdateUsagePlan every 20 s): each unbound from its stages first, as API Gateway
/// requires, and deleted once it no longer counts them (it may for a moment). Gone already is
/// fine.
pub async fn delete(aws: &Aws, plans: &[UsagePlanState], progress: &dyn Progress) -> Result<()> {
    for plan in plans {
        let id = &plan.id;
        if !plan.stages.is_empty() {
            let unbind = plan.stages.iter().map(|stage| {
                PatchOperation::builder().op(Op::Remove).path("/apiStages").value(stage).build()
            });
            update(aws, id, unbind.collect(), progress)
                .await
                .or_absent(APIGATEWAY_NOT_FOUND, format!("unbinding the stages of {KIND} {id}"))?;
        }
        let call = || aws.apigateway.delete_usage_plan().usage_plan_id(id).send();
        let note = |message: &str| progress.note(Step::UsagePlan, message);
        let deleted = retrying(UNBOUND_LIMIT, Backoff::SHORT, usage_plan_still_bound, note, call).await;
        deleted.or_absent(APIGATEWAY_NOT_FOUND, format!("deleting {KIND} {id}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Action;

    fn bound(api: &str, key: &str) -> UsagePlanState {
        UsagePlanState { id: "plan".into(), stages: vec![stage_ref(api)], key_ids: vec![key.into()] }
    }

    #[test]
    fn a_plan_binding_the_stack_stage_and_key_is_left_alone_and_any_other_binding_fixed() {
        let wanted = Desired::keyed(true);
        assert_eq!(
            plan(&wanted, Some("api"), Some("key"), &[bound("api", "key")]).action(),
            Action::Unchanged
        );
        assert_eq!(plan(&wanted, None, None, &[]), UsagePlanChange::Create);
        // A new API and a new key: the old stage unbound, the new one bound, and the key.
        let moved = plan(&wanted, Some("new"), Some("key2"), &[bound("old", "key")]);
        assert_eq!(
            moved.summary(),
            Summary::update(
                "stage prod not bound; binds other stages: old:prod; the stack's API key not bound; binds other keys: key"
            )
        );
        let twins = plan(&wanted, Some("api"), Some("key"), &[bound("api", "key"), bound("api", "key")]);
        assert!(matches!(twins, UsagePlanChange::Update { ref remove_plans, .. } if remove_plans.len() == 1));
    }

    #[test]
    fn without_the_flag_every_plan_of_ours_goes() {
        let open = Desired::keyed(false);
        assert_eq!(plan(&open, Some("api"), None, &[]), UsagePlanChange::Unchanged { id: None });
        assert!(plan(&open, Some("api"), None, &[bound("api", "key")]).is_delete());
    }
}
