//! The function URL (`--gateway url`): auth type NONE, as the function checks identity itself
//! (IDENTITY_MODE); CORS in its configuration, from ALLOWED_ORIGINS; and the function's
//! reserved concurrency as the bound on cost, since a function URL has no throttling of its
//! own. Its two public invoke permissions are [`super::permission`]'s. Deleting the function
//! deletes its URL; `up` switching to another gateway removes it once that one serves.
//!
//! Lambda developer guide: "Creating and managing Lambda function URLs" (CORS), "Control
//! access to Lambda function URLs" (both permissions since October 2025), "Configuring reserved
//! concurrency" (100 of the account's concurrency stay unreserved); API reference: Cors.

use std::time::Duration;

use anyhow::Result;
use aws_sdk_lambda::types::{FunctionUrlAuthType, InvokeMode};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokendeploy_config::origins::AllowedOrigins;

use crate::aws::{Aws, AwsResultExt, RESOURCE_NOT_FOUND, error_code, message};
use crate::desired::{Desired, Gateway};
use crate::error::AwsCallFailed;
use crate::resources::cors::{self, Cors};
use crate::resources::function::FunctionState;
use crate::retry::{Backoff, LAMBDA_CONFLICT, lambda_update_in_progress, retrying};
use crate::stack::Stack;
use crate::vocabulary::{Planned, Progress, Step, Summary};

pub const KIND: &str = "function URL";

/// The most origins a function URL's CORS takes (API reference: Cors, AllowOrigins).
pub const MAX_ORIGINS: usize = 100;
/// The longest origin it takes.
pub const MAX_ORIGIN_LENGTH: usize = 253;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlState {
    /// `https://{id}.lambda-url.{region}.on.aws/`, as Lambda gives it.
    pub url: String,
    pub auth_type: String,
    pub invoke_mode: String,
    pub cors: Cors,
}

/// The function's URL, `None` when it has none (or there is no function).
pub async fn find(aws: &Aws, stack: &Stack) -> Result<Option<UrlState>> {
    let name = stack.function_name();
    let found = aws.lambda.get_function_url_config().function_name(name).send().await;
    let Some(config) =
        found.or_absent(RESOURCE_NOT_FOUND, format!("reading the URL of Lambda function {name}"))?
    else {
        return Ok(None);
    };
    let cors = config.cors().map(|cors| Cors {
        allow_origins: cors.allow_origins().to_vec(),
        allow_methods: cors.allow_methods().to_vec(),
        allow_headers: cors.allow_headers().iter().map(|h| h.to_ascii_lowercase()).collect(),
        max_age: cors.max_age().unwrap_or_default(),
    });
    Ok(Some(UrlState {
        url: config.function_url().to_string(),
        auth_type: config.auth_type().as_str().to_string(),
        invoke_mode: config.invoke_mode().map(|mode| mode.as_str().to_string()).unwrap_or("BUFFERED".into()),
        cors: cors.unwrap_or_default(),
    }))
}

/// Why `ALLOWED_ORIGINS` cannot be a function URL's CORS, checked before any AWS call.
pub fn origins_refusal(allowed_origins: &str) -> Option<String> {
    let Some(AllowedOrigins::List(list)) = AllowedOrigins::parse(allowed_origins) else { return None };
    if list.len() > MAX_ORIGINS {
        return Some(format!(
            "ALLOWED_ORIGINS lists {} origins, and a function URL's CORS takes at most {MAX_ORIGINS}: list fewer, or use --gateway rest",
            list.len()
        ));
    }
    let long = list.iter().find(|origin| origin.len() > MAX_ORIGIN_LENGTH)?;
    Some(format!(
        "ALLOWED_ORIGINS has an origin of {} characters ({}...), and a function URL takes at most {MAX_ORIGIN_LENGTH}",
        long.len(),
        long.chars().take(40).collect::<String>()
    ))
}

/// What `up` does to the URL itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlChange {
    Create,
    /// The settings that differ, by name.
    Update(Vec<&'static str>),
    Unchanged,
    /// Another gateway is asked for: the URL goes once that one serves.
    Retire,
    NotAskedFor,
}

/// What `up` does to the function's reserved concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyChange {
    Set {
        from: Option<i32>,
        to: i32,
    },
    Unchanged,
    /// Set for a URL being retired.
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUrlChange {
    pub url: UrlChange,
    pub concurrency: ConcurrencyChange,
}

impl FunctionUrlChange {
    pub fn is_retire(&self) -> bool {
        self.url == UrlChange::Retire
    }
}

impl Planned for FunctionUrlChange {
    fn summary(&self) -> Summary {
        let concurrency = match self.concurrency {
            ConcurrencyChange::Set { from: Some(from), to } => {
                Some(format!("reserved concurrency {from} -> {to}"))
            }
            ConcurrencyChange::Set { from: None, to } => Some(format!("reserved concurrency {to}")),
            ConcurrencyChange::Unchanged | ConcurrencyChange::Remove => None,
        };
        match (&self.url, concurrency) {
            (UrlChange::Create, concurrency) => {
                let bound = concurrency.map(|c| format!("; {c}")).unwrap_or_default();
                Summary::create(format!("no function URL yet{bound}"))
            }
            (UrlChange::Retire, _) => {
                Summary::delete("another gateway is asked for: removed once that one serves")
            }
            (UrlChange::Update(differs), concurrency) => {
                let differs = differs.iter().map(|name| format!("{name} changed"));
                Summary::update(differs.chain(concurrency).collect::<Vec<_>>().join("; "))
            }
            (UrlChange::Unchanged, Some(concurrency)) => Summary::update(concurrency),
            (UrlChange::Unchanged, None) => Summary::unchanged(),
            (UrlChange::NotAskedFor, _) => Summary::not_asked_for(),
        }
    }
}

pub fn plan(
    desired: &Desired,
    function: Option<&FunctionState>,
    observed: Option<&UrlState>,
) -> FunctionUrlChange {
    let reserved = function.and_then(|function| function.reserved_concurrency);
    match desired.gateway() {
        Gateway::Url => {
            let url = match observed {
                None => UrlChange::Create,
                Some(state) => {
                    let differs: Vec<&'static str> = [
                        (state.auth_type != FunctionUrlAuthType::None.as_str(), "auth type"),
                        (state.invoke_mode != InvokeMode::Buffered.as_str(), "invoke mode"),
                        (state.cors != cors::wanted(desired), "CORS"),
                    ]
                    .into_iter()
                    .filter_map(|(differs, name)| differs.then_some(name))
                    .collect();
                    if differs.is_empty() { UrlChange::Unchanged } else { UrlChange::Update(differs) }
                }
            };
            let to = desired.security.reserved_concurrency;
            let concurrency = match reserved == Some(to) {
                true => ConcurrencyChange::Unchanged,
                false => ConcurrencyChange::Set { from: reserved, to },
            };
            FunctionUrlChange { url, concurrency }
        }
        Gateway::Rest | Gateway::Http => match observed {
            Some(_) => FunctionUrlChange {
                url: UrlChange::Retire,
                concurrency: if reserved.is_some() {
                    ConcurrencyChange::Remove
                } else {
                    ConcurrencyChange::Unchanged
                },
            },
            None => {
                FunctionUrlChange { url: UrlChange::NotAskedFor, concurrency: ConcurrencyChange::Unchanged }
            }
        },
    }
}

/// How long a running update of the function may keep the URL's change waiting.
const CONFLICT_LIMIT: Duration = Duration::from_secs(60);

/// A conflict that is the function being busy, not its URL being there already (Lambda says
/// "FunctionUrlConfig exists for this Lambda function" then).
fn busy_but_not_made<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&'static str> {
    lambda_update_in_progress(error).filter(|_| !message(error).contains("exists"))
}

/// Makes or sets the URL and the reserved concurrency, side by side; returns the URL. Not for
/// [`UrlChange::Retire`]: that is [`retire`], once the other gateway serves.
pub async fn apply(
    aws: &Aws,
    desired: &Desired,
    change: &FunctionUrlChange,
    observed: Option<&UrlState>,
    progress: &dyn Progress,
) -> Result<Option<String>> {
    let (url, ()) = tokio::try_join!(
        apply_url(aws, desired, &change.url, observed, progress),
        apply_concurrency(aws, desired, change.concurrency, progress)
    )?;
    Ok(url)
}

async fn apply_url(
    aws: &Aws,
    desired: &Desired,
    change: &UrlChange,
    observed: Option<&UrlState>,
    progress: &dyn Progress,
) -> Result<Option<String>> {
    let name = desired.stack.function_name();
    let note = |message: &str| progress.note(Step::FunctionUrl, message);
    let cors = sdk_cors(&cors::wanted(desired));
    match change {
        UrlChange::NotAskedFor | UrlChange::Retire => return Ok(None),
        UrlChange::Unchanged => return Ok(observed.map(|state| state.url.clone())),
        UrlChange::Create => {
            let create = || {
                aws.lambda
                    .create_function_url_config()
                    .function_name(name)
                    .auth_type(FunctionUrlAuthType::None)
                    .invoke_mode(InvokeMode::Buffered)
                    .cors(cors.clone())
                    .send()
            };
            match retrying(CONFLICT_LIMIT, Backoff::SHORT, busy_but_not_made, note, create).await {
                Ok(made) => return Ok(Some(made.function_url().to_string())),
                // Made meanwhile: by a twin run, or by our own call whose answer was lost. Set
                // it as wanted all the same.
                Err(e) if error_code(&e) == Some(LAMBDA_CONFLICT) => {
                    note("made meanwhile by another run: setting it")
                }
                Err(e) => return Err(e).aws_context(format!("making the URL of Lambda function {name}")),
            }
        }
        UrlChange::Update(_) => {}
    }
    let update = || {
        aws.lambda
            .update_function_url_config()
            .function_name(name)
            .auth_type(FunctionUrlAuthType::None)
            .invoke_mode(InvokeMode::Buffered)
            .cors(cors.clone())
            .send()
    };
    let updated = retrying(CONFLICT_LIMIT, Backoff::SHORT, lambda_update_in_progress, note, update).await;
    let updated = updated.aws_context(format!("setting the URL of Lambda function {name}"))?;
    Ok(Some(updated.function_url().to_string()))
}

/// Lambda's CORS for `cors`: empty lists unset it.
fn sdk_cors(cors: &Cors) -> aws_sdk_lambda::types::Cors {
    aws_sdk_lambda::types::Cors::builder()
        .set_allow_origins(Some(cors.allow_origins.clone()))
        .set_allow_methods(Some(cors.allow_methods.clone()))
        .set_allow_headers(Some(cors.allow_headers.clone()))
        .max_age(cors.max_age)
        .allow_credentials(false)
        .build()
}

async fn apply_concurrency(
    aws: &Aws,
    desired: &Desired,
    change: ConcurrencyChange,
    progress: &dyn Progress,
) -> Result<()> {
    let ConcurrencyChange::Set { to, .. } = change else { return Ok(()) };
    let name = desired.stack.function_name();
    let note = |message: &str| progress.note(Step::FunctionUrl, message);
    let put = || {
        aws.lambda.put_function_concurrency().function_name(name).reserved_concurrent_executions(to).send()
    };
    match retrying(CONFLICT_LIMIT, Backoff::SHORT, lambda_update_in_progress, note, put).await {
        Ok(_) => Ok(()),
        // Lambda keeps 100 of the account's concurrency unreserved ("Configuring reserved
        // concurrency"); a new account's quota may leave nothing to reserve.
        Err(e) if message(&e).contains("UnreservedConcurrentExecution") => Err(AwsCallFailed {
            doing: format!("reserving a concurrency of {to} for Lambda function {name}"),
            code: error_code(&e).map(str::to_string),
            request_id: None,
            description: format!(
                "Lambda keeps 100 of the account's concurrency in the region unreserved, and the account's quota leaves no room for {to} more ({}): ask for a higher \"Concurrent executions\" quota in Service Quotas, pass a smaller --reserved-concurrency, or use --gateway rest, whose stage throttling bounds the cost instead",
                message(&e)
            ),
        }
        .into()),
        Err(e) => Err(e).aws_context(format!("reserving a concurrency of {to} for Lambda function {name}")),
    }
}

/// Removes the URL and the reserved concurrency set for it, once another gateway serves.
/// Gone already is fine.
pub async fn retire(
    aws: &Aws,
    stack: &Stack,
    change: &FunctionUrlChange,
    progress: &dyn Progress,
) -> Result<()> {
    if !change.is_retire() {
        return Ok(());
    }
    let name = stack.function_name();
    let note = |message: &str| progress.note(Step::FunctionUrl, message);
    let delete = || aws.lambda.delete_function_url_config().function_name(name).send();
    let deleted = retrying(CONFLICT_LIMIT, Backoff::SHORT, lambda_update_in_progress, note, delete).await;
    deleted.or_absent(RESOURCE_NOT_FOUND, format!("removing the URL of Lambda function {name}"))?;
    if change.concurrency == ConcurrencyChange::Remove {
        let remove = aws.lambda.delete_function_concurrency().function_name(name).send().await;
        remove.or_absent(RESOURCE_NOT_FOUND, format!("removing the reserved concurrency of {name}"))?;
    }
    Ok(())
}

/// The URL that answers token requests at `url` (Lambda's, ending in `/`), or with an endpoint
/// override (an emulator) the path tokendeploy's emulator serves it at, which needs no DNS:
/// `ENDPOINT/lambda-url/{url-id}/token`.
pub fn token_url(url: &str, endpoint: Option<&str>) -> String {
    let path = tokendeploy_config::TOKEN_PATH;
    match endpoint {
        Some(endpoint) => {
            let host = url.trim_start_matches("https://").split(['.', '/']).next().unwrap_or_default();
            format!("{}/lambda-url/{host}{path}", endpoint.trim_end_matches('/'))
        }
        None => format!("{}{path}", url.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Security;
    use crate::vocabulary::Action;

    fn desired(gateway: Gateway, origins: &str) -> Desired {
        let security = Security { gateway, reserved_concurrency: 5, ..Security::default() };
        Desired::secured("sha", &[("ALLOWED_ORIGINS", origins)], security)
    }

    fn made(desired: &Desired) -> UrlState {
        UrlState {
            url: "https://abc123.lambda-url.us-west-1.on.aws/".into(),
            auth_type: "NONE".into(),
            invoke_mode: "BUFFERED".into(),
            cors: cors::wanted(desired),
        }
    }

    fn function(reserved: Option<i32>) -> FunctionState {
        let desired = Desired::example("sha", &[]);
        FunctionState {
            arn: desired.function_arn(),
            code_sha256: "sha".into(),
            runtime: String::new(),
            handler: String::new(),
            architectures: vec![],
            memory_mb: 0,
            timeout_seconds: 0,
            role_arn: String::new(),
            environment: Default::default(),
            last_modified: String::new(),
            reserved_concurrency: reserved,
        }
    }

    #[test]
    fn cors_lists_the_origins_and_the_methods_but_options() {
        let cors = cors::wanted(&desired(Gateway::Url, "https://a.example, https://b.example"));
        assert_eq!(cors.allow_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(cors.allow_methods, ["GET"]);
        assert_eq!(cors::wanted(&desired(Gateway::Url, "*")).allow_origins, ["*"]);
        assert_eq!(cors::wanted(&Desired::example("sha", &[])), Cors::default(), "no origin, no CORS");
    }

    #[test]
    fn plans_the_url_and_its_concurrency() {
        let wanted = desired(Gateway::Url, "https://a.example");
        let fresh = plan(&wanted, None, None);
        assert_eq!(fresh.url, UrlChange::Create);
        assert_eq!(fresh.concurrency, ConcurrencyChange::Set { from: None, to: 5 });
        assert_eq!(fresh.summary(), Summary::create("no function URL yet; reserved concurrency 5"));
        let done = plan(&wanted, Some(&function(Some(5))), Some(&made(&wanted)));
        assert_eq!(done.action(), Action::Unchanged);
        let mut widened = made(&wanted);
        widened.cors.allow_origins.push("https://evil.example".into());
        let repaired = plan(&wanted, Some(&function(Some(9))), Some(&widened));
        assert_eq!(repaired.summary(), Summary::update("CORS changed; reserved concurrency 9 -> 5"));
    }

    #[test]
    fn another_gateway_retires_the_url_and_its_concurrency() {
        let rest = desired(Gateway::Rest, "https://a.example");
        let found = made(&rest);
        let retired = plan(&rest, Some(&function(Some(5))), Some(&found));
        assert_eq!((retired.action(), retired.concurrency), (Action::Delete, ConcurrencyChange::Remove));
        assert_eq!(
            plan(&rest, Some(&function(Some(7))), None).summary(),
            Summary::not_asked_for(),
            "a hand-set one is left"
        );
    }

    #[test]
    fn too_many_or_too_long_origins_are_refused_before_any_call() {
        let many: Vec<String> = (0..101).map(|i| format!("https://o{i}.example")).collect();
        assert!(origins_refusal(&many.join(",")).unwrap().contains("101 origins"));
        assert_eq!(origins_refusal(&many[..100].join(",")), None);
        let long = format!("https://{}.example", "a".repeat(250));
        assert!(origins_refusal(&long).unwrap().contains("at most 253"));
        assert_eq!(origins_refusal("*"), None);
    }

    #[test]
    fn the_token_url_is_lambdas_or_the_emulators() {
        let url = "https://abc123.lambda-url.us-west-1.on.aws/";
        assert_eq!(token_url(url, None), "https://abc123.lambda-url.us-west-1.on.aws/token");
        assert_eq!(
            token_url(url, Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000/lambda-url/abc123/token"
        );
    }
}
