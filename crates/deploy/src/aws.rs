//! The AWS clients for one region, built from the standard aws-config chain, with every
//! network wait bounded, and AWS's errors turned into one readable line.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::{DispatchFailure, SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::ErrorKind;
use aws_types::os_shim_internal::{Env, Fs};
use aws_types::request_id::RequestId;

use crate::error::{AwsCallFailed, UsageError};

/// Where to connect: each `None` falls back to the standard AWS environment and profile.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// An emulator such as moto or LocalStack; `AWS_ENDPOINT_URL` works as well.
    pub endpoint_url: Option<String>,
}

/// How long to wait for a TCP (and TLS) connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one attempt may wait for AWS's answer once connected (upload included).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// One call, all its retries and their back-off included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);
/// The first call (the credentials check) gets less: an endpoint that does not answer it
/// is not going to answer the rest, and the user should know in seconds.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Uploading code may take long on a slow line: Lambda takes up to 50 MB in the call.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct Aws {
    pub region: String,
    /// `--endpoint-url` or `AWS_ENDPOINT_URL`, when set: named in errors.
    pub endpoint_url: Option<String>,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    /// HTTP APIs (API Gateway v2).
    pub apigatewayv2: aws_sdk_apigatewayv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts: aws_sdk_sts::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// The account's regions (`--all-regions`).
    pub account: aws_sdk_account::Client,
    /// Resources by tag, in the region (`--all-regions`).
    pub tagging: aws_sdk_resourcegroupstagging::Client,
}

/// The bounds every call runs under.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(READ_TIMEOUT + CONNECT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

impl Aws {
    /// Builds the clients; checks the endpoint, profile and region, but makes no AWS call.
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // Throttling and 5xx answers are retried with backoff (API Gateway allows few
            // calls a second), each call bounded as a whole by OPERATION_TIMEOUT.
            .retry_config(
                RetryConfig::standard().with_max_attempts(8).with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(timeouts());
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &options.profile {
            check_profile_exists(profile).await?;
            // The profile's credentials, not whatever the environment holds: as the aws CLI
            // does, `--profile` wins over AWS_ACCESS_KEY_ID.
            loader = loader.profile_name(profile).credentials_provider(
                ProfileFileCredentialsProvider::builder().profile_name(profile).build(),
            );
        }
        let endpoint_url = endpoint_url(options.endpoint_url.as_deref())?;
        if let Some(endpoint) = &endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        Self::from_config(&loader.load().await)
    }

    /// Clients for an already loaded configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Result<Self> {
        // No silent fallback to us-east-1: deploying to a region the user did not pick is worse
        // than asking.
        let Some(region) = config.region().map(|r| r.to_string()) else {
            return Err(usage(
                "no AWS region: pass --region (for example --region us-west-1), or set AWS_REGION or a region in your AWS profile".into(),
            ));
        };
        Ok(Self {
            region,
            endpoint_url: config.endpoint_url().map(str::to_string),
            iam: aws_sdk_iam::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            apigateway: aws_sdk_apigateway::Client::new(config),
            apigatewayv2: aws_sdk_apigatewayv2::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            secretsmanager: aws_sdk_secretsmanager::Client::new(config),
            account: aws_sdk_account::Client::new(config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(config),
        })
    }

    /// `work` with [`Aws::account_id`] beside it: an endpoint that never answers, a closed
    /// port or refused credentials end it within seconds, saying which, rather than after the
    /// retries of every read in `work`. No deeper: the check waits beside the first wave.
    pub async fn checked<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let (_, done) = tokio::try_join!(self.account_id(), work)?;
        Ok(done)
    }

    /// The account the credentials belong to; the first call, so an endpoint that cannot be
    /// reached, or bad credentials, fail here, quickly and saying which.
    pub async fn account_id(&self) -> Result<String> {
        let probe = aws_sdk_sts::config::Builder::default()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(PROBE_TIMEOUT)
                    .read_timeout(PROBE_TIMEOUT)
                    .operation_timeout(PROBE_TIMEOUT * 3)
                    .build(),
            );
        let answer = self.sts.get_caller_identity().customize().config_override(probe).send().await;
        let identity = answer.map_err(|error| {
            let endpoint = match &self.endpoint_url {
                Some(url) => format!("the AWS endpoint {url}"),
                None => format!("AWS STS in {}", self.region),
            };
            let status = error.raw_response().map(|response| response.status().as_u16());
            let failed = |doing: String, code: Option<&str>, description: String| {
                let code = code.map(str::to_string);
                anyhow::Error::new(AwsCallFailed { doing, code, request_id: error.request_id().map(str::to_string), description })
            };
            match failure(&error) {
                Failure::Unreachable(why) => failed(
                    format!("cannot reach {endpoint}"),
                    None,
                    format!("{why}; check the network, --endpoint-url or AWS_ENDPOINT_URL"),
                ),
                // Trouble on AWS's side, not the credentials': a 5xx, or too many calls.
                Failure::Answered(why)
                    if status.is_some_and(|status| status >= 500)
                        || matches!(error.code(), Some("Throttling" | "ThrottlingException")) =>
                {
                    failed(
                        format!(
                            "{endpoint} could not check the credentials (sts:GetCallerIdentity, HTTP {})",
                            status.unwrap_or_default()
                        ),
                        error.code(),
                        format!("{why}; AWS is failing or busy there: run the command again"),
                    )
                }
                Failure::Answered(why) => failed(
                    format!("{endpoint} refused the credentials (sts:GetCallerIdentity)"),
                    error.code(),
                    format!("{why}; check --profile, AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
                ),
                Failure::Local(why) => anyhow!(
                    "no usable AWS credentials: {why}; pass --profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                ),
            }
        })?;
        identity.account.context("sts:GetCallerIdentity returned no account")
    }
}

/// An emulator's URL, checked now: a typo must not become a confusing failure later.
fn endpoint_url(given: Option<&str>) -> Result<Option<String>> {
    let Some(given) = given else { return Ok(None) };
    let parsed = url::Url::parse(given.trim()).ok().filter(|url| {
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|host| !host.is_empty())
    });
    match parsed {
        Some(_) => Ok(Some(given.trim().to_string())),
        None if given.trim().is_empty() => Err(usage(
            "the endpoint URL is empty (--endpoint-url or AWS_ENDPOINT_URL): unset it for AWS itself, or give an emulator's URL such as http://127.0.0.1:5000".into(),
        )),
        None => Err(usage(format!(
            "the endpoint URL {given:?} (--endpoint-url or AWS_ENDPOINT_URL) is not an http(s) URL such as http://127.0.0.1:5000"
        ))),
    }
}

/// A missing profile would otherwise fall through to other credentials: refuse it by name.
async fn check_profile_exists(profile: &str) -> Result<()> {
    let files = EnvConfigFiles::default();
    let profiles = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .map_err(|e| usage(format!("cannot read the AWS config files for --profile {profile}: {e}")))?;
    if profiles.get_profile(profile).is_none() {
        return Err(usage(format!(
            "--profile {profile}: no such profile in the AWS config files (~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE); `aws configure list-profiles` lists them"
        )));
    }
    Ok(())
}

fn usage(message: String) -> anyhow::Error {
    UsageError(message).into()
}

/// The error code of a failed AWS call, such as `NoSuchEntity`.
pub fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// The message AWS sent with its error code.
pub fn message<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> &str {
    error.as_service_error().and_then(ProvideErrorMetadata::message).unwrap_or_default()
}

/// The codes with which each service says a resource is not there (or already gone).
pub const IAM_NOT_FOUND: &str = "NoSuchEntity";
/// Lambda's, and CloudWatch Logs'.
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
pub const APIGATEWAY_NOT_FOUND: &str = "NotFoundException";

/// The codes AWS documents as "slow down and try again".
const THROTTLING_CODES: [&str; 5] =
    ["TooManyRequestsException", "Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown"];

/// How many pages of a listing to read at most: an endpoint that keeps answering with a
/// next page must not keep us forever.
pub const MAX_PAGES: usize = 100;

/// Worth trying again: throttling, a 5xx, or a connection that broke or timed out.
pub fn is_transient<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::DispatchFailure(failure) => connection_failed(failure),
        SdkError::TimeoutError(_) => true,
        SdkError::ResponseError(response) => response.raw().status().is_server_error(),
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || service.err().code().is_some_and(|code| THROTTLING_CODES.contains(&code))
        }
        _ => false,
    }
}

/// The connection broke or timed out: a closed connection before the answer counts too (the
/// SDK calls it a transient "other" error, and retries it as such).
fn connection_failed(failure: &DispatchFailure) -> bool {
    failure.is_io() || failure.is_timeout() || failure.as_other() == Some(ErrorKind::TransientError)
}

/// How a call failed, in words for one line.
enum Failure {
    /// No answer: the network, the endpoint, or a bound ran out.
    Unreachable(String),
    /// AWS answered with an error.
    Answered(String),
    /// The call could not be made here (no credentials, a bad parameter).
    Local(String),
}

fn failure<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &SdkError<E, HttpResponse>,
) -> Failure {
    match error {
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let err = service.err();
            let request_id =
                err.meta().request_id().map(|id| format!(" (request id {id})")).unwrap_or_default();
            Failure::Answered(match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}{request_id}"),
                (Some(code), None) => format!("{code} (HTTP {}){request_id}", raw.status().as_u16()),
                _ => match xml_error(raw) {
                    Some((code, message)) => format!("{code}: {message} (HTTP {})", raw.status().as_u16()),
                    None => format!("HTTP {} with {}{request_id}", raw.status().as_u16(), body_excerpt(raw)),
                },
            })
        }
        SdkError::ResponseError(response) => {
            let raw = response.raw();
            Failure::Answered(format!(
                "an answer that is not AWS's (HTTP {}, {})",
                raw.status().as_u16(),
                body_excerpt(raw)
            ))
        }
        // The SDK's own words name the bound that ran out.
        SdkError::TimeoutError(_) => Failure::Unreachable(format!("no answer in time: {}", causes(error))),
        // The SDK's own words name the bound that ran out ("read timeout occurred after 30s").
        SdkError::DispatchFailure(dispatch) if dispatch.is_timeout() => {
            Failure::Unreachable(format!("no answer in time: {}", causes(error)))
        }
        SdkError::DispatchFailure(dispatch) if connection_failed(dispatch) => {
            Failure::Unreachable(causes(error))
        }
        _ => Failure::Local(causes(error)),
    }
}

/// The code and message of an XML error the SDK could not read as this service's errors (an
/// `ErrorResponse` nested otherwise, as moto's IAM enforcement answers every service).
fn xml_error(raw: &HttpResponse) -> Option<(String, String)> {
    let text = std::str::from_utf8(raw.body().bytes()?).ok()?;
    let element = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let message = element("Message")?;
    Some((element("Code")?, message.chars().take(300).collect()))
}

/// The permission an access-denied message names ("... is not authorized to perform:
/// iam:PassRole on resource: ..."), when it names one.
fn denied_action(message: &str) -> Option<&str> {
    let action = message.split("is not authorized to perform: ").nth(1)?.split_whitespace().next()?;
    let (service, name) = action.split_once(':')?;
    let word = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    (word(service) && word(name)).then_some(action)
}

/// The start of an answer AWS could not have meant, for a person to recognise (a proxy's
/// page, an emulator's traceback); what we sent never comes back in it.
fn body_excerpt(raw: &HttpResponse) -> String {
    let text = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.chars().count() {
        0 => "an empty body".into(),
        n if n <= 120 => format!("body {text:?}"),
        _ => format!("body {:?}...", text.chars().take(120).collect::<String>()),
    }
}

/// The error's chain of causes in their own words, without Rust's debug dumps.
pub(crate) fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        let generic = ["dispatch failure", "io error", "other", "timeout", "unhandled error"];
        if !generic.contains(&text.as_str()) && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    if parts.is_empty() { error.to_string() } else { parts.join(": ") }
}

/// A failed call in words; `echo: false` leaves out what AWS said, keeping its code.
fn describe<E>(error: &SdkError<E, HttpResponse>, echo: bool) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match failure(error) {
        Failure::Answered(_) if !echo => {
            let status = error.raw_response().map(|r| r.status().as_u16()).unwrap_or_default();
            let service = error.as_service_error();
            let xml = error.raw_response().and_then(xml_error);
            let code = service.and_then(|e| e.code()).or(xml.as_ref().map(|(code, _)| code.as_str()));
            let message =
                service.and_then(|e| e.message()).or(xml.as_ref().map(|(_, message)| message.as_str()));
            // A refusal names the permission missing, and quotes nothing the call carried.
            match (code, message.and_then(denied_action)) {
                (Some(code), Some(action)) => format!(
                    "{code}: the caller is not authorized to perform: {action} (HTTP {status}; the rest of AWS's message is not shown, as it may quote a secret)"
                ),
                (code, _) => format!(
                    "AWS answered {} (HTTP {status}; its message is not shown, as it may quote a secret)",
                    code.unwrap_or("an error")
                ),
            }
        }
        Failure::Answered(why) | Failure::Local(why) => why,
        Failure::Unreachable(why) => format!("no answer from AWS: {why}"),
    }
}

pub trait AwsResultExt<T> {
    /// One line: what we were doing, then AWS's code and message (or why no answer came).
    fn aws_context(self, doing: impl Display) -> Result<T>;

    /// As [`Self::aws_context`], but AWS's message is left out, only its code kept: for calls
    /// that carry secrets, which some answers quote back (Lambda's "over 4 KB" quotes every
    /// variable with its value).
    fn aws_context_no_echo(self, doing: impl Display) -> Result<T>;

    /// `None` when AWS answered `not_found_code`: for a read, absent; for a delete, gone already.
    fn or_absent(self, not_found_code: &str, doing: impl Display) -> Result<Option<T>>;
}

/// The failed call as a typed error, with its code and request id kept apart.
fn call_failed<E>(error: &SdkError<E, HttpResponse>, doing: impl Display, echo: bool) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let service = error.as_service_error();
    AwsCallFailed {
        doing: doing.to_string(),
        code: service.and_then(|e| e.code()).map(str::to_string),
        request_id: service.and_then(|e| e.meta().request_id()).map(str::to_string),
        description: describe(error, echo),
    }
    .into()
}

impl<T, E> AwsResultExt<T> for std::result::Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn aws_context(self, doing: impl Display) -> Result<T> {
        self.map_err(|error| call_failed(&error, doing, true))
    }

    fn aws_context_no_echo(self, doing: impl Display) -> Result<T> {
        self.map_err(|error| call_failed(&error, doing, false))
    }

    fn or_absent(self, not_found_code: &str, doing: impl Display) -> Result<Option<T>> {
        match self {
            Err(e) if error_code(&e) == Some(not_found_code) => Ok(None),
            other => other.map(Some).aws_context(doing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, body: &str, code: Option<&str>) -> Result<()> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
        Err(SdkError::service_error(GetCallerIdentityError::generic(meta.build()), raw))
            .aws_context("doing X")
    }

    #[test]
    fn an_error_aws_did_not_explain_is_one_line_with_what_came_back() {
        let page = answered(502, "<html>\n<body>Bad   Gateway</body>\n</html>", None).unwrap_err();
        assert_eq!(
            page.to_string(),
            "doing X: HTTP 502 with body \"<html> <body>Bad Gateway</body> </html>\""
        );
        let denied = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: u is not authorized to perform: lambda:GetFunction</Message></Error></Errors></ErrorResponse>";
        assert_eq!(
            answered(403, denied, None).unwrap_err().to_string(),
            "doing X: AccessDenied: User: u is not authorized to perform: lambda:GetFunction (HTTP 403)"
        );
        let empty = answered(500, "", None).unwrap_err();
        assert_eq!(empty.to_string(), "doing X: HTTP 500 with an empty body");
        let bare = answered(400, "", Some("Weird")).unwrap_err();
        assert_eq!(bare.to_string(), "doing X: Weird (HTTP 400)");
        let long = answered(503, &"x".repeat(5000), None).unwrap_err().to_string();
        assert!(long.len() < 200 && long.ends_with("..."), "{long}");
    }

    #[test]
    fn a_refusal_of_a_call_carrying_secrets_still_names_the_permission() {
        let mut meta = ErrorMetadata::builder().code("AccessDeniedException");
        meta = meta.message("User: arn:aws:iam::1:user/d is not authorized to perform: iam:PassRole on resource: arn:aws:iam::1:role/r");
        let raw = HttpResponse::new(StatusCode::try_from(403).unwrap(), SdkBody::from(""));
        let denied: Result<()> =
            Err(SdkError::service_error(GetCallerIdentityError::generic(meta.build()), raw))
                .aws_context_no_echo("creating X");
        assert_eq!(
            denied.unwrap_err().to_string(),
            "creating X: AccessDeniedException: the caller is not authorized to perform: iam:PassRole (HTTP 403; the rest of AWS's message is not shown, as it may quote a secret)"
        );
        let quoting = ErrorMetadata::builder()
            .code("InvalidParameterValueException")
            .message("CONSUMER_SECRET=s3cr3t is too long");
        let raw = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(""));
        let hidden: Result<()> =
            Err(SdkError::service_error(GetCallerIdentityError::generic(quoting.build()), raw))
                .aws_context_no_echo("setting Y");
        let hidden = hidden.unwrap_err().to_string();
        assert!(!hidden.contains("s3cr3t") && hidden.contains("InvalidParameterValueException"), "{hidden}");
        assert_eq!(denied_action("is not authorized to perform: a:b; rm -rf"), None);
    }

    #[test]
    fn endpoint_urls_are_checked_before_any_call() {
        assert_eq!(endpoint_url(None).unwrap(), None);
        assert_eq!(
            endpoint_url(Some("http://127.0.0.1:5000")).unwrap().as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert!(endpoint_url(Some("")).unwrap_err().to_string().contains("empty"));
        for bad in ["localhost:5000", "ftp://x", "http://", "not a url"] {
            assert!(endpoint_url(Some(bad)).unwrap_err().to_string().contains("not an http(s) URL"), "{bad}");
        }
    }
}
