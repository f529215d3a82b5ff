//! The function's CloudWatch log group, `/aws/lambda/<function>`. `up` makes it before the
//! function so it carries our tag and a retention; Lambda would make it untagged, kept forever.

use std::collections::HashMap;

use anyhow::Result;

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND, error_code};
use crate::resources::Lookup;
use crate::stack::{STACK_TAG, Stack};
use crate::vocabulary::{Planned, Summary};

/// Token logs are for debugging, not audit: a month is plenty and keeps the cost bounded.
pub const RETENTION_DAYS: i32 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupState {
    pub name: String,
    pub arn: String,
    /// False for a group Lambda made for our function before we could tag it.
    pub tagged: bool,
    pub retention_days: Option<i32>,
}

pub const KIND: &str = "log group";

/// The stack's log group as found, before knowing whether our function exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    state: LogGroupState,
    /// Tagged as another stack's (or anyone's): never ours.
    tagged_otherwise: bool,
}

/// The stack's log group, read without knowing about the function, so both are read side by
/// side; [`lookup`] then says whose it is.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Option<Found>> {
    let name = stack.log_group_name();
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&name)
        .send()
        .await
        .aws_context(format!("reading log group {name}"))?;
    let Some(group) = groups.log_groups().iter().find(|g| g.log_group_name() == Some(name.as_str())) else {
        return Ok(None);
    };
    let arn = group.log_group_arn().unwrap_or_default().to_string();
    let tags: HashMap<String, String> = aws
        .logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .aws_context(format!("reading the tags of log group {name}"))?
        .tags()
        .cloned()
        .unwrap_or_default();
    let tagged = stack.owns(&tags);
    let tagged_otherwise = !tagged && tags.contains_key(STACK_TAG);
    Ok(Some(Found {
        state: LogGroupState { name, arn, tagged, retention_days: group.retention_in_days() },
        tagged_otherwise,
    }))
}

/// Whose the found group is. An untagged one is ours only when our function exists: it holds
/// that function's logs.
pub fn lookup(found: Option<Found>, function_is_ours: bool) -> Lookup<LogGroupState> {
    match found {
        None => Lookup::Absent,
        Some(found) if found.tagged_otherwise || (!found.state.tagged && !function_is_ours) => {
            Lookup::Foreign
        }
        Some(found) => Lookup::Ours(found.state),
    }
}

/// What `up` does to the log group. Every change ends with the retention set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogGroupChange {
    Create,
    /// Lambda made it, untagged, for our function before `up` could: tag it as ours.
    Tag {
        arn: String,
    },
    SetRetention,
    Unchanged,
}

impl Planned for LogGroupChange {
    fn summary(&self) -> Summary {
        match self {
            LogGroupChange::Create => Summary::create("no log group yet"),
            LogGroupChange::Tag { .. } => Summary::update("made by Lambda untagged: tag it"),
            LogGroupChange::SetRetention => {
                Summary::update(format!("retention is not {RETENTION_DAYS} days"))
            }
            LogGroupChange::Unchanged => Summary::unchanged(),
        }
    }
}

pub fn plan(observed: Option<&LogGroupState>) -> LogGroupChange {
    match observed {
        None => LogGroupChange::Create,
        Some(group) if !group.tagged => LogGroupChange::Tag { arn: group.arn.clone() },
        Some(group) if group.retention_days != Some(RETENTION_DAYS) => LogGroupChange::SetRetention,
        Some(_) => LogGroupChange::Unchanged,
    }
}

pub async fn apply(aws: &Aws, stack: &Stack, change: &LogGroupChange) -> Result<()> {
    let name = stack.log_group_name();
    match change {
        LogGroupChange::Unchanged => return Ok(()),
        LogGroupChange::Create => {
            let created = aws
                .logs
                .create_log_group()
                .log_group_name(&name)
                .set_tags(Some(stack.tags().into_iter().collect()))
                .send()
                .await;
            // Made meanwhile by a twin run or by our own call whose answer was lost: fine if
            // it carries our tag; an untagged one is someone else's.
            if let Err(e) = &created
                && error_code(e) == Some("ResourceAlreadyExistsException")
            {
                lookup(find(aws, stack).await?, false).ours_or_refuse(KIND, &name, stack)?;
            } else {
                created.aws_context(format!("creating log group {name}"))?;
            }
        }
        LogGroupChange::Tag { arn } => {
            aws.logs
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(stack.tags().into_iter().collect()))
                .send()
                .await
                .aws_context(format!("tagging log group {name}"))?;
        }
        LogGroupChange::SetRetention => {}
    }
    aws.logs
        .put_retention_policy()
        .log_group_name(&name)
        .retention_in_days(RETENTION_DAYS)
        .send()
        .await
        .aws_context(format!("setting the retention of log group {name}"))?;
    Ok(())
}

/// Deletes the log group and the function's logs in it. Gone already is fine.
pub async fn delete(aws: &Aws, stack: &Stack) -> Result<()> {
    let name = stack.log_group_name();
    let deleted = aws.logs.delete_log_group().log_group_name(&name).send().await;
    deleted.or_absent(RESOURCE_NOT_FOUND, format!("deleting log group {name}")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(tagged: bool, retention_days: Option<i32>) -> LogGroupState {
        LogGroupState { name: "/aws/lambda/s".into(), arn: "arn".into(), tagged, retention_days }
    }

    #[test]
    fn plans_creation_adoption_and_retention() {
        assert_eq!(plan(None), LogGroupChange::Create);
        assert_eq!(plan(Some(&group(false, None))), LogGroupChange::Tag { arn: "arn".into() });
        assert_eq!(plan(Some(&group(true, None))), LogGroupChange::SetRetention);
        assert_eq!(plan(Some(&group(true, Some(RETENTION_DAYS)))), LogGroupChange::Unchanged);
    }
}
