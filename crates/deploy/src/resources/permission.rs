//! The function's resource policy: API Gateway may invoke it, from this REST API's stage and
//! methods only, or from this HTTP API's token route; or, behind a function URL, anyone may through that URL (the two statements
//! Lambda asks for since October 2025: lambda:InvokeFunctionUrl with auth type NONE, and
//! lambda:InvokeFunction when invoked via the URL; developer guide, "Control access to Lambda
//! function URLs"). It has no `delete`: deleting the function deletes its policy.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_lambda::types::FunctionUrlAuthType;
use futures::future::try_join_all;
use serde_json::Value;

use tokendeploy_config::ProviderKind;

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND, error_code};
use crate::desired::{Desired, Gateway};
use crate::retry::{Backoff, LAMBDA_CONFLICT, lambda_update_in_progress, retrying};
use crate::stack::{STAGE, Stack};
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const KIND: &str = "invoke permission";

/// Statement id -> what it grants, for our statements on the function's policy: the source ARN
/// API Gateway is scoped to, or which of a function URL's two grants it is ([`URL_GRANT`],
/// [`URL_INVOKE_GRANT`]); empty when it grants other than `up` would.
pub type Statements = BTreeMap<String, String>;

/// The HTTP API's statement: any stage and method of this API, the token path.
pub const HTTP_SID: &str = "tokendeploy-httpapi";
/// The function URL's statements.
pub const URL_SID: &str = "tokendeploy-function-url";
pub const URL_INVOKE_SID: &str = "tokendeploy-function-url-invoke";
const URL_GRANT: &str = "anyone: lambda:InvokeFunctionUrl with auth type NONE";
const URL_INVOKE_GRANT: &str = "anyone: lambda:InvokeFunction through the function URL";

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

/// The gateway one of our statements lets in.
fn gateway_of(sid: &str) -> Gateway {
    match sid {
        URL_SID | URL_INVOKE_SID => Gateway::Url,
        HTTP_SID => Gateway::Http,
        _ => Gateway::Rest,
    }
}

/// Every statement id `up` may make, for any provider and gateway.
fn our_ids() -> Vec<String> {
    let rest = ProviderKind::every_method().into_iter().map(statement_id);
    rest.chain([HTTP_SID, URL_SID, URL_INVOKE_SID].map(str::to_string)).collect()
}

/// The statements the stack's gateway needs, by id.
fn wanted_ids(desired: &Desired) -> Vec<String> {
    match desired.gateway() {
        Gateway::Rest => desired.methods().iter().map(|method| statement_id(method)).collect(),
        Gateway::Http => vec![HTTP_SID.to_string()],
        Gateway::Url => vec![URL_SID.to_string(), URL_INVOKE_SID.to_string()],
    }
}

/// What each statement should grant: for a REST API (`api_id`, once known) this API, stage
/// `prod`, one method, any path; for an HTTP API, this API's token path; for a function URL,
/// anyone through it.
pub fn wanted(desired: &Desired, api_id: Option<&str>) -> Statements {
    let stack = &desired.stack;
    let source = |resource: String| stack.arn("execute-api", &stack.region, &desired.account, &resource);
    match (desired.gateway(), api_id) {
        (Gateway::Rest | Gateway::Http, None) => Statements::new(),
        (Gateway::Http, Some(api_id)) => Statements::from([(
            HTTP_SID.to_string(),
            source(format!("{api_id}/*/*{}", tokendeploy_config::TOKEN_PATH)),
        )]),
        (Gateway::Rest, Some(api_id)) => desired
            .methods()
            .iter()
            .map(|method| (statement_id(method), source(format!("{api_id}/{STAGE}/{method}/*"))))
            .collect(),
        (Gateway::Url, _) => Statements::from([
            (URL_SID.into(), URL_GRANT.into()),
            (URL_INVOKE_SID.into(), URL_INVOKE_GRANT.into()),
        ]),
    }
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
    let ours = our_ids();
    let mut state = PolicyState::default();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        let sid = statement["Sid"].as_str().unwrap_or_default().to_string();
        if ours.contains(&sid) {
            // Our id on a statement that grants more than ours would is not ours: mark it
            // wrong, so `up` replaces it.
            state.ours.insert(sid.clone(), grant_of(&sid, statement));
        } else {
            state.others.push(if sid.is_empty() { "(a statement without an id)".into() } else { sid });
        }
    }
    state
}

/// What our statement `sid` grants, as [`Statements`] holds it; empty when it is not as made.
fn grant_of(sid: &str, statement: &Value) -> String {
    let allows = |action: &str| statement["Effect"] == "Allow" && statement["Action"] == action;
    let anyone = statement["Principal"] == "*" || statement["Principal"]["AWS"] == "*";
    let condition = &statement["Condition"];
    let as_made = match sid {
        URL_SID => {
            let none = condition["StringEquals"]["lambda:FunctionUrlAuthType"] == "NONE";
            (anyone && allows("lambda:InvokeFunctionUrl") && none).then_some(URL_GRANT)
        }
        URL_INVOKE_SID => {
            let via_url = &condition["Bool"]["lambda:InvokedViaFunctionUrl"];
            let via_url = *via_url == "true" || *via_url == true;
            (anyone && allows("lambda:InvokeFunction") && via_url).then_some(URL_INVOKE_GRANT)
        }
        _ => {
            let service = statement["Principal"]["Service"] == "apigateway.amazonaws.com";
            let source = condition["ArnLike"]["AWS:SourceArn"].as_str();
            source.filter(|_| service && allows("lambda:InvokeFunction"))
        }
    };
    as_made.unwrap_or_default().to_string()
}

/// What `up` does to the function's policy. The API's id may be known only once the API
/// exists, so the statements to add are named by id; [`wanted`] gives what they grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionChange {
    gateway: Gateway,
    /// Statements up did not make, removed.
    pub remove_others: Vec<String>,
    /// Our statements that are wrong, removed before they are added again.
    pub replace: Vec<String>,
    /// Statement ids to add, ours all.
    pub add: Vec<String>,
    /// Ours for methods the function no longer answers (POST, after a minting provider): removed.
    pub retire: Vec<String>,
    /// Ours for a gateway no longer asked for: removed once the new one serves.
    pub retire_gateway: Vec<String>,
    /// Nothing of ours for this gateway on the policy yet.
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
        if !self.retire_gateway.is_empty() {
            wrong.push(format!(
                "statements for a gateway no longer asked for, removed once {} serves: {}",
                self.gateway.described(),
                self.retire_gateway.join(", ")
            ));
        }
        let invoker = match self.gateway {
            Gateway::Rest | Gateway::Http => "API Gateway may not invoke the function yet",
            Gateway::Url => "the function URL may not invoke the function yet",
        };
        if self.first_grant {
            if wrong.is_empty() {
                return Summary::create(invoker);
            }
            wrong.push(invoker.into());
        } else if !self.add.is_empty() {
            wrong.push(match self.gateway {
                Gateway::Rest => "source ARN does not match this API, stage and methods".into(),
                Gateway::Http => "source ARN does not match this HTTP API".into(),
                Gateway::Url => "the function URL's statements are not as up makes them".into(),
            });
        }
        if wrong.is_empty() { Summary::unchanged() } else { Summary::update(wrong.join("; ")) }
    }
}

/// `api_id` is `None` while the API is yet to be made: any statement we have then points at
/// an API that is gone.
pub fn plan(desired: &Desired, api_id: Option<&str>, observed: &PolicyState) -> PermissionChange {
    let gateway = desired.gateway();
    let wanted = wanted(desired, api_id);
    let wanted_ids = wanted_ids(desired);
    let add: Vec<String> = wanted_ids
        .iter()
        .filter(|sid| wanted.get(*sid).is_none_or(|grant| observed.ours.get(*sid) != Some(grant)))
        .cloned()
        .collect();
    let of_gateway = |sid: &&String| gateway_of(sid) == gateway;
    PermissionChange {
        gateway,
        retire: observed
            .ours
            .keys()
            .filter(of_gateway)
            .filter(|sid| !wanted_ids.contains(sid))
            .cloned()
            .collect(),
        retire_gateway: observed.ours.keys().filter(|sid| !of_gateway(sid)).cloned().collect(),
        remove_others: observed.others.clone(),
        replace: add.iter().filter(|sid| observed.ours.contains_key(*sid)).cloned().collect(),
        add,
        first_grant: !observed.ours.keys().any(|sid| of_gateway(&sid)),
    }
}

/// Carries out `change` for the API `api_id` (a REST API's) or the function URL. A gateway's
/// statements no longer asked for stay: [`retire_gateway`] removes them.
pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    change: &PermissionChange,
    api_id: Option<&str>,
    progress: &dyn Progress,
) -> Result<()> {
    let name = desired.stack.function_name();
    let removed = change.remove_others.iter().chain(&change.replace).chain(&change.retire);
    try_join_all(removed.map(|sid| remove(aws, name, sid))).await?;
    let wanted = wanted(desired, api_id);
    // One statement at a time each, side by side (Lambda's refusals of concurrent policy
    // changes are waited out).
    let wanted = &wanted;
    let add = change.add.iter().map(|sid| async move {
        let grant = wanted.get(sid).map(String::as_str).unwrap_or_default();
        let add = || {
            let statement = aws.lambda.add_permission().function_name(name).statement_id(sid);
            match sid.as_str() {
                URL_SID => statement
                    .action("lambda:InvokeFunctionUrl")
                    .principal("*")
                    .function_url_auth_type(FunctionUrlAuthType::None),
                URL_INVOKE_SID => {
                    statement.action("lambda:InvokeFunction").principal("*").invoked_via_function_url(true)
                }
                _ => statement
                    .action("lambda:InvokeFunction")
                    .principal("apigateway.amazonaws.com")
                    .source_arn(grant)
                    .source_account(&desired.account),
            }
            .send()
        };
        let note = |message: &str| progress.note(Step::Permission, message);
        match retrying(CONFLICT_LIMIT, Backoff::SHORT, lambda_update_in_progress, note, add).await {
            Ok(_) => Ok(()),
            // There already: a twin run's, or our own whose answer was lost. Right is fine.
            Err(e)
                if error_code(&e) == Some(LAMBDA_CONFLICT)
                    && find(aws, &desired.stack).await?.ours.get(sid).map(String::as_str) == Some(grant) =>
            {
                Ok(())
            }
            Err(e) => Err(e)
                .aws_context(format!("allowing {} to invoke {name} ({sid})", change.gateway.described())),
        }
    });
    try_join_all(add).await?;
    Ok(())
}

/// Removes the statements of a gateway no longer asked for, once the new one serves.
pub async fn retire_gateway(aws: &Aws, desired: &Desired, change: &PermissionChange) -> Result<()> {
    let name = desired.stack.function_name();
    try_join_all(change.retire_gateway.iter().map(|sid| remove(aws, name, sid))).await.map(drop)
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
        let statements = wanted(&desired(), Some("abc123"));
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
        let ours = |api| PolicyState { ours: wanted(&desired, Some(api)), others: vec![] };
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
        let widened = PolicyState { ours: wanted(&desired, Some("a")), others: vec!["anyone".into()] };
        let change = plan(&desired, Some("a"), &widened);
        assert_eq!(change.summary(), Summary::update("statements up did not make: anyone"));
        assert_eq!((change.remove_others, change.add), (vec!["anyone".to_string()], vec![]));
    }

    fn url_desired() -> Desired {
        Desired::secured("", &[], crate::desired::Security { gateway: Gateway::Url, ..Default::default() })
    }

    #[test]
    fn reads_the_function_urls_statements_as_aws_shows_them() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"tokendeploy-function-url","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl",
             "Resource":"arn:f","Condition":{"StringEquals":{"lambda:FunctionUrlAuthType":"NONE"}}},
            {"Sid":"tokendeploy-function-url-invoke","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction",
             "Resource":"arn:f","Condition":{"Bool":{"lambda:InvokedViaFunctionUrl":"true"}}}]}"#;
        let desired = url_desired();
        assert_eq!(parse_policy(policy).ours, wanted(&desired, None));
        assert_eq!(plan(&desired, None, &parse_policy(policy)).action(), Action::Unchanged);
        // Auth type AWS_IAM in our statement's place is not ours as made: replaced.
        let iam = policy.replacen("\"NONE\"", "\"AWS_IAM\"", 1);
        let change = plan(&desired, None, &parse_policy(&iam));
        assert_eq!((change.action(), change.replace.clone()), (Action::Update, vec![URL_SID.to_string()]));
    }

    #[test]
    fn switching_gateways_keeps_the_old_statements_until_the_new_gateway_serves() {
        let rest = desired();
        let on_rest = PolicyState { ours: wanted(&rest, Some("a")), others: vec![] };
        let to_url = plan(&url_desired(), None, &on_rest);
        assert_eq!(to_url.add, [URL_SID, URL_INVOKE_SID]);
        assert!(to_url.retire.is_empty(), "nothing of the REST API's goes before the URL serves");
        assert_eq!(to_url.retire_gateway, [statement_id("GET"), statement_id("OPTIONS")]);
        assert_eq!(to_url.action(), Action::Update);
        let on_url = PolicyState { ours: wanted(&url_desired(), None), others: vec![] };
        let back = plan(&rest, Some("a"), &on_url);
        assert_eq!(back.retire_gateway, [URL_SID, URL_INVOKE_SID]);
        assert!(back.summary().reason.contains("removed once a REST API serves"), "{:?}", back.summary());
    }
}
