//! The stack's Secrets Manager secret (`up --secret-store secrets-manager`): the provider's
//! secret variables as one JSON object, which the function reads on its first request. A new
//! value is a new version of the same secret, so the function, which knows only the ARN, is
//! left alone.

use std::collections::HashMap;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use aws_sdk_secretsmanager::types::Tag;

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND, error_code};
use crate::desired::{Desired, SecretValues};
use crate::resources::Lookup;
use crate::retry::Backoff;
use crate::stack::Stack;
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const KIND: &str = "Secrets Manager secret";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretState {
    pub arn: String,
    /// Its current value; `None` when it is not what `up` writes (a JSON object of strings).
    pub values: Option<SecretValues>,
    /// Deleted with a recovery window: it keeps its name until restored or gone.
    pub scheduled_for_deletion: bool,
}

/// The stack's secret, by name, checked for our tag; its value read only when it is ours.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Lookup<SecretState>> {
    let name = stack.secret_name();
    let described = aws.secretsmanager.describe_secret().secret_id(&name).send().await;
    let Some(described) = described.or_absent(RESOURCE_NOT_FOUND, format!("reading {KIND} {name}"))? else {
        return Ok(Lookup::Absent);
    };
    let tags: HashMap<String, String> = (described.tags().iter())
        .filter_map(|tag| Some((tag.key()?.to_string(), tag.value()?.to_string())))
        .collect();
    if !stack.owns(&tags) {
        return Ok(Lookup::Foreign);
    }
    let arn = described.arn().unwrap_or_default().to_string();
    let scheduled_for_deletion = described.deleted_date().is_some();
    // A secret being deleted refuses to be read, and its value is about to be written anyway.
    let values = if scheduled_for_deletion {
        None
    } else {
        let value = aws.secretsmanager.get_secret_value().secret_id(&arn).send().await;
        let value = value.or_absent(RESOURCE_NOT_FOUND, format!("reading the value of {KIND} {name}"))?;
        value.and_then(|value| value.secret_string().and_then(SecretValues::from_json))
    };
    Ok(Lookup::Ours(SecretState { arn, values, scheduled_for_deletion }))
}

/// What `up` does to the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    Create,
    /// Writes the wanted value as a new version, restoring the secret first when it is
    /// scheduled for deletion.
    Update {
        arn: String,
        restore: bool,
        /// The variables whose values change (names only).
        changed: Vec<String>,
    },
    /// `None`: no secret, and none wanted.
    Unchanged {
        arn: Option<String>,
    },
    /// The secret is no longer wanted: deleted at once, once the function no longer reads it.
    Delete {
        arn: String,
    },
}

impl Planned for SecretChange {
    fn summary(&self) -> Summary {
        match self {
            SecretChange::Create => Summary::create("no secret yet"),
            SecretChange::Update { restore: true, .. } => Summary::update("scheduled for deletion: restored"),
            SecretChange::Update { changed, .. } if changed.is_empty() => {
                Summary::update("its value is not the JSON object up writes")
            }
            SecretChange::Update { changed, .. } => {
                Summary::update(format!("{} changed", changed.join(", ")))
            }
            SecretChange::Unchanged { arn: Some(_) } => Summary::unchanged(),
            SecretChange::Unchanged { arn: None } => Summary::not_asked_for(),
            SecretChange::Delete { .. } => {
                Summary::delete("the secret is kept in the function's environment")
            }
        }
    }
}

impl SecretChange {
    /// Deleting waits until the function no longer reads the secret.
    pub fn is_delete(&self) -> bool {
        matches!(self, SecretChange::Delete { .. })
    }
}

pub fn plan(desired: &Desired, observed: Option<&SecretState>) -> SecretChange {
    match (&desired.secret, observed) {
        (None, None) => SecretChange::Unchanged { arn: None },
        (None, Some(secret)) => SecretChange::Delete { arn: secret.arn.clone() },
        (Some(_), None) => SecretChange::Create,
        (Some(wanted), Some(secret)) => {
            let arn = secret.arn.clone();
            let restore = secret.scheduled_for_deletion;
            match &secret.values {
                Some(values) if values == wanted && !restore => SecretChange::Unchanged { arn: Some(arn) },
                Some(values) => SecretChange::Update { arn, restore, changed: values.differing(wanted) },
                None => SecretChange::Update { arn, restore, changed: vec![] },
            }
        }
    }
}

/// Carries out `change`; returns the ARN of the secret the function is to read, if any.
pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    change: &SecretChange,
    progress: &dyn Progress,
) -> Result<Option<String>> {
    let stack = &desired.stack;
    let value = desired.secret.as_ref().map(SecretValues::to_json).unwrap_or_default();
    match change {
        SecretChange::Unchanged { arn } => Ok(arn.clone()),
        SecretChange::Update { arn, restore, .. } => {
            let restored = !*restore || restore_secret(aws, arn).await?;
            if restored && put_value(aws, arn, &value).await? {
                return Ok(Some(arn.clone()));
            }
            // Deleted without recovery since the stack was read (by hand, or by a twin run
            // keeping the secret in the environment): made again, with a new ARN.
            create_or_adopt(aws, stack, &value, progress).await.map(Some)
        }
        SecretChange::Create => create_or_adopt(aws, stack, &value, progress).await.map(Some),
        SecretChange::Delete { arn } => {
            delete(aws, arn).await?;
            Ok(None)
        }
    }
}

/// How long Secrets Manager may take to free the name of a secret deleted without recovery:
/// it deletes "with an asynchronous background process", and advises back-off and retry to
/// whoever creates the name again (API reference, DeleteSecret).
const NAME_FREED_LIMIT: Duration = Duration::from_secs(120);

/// Makes the secret holding `value`, and returns its ARN. The name may be taken: by a secret
/// made meanwhile (a twin run, or our own call whose answer was lost), which is adopted; by one
/// scheduled for deletion by hand, which is restored; or by one deleted without recovery whose
/// name Secrets Manager has not freed yet (`down` just ran), which is waited out.
async fn create_or_adopt(aws: &Aws, stack: &Stack, value: &str, progress: &dyn Progress) -> Result<String> {
    let name = stack.secret_name();
    let started = Instant::now();
    let mut pause = Backoff::PROPAGATION.first;
    loop {
        if let Some(arn) = create(aws, stack, value).await? {
            return Ok(arn);
        }
        let taken_by = find(aws, stack).await?.ours_or_refuse(KIND, &name, stack)?;
        if let Some(found) = taken_by
            && (!found.scheduled_for_deletion || restore_secret(aws, &found.arn).await?)
            && put_value(aws, &found.arn, value).await?
        {
            return Ok(found.arn);
        }
        if started.elapsed() + pause > NAME_FREED_LIMIT {
            bail!(
                "creating {KIND} {name}: Secrets Manager has not freed the name of the secret deleted before in {} s; run up again later",
                NAME_FREED_LIMIT.as_secs()
            );
        }
        progress.note(
            Step::Secret,
            &format!(
                "Secrets Manager is still freeing the name {name} (a secret deleted without recovery); retrying in {:.2} s",
                pause.as_secs_f64()
            ),
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Backoff::PROPAGATION.max);
    }
}

/// Creates the secret; `None` when its name is taken (by a secret that exists, or is
/// scheduled for deletion, or was deleted and its name not yet freed: Secrets Manager answers
/// InvalidRequestException to the last two).
async fn create(aws: &Aws, stack: &Stack, value: &str) -> Result<Option<String>> {
    let name = stack.secret_name();
    let tags = stack.tags().into_iter().map(|(key, value)| Tag::builder().key(key).value(value).build());
    let created = aws
        .secretsmanager
        .create_secret()
        .name(&name)
        .description(format!("The token provider's secrets of the tokendeploy stack {}", stack.name))
        .secret_string(value)
        .set_tags(Some(tags.collect()))
        .send()
        .await;
    match created {
        Err(e) if matches!(error_code(&e), Some("ResourceExistsException" | "InvalidRequestException")) => {
            Ok(None)
        }
        created => {
            let created = created.aws_context_no_echo(format!("creating {KIND} {name}"))?;
            Ok(Some(created.arn().unwrap_or_default().to_string()))
        }
    }
}

/// Writes `value` as the secret's new version; `false` when the secret is gone or being
/// deleted (Secrets Manager answers InvalidRequestException to the latter).
async fn put_value(aws: &Aws, arn: &str, value: &str) -> Result<bool> {
    let put = aws.secretsmanager.put_secret_value().secret_id(arn).secret_string(value).send().await;
    match put {
        Err(e) if matches!(error_code(&e), Some(RESOURCE_NOT_FOUND | "InvalidRequestException")) => Ok(false),
        put => put.aws_context_no_echo(format!("writing a new value to {KIND} {arn}")).map(|_| true),
    }
}

/// Cancels the secret's scheduled deletion; `false` when it cannot be restored, having been
/// deleted without recovery (its name is then still being freed).
async fn restore_secret(aws: &Aws, arn: &str) -> Result<bool> {
    let restored = aws.secretsmanager.restore_secret().secret_id(arn).send().await;
    match restored {
        Err(e) if matches!(error_code(&e), Some("InvalidRequestException" | RESOURCE_NOT_FOUND)) => Ok(false),
        restored => {
            restored.aws_context(format!("restoring {KIND} {arn}, scheduled for deletion")).map(|_| true)
        }
    }
}

/// Deletes the secret at once, without a recovery window: the values are the user's own and
/// still in their hands, and a window would hold the name, so an `up` right after would fail.
/// Gone already is fine.
pub async fn delete(aws: &Aws, arn: &str) -> Result<()> {
    let deleted =
        aws.secretsmanager.delete_secret().secret_id(arn).force_delete_without_recovery(true).send().await;
    deleted.or_absent(RESOURCE_NOT_FOUND, format!("deleting {KIND} {arn}")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{SecretStore, Security};
    use crate::vocabulary::Action;

    fn desired(store: SecretStore, secret: &str) -> Desired {
        let variables = [("CONSUMER_KEY", "key"), ("CONSUMER_SECRET", secret), ("ALLOWED_ORIGINS", "*")];
        Desired::secured("sha", &variables, Security { secret_store: store, ..Security::default() })
    }

    fn state(desired: &Desired) -> SecretState {
        SecretState { arn: "arn:s".into(), values: desired.secret.clone(), scheduled_for_deletion: false }
    }

    #[test]
    fn the_secret_variables_leave_the_environment_for_the_secret() {
        let wanted = desired(SecretStore::SecretsManager, "s3cret");
        let secret = wanted.secret.as_ref().unwrap();
        assert_eq!(secret.0.keys().collect::<Vec<_>>(), ["CONSUMER_KEY", "CONSUMER_SECRET"]);
        assert!(!wanted.environment.variables.contains_key("CONSUMER_SECRET"));
        assert!(wanted.environment.variables.contains_key(tokendeploy_config::SECRET_ARN));
        assert_eq!(wanted.secret_arn(), None, "not known before the secret is made");
        assert_eq!(wanted.with_secret_arn("arn:x").secret_arn(), Some("arn:x"));
        assert!(!format!("{wanted:?}").contains("s3cret"));
        let kept = desired(SecretStore::Environment, "s3cret");
        assert_eq!(kept.secret, None);
        assert!(!kept.environment.variables.contains_key(tokendeploy_config::SECRET_ARN));
    }

    #[test]
    fn plans_each_way_and_names_only_what_changed() {
        let wanted = desired(SecretStore::SecretsManager, "new");
        assert_eq!(plan(&wanted, None), SecretChange::Create);
        assert_eq!(plan(&wanted, Some(&state(&wanted))).action(), Action::Unchanged);
        let old = state(&desired(SecretStore::SecretsManager, "old"));
        let change = plan(&wanted, Some(&old));
        assert_eq!(change.summary(), Summary::update("CONSUMER_SECRET changed"));
        assert!(!format!("{change:?}").contains("new"), "{change:?}");
        let deleting = SecretState { scheduled_for_deletion: true, ..state(&wanted) };
        assert!(matches!(plan(&wanted, Some(&deleting)), SecretChange::Update { restore: true, .. }));
        let env = desired(SecretStore::Environment, "new");
        assert_eq!(plan(&env, None), SecretChange::Unchanged { arn: None });
        assert!(plan(&env, Some(&old)).is_delete());
    }
}
