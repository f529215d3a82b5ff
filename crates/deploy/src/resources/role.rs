//! The function's IAM execution role: assumable by Lambda, allowed to write its logs.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_iam::types::Tag;
use futures::future::try_join_all;
use serde_json::{Value, json};

use crate::aws::{Aws, AwsResultExt, IAM_NOT_FOUND, error_code};
use crate::resources::Lookup;
use crate::retry::{Backoff, retrying, role_policies_not_yet_gone};
use crate::stack::{RUN_TAG, SECRET_POLICY_NAME, Stack, run_id};
use crate::vocabulary::{Planned, Progress, Step, Summary};

/// The AWS managed policy that lets the function write to CloudWatch Logs, and nothing more, in
/// the stack's partition.
pub fn basic_execution_policy(stack: &Stack) -> String {
    stack.arn("iam", "", "aws", "policy/service-role/AWSLambdaBasicExecutionRole")
}

pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole"
        }]
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleState {
    pub arn: String,
    pub trust_policy: Option<Value>,
    pub attached_policies: Vec<String>,
    /// Names of policies written into the role itself; `up` makes none but the secret's.
    pub inline_policies: Vec<String>,
    /// The `up` run that made it, when known.
    pub made_by_run: Option<String>,
    /// When IAM made it, in seconds since the epoch.
    pub created: i64,
}

impl RoleState {
    /// The run that made it moments ago, and may be making the rest of the stack now: a run
    /// that finds the role so must not build a REST API of its own beside that run's.
    pub fn maker_at_work(&self) -> Option<&str> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let recent = (now.as_secs() as i64).saturating_sub(self.created) < MAKER_AT_WORK.as_secs() as i64;
        self.made_by_run.as_deref().filter(|run| recent && *run != run_id())
    }
}

/// How long after making the role a run may still be building the stack.
const MAKER_AT_WORK: Duration = Duration::from_secs(60);

pub const KIND: &str = "IAM role";

/// The stack's role, looked up by name and checked for our tag. The role and its policies are
/// read side by side: for a role that does not exist, the listings say so too.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Lookup<RoleState>> {
    let name = stack.role_name();
    let (found, attached, inline) = tokio::join!(
        aws.iam.get_role().role_name(&name).send(),
        aws.iam.list_attached_role_policies().role_name(&name).send(),
        aws.iam.list_role_policies().role_name(&name).send(),
    );
    let Some(role) = found.or_absent(IAM_NOT_FOUND, format!("reading IAM role {name}"))?.and_then(|o| o.role)
    else {
        return Ok(Lookup::Absent);
    };
    let tags: HashMap<String, String> =
        role.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    if !stack.owns(&tags) {
        return Ok(Lookup::Foreign);
    }
    // IAM returns the policy document URL-encoded.
    let trust_policy = role
        .assume_role_policy_document()
        .and_then(|doc| urlencoding::decode(doc).ok())
        .and_then(|doc| serde_json::from_str(&doc).ok());
    // Deleted between the calls: as good as no policies; the plan then makes it again.
    let attached = attached.or_absent(IAM_NOT_FOUND, format!("listing the policies of IAM role {name}"))?;
    let inline =
        inline.or_absent(IAM_NOT_FOUND, format!("listing the inline policies of IAM role {name}"))?;
    Ok(Lookup::Ours(RoleState {
        arn: role.arn().to_string(),
        trust_policy,
        attached_policies: attached
            .iter()
            .flat_map(|a| a.attached_policies())
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect(),
        inline_policies: inline.map(|i| i.policy_names().to_vec()).unwrap_or_default(),
        made_by_run: tags.get(RUN_TAG).cloned(),
        created: role.create_date().secs(),
    }))
}

/// What `up` does to the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    Create,
    /// Brings an existing role back to what `up` grants: nothing more, nothing less.
    Update {
        arn: String,
        fixes: RoleFixes,
    },
    Unchanged {
        arn: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleFixes {
    pub trust_policy: bool,
    pub attach_basic_policy: bool,
    /// Managed policies `up` does not grant, to detach.
    pub detach: Vec<String>,
    /// Inline policies, to delete: `up` makes none but the secret's.
    pub delete_inline: Vec<String>,
}

impl Planned for RoleChange {
    fn summary(&self) -> Summary {
        let fixes = match self {
            RoleChange::Create => return Summary::create("no role yet"),
            RoleChange::Unchanged { .. } => return Summary::unchanged(),
            RoleChange::Update { fixes, .. } => fixes,
        };
        let mut wrong = Vec::new();
        if fixes.trust_policy {
            wrong.push("trust policy".to_string());
        }
        if fixes.attach_basic_policy {
            wrong.push("AWSLambdaBasicExecutionRole not attached".to_string());
        }
        if !fixes.detach.is_empty() {
            wrong.push(format!("policies up does not grant attached: {}", fixes.detach.join(", ")));
        }
        if !fixes.delete_inline.is_empty() {
            wrong.push(format!("inline policies up does not grant: {}", fixes.delete_inline.join(", ")));
        }
        Summary::update(wrong.join("; "))
    }
}

pub fn plan(stack: &Stack, observed: Option<&RoleState>) -> RoleChange {
    let Some(role) = observed else {
        return RoleChange::Create;
    };
    let basic = basic_execution_policy(stack);
    let fixes = RoleFixes {
        trust_policy: role.trust_policy.as_ref() != Some(&trust_policy()),
        attach_basic_policy: !role.attached_policies.contains(&basic),
        // Managed policies beyond the one the function needs: more than it should be allowed.
        detach: role.attached_policies.iter().filter(|arn| **arn != basic).cloned().collect(),
        // The secret's read policy is a resource of its own (`secret_access`).
        delete_inline: role.inline_policies.iter().filter(|p| *p != SECRET_POLICY_NAME).cloned().collect(),
    };
    let arn = role.arn.clone();
    if fixes == RoleFixes::default() {
        RoleChange::Unchanged { arn }
    } else {
        RoleChange::Update { arn, fixes }
    }
}

/// Carries out `change`; returns the role's ARN. A role made meanwhile (by a twin run, or by
/// our own call whose answer was lost) is read and brought to what `up` grants. On a
/// [`RoleChange::Create`], `made_by` is told at once which `up` run made the role (when its tag
/// says): IAM lets only one of several runs make it, so that run may build the rest alone.
pub async fn apply(
    aws: &Aws,
    stack: &Stack,
    change: &RoleChange,
    made_by: impl FnOnce(Option<String>),
) -> Result<String> {
    match change {
        RoleChange::Unchanged { arn } => Ok(arn.clone()),
        RoleChange::Update { arn, fixes } => {
            fix(aws, stack, fixes).await?;
            Ok(arn.clone())
        }
        RoleChange::Create => match create(aws, stack).await? {
            Some(arn) => {
                made_by(Some(run_id().to_string()));
                attach_basic_policy(aws, stack).await?;
                Ok(arn)
            }
            None => {
                let adopted = find_made_elsewhere(aws, stack).await?;
                // Our own call's, whose answer was lost and the call retried, or a twin run's.
                made_by(adopted.made_by_run.clone());
                if let RoleChange::Update { fixes, .. } = plan(stack, Some(&adopted)) {
                    fix(aws, stack, &fixes).await?;
                }
                Ok(adopted.arn)
            }
        },
    }
}

async fn fix(aws: &Aws, stack: &Stack, fixes: &RoleFixes) -> Result<()> {
    let name = &stack.role_name();
    if fixes.trust_policy {
        aws.iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_policy().to_string())
            .send()
            .await
            .aws_context(format!("updating the trust policy of IAM role {name}"))?;
    }
    if fixes.attach_basic_policy {
        attach_basic_policy(aws, stack).await?;
    }
    // The function's role may write its logs and nothing else: what `up` did not grant goes.
    let detach: Vec<&str> = fixes.detach.iter().map(String::as_str).collect();
    remove_policies(aws, name, &detach, &fixes.delete_inline).await
}

/// The role another call made: IAM is eventually consistent, so it may take a moment to be
/// readable after it said it exists.
async fn find_made_elsewhere(aws: &Aws, stack: &Stack) -> Result<RoleState> {
    let name = stack.role_name();
    for _ in 0..20 {
        if let Some(role) = find(aws, stack).await?.ours_or_refuse(KIND, &name, stack)? {
            return Ok(role);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    anyhow::bail!("IAM role {name} exists, IAM said, but could not be read for 10 s")
}

/// Creates the role; `None` when one of that name exists already.
async fn create(aws: &Aws, stack: &Stack) -> Result<Option<String>> {
    let name = stack.role_name();
    let tags = stack
        .tags()
        .into_iter()
        .chain([(RUN_TAG.to_string(), run_id().to_string())])
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect::<Result<Vec<_>, _>>()?;
    let created = aws
        .iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(trust_policy().to_string())
        .description(format!(
            "Execution role of the tokendeploy token function {} in {}",
            stack.name, stack.region
        ))
        .set_tags(Some(tags))
        .send()
        .await;
    match created {
        Err(e) if error_code(&e) == Some("EntityAlreadyExists") => Ok(None),
        created => {
            let created = created.aws_context(format!("creating IAM role {name}"))?;
            Ok(Some(created.role().map(|r| r.arn().to_string()).unwrap_or_default()))
        }
    }
}

async fn attach_basic_policy(aws: &Aws, stack: &Stack) -> Result<()> {
    let name = stack.role_name();
    aws.iam
        .attach_role_policy()
        .role_name(&name)
        .policy_arn(basic_execution_policy(stack))
        .send()
        .await
        .aws_context(format!("attaching AWSLambdaBasicExecutionRole to IAM role {name}"))?;
    Ok(())
}

/// Detaches the `managed` policies and deletes the `inline` ones, all side by side. Gone
/// already is fine.
async fn remove_policies(aws: &Aws, name: &str, managed: &[&str], inline: &[String]) -> Result<()> {
    let detach = managed.iter().map(|policy| async move {
        let detached = aws.iam.detach_role_policy().role_name(name).policy_arn(*policy).send().await;
        detached.or_absent(IAM_NOT_FOUND, format!("detaching {policy} from IAM role {name}")).map(drop)
    });
    let delete = inline.iter().map(|policy| async move {
        let deleted = aws.iam.delete_role_policy().role_name(name).policy_name(policy).send().await;
        deleted
            .or_absent(IAM_NOT_FOUND, format!("deleting inline policy {policy} of IAM role {name}"))
            .map(drop)
    });
    tokio::try_join!(try_join_all(detach), try_join_all(delete))?;
    Ok(())
}

/// Detaches every managed policy, deletes the inline ones, then the role, once IAM sees them
/// gone. Gone already is fine.
pub async fn delete(aws: &Aws, stack: &Stack, observed: &RoleState, progress: &dyn Progress) -> Result<()> {
    let name = stack.role_name();
    let managed: Vec<&str> = observed.attached_policies.iter().map(String::as_str).collect();
    let detach = remove_policies(aws, &name, &managed, &[]);
    // Inline policies listed again: one added since `find` would make DeleteRole fail.
    let inline = async {
        let listed = aws.iam.list_role_policies().role_name(&name).send().await;
        let listed =
            listed.or_absent(IAM_NOT_FOUND, format!("listing the inline policies of IAM role {name}"))?;
        let names = listed.map(|l| l.policy_names().to_vec()).unwrap_or_default();
        remove_policies(aws, &name, &[], &names).await
    };
    tokio::try_join!(detach, inline)?;
    let delete = || aws.iam.delete_role().role_name(&name).send();
    let note = |message: &str| progress.note(Step::Role, message);
    let deleted =
        retrying(POLICIES_GONE_LIMIT, Backoff::PROPAGATION, role_policies_not_yet_gone, note, delete);
    deleted.await.or_absent(IAM_NOT_FOUND, format!("deleting IAM role {name}")).map(drop)
}

/// How long IAM may take to see the role's policies removed before it deletes the role.
const POLICIES_GONE_LIMIT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    fn role(trust: Value, policies: &[&str]) -> RoleState {
        RoleState {
            arn: "arn:aws:iam::1:role/r".into(),
            trust_policy: Some(trust),
            attached_policies: policies.iter().map(|p| p.to_string()).collect(),
            inline_policies: vec![],
            made_by_run: None,
            created: 0,
        }
    }

    use crate::vocabulary::Action;

    fn stack() -> Stack {
        Stack::new("s", "us-west-1").unwrap()
    }

    const BASIC: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

    #[test]
    fn plans_create_update_or_nothing() {
        let stack = stack();
        assert_eq!(plan(&stack, None), RoleChange::Create);
        assert_eq!(plan(&stack, Some(&role(trust_policy(), &[BASIC]))).action(), Action::Unchanged);
        let detached = plan(&stack, Some(&role(trust_policy(), &[]))).summary();
        assert_eq!(detached.action, Action::Update);
        assert!(detached.reason.contains("not attached"));
        assert_eq!(plan(&stack, Some(&role(json!({}), &[BASIC]))).summary().reason, "trust policy");
    }

    #[test]
    fn any_permission_beyond_writing_logs_is_drift_and_taken_away() {
        let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
        let stack = stack();
        let widened = plan(&stack, Some(&role(trust_policy(), &[BASIC, admin])));
        assert_eq!(
            widened.summary(),
            Summary::update(format!("policies up does not grant attached: {admin}"))
        );
        assert!(matches!(widened, RoleChange::Update { fixes, .. } if fixes.detach == [admin]));
        let mut inline = role(trust_policy(), &[BASIC]);
        inline.inline_policies = vec!["star".into()];
        assert_eq!(
            plan(&stack, Some(&inline)).summary(),
            Summary::update("inline policies up does not grant: star")
        );
    }

    #[test]
    fn the_managed_policy_is_the_one_of_the_stacks_partition() {
        let china = Stack::new("s", "cn-north-1").unwrap();
        let policy = basic_execution_policy(&china);
        assert_eq!(policy, "arn:aws-cn:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole");
        assert_eq!(plan(&china, Some(&role(trust_policy(), &[&policy]))).action(), Action::Unchanged);
        let wrong = plan(&china, Some(&role(trust_policy(), &[BASIC])));
        assert!(
            matches!(wrong, RoleChange::Update { fixes, .. } if fixes.attach_basic_policy && fixes.detach == [BASIC])
        );
    }
}
