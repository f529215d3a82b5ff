//! The stack's API key (`up --api-key`): what a client sends in `x-api-key`. API Gateway lets
//! several keys share a name, so ours are told by their tag, and the oldest is the one kept:
//! a repeated `up` hands out the same key.

use anyhow::Result;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use futures::future::try_join_all;

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt};
use crate::desired::Desired;
use crate::stack::Stack;
use crate::vocabulary::{Planned, Summary};

pub const KIND: &str = "API key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyState {
    pub id: String,
    pub enabled: bool,
}

/// Our keys with the stack's name, oldest first. (Keys of that name that are not ours are no
/// concern of the stack's: names of keys need not be unique.)
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Vec<ApiKeyState>> {
    let name = stack.api_key_name();
    let listed = aws.apigateway.get_api_keys().name_query(name).include_values(false).limit(500).send().await;
    let listed = listed.aws_context(format!("listing the API keys named {name}"))?;
    let mut ours: Vec<_> = (listed.items().iter())
        .filter(|key| key.name() == Some(name))
        .filter(|key| key.tags().is_some_and(|tags| stack.owns(tags)))
        .map(|key| {
            let created = key.created_date().map(|date| date.secs()).unwrap_or_default();
            let id = key.id().unwrap_or_default().to_string();
            (created, id, key.enabled())
        })
        .collect();
    ours.sort();
    Ok(ours.into_iter().map(|(_, id, enabled)| ApiKeyState { id, enabled }).collect())
}

/// What `up` does to the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyChange {
    Create,
    /// Keeps `id`, enabled, and removes our other keys (a twin run's).
    Update {
        id: String,
        enable: bool,
        remove: Vec<String>,
    },
    /// `None`: no key, and none wanted.
    Unchanged {
        id: Option<String>,
    },
    /// Not wanted: removed once the methods no longer ask for a key.
    Delete {
        ids: Vec<String>,
    },
}

impl Planned for ApiKeyChange {
    fn summary(&self) -> Summary {
        match self {
            ApiKeyChange::Create => Summary::create("no API key yet"),
            ApiKeyChange::Update { enable: true, .. } => Summary::update("disabled"),
            ApiKeyChange::Update { remove, .. } => {
                Summary::update(format!("more keys of the stack: removes {}", remove.join(", ")))
            }
            ApiKeyChange::Unchanged { id: Some(_) } => Summary::unchanged(),
            ApiKeyChange::Unchanged { id: None } => Summary::unchanged_because("not asked for"),
            ApiKeyChange::Delete { .. } => Summary::delete("--api-key not given"),
        }
    }
}

impl ApiKeyChange {
    pub fn is_delete(&self) -> bool {
        matches!(self, ApiKeyChange::Delete { .. })
    }

    /// The kept key is enabled again: the stage serves that only once redeployed.
    pub fn enables(&self) -> bool {
        matches!(self, ApiKeyChange::Update { enable: true, .. })
    }

    /// The key kept, when known before `up` runs.
    pub fn id(&self) -> Option<&str> {
        match self {
            ApiKeyChange::Update { id, .. } | ApiKeyChange::Unchanged { id: Some(id) } => Some(id),
            _ => None,
        }
    }
}

pub fn plan(desired: &Desired, observed: &[ApiKeyState]) -> ApiKeyChange {
    let ids = || observed.iter().map(|key| key.id.clone());
    match (desired.security.api_key, observed) {
        (false, []) => ApiKeyChange::Unchanged { id: None },
        (false, _) => ApiKeyChange::Delete { ids: ids().collect() },
        (true, []) => ApiKeyChange::Create,
        (true, [kept, others @ ..]) if kept.enabled && others.is_empty() => {
            ApiKeyChange::Unchanged { id: Some(kept.id.clone()) }
        }
        (true, [kept, ..]) => ApiKeyChange::Update {
            id: kept.id.clone(),
            enable: !kept.enabled,
            remove: ids().skip(1).collect(),
        },
    }
}

/// Carries out `change`; returns the key kept, if any.
pub async fn apply(aws: &Aws, stack: &Stack, change: &ApiKeyChange) -> Result<Option<String>> {
    match change {
        ApiKeyChange::Unchanged { id } => Ok(id.clone()),
        ApiKeyChange::Create => {
            let name = stack.api_key_name();
            let created = aws
                .apigateway
                .create_api_key()
                .name(name)
                .description(format!("Clients of the tokendeploy token server {}", stack.name))
                .enabled(true)
                .set_tags(Some(stack.tags().into_iter().collect()))
                .send()
                .await
                .aws_context_no_echo(format!("creating the {KIND} {name}"))?;
            Ok(created.id().map(str::to_string))
        }
        ApiKeyChange::Update { id, enable, remove } => {
            if *enable {
                let on = PatchOperation::builder().op(Op::Replace).path("/enabled").value("true").build();
                let enabled = aws.apigateway.update_api_key().api_key(id).patch_operations(on).send().await;
                enabled.aws_context_no_echo(format!("enabling {KIND} {id}"))?;
            }
            delete(aws, remove).await?;
            Ok(Some(id.clone()))
        }
        ApiKeyChange::Delete { ids } => {
            delete(aws, ids).await?;
            Ok(None)
        }
    }
}

/// The key's value: read only when the user asked to see it.
pub async fn value(aws: &Aws, id: &str) -> Result<String> {
    let key = aws.apigateway.get_api_key().api_key(id).include_value(true).send().await;
    let key = key.aws_context_no_echo(format!("reading the value of {KIND} {id}"))?;
    Ok(key.value().unwrap_or_default().to_string())
}

/// Deletes the keys side by side; gone already is fine.
pub async fn delete(aws: &Aws, ids: &[String]) -> Result<()> {
    let deletions = ids.iter().map(|id| async move {
        let deleted = aws.apigateway.delete_api_key().api_key(id).send().await;
        deleted.or_absent(APIGATEWAY_NOT_FOUND, format!("deleting {KIND} {id}")).map(drop)
    });
    try_join_all(deletions).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Action;

    fn key(id: &str, enabled: bool) -> ApiKeyState {
        ApiKeyState { id: id.into(), enabled }
    }

    #[test]
    fn the_oldest_key_is_kept_enabled_and_the_others_removed() {
        let wanted = Desired::keyed(true);
        assert_eq!(plan(&wanted, &[]), ApiKeyChange::Create);
        assert_eq!(plan(&wanted, &[key("a", true)]), ApiKeyChange::Unchanged { id: Some("a".into()) });
        let disabled = plan(&wanted, &[key("a", false)]);
        assert_eq!((disabled.summary(), disabled.id()), (Summary::update("disabled"), Some("a")));
        let twins = plan(&wanted, &[key("a", true), key("b", true)]);
        assert_eq!(twins, ApiKeyChange::Update { id: "a".into(), enable: false, remove: vec!["b".into()] });
    }

    #[test]
    fn without_the_flag_every_key_of_ours_goes() {
        let open = Desired::keyed(false);
        assert_eq!(plan(&open, &[]).action(), Action::Unchanged);
        assert_eq!(
            plan(&open, &[key("a", true), key("b", false)]),
            ApiKeyChange::Delete { ids: vec!["a".into(), "b".into()] }
        );
    }
}
