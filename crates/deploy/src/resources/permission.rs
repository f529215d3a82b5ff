//! The function's resource policy: API Gateway may invoke it, from this API's stage and
//! methods only.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND};
use crate::desired::Desired;
use crate::plan::{Action, Change};
use crate::resources::rest_api::METHODS;
use crate::stack::{STAGE, Stack};

/// Statement id -> source ARN of the statements on the function's policy.
pub type Statements = BTreeMap<String, String>;

/// Deterministic statement ids, one a method, so `up` finds and replaces its own.
pub fn statement_id(method: &str) -> String {
    format!("tokendeploy-apigateway-{}", method.to_ascii_lowercase())
}

/// What each statement should allow: this API, stage `prod`, one method, any path.
pub fn wanted(desired: &Desired, api_id: &str) -> Statements {
    METHODS
        .iter()
        .map(|method| {
            let source = format!(
                "arn:aws:execute-api:{}:{}:{api_id}/{STAGE}/{method}/*",
                desired.stack.region, desired.account
            );
            (statement_id(method), source)
        })
        .collect()
}

/// Our statements on the function's policy (others' are ignored); empty when none.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Statements> {
    let name = stack.function_name();
    let found = aws.lambda.get_policy().function_name(name).send().await;
    let doing = format!("reading the policy of Lambda function {name}");
    let Some(policy) = found.or_absent(RESOURCE_NOT_FOUND, doing)?.and_then(|o| o.policy) else {
        return Ok(Statements::new());
    };
    Ok(parse_policy(&policy))
}

fn parse_policy(policy: &str) -> Statements {
    let policy: Value = serde_json::from_str(policy).unwrap_or_default();
    let ours: Vec<String> = METHODS.iter().map(|m| statement_id(m)).collect();
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|statement| {
            let sid = statement["Sid"].as_str()?;
            let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().unwrap_or_default();
            ours.iter().any(|o| o == sid).then(|| (sid.to_string(), source.to_string()))
        })
        .collect()
}

/// `api_id` is `None` while the API is yet to be made: any statement we have then points at
/// an API that is gone.
pub fn plan(desired: &Desired, api_id: Option<&str>, observed: &Statements) -> Change {
    if observed.is_empty() {
        return Change::create("API Gateway may not invoke the function yet");
    }
    match api_id {
        Some(api_id) if *observed == wanted(desired, api_id) => Change::unchanged(),
        _ => Change::update("source ARN does not match this API, stage and methods"),
    }
}

pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    action: Action,
    api_id: &str,
    observed: &Statements,
) -> Result<()> {
    if action == Action::Unchanged {
        return Ok(());
    }
    let name = desired.stack.function_name();
    for (sid, source_arn) in wanted(desired, api_id) {
        match observed.get(&sid) {
            Some(current) if *current == source_arn => continue,
            Some(_) => {
                aws.lambda
                    .remove_permission()
                    .function_name(name)
                    .statement_id(&sid)
                    .send()
                    .await
                    .aws_context(format!("removing stale permission {sid} from {name}"))?;
            }
            None => {}
        }
        aws.lambda
            .add_permission()
            .function_name(name)
            .statement_id(&sid)
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(&source_arn)
            .source_account(&desired.account)
            .send()
            .await
            .aws_context(format!("allowing API Gateway to invoke {name} ({sid})"))?;
    }
    Ok(())
}

/// Removes our statements from the function's policy, leaving any others.
pub async fn delete(aws: &Aws, stack: &Stack, observed: &Statements) -> Result<()> {
    let name = stack.function_name();
    for sid in observed.keys() {
        let removed = aws.lambda.remove_permission().function_name(name).statement_id(sid).send().await;
        removed.or_absent(RESOURCE_NOT_FOUND, format!("removing permission {sid} from {name}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Statements::from([("tokendeploy-apigateway-get".into(), "arn:x/prod/GET/*".into())])
        );
    }

    #[test]
    fn plans_against_the_api_it_belongs_to() {
        let desired = desired();
        assert_eq!(plan(&desired, Some("a"), &Statements::new()).action, Action::Create);
        assert_eq!(plan(&desired, Some("a"), &wanted(&desired, "a")).action, Action::Unchanged);
        assert_eq!(plan(&desired, Some("b"), &wanted(&desired, "a")).action, Action::Update);
        assert_eq!(plan(&desired, None, &wanted(&desired, "a")).action, Action::Update);
    }
}
