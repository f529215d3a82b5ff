//! The stack's API key (`up --api-key`): what a client sends in `x-api-key`. API Gateway lets
//! several keys share a name, so ours are told by their tag, and the oldest is the one kept:
//! a repeated `up` hands out the same key.

use std::time::Duration;

use anyhow::Result;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use futures::future::try_join_all;

use crate::aws::{APIGATEWAY_NOT_FOUND, Aws, AwsResultExt};
use crate::desired::Desired;
use crate::stack::Stack;
use crate::twins;
use crate::vocabulary::{Planned, Summary};

pub const KIND: &str = "API key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyState {
    pub id: String,
    pub enabled: bool,
    /// When API Gateway made it, in whole seconds.
    pub created: i64,
}

impl twins::MadeTwice for ApiKeyState {
    fn id(&self) -> &str {
        &self.id
    }
    fn created(&self) -> i64 {
        self.created
    }
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
        .map(|key| ApiKeyState {
            id: key.id().unwrap_or_default().to_string(),
            enabled: key.enabled(),
            created: key.created_date().map(|date| date.secs()).unwrap_or_default(),
        })
        .collect();
    twins::oldest_first(&mut ours);
    Ok(ours)
}

/// What `up` does to the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyChange {
    Create,
    /// Keeps `id`, enabled, and removes our other keys (a twin run's).
    Update {
        kept: ApiKeyState,
        remove: Vec<String>,
    },
    /// `None`: no key, and none wanted.
    Unchanged {
        kept: Option<ApiKeyState>,
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
            ApiKeyChange::Update { kept, .. } if !kept.enabled => Summary::update("disabled"),
            ApiKeyChange::Update { remove, .. } => {
                Summary::update(format!("more keys of the stack: removes {}", remove.join(", ")))
            }
            ApiKeyChange::Unchanged { kept: Some(_) } => Summary::unchanged(),
            ApiKeyChange::Unchanged { kept: None } => Summary::not_asked_for(),
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
        matches!(self, ApiKeyChange::Update { kept, .. } if !kept.enabled)
    }

    /// The key kept, when known before `up` runs.
    pub fn id(&self) -> Option<&str> {
        match self {
            ApiKeyChange::Update { kept, .. } | ApiKeyChange::Unchanged { kept: Some(kept) } => {
                Some(&kept.id)
            }
            _ => None,
        }
    }
}

pub fn plan(desired: &Desired, observed: &[ApiKeyState]) -> ApiKeyChange {
    let ids = || observed.iter().map(|key| key.id.clone());
    match (desired.security.api_key, observed) {
        (false, []) => ApiKeyChange::Unchanged { kept: None },
        (false, _) => ApiKeyChange::Delete { ids: ids().collect() },
        (true, []) => ApiKeyChange::Create,
        (true, [kept, others @ ..]) if kept.enabled && others.is_empty() => {
            ApiKeyChange::Unchanged { kept: Some(kept.clone()) }
        }
        (true, [kept, ..]) => ApiKeyChange::Update { kept: kept.clone(), remove: ids().skip(1).collect() },
    }
}

/// The key a run keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptKey {
    pub id: String,
    /// Set when a twin run made the stack's key at the same moment and this run's was
    /// removed in its favour: what to tell the user.
    pub twin: Option<String>,
}

impl KeptKey {
    fn ours(id: &str) -> Self {
        Self { id: id.to_string(), twin: None }
    }
}

/// How long a run that made a key waits before settling with twin runs that may be making
/// one at the same moment: keys are ordered by their creation second (then id), so by then
/// every key made in the same second or before is listed, and every run keeps the same one.
const TWIN_KEY_WINDOW: Duration = Duration::from_secs(2);

/// A key made this recently may be a twin run's that is yet to settle, and lose to one another
/// twin made in the same second: its maker would then delete it. (Seconds on this machine's
/// clock against API Gateway's: a margin for their skew.)
const YOUNG: i64 = 10;

/// Carries out `change`; returns the key kept, if any.
pub async fn apply(aws: &Aws, stack: &Stack, change: &ApiKeyChange) -> Result<Option<KeptKey>> {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let young = |key: &ApiKeyState| (now().as_secs() as i64).saturating_sub(key.created) < YOUNG;
    match change {
        ApiKeyChange::Unchanged { kept: None } => Ok(None),
        ApiKeyChange::Unchanged { kept: Some(kept) } if !young(kept) => Ok(Some(KeptKey::ours(&kept.id))),
        // Found made moments ago: kept only once it has settled with its twins.
        ApiKeyChange::Unchanged { .. } => settle(aws, stack, None).await.map(Some),
        ApiKeyChange::Create => {
            // One made by a twin run since the stack was read may yet lose to another's.
            let made = match find(aws, stack).await?.is_empty() {
                true => Some(create(aws, stack).await?),
                false => None,
            };
            settle(aws, stack, made).await.map(Some)
        }
        ApiKeyChange::Update { kept, remove } => {
            delete(aws, remove).await?;
            if young(kept) {
                return settle(aws, stack, None).await.map(Some);
            }
            if !kept.enabled {
                enable(aws, &kept.id).await?;
            }
            Ok(Some(KeptKey::ours(&kept.id)))
        }
        ApiKeyChange::Delete { ids } => {
            delete(aws, ids).await?;
            Ok(None)
        }
    }
}

/// Waits out [`TWIN_KEY_WINDOW`] and keeps the oldest of the stack's keys, enabled, as every
/// twin run does; removes `made` (this run's own key) if it is not that one, and says so.
async fn settle(aws: &Aws, stack: &Stack, made: Option<String>) -> Result<KeptKey> {
    tokio::time::sleep(TWIN_KEY_WINDOW).await;
    let Some(oldest) = find(aws, stack).await?.into_iter().next() else {
        anyhow::bail!("the {KIND} {} was deleted as it was made: run up again", stack.api_key_name());
    };
    if !oldest.enabled {
        enable(aws, &oldest.id).await?;
    }
    let twin = match made {
        Some(made) if made != oldest.id => {
            delete(aws, std::slice::from_ref(&made)).await?;
            Some(format!(
                "another tokendeploy up of stack {} made its API key {} a moment before this run made {made}: this run removed its own, and {} is the stack's key",
                stack.name, oldest.id, oldest.id
            ))
        }
        _ => None,
    };
    Ok(KeptKey { id: oldest.id, twin })
}

async fn create(aws: &Aws, stack: &Stack) -> Result<String> {
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
    Ok(created.id().unwrap_or_default().to_string())
}

async fn enable(aws: &Aws, id: &str) -> Result<()> {
    let on = PatchOperation::builder().op(Op::Replace).path("/enabled").value("true").build();
    let enabled = aws.apigateway.update_api_key().api_key(id).patch_operations(on).send().await;
    enabled.aws_context_no_echo(format!("enabling {KIND} {id}")).map(drop)
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
        ApiKeyState { id: id.into(), enabled, created: 0 }
    }

    #[test]
    fn the_oldest_key_is_kept_enabled_and_the_others_removed() {
        let wanted = Desired::keyed(true);
        assert_eq!(plan(&wanted, &[]), ApiKeyChange::Create);
        assert_eq!(plan(&wanted, &[key("a", true)]), ApiKeyChange::Unchanged { kept: Some(key("a", true)) });
        let disabled = plan(&wanted, &[key("a", false)]);
        assert_eq!((disabled.summary(), disabled.id()), (Summary::update("disabled"), Some("a")));
        let twins = plan(&wanted, &[key("a", true), key("b", true)]);
        assert_eq!(twins, ApiKeyChange::Update { kept: key("a", true), remove: vec!["b".into()] });
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
