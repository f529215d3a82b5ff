//! The execution role's inline policy that lets the function read the stack's secret, and
//! nothing else: one action on one ARN.

use anyhow::Result;
use serde_json::{Value, json};

use crate::aws::{Aws, AwsResultExt, IAM_NOT_FOUND};
use crate::desired::Desired;
use crate::stack::{SECRET_POLICY_NAME, Stack};
use crate::vocabulary::{Planned, Summary};

pub const KIND: &str = "IAM inline policy";

pub fn document(secret_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadTheTokenSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arn
        }]
    })
}

/// The policy's document, if the role has it (ours only with the role: the snapshot decides).
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Option<Value>> {
    let role = stack.role_name();
    let read = aws.iam.get_role_policy().role_name(&role).policy_name(SECRET_POLICY_NAME).send().await;
    let read =
        read.or_absent(IAM_NOT_FOUND, format!("reading {KIND} {SECRET_POLICY_NAME} of IAM role {role}"))?;
    // IAM returns the document URL-encoded; anything unreadable is as good as wrong.
    let document = read.map(|policy| {
        let decoded = urlencoding::decode(policy.policy_document()).map(|doc| doc.into_owned());
        decoded.ok().and_then(|doc| serde_json::from_str(&doc).ok()).unwrap_or(Value::Null)
    });
    Ok(document)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretAccessChange {
    /// Writes the policy for the secret's ARN (known once the secret step ran).
    Put {
        why: &'static str,
    },
    /// Removed once the function no longer reads the secret.
    Delete,
    Unchanged {
        wanted: bool,
    },
}

impl Planned for SecretAccessChange {
    fn summary(&self) -> Summary {
        match self {
            SecretAccessChange::Put { why: "no policy yet" } => Summary::create("no policy yet"),
            SecretAccessChange::Put { why } => Summary::update(*why),
            SecretAccessChange::Delete => Summary::delete("the secret is kept in the function's environment"),
            SecretAccessChange::Unchanged { wanted: true } => Summary::unchanged(),
            SecretAccessChange::Unchanged { wanted: false } => Summary::not_asked_for(),
        }
    }
}

impl SecretAccessChange {
    pub fn is_delete(&self) -> bool {
        *self == SecretAccessChange::Delete
    }
}

/// `observed`: the role's policy, when the role is ours and has it.
pub fn plan(desired: &Desired, observed: Option<&Value>) -> SecretAccessChange {
    match (desired.secret.is_some(), observed) {
        (false, None) => SecretAccessChange::Unchanged { wanted: false },
        (false, Some(_)) => SecretAccessChange::Delete,
        (true, None) => SecretAccessChange::Put { why: "no policy yet" },
        (true, Some(document)) => match desired.secret_arn() {
            Some(arn) if *document == self::document(arn) => SecretAccessChange::Unchanged { wanted: true },
            Some(_) => SecretAccessChange::Put { why: "allows other than reading the stack's secret" },
            None => SecretAccessChange::Put { why: "the secret is new" },
        },
    }
}

/// Carries out `change`; `desired` knows the secret's ARN by now.
pub async fn apply(aws: &Aws, desired: &Desired, change: &SecretAccessChange) -> Result<()> {
    let role = desired.stack.role_name();
    match change {
        SecretAccessChange::Unchanged { .. } => Ok(()),
        SecretAccessChange::Put { .. } => {
            let arn = desired.secret_arn().unwrap_or_default();
            let put = aws
                .iam
                .put_role_policy()
                .role_name(&role)
                .policy_name(SECRET_POLICY_NAME)
                .policy_document(document(arn).to_string())
                .send()
                .await;
            put.aws_context(format!("writing {KIND} {SECRET_POLICY_NAME} of IAM role {role}")).map(drop)
        }
        SecretAccessChange::Delete => {
            let deleted =
                aws.iam.delete_role_policy().role_name(&role).policy_name(SECRET_POLICY_NAME).send().await;
            let doing = format!("deleting {KIND} {SECRET_POLICY_NAME} of IAM role {role}");
            deleted.or_absent(IAM_NOT_FOUND, doing).map(drop)
        }
    }
}
