//! The Lambda function: `provided.al2023`, x86_64, handler `bootstrap`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND, UPLOAD_TIMEOUT, error_code, retrying};
use crate::desired::Desired;
use crate::plan::{Action, Change, Step};
use crate::progress::Progress;
use crate::resources::Lookup;
use crate::stack::Stack;

pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
pub const ARCHITECTURE: &str = "x86_64";
/// A token proxy needs little memory, but Lambda gives CPU in proportion to memory and the
/// TLS handshake to the upstream is CPU-bound: 256 MB keeps cold starts short at a trivial cost.
pub const MEMORY_MB: i32 = 256;
/// The function's own configuration bounds its upstream timeout below this, so it answers its
/// own 504 before Lambda stops it.
pub const TIMEOUT_SECONDS: i32 = tokendeploy_config::FUNCTION_TIMEOUT.as_secs() as i32;
/// How long a new role may take to become assumable by Lambda (IAM is eventually consistent).
const ROLE_PROPAGATION_LIMIT: Duration = Duration::from_secs(120);
const WAITER_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionState {
    pub arn: String,
    pub code_sha256: String,
    pub runtime: String,
    pub handler: String,
    pub architectures: Vec<String>,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub role_arn: String,
    /// Values are kept to compare, never shown.
    pub environment: HashMap<String, String>,
    pub last_modified: String,
}

pub const KIND: &str = "Lambda function";

/// The stack's function, looked up by name and checked for our tag.
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Lookup<FunctionState>> {
    let name = stack.function_name();
    let found = aws.lambda.get_function().function_name(name).send().await;
    let Some(output) = found.or_absent(RESOURCE_NOT_FOUND, format!("reading Lambda function {name}"))? else {
        return Ok(Lookup::Absent);
    };
    if !stack.owns(output.tags().unwrap_or(&HashMap::new())) {
        return Ok(Lookup::Foreign);
    }
    let config = output.configuration().context("Lambda returned a function without configuration")?;
    Ok(Lookup::Ours(FunctionState {
        arn: config.function_arn().unwrap_or_default().to_string(),
        code_sha256: config.code_sha256().unwrap_or_default().to_string(),
        runtime: config.runtime().map(|r| r.as_str().to_string()).unwrap_or_default(),
        handler: config.handler().unwrap_or_default().to_string(),
        architectures: config.architectures().iter().map(|a| a.as_str().to_string()).collect(),
        memory_mb: config.memory_size().unwrap_or_default(),
        timeout_seconds: config.timeout().unwrap_or_default(),
        role_arn: config.role().unwrap_or_default().to_string(),
        environment: config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default(),
        last_modified: config.last_modified().unwrap_or_default().to_string(),
    }))
}

/// The package step's verdict: is the zip's code already what runs?
pub fn plan_code(desired: &Desired, observed: Option<&FunctionState>) -> Change {
    match observed {
        None => Change::create("first upload"),
        Some(f) if f.code_sha256 != desired.code_sha256 => Change::update("code changed"),
        Some(_) => Change::unchanged(),
    }
}

pub fn plan_function(desired: &Desired, observed: Option<&FunctionState>) -> Change {
    let Some(function) = observed else {
        return Change::create("no function yet");
    };
    let mut wrong = settings_drift(desired, function);
    if function.code_sha256 != desired.code_sha256 {
        wrong.insert(0, "code");
    }
    if wrong.is_empty() {
        Change::unchanged()
    } else {
        Change::update(format!("{} changed", wrong.join(", ")))
    }
}

/// Names only: the values may be secrets.
pub fn plan_environment(desired: &Desired, observed: Option<&FunctionState>) -> Change {
    let Some(function) = observed else {
        return Change::create("set with the new function");
    };
    let (mut missing, mut changed) = (Vec::new(), Vec::new());
    for (name, value) in &desired.environment.variables {
        match function.environment.get(name) {
            None => missing.push(name.as_str()),
            Some(current) if current != value => changed.push(name.as_str()),
            Some(_) => {}
        }
    }
    let stale = stale_variables(desired, function);
    let mut reasons = Vec::new();
    if !missing.is_empty() {
        reasons.push(format!("{} missing", missing.join(", ")));
    }
    if !changed.is_empty() {
        reasons.push(format!("{} changed", changed.join(", ")));
    }
    if !stale.is_empty() {
        reasons.push(format!("{} set but no longer asked for", stale.join(", ")));
    }
    if reasons.is_empty() { Change::unchanged() } else { Change::update(reasons.join("; ")) }
}

/// Variables `up` manages that are on the function but no longer wanted.
fn stale_variables<'a>(desired: &Desired, function: &'a FunctionState) -> Vec<&'a str> {
    let mut stale: Vec<&str> = function
        .environment
        .keys()
        .filter(|name| {
            desired.environment.managed.contains(*name) && !desired.environment.variables.contains_key(*name)
        })
        .map(String::as_str)
        .collect();
    stale.sort();
    stale
}

fn settings_drift(desired: &Desired, function: &FunctionState) -> Vec<&'static str> {
    let checks = [
        (function.runtime == RUNTIME, "runtime"),
        (function.handler == HANDLER, "handler"),
        (function.architectures == [ARCHITECTURE], "architecture"),
        (function.memory_mb == MEMORY_MB, "memory"),
        (function.timeout_seconds == TIMEOUT_SECONDS, "timeout"),
        (function.role_arn == desired.role_arn(), "role"),
    ];
    checks.into_iter().filter(|(ok, _)| !ok).map(|(_, name)| name).collect()
}

/// Creates the function or brings its code and settings to what is wanted; returns its ARN,
/// and the function's state when it was made meanwhile by another run and adopted. The
/// environment is set at creation; after that [`apply_environment`] looks after it.
pub async fn apply_function(
    aws: &Aws,
    desired: &Desired,
    action: Action,
    observed: Option<&FunctionState>,
    zip: &[u8],
    progress: &dyn Progress,
) -> Result<(String, Option<FunctionState>)> {
    let name = desired.stack.function_name();
    let adopted;
    let function = match observed {
        Some(function) if action == Action::Unchanged => return Ok((function.arn.clone(), None)),
        Some(function) => function,
        None => match create(aws, desired, zip, progress).await? {
            Created::Made(arn) => {
                wait_until_ready(aws, name, Step::Function, progress).await?;
                return Ok((arn, None));
            }
            // Made meanwhile by a twin run, or by our own call whose answer was lost: bring
            // that one to what is wanted instead.
            Created::AlreadyThere => {
                progress.note(Step::Function, "made meanwhile by another run: adopting it");
                adopted = find(aws, &desired.stack)
                    .await?
                    .ours_or_refuse(KIND, name, &desired.stack)?
                    .with_context(|| format!("Lambda function {name} vanished while being made"))?;
                &adopted
            }
        },
    };
    // An update still running (from another deploy, or a console edit) would make ours fail
    // with ResourceConflictException.
    wait_until_ready(aws, name, Step::Function, progress).await?;
    if function.code_sha256 != desired.code_sha256 || function.architectures != [ARCHITECTURE] {
        let upload = || {
            aws.lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(zip))
                .architectures(Architecture::X8664)
                .customize()
                .config_override(upload_timeouts())
                .send()
        };
        retrying(UPDATE_CONFLICT_LIMIT, update_in_progress, |m| progress.note(Step::Function, m), upload)
            .await
            .aws_context(format!("uploading new code to Lambda function {name}"))?;
        wait_until_ready(aws, name, Step::Function, progress).await?;
    }
    if !settings_drift(desired, function).is_empty() {
        let update = || {
            aws.lambda
                .update_function_configuration()
                .function_name(name)
                .runtime(Runtime::from(RUNTIME))
                .handler(HANDLER)
                .memory_size(MEMORY_MB)
                .timeout(TIMEOUT_SECONDS)
                .role(desired.role_arn())
                .send()
        };
        retrying(
            ROLE_PROPAGATION_LIMIT,
            configuration_retryable,
            |m| progress.note(Step::Function, m),
            update,
        )
        .await
        .aws_context(format!("updating the settings of Lambda function {name}"))?;
        wait_until_ready(aws, name, Step::Function, progress).await?;
    }
    Ok((function.arn.clone(), observed.is_none().then(|| function.clone())))
}

/// Sets our variables, removes the ones `up` manages but no longer wants, and keeps any a
/// user added to the function by other means.
pub async fn apply_environment(
    aws: &Aws,
    desired: &Desired,
    action: Action,
    observed: Option<&FunctionState>,
    progress: &dyn Progress,
) -> Result<()> {
    let (Action::Update, Some(function)) = (action, observed) else {
        return Ok(()); // unchanged, or set when the function was created
    };
    let name = desired.stack.function_name();
    let stale = stale_variables(desired, function);
    let mut variables: BTreeMap<String, String> = function.environment.clone().into_iter().collect();
    variables.retain(|name, _| !stale.contains(&name.as_str()));
    variables.extend(desired.environment.variables.clone());
    let environment = Environment::builder().set_variables(Some(variables.into_iter().collect())).build();
    let update = || {
        aws.lambda.update_function_configuration().function_name(name).environment(environment.clone()).send()
    };
    retrying(UPDATE_CONFLICT_LIMIT, update_in_progress, |m| progress.note(Step::Environment, m), update)
        .await
        .aws_context_no_echo(format!("setting the environment of Lambda function {name}"))?;
    wait_until_ready(aws, name, Step::Environment, progress).await
}

enum Created {
    Made(String),
    AlreadyThere,
}

async fn create(aws: &Aws, desired: &Desired, zip: &[u8], progress: &dyn Progress) -> Result<Created> {
    let name = desired.stack.function_name();
    let environment = Environment::builder()
        .set_variables(Some(desired.environment.variables.clone().into_iter().collect()))
        .build();
    let create = || {
        aws.lambda
            .create_function()
            .function_name(name)
            .description(format!("tokendeploy token server {}", desired.stack.name))
            .runtime(Runtime::from(RUNTIME))
            .handler(HANDLER)
            .architectures(Architecture::X8664)
            .memory_size(MEMORY_MB)
            .timeout(TIMEOUT_SECONDS)
            .role(desired.role_arn())
            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
            .environment(environment.clone())
            .set_tags(Some(desired.stack.tags().into_iter().collect()))
            .customize()
            .config_override(upload_timeouts())
            .send()
    };
    let role_wait = |e: &SdkError<_, _>| {
        role_not_yet_assumable(e).then_some("waiting for the new IAM role to reach Lambda")
    };
    match retrying(ROLE_PROPAGATION_LIMIT, role_wait, |m| progress.note(Step::Function, m), create).await {
        Ok(created) => Ok(Created::Made(created.function_arn().unwrap_or_default().to_string())),
        Err(e) if error_code(&e) == Some(CONFLICT) => Ok(Created::AlreadyThere),
        Err(e) => Err(e).aws_context_no_echo(format!("creating Lambda function {name}")),
    }
}

/// Lambda's answer to a change while another is still being applied, and to creating a
/// function that exists.
const CONFLICT: &str = "ResourceConflictException";
/// How long another update of the function may keep ours waiting.
const UPDATE_CONFLICT_LIMIT: Duration = Duration::from_secs(60);

fn update_in_progress<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    (error_code(error) == Some(CONFLICT)).then_some("another update of the function is in progress")
}

/// A settings update can meet both: a running update, and a role Lambda cannot assume yet.
fn configuration_retryable<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    update_in_progress(error)
        .or_else(|| role_not_yet_assumable(error).then_some("waiting for the IAM role to reach Lambda"))
}

/// Code goes up in the call itself: give it longer than other calls.
fn upload_timeouts() -> aws_sdk_lambda::config::Builder {
    aws_sdk_lambda::config::Builder::default().timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .read_timeout(UPLOAD_TIMEOUT)
            .operation_attempt_timeout(UPLOAD_TIMEOUT)
            .operation_timeout(UPLOAD_TIMEOUT * 2)
            .build(),
    )
}

/// Lambda's answer while a fresh role has not reached it yet.
fn role_not_yet_assumable<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error_code(error) == Some("InvalidParameterValueException")
        && error.as_service_error().and_then(|e| e.message()).is_some_and(|m| m.contains("cannot be assumed"))
}

/// Waits until the function is Active and its last update Successful.
async fn wait_until_ready(aws: &Aws, name: &str, step: Step, progress: &dyn Progress) -> Result<()> {
    progress.note(step, "waiting for the function to be active");
    aws.lambda
        .wait_until_function_active_v2()
        .function_name(name)
        .wait(WAITER_LIMIT)
        .await
        .map_err(|e| anyhow::anyhow!("Lambda function {name} did not become active: {e}"))?;
    let updated = aws.lambda.wait_until_function_updated_v2().function_name(name).wait(WAITER_LIMIT).await;
    if let Err(e) = updated {
        bail!("the last update of Lambda function {name} did not succeed: {e}");
    }
    Ok(())
}

/// Deletes the function (and with it its resource policy). Gone already is fine.
pub async fn delete(aws: &Aws, stack: &Stack) -> Result<()> {
    let name = stack.function_name();
    let deleted = aws.lambda.delete_function().function_name(name).send().await;
    deleted.or_absent(RESOURCE_NOT_FOUND, format!("deleting Lambda function {name}")).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired::example("sha-new", &[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", "secret-value")])
    }

    fn deployed(desired: &Desired) -> FunctionState {
        FunctionState {
            arn: desired.function_arn(),
            code_sha256: desired.code_sha256.clone(),
            runtime: RUNTIME.into(),
            handler: HANDLER.into(),
            architectures: vec![ARCHITECTURE.into()],
            memory_mb: MEMORY_MB,
            timeout_seconds: TIMEOUT_SECONDS,
            role_arn: desired.role_arn(),
            environment: desired
                .environment
                .variables
                .clone()
                .into_iter()
                .chain([("USER_ADDED".into(), "x".into())])
                .collect(),
            last_modified: "t".into(),
        }
    }

    #[test]
    fn nothing_to_do_when_code_settings_and_variables_match() {
        let desired = desired();
        let function = deployed(&desired);
        assert_eq!(plan_code(&desired, Some(&function)).action, Action::Unchanged);
        assert_eq!(plan_function(&desired, Some(&function)).action, Action::Unchanged);
        assert_eq!(
            plan_environment(&desired, Some(&function)).action,
            Action::Unchanged,
            "extra user variables are fine"
        );
    }

    #[test]
    fn changed_code_or_settings_update_the_function() {
        let desired = desired();
        let mut function = deployed(&desired);
        function.code_sha256 = "old".into();
        function.memory_mb = 128;
        assert_eq!(plan_code(&desired, Some(&function)).action, Action::Update);
        assert_eq!(plan_function(&desired, Some(&function)), Change::update("code, memory changed"));
        assert_eq!(plan_function(&desired, None).action, Action::Create);
    }

    #[test]
    fn a_changed_secret_is_named_never_shown() {
        let desired = desired();
        let mut function = deployed(&desired);
        function.environment.insert("CONSUMER_SECRET".into(), "previous-value".into());
        let change = plan_environment(&desired, Some(&function));
        assert_eq!(change, Change::update("CONSUMER_SECRET changed"));
        assert!(!format!("{change:?}{desired:?}").contains("secret-value"));
    }

    #[test]
    fn a_managed_variable_no_longer_asked_for_is_drift_but_a_hand_added_one_is_not() {
        let desired = desired();
        let mut function = deployed(&desired);
        function.environment.insert("UPSTREAM_TIMEOUT_MS".into(), "9000".into());
        assert_eq!(
            plan_environment(&desired, Some(&function)),
            Change::update("UPSTREAM_TIMEOUT_MS set but no longer asked for")
        );
        assert_eq!(stale_variables(&desired, &function), ["UPSTREAM_TIMEOUT_MS"]);
    }
}
