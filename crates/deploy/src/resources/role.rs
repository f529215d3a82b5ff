//! The function's IAM execution role: assumable by Lambda, allowed to write its logs.

use anyhow::Result;
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

use crate::aws::{Aws, AwsResultExt, IAM_NOT_FOUND};
use crate::plan::{Action, Change};
use crate::resources::Lookup;
use crate::stack::Stack;

/// Lets the function write to CloudWatch Logs, and nothing more.
pub const BASIC_EXECUTION_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

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
}

pub const KIND: &str = "IAM role";

/// The stack's role, looked up by name and checked for our tag.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Lookup<RoleState>> {
    let name = stack.role_name();
    let found = aws.iam.get_role().role_name(&name).send().await;
    let Some(role) = found.or_absent(IAM_NOT_FOUND, format!("reading IAM role {name}"))?.and_then(|o| o.role)
    else {
        return Ok(Lookup::Absent);
    };
    let tags = role.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    if !stack.owns(&tags) {
        return Ok(Lookup::Foreign);
    }
    // IAM returns the policy document URL-encoded.
    let trust_policy = role
        .assume_role_policy_document()
        .and_then(|doc| urlencoding::decode(doc).ok())
        .and_then(|doc| serde_json::from_str(&doc).ok());
    let attached = aws
        .iam
        .list_attached_role_policies()
        .role_name(&name)
        .send()
        .await
        .aws_context(format!("listing the policies of IAM role {name}"))?;
    Ok(Lookup::Ours(RoleState {
        arn: role.arn().to_string(),
        trust_policy,
        attached_policies: attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect(),
    }))
}

pub fn plan(observed: Option<&RoleState>) -> Change {
    let Some(role) = observed else {
        return Change::create("no role yet");
    };
    let mut wrong = Vec::new();
    if role.trust_policy.as_ref() != Some(&trust_policy()) {
        wrong.push("trust policy");
    }
    if !role.attached_policies.iter().any(|arn| arn == BASIC_EXECUTION_POLICY) {
        wrong.push("AWSLambdaBasicExecutionRole not attached");
    }
    if wrong.is_empty() { Change::unchanged() } else { Change::update(wrong.join(", ")) }
}

/// Brings the role to what [`plan`] wants; returns its ARN.
pub async fn apply(aws: &Aws, stack: &Stack, action: Action, observed: Option<&RoleState>) -> Result<String> {
    let name = stack.role_name();
    let arn = match (action, observed) {
        (Action::Unchanged, Some(role)) => return Ok(role.arn.clone()),
        (Action::Update, Some(role)) => {
            if role.trust_policy.as_ref() != Some(&trust_policy()) {
                aws.iam
                    .update_assume_role_policy()
                    .role_name(&name)
                    .policy_document(trust_policy().to_string())
                    .send()
                    .await
                    .aws_context(format!("updating the trust policy of IAM role {name}"))?;
            }
            role.arn.clone()
        }
        _ => {
            let tags = stack
                .tags()
                .into_iter()
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
                .await
                .aws_context(format!("creating IAM role {name}"))?;
            created.role().map(|r| r.arn().to_string()).unwrap_or_default()
        }
    };
    let attached =
        observed.is_some_and(|role| role.attached_policies.iter().any(|p| p == BASIC_EXECUTION_POLICY));
    if !attached {
        aws.iam
            .attach_role_policy()
            .role_name(&name)
            .policy_arn(BASIC_EXECUTION_POLICY)
            .send()
            .await
            .aws_context(format!("attaching AWSLambdaBasicExecutionRole to IAM role {name}"))?;
    }
    Ok(arn)
}

/// Detaches the managed policies `find` saw, deletes the inline ones, then the role.
/// Gone already is fine.
pub async fn delete(aws: &Aws, stack: &Stack, observed: &RoleState) -> Result<()> {
    let name = stack.role_name();
    for policy in &observed.attached_policies {
        aws.iam
            .detach_role_policy()
            .role_name(&name)
            .policy_arn(policy)
            .send()
            .await
            .or_absent(IAM_NOT_FOUND, format!("detaching {policy} from IAM role {name}"))?;
    }
    let inline = aws.iam.list_role_policies().role_name(&name).send().await;
    let Some(inline) =
        inline.or_absent(IAM_NOT_FOUND, format!("listing the inline policies of IAM role {name}"))?
    else {
        return Ok(());
    };
    for policy in inline.policy_names() {
        aws.iam
            .delete_role_policy()
            .role_name(&name)
            .policy_name(policy)
            .send()
            .await
            .or_absent(IAM_NOT_FOUND, format!("deleting inline policy {policy} of IAM role {name}"))?;
    }
    let deleted = aws.iam.delete_role().role_name(&name).send().await;
    deleted.or_absent(IAM_NOT_FOUND, format!("deleting IAM role {name}")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(trust: Value, policies: &[&str]) -> RoleState {
        RoleState {
            arn: "arn:aws:iam::1:role/r".into(),
            trust_policy: Some(trust),
            attached_policies: policies.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn plans_create_update_or_nothing() {
        assert_eq!(plan(None).action, Action::Create);
        assert_eq!(plan(Some(&role(trust_policy(), &[BASIC_EXECUTION_POLICY]))).action, Action::Unchanged);
        let detached = plan(Some(&role(trust_policy(), &[])));
        assert_eq!(detached.action, Action::Update);
        assert!(detached.reason.contains("not attached"));
        assert_eq!(plan(Some(&role(json!({}), &[BASIC_EXECUTION_POLICY]))).reason, "trust policy");
    }
}
