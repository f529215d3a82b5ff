//! The function's resource policy: API Gateway may invoke it, from this API's stage and
//! methods only. It has no `delete`: deleting the function deletes its policy.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use futures::future::try_join_all;
use serde_json::Value;

use tokendeploy_config::ProviderKind;

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND, error_code};
use crate::desired::Desired;
use crate::retry::{Backoff, LAMBDA_CONFLICT, lambda_update_in_progress, retrying};
use crate::stack::{STAGE, Stack};
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const KIND: &str = "invoke permission";

/// Statement id -> source ARN of our statements on the function's policy.
pub type Statements = BTreeMap<String, String>;

/// The function's resource policy: our statements, and the ids of any others (each one lets
/// someone else invoke or change the function, which `up` never grants).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyState {
    pub ours: Statements,
    pub others: Vec<String>,
}

impl PolicyState {
    pub fn is_empty(&self) -> bool {
        self.ours.is_empty() && self.others.is_empty()
    }
}

/// Deterministic statement ids, one a method, so `up` finds and replaces its own.
pub fn statement_id(method: &str) -> String {
    format!("tokendeploy-apigateway-{}", method.to_ascii_lowercase())
}

/// What each statement should allow: this API, stage `prod`, one method, any path.
pub fn wanted(desired: &Desired, api_id: &str) -> Statements {
    desired
        .methods()
        .iter()
        .map(|method| {
            let stack = &desired.stack;
            let source = stack.arn(
                "execute-api",
                &stack.region,
                &desired.account,
                &format!("{api_id}/{STAGE}/{method}/*"),
            );
            (statement_id(method), source)
        })
        .collect()
}

/// The statements on the function's policy; empty when it has none (or no function).
pub async fn find(aws: &Aws, stack: &Stack) -> Result<PolicyState> {
    let name = stack.function_name();
    let found = aws.lambda.get_policy().function_name(name).send().await;
    let doing = format!("reading the policy of Lambda function {name}");
    let Some(policy) = found.or_absent(RESOURCE_NOT_FOUND, doing)?.and_then(|o| o.policy) else {
        return Ok(PolicyState::default());
    };
    Ok(parse_policy(&policy))
}

fn parse_policy(policy: &str) -> PolicyState {
    let policy: Value = serde_json::from_str(policy).unwrap_or_default();
    let ours: Vec<String> = ProviderKind::every_method().iter().map(|m| statement_id(m)).collect();
    let mut state = PolicyState::default();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        let sid = statement["Sid"].as_str().unwrap_or_default().to_string();
        if ours.contains(&sid) {
            // Our id on a statement that grants more than ours would is not ours: mark it
            // wrong, so `up` replaces it.
            let as_made = statement["Effect"] == "Allow"
                && statement["Principal"]["Service"] == "apigateway.amazonaws.com"
                && statement["Action"] == "lambda:InvokeFunction";
            let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().unwrap_or_default();
            state.ours.insert(sid, if as_made { source.to_string() } else { String::new() });
        } else {
            state.others.push(if sid.is_empty() { "(a statement without an id)".into() } else { sid });
        }
    }
    state
}

/// What `up` does to the function's policy. The API's id may be known only once the API
/// exists, so the statements to add are named by method; [`wanted`] gives their source ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionChange {
    /// Statements up did not make, removed.
    pub remove_others: Vec<String>,
    /// Our statements that are wrong, removed before they are added again.
    pub replace: Vec<String>,
    /// Statement ids to add, ours all.
    pub add: Vec<String>,
    /// Ours for methods the function no longer answers (POST, after a minting provider): removed.
    pub retire: Vec<String>,
    /// Nothing of ours on the policy yet.
    first_grant: bool,
}

impl Planned for PermissionChange {
    fn summary(&self) -> Summary {
        let mut wrong = Vec::new();
        if !self.remove_others.is_empty() {
            wrong.push(format!("statements up did not make: {}", self.remove_others.join(", ")));
        }
        if !self.retire.is_empty() {
            wrong.push(format!(
                "statements for methods the function no longer answers: {}",
                self.retire.join(", ")
            ));
        }
        if self.first_grant {
            if wrong.is_empty() {
                return Summary::create("API Gateway may not invoke the function yet");
            }
            wrong.push("API Gateway may not invoke the function yet".into());
        } else if !self.add.is_empty() {
            wrong.push("source ARN does not match this API, stage and methods".into());
        }
        if wrong.is_empty() { Summary::unchanged() } else { Summary::update(wrong.join("; ")) }
    }
}

/// `api_id` is `None` while the API is yet to be made: any statement we have then points at
/// an API that is gone.
pub fn plan(desired: &Desired, api_id: Option<&str>, observed: &PolicyState) -> PermissionChange {
    let wanted = api_id.map(|api_id| wanted(desired, api_id)).unwrap_or_default();
    let add: Vec<String> = desired
        .methods()
        .iter()
        .map(|method| statement_id(method))
        .filter(|sid| wanted.get(sid).is_none_or(|source| observed.ours.get(sid) != Some(source)))
        .collect();
    let wanted_ids: Vec<String> = desired.methods().iter().map(|method| statement_id(method)).collect();
    PermissionChange {
        retire: observed.ours.keys().filter(|sid| !wanted_ids.contains(sid)).cloned().collect(),
        remove_others: observed.others.clone(),
        replace: add.iter().filter(|sid| observed.ours.contains_key(*sid)).cloned().collect(),
        add,
        first_grant: observed.ours.is_empty(),
    }
}

/// Carries out `change` for the API `api_id`.
pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    change: &PermissionChange,
    api_id: &str,
    progress: &dyn Progress,
) -> Result<()> {
    let name = desired.stack.function_name();
    let removed = change.remove_others.iter().chain(&change.replace).chain(&change.retire);
    try_join_all(removed.map(|sid| remove(aws, name, sid))).await?;
    let wanted = wanted(desired, api_id);
    // One statement a method, side by side (Lambda's refusals of concurrent policy changes are
    // waited out).
    let wanted = &wanted;
    let add = change.add.iter().map(|sid| async move {
        let source_arn = &wanted[sid];
        let add = || {
            aws.lambda
                .add_permission()
                .function_name(name)
                .statement_id(sid)
                .action("lambda:InvokeFunction")
                .principal("apigateway.amazonaws.com")
                .source_arn(source_arn)
                .source_account(&desired.account)
                .send()
        };
        let note = |message: &str| progress.note(Step::Permission, message);
        match retrying(CONFLICT_LIMIT, Backoff::SHORT, lambda_update_in_progress, note, add).await {
            Ok(_) => Ok(()),
            // There already: a twin run's, or our own whose answer was lost. Right is fine.
            Err(e)
                if error_code(&e) == Some(LAMBDA_CONFLICT)
                    && find(aws, &desired.stack).await?.ours.get(sid) == Some(source_arn) =>
            {
                Ok(())
            }
            Err(e) => Err(e).aws_context(format!("allowing API Gateway to invoke {name} ({sid})")),
        }
    });
    try_join_all(add).await?;
    Ok(())
}

/// How long a running update of the function may keep a permission change waiting.
const CONFLICT_LIMIT: Duration = Duration::from_secs(60);

async fn remove(aws: &Aws, name: &str, sid: &str) -> Result<()> {
    let removed = aws.lambda.remove_permission().function_name(name).statement_id(sid).send().await;
    removed.or_absent(RESOURCE_NOT_FOUND, format!("removing permission {sid} from {name}")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Action;

    fn desired() -> Desired {
        Desired::example("", &[])
    }

    #[test]
    fn scopes_each_statement_to_api_stage_and_method() {
        let statements = wanted(&desired(), "abc123");
        assert_eq!(
            statements["tokendeploy-apigateway-get"],
            "arn:aws:execute-api:us-west-1:123456789012:abc123/prod/GET/*"
        );
        assert_eq!(
            statements["tokendeploy-apigateway-options"],
            "arn:aws:execute-api:us-west-1:123456789012:abc123/prod/OPTIONS/*"
        );
    }

    #[test]
    fn reads_only_our_statements_from_the_policy() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"tokendeploy-apigateway-get","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},
             "Action":"lambda:InvokeFunction","Resource":"arn:f","Condition":{"ArnLike":{"AWS:SourceArn":"arn:x/prod/GET/*"}}},
            {"Sid":"someone-else","Effect":"Allow"}]}"#;
        assert_eq!(
            parse_policy(policy),
            PolicyState {
                ours: Statements::from([("tokendeploy-apigateway-get".into(), "arn:x/prod/GET/*".into())]),
                others: vec!["someone-else".into()],
            }
        );
    }

    #[test]
    fn plans_against_the_api_it_belongs_to() {
        let desired = desired();
        let ours = |api| PolicyState { ours: wanted(&desired, api), others: vec![] };
        let all = vec![statement_id("GET"), statement_id("OPTIONS")];
        let first = plan(&desired, Some("a"), &PolicyState::default());
        assert_eq!((first.action(), &first.add, first.replace.is_empty()), (Action::Create, &all, true));
        assert_eq!(plan(&desired, Some("a"), &ours("a")).action(), Action::Unchanged);
        let moved = plan(&desired, Some("b"), &ours("a"));
        assert_eq!((moved.action(), &moved.replace, &moved.add), (Action::Update, &all, &all));
        assert_eq!(plan(&desired, None, &ours("a")).action(), Action::Update);
    }

    #[test]
    fn a_statement_up_did_not_make_is_drift_and_removed() {
        let desired = desired();
        let widened = PolicyState { ours: wanted(&desired, "a"), others: vec!["anyone".into()] };
        let change = plan(&desired, Some("a"), &widened);
        assert_eq!(change.summary(), Summary::update("statements up did not make: anyone"));
        assert_eq!((change.remove_others, change.add), (vec!["anyone".to_string()], vec![]));
    }
}
