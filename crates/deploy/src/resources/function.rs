//! The Lambda function: `provided.al2023`, x86_64, handler `bootstrap`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, LastUpdateStatus, Runtime, State};

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND, UPLOAD_TIMEOUT, error_code};
use crate::desired::Desired;
use crate::error::{AwsCallFailed, NotReady};
use crate::resources::Lookup;
use crate::retry::{
    Backoff, LAMBDA_CONFLICT, lambda_configuration_busy, lambda_update_in_progress, retrying,
    role_not_yet_assumable,
};
use crate::stack::Stack;
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
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
    /// How many instances may run at once, when reserved (a function URL's cost bound).
    pub reserved_concurrency: Option<i32>,
}

pub const KIND: &str = "Lambda function";

/// The stack's function, looked up by name and checked for our tag.
/// The function's variable `variable` as it is now, `None` when it is unset or the function is
/// gone. For a function this run has just made or changed: read with GetFunctionConfiguration,
/// which (unlike GetFunction) needs no `lambda:ListTags` to be whole.
pub async fn variable(aws: &Aws, stack: &Stack, variable: &str) -> Result<Option<String>> {
    let name = stack.function_name();
    let found = aws.lambda.get_function_configuration().function_name(name).send().await;
    let found = found.or_absent(RESOURCE_NOT_FOUND, format!("reading Lambda function {name}"))?;
    let variables = found.as_ref().and_then(|config| config.environment()).and_then(|env| env.variables());
    Ok(variables.and_then(|variables| variables.get(variable)).cloned())
}

pub async fn find(aws: &Aws, stack: &Stack) -> Result<Lookup<FunctionState>> {
    let name = stack.function_name();
    let found = aws.lambda.get_function().function_name(name).send().await;
    let Some(output) = found.or_absent(RESOURCE_NOT_FOUND, format!("reading Lambda function {name}"))? else {
        return Ok(Lookup::Absent);
    };
    let config = output.configuration().context("Lambda returned a function without configuration")?;
    // GetFunction answers with the tags only to a caller allowed lambda:ListTags, and else
    // with a TagsError (API reference: GetFunction): without them, whose the function is
    // cannot be told, and nothing is done to it, or to the rest of the stack.
    let tags = match (output.tags(), output.tags_error()) {
        (Some(tags), _) => tags.clone(),
        (None, Some(withheld)) => return Err(tags_withheld(name, withheld.error_code(), withheld.message())),
        // No tags and no word why: untagged, or withheld without saying; ListTags tells.
        (None, None) => list_tags(aws, name, config.function_arn().unwrap_or(name)).await?,
    };
    if !stack.owns(&tags) {
        return Ok(Lookup::Foreign);
    }
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
        reserved_concurrency: output.concurrency().and_then(|c| c.reserved_concurrent_executions()),
    }))
}

/// The permission GetFunction needs to show a function's tags.
const LIST_TAGS: &str = "lambda:ListTags";

fn tags_withheld(name: &str, code: &str, message: &str) -> anyhow::Error {
    AwsCallFailed {
        doing: format!("reading the tags of Lambda function {name}"),
        code: Some(code.to_string()),
        request_id: None,
        description: format!(
            "GetFunction withheld them ({code}: {message}); allow {LIST_TAGS} on the function (examples/deployer-policy.json does): without its tags, tokendeploy cannot tell the function is the stack's, and changes nothing"
        ),
    }
    .into()
}

async fn list_tags(aws: &Aws, name: &str, arn: &str) -> Result<HashMap<String, String>> {
    let listed = aws.lambda.list_tags().resource(arn).send().await;
    let doing = format!("reading the tags of Lambda function {name} (it needs {LIST_TAGS})");
    Ok(listed.aws_context(doing)?.tags().cloned().unwrap_or_default())
}

/// The package step's verdict: is the zip's code already what runs? (The upload itself is
/// part of the function's change.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChange {
    FirstUpload,
    Changed,
    Unchanged,
}

impl Planned for CodeChange {
    fn summary(&self) -> Summary {
        match self {
            CodeChange::FirstUpload => Summary::create("first upload"),
            CodeChange::Changed => Summary::update("code changed"),
            CodeChange::Unchanged => Summary::unchanged(),
        }
    }
}

pub fn plan_code(desired: &Desired, observed: Option<&FunctionState>) -> CodeChange {
    match observed {
        None => CodeChange::FirstUpload,
        Some(f) if f.code_sha256 != desired.code_sha256 => CodeChange::Changed,
        Some(_) => CodeChange::Unchanged,
    }
}

/// What `up` does to the function itself (its variables are [`EnvironmentChange`]'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionChange {
    /// Made with the code, the settings and the variables at once.
    Create,
    Update {
        arn: String,
        fixes: FunctionFixes,
    },
    Unchanged {
        arn: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionFixes {
    /// Upload the code: it differs.
    pub upload_code: bool,
    /// Upload the code for another architecture (Lambda sets it with the code: in place).
    pub architecture: bool,
    /// The settings that differ, by name; set in one configuration update.
    pub settings: Vec<&'static str>,
}

impl Planned for FunctionChange {
    fn summary(&self) -> Summary {
        match self {
            FunctionChange::Create => Summary::create("no function yet"),
            FunctionChange::Unchanged { .. } => Summary::unchanged(),
            FunctionChange::Update { fixes, .. } => {
                Summary::update(format!("{} changed", fixes.names().join(", ")))
            }
        }
    }
}

impl FunctionFixes {
    fn names(&self) -> Vec<&'static str> {
        let code = [(self.upload_code, "code"), (self.architecture, "architecture")];
        let code = code.into_iter().filter_map(|(differs, name)| differs.then_some(name));
        code.chain(self.settings.iter().copied()).collect()
    }
}

pub fn plan_function(desired: &Desired, observed: Option<&FunctionState>) -> FunctionChange {
    let Some(function) = observed else {
        return FunctionChange::Create;
    };
    let fixes = FunctionFixes {
        upload_code: function.code_sha256 != desired.code_sha256,
        architecture: function.architectures != [desired.arch.lambda_name()],
        settings: settings_drift(desired, function),
    };
    let arn = function.arn.clone();
    match fixes == FunctionFixes::default() {
        true => FunctionChange::Unchanged { arn },
        false => FunctionChange::Update { arn, fixes },
    }
}

/// What `up` does to the function's variables. Holds their values: `Debug` shows names only.
#[derive(Clone, PartialEq, Eq)]
pub enum EnvironmentChange {
    /// Set when the function is created.
    WithNewFunction,
    Update {
        missing: Vec<String>,
        changed: Vec<String>,
        stale: Vec<String>,
        variables: BTreeMap<String, String>,
    },
    Unchanged,
}

impl fmt::Debug for EnvironmentChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.summary())
    }
}

impl Planned for EnvironmentChange {
    /// Names only: the values may be secrets.
    fn summary(&self) -> Summary {
        let (missing, changed, stale) = match self {
            EnvironmentChange::WithNewFunction => return Summary::create("set with the new function"),
            EnvironmentChange::Unchanged => return Summary::unchanged(),
            EnvironmentChange::Update { missing, changed, stale, .. } => (missing, changed, stale),
        };
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
        Summary::update(reasons.join("; "))
    }
}

/// Our variables set, the ones `up` manages but no longer wants removed, and any a user added
/// to the function by other means kept.
pub fn plan_environment(desired: &Desired, observed: Option<&FunctionState>) -> EnvironmentChange {
    let Some(function) = observed else {
        return EnvironmentChange::WithNewFunction;
    };
    let (mut missing, mut changed) = (Vec::new(), Vec::new());
    for (name, value) in &desired.environment.variables {
        match function.environment.get(name) {
            None => missing.push(name.clone()),
            Some(current) if current != value => changed.push(name.clone()),
            Some(_) => {}
        }
    }
    let stale: Vec<String> = stale_variables(desired, function).into_iter().map(str::to_string).collect();
    if missing.is_empty() && changed.is_empty() && stale.is_empty() {
        return EnvironmentChange::Unchanged;
    }
    let mut variables: BTreeMap<String, String> = function.environment.clone().into_iter().collect();
    variables.retain(|name, _| !stale.contains(name));
    variables.extend(desired.environment.variables.clone());
    EnvironmentChange::Update { missing, changed, stale, variables }
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
        (function.memory_mb == MEMORY_MB, "memory"),
        (function.timeout_seconds == TIMEOUT_SECONDS, "timeout"),
        (function.role_arn == desired.role_arn(), "role"),
    ];
    checks.into_iter().filter(|(ok, _)| !ok).map(|(_, name)| name).collect()
}

/// Carries out `change`; returns the function's ARN, and its state when it was made meanwhile
/// by another run and adopted (its variables are then that run's: plan them again).
pub async fn apply_function(
    aws: &Aws,
    desired: &Desired,
    change: &FunctionChange,
    zip: &[u8],
    progress: &dyn Progress,
) -> Result<(String, Option<FunctionState>)> {
    let name = desired.stack.function_name();
    let (arn, fixes, adopted) = match change {
        FunctionChange::Unchanged { arn } => return Ok((arn.clone(), None)),
        FunctionChange::Update { arn, fixes } => (arn.clone(), fixes.clone(), None),
        FunctionChange::Create => match create(aws, desired, zip, progress).await? {
            Created::Made { arn, ready } => {
                if !ready {
                    wait_for(aws, name, Step::Function, Goal::Settled, progress).await?;
                }
                return Ok((arn, None));
            }
            // Made meanwhile by a twin run, or by our own call whose answer was lost: bring
            // that one to what is wanted instead.
            Created::AlreadyThere => {
                progress.note(Step::Function, "made meanwhile by another run: adopting it");
                let adopted = find(aws, &desired.stack)
                    .await?
                    .ours_or_refuse(KIND, name, &desired.stack)?
                    .with_context(|| format!("Lambda function {name} vanished while being made"))?;
                let fixes = match plan_function(desired, Some(&adopted)) {
                    FunctionChange::Update { fixes, .. } => fixes,
                    _ => FunctionFixes::default(),
                };
                (adopted.arn.clone(), fixes, Some(adopted))
            }
        },
    };
    // An update still running (from another deploy, or a console edit) would make ours fail
    // with ResourceConflictException.
    wait_for(aws, name, Step::Function, Goal::TakesUpdates, progress).await?;
    let note = |message: &str| progress.note(Step::Function, message);
    if fixes.upload_code || fixes.architecture {
        let upload = || {
            aws.lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(zip))
                .architectures(Architecture::from(desired.arch.lambda_name()))
                .customize()
                .config_override(upload_timeouts())
                .send()
        };
        retrying(UPDATE_CONFLICT_LIMIT, Backoff::SHORT, lambda_update_in_progress, note, upload)
            .await
            .aws_context(format!("uploading new code to Lambda function {name}"))?;
        wait_for(aws, name, Step::Function, Goal::Settled, progress).await?;
    }
    if !fixes.settings.is_empty() {
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
        retrying(ROLE_PROPAGATION_LIMIT, Backoff::PROPAGATION, lambda_configuration_busy, note, update)
            .await
            .aws_context(format!("updating the settings of Lambda function {name}"))?;
        wait_for(aws, name, Step::Function, Goal::Settled, progress).await?;
    }
    Ok((arn, adopted))
}

pub async fn apply_environment(
    aws: &Aws,
    desired: &Desired,
    change: &EnvironmentChange,
    progress: &dyn Progress,
) -> Result<()> {
    let EnvironmentChange::Update { variables, .. } = change else {
        return Ok(()); // unchanged, or set when the function was created
    };
    let name = desired.stack.function_name();
    let environment =
        Environment::builder().set_variables(Some(variables.clone().into_iter().collect())).build();
    let update = || {
        aws.lambda.update_function_configuration().function_name(name).environment(environment.clone()).send()
    };
    let note = |message: &str| progress.note(Step::Environment, message);
    retrying(UPDATE_CONFLICT_LIMIT, Backoff::SHORT, lambda_configuration_busy, note, update)
        .await
        .aws_context_no_echo(format!("setting the environment of Lambda function {name}"))?;
    wait_for(aws, name, Step::Environment, Goal::Settled, progress).await
}

enum Created {
    /// `ready`: Lambda's answer says the function is active already.
    Made {
        arn: String,
        ready: bool,
    },
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
            .architectures(Architecture::from(desired.arch.lambda_name()))
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
    let note = |message: &str| progress.note(Step::Function, message);
    match retrying(ROLE_PROPAGATION_LIMIT, Backoff::PROPAGATION, role_not_yet_assumable, note, create).await {
        Ok(created) => {
            let arn = created.function_arn().unwrap_or_default().to_string();
            let readiness = Readiness::of(
                created.state(),
                created.state_reason(),
                created.last_update_status(),
                created.last_update_status_reason(),
            );
            Ok(Created::Made { arn, ready: readiness.reached(Goal::Settled) })
        }
        Err(e) if error_code(&e) == Some(LAMBDA_CONFLICT) => Ok(Created::AlreadyThere),
        Err(e) => Err(e).aws_context_no_echo(format!("creating Lambda function {name}")),
    }
}

/// How long another update of the function may keep ours waiting.
const UPDATE_CONFLICT_LIMIT: Duration = Duration::from_secs(60);

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

/// How often to look whether the function is ready: it goes on within a quarter second of
/// it, at four reads a second, far under Lambda's control-plane limits.
const READY_POLL: Duration = Duration::from_millis(250);

/// Where a function stands, as Lambda tells it in any answer carrying its configuration
/// (developer guide, "Lambda function states").
struct Readiness {
    state: Option<State>,
    last_update: Option<LastUpdateStatus>,
    /// Lambda's own words: `StateReason`, `LastUpdateStatusReason`.
    reasons: Vec<String>,
}

/// What a wait on the function waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// Lambda takes an update now: the function is not being made (Pending) or updated
    /// (InProgress). An idle function (Inactive) takes one, and the update brings it back; so
    /// does one whose last update failed (its previous code and configuration still serve).
    TakesUpdates,
    /// Our change is through: made or updated, last update Successful. An idle function that
    /// took the update counts, Lambda restores it on its next invocation.
    Settled,
}

impl Readiness {
    fn of(
        state: Option<&State>,
        state_reason: Option<&str>,
        last_update: Option<&LastUpdateStatus>,
        last_update_reason: Option<&str>,
    ) -> Self {
        Self {
            state: state.cloned(),
            last_update: last_update.cloned(),
            reasons: state_reason.into_iter().chain(last_update_reason).map(str::to_string).collect(),
        }
    }

    fn reached(&self, goal: Goal) -> bool {
        let usable = matches!(self.state, None | Some(State::Active | State::Inactive));
        let last_update = self.last_update.as_ref();
        usable
            && match goal {
                Goal::TakesUpdates => last_update != Some(&LastUpdateStatus::InProgress),
                Goal::Settled => matches!(last_update, None | Some(LastUpdateStatus::Successful)),
            }
    }

    /// Cannot get there by waiting: a failed creation (delete and make it again), or, once
    /// our change was sent, its update failed.
    fn has_failed(&self, goal: Goal) -> bool {
        self.state == Some(State::Failed)
            || (goal == Goal::Settled && self.last_update == Some(LastUpdateStatus::Failed))
    }

    fn describe(&self) -> String {
        let state = self.state.as_ref().map_or("no state", |s| s.as_str());
        let update = self.last_update.as_ref().map_or("none", |s| s.as_str());
        format!("state {state}, last update {update}")
    }
}

/// Waits until the function reaches `goal`, reading its configuration every [`READY_POLL`]; a
/// failure says why, in Lambda's words.
async fn wait_for(aws: &Aws, name: &str, step: Step, goal: Goal, progress: &dyn Progress) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let config = aws.lambda.get_function_configuration().function_name(name).send().await;
        let config = config.aws_context(format!("reading the state of Lambda function {name}"))?;
        let readiness = Readiness::of(
            config.state(),
            config.state_reason(),
            config.last_update_status(),
            config.last_update_status_reason(),
        );
        if readiness.reached(goal) {
            return Ok(());
        }
        if readiness.has_failed(goal) || started.elapsed() > WAITER_LIMIT {
            let mut said = if readiness.reasons.is_empty() {
                readiness.describe()
            } else {
                readiness.reasons.join("; ")
            };
            if readiness.state == Some(State::Failed) {
                said.push_str(
                    ": Lambda cannot update a function whose creation failed; run tokendeploy down, then up",
                );
            }
            return Err(NotReady { what: format!("Lambda function {name}"), reason: said }.into());
        }
        let waiting = match goal {
            Goal::TakesUpdates => "waiting for the function to take an update",
            Goal::Settled => "waiting for the function to be active",
        };
        progress.note(step, &format!("{waiting} ({})", readiness.describe()));
        tokio::time::sleep(READY_POLL).await;
    }
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
    use crate::vocabulary::Action;

    fn desired() -> Desired {
        Desired::example("sha-new", &[("CONSUMER_KEY", "k"), ("CONSUMER_SECRET", "secret-value")])
    }

    fn deployed(desired: &Desired) -> FunctionState {
        FunctionState {
            arn: desired.function_arn(),
            code_sha256: desired.code_sha256.clone(),
            runtime: RUNTIME.into(),
            handler: HANDLER.into(),
            architectures: vec![desired.arch.lambda_name().into()],
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
            reserved_concurrency: None,
        }
    }

    #[test]
    fn nothing_to_do_when_code_settings_and_variables_match() {
        let desired = desired();
        let function = deployed(&desired);
        assert_eq!(plan_code(&desired, Some(&function)), CodeChange::Unchanged);
        assert_eq!(plan_function(&desired, Some(&function)).action(), Action::Unchanged);
        assert_eq!(
            plan_environment(&desired, Some(&function)),
            EnvironmentChange::Unchanged,
            "extra user variables are fine"
        );
    }

    #[test]
    fn changed_code_or_settings_update_the_function() {
        let desired = desired();
        let mut function = deployed(&desired);
        function.code_sha256 = "old".into();
        function.memory_mb = 128;
        assert_eq!(plan_code(&desired, Some(&function)), CodeChange::Changed);
        let change = plan_function(&desired, Some(&function));
        assert_eq!(change.summary(), Summary::update("code, memory changed"));
        let fixes = FunctionFixes { upload_code: true, architecture: false, settings: vec!["memory"] };
        assert_eq!(change, FunctionChange::Update { arn: desired.function_arn(), fixes });
        assert_eq!(plan_function(&desired, None), FunctionChange::Create);
    }

    #[test]
    fn an_idle_function_and_one_whose_last_update_failed_take_an_update_at_once() {
        let at = |state: State, update: Option<LastUpdateStatus>| {
            Readiness::of(Some(&state), None, update.as_ref(), None)
        };
        let idle = at(State::Inactive, Some(LastUpdateStatus::Successful));
        assert!(idle.reached(Goal::TakesUpdates) && idle.reached(Goal::Settled));
        let failed_update = at(State::Active, Some(LastUpdateStatus::Failed));
        assert!(failed_update.reached(Goal::TakesUpdates) && !failed_update.has_failed(Goal::TakesUpdates));
        assert!(failed_update.has_failed(Goal::Settled), "after our own update, a failure is ours");
        for busy in [at(State::Pending, None), at(State::Active, Some(LastUpdateStatus::InProgress))] {
            assert!(!busy.reached(Goal::TakesUpdates) && !busy.has_failed(Goal::TakesUpdates));
        }
        let broken = at(State::Failed, None);
        assert!(!broken.reached(Goal::TakesUpdates) && broken.has_failed(Goal::TakesUpdates));
    }

    #[test]
    fn a_changed_secret_is_named_never_shown() {
        let desired = desired();
        let mut function = deployed(&desired);
        function.environment.insert("CONSUMER_SECRET".into(), "previous-value".into());
        let change = plan_environment(&desired, Some(&function));
        assert_eq!(change.summary(), Summary::update("CONSUMER_SECRET changed"));
        assert!(!format!("{change:?}{desired:?}").contains("secret-value"));
        let EnvironmentChange::Update { variables, .. } = change else { panic!("an update") };
        assert_eq!(variables["CONSUMER_SECRET"], "secret-value");
        assert_eq!(variables["USER_ADDED"], "x", "a variable added by hand is kept");
    }

    #[test]
    fn a_managed_variable_no_longer_asked_for_is_drift_but_a_hand_added_one_is_not() {
        let desired = desired();
        let mut function = deployed(&desired);
        function.environment.insert("UPSTREAM_TIMEOUT_MS".into(), "9000".into());
        let change = plan_environment(&desired, Some(&function));
        assert_eq!(change.summary(), Summary::update("UPSTREAM_TIMEOUT_MS set but no longer asked for"));
        let EnvironmentChange::Update { variables, .. } = change else { panic!("an update") };
        assert!(!variables.contains_key("UPSTREAM_TIMEOUT_MS"));
        assert_eq!(stale_variables(&desired, &function), ["UPSTREAM_TIMEOUT_MS"]);
    }
}
