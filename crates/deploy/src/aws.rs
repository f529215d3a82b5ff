//! The AWS clients for one region, built from the standard aws-config chain.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Where to connect: each `None` falls back to the standard AWS environment and profile.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// An emulator such as moto or LocalStack; `AWS_ENDPOINT_URL` works as well.
    pub endpoint_url: Option<String>,
}

#[derive(Clone)]
pub struct Aws {
    pub region: String,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Aws {
    pub async fn connect(options: &ConnectOptions) -> Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // Throttling (API Gateway allows few calls a second) is retried with backoff.
            .retry_config(
                RetryConfig::standard().with_max_attempts(8).with_max_backoff(Duration::from_secs(20)),
            );
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        Self::from_config(&loader.load().await)
    }

    /// Clients for an already loaded configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Result<Self> {
        // No silent fallback to us-east-1: deploying to a region the user did not pick is worse
        // than asking.
        let Some(region) = config.region().map(|r| r.to_string()) else {
            bail!(
                "no AWS region: pass --region (for example --region us-west-1), or set AWS_REGION or a region in your AWS profile"
            );
        };
        Ok(Self {
            region,
            iam: aws_sdk_iam::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            apigateway: aws_sdk_apigateway::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
        })
    }

    /// The account the credentials belong to; the first call, so bad credentials fail here.
    pub async fn account_id(&self) -> Result<String> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .aws_context("checking the AWS credentials (sts:GetCallerIdentity); set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")?;
        identity.account.context("sts:GetCallerIdentity returned no account")
    }
}

/// The error code of a failed AWS call, such as `NoSuchEntity`.
pub fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// The codes with which each service says a resource is not there (or already gone).
pub const IAM_NOT_FOUND: &str = "NoSuchEntity";
/// Lambda's, and CloudWatch Logs'.
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
pub const APIGATEWAY_NOT_FOUND: &str = "NotFoundException";

pub trait AwsResultExt<T> {
    /// One line: what we were doing, then AWS's code and message.
    fn aws_context(self, doing: impl Display) -> Result<T>;

    /// `None` when AWS answered `not_found_code`: for a read, absent; for a delete, gone already.
    fn or_absent(self, not_found_code: &str, doing: impl Display) -> Result<Option<T>>;
}

impl<T, E, R> AwsResultExt<T> for std::result::Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn aws_context(self, doing: impl Display) -> Result<T> {
        self.map_err(|error| {
            let detail = match error.as_service_error() {
                Some(service) => format!(
                    "{}: {}",
                    service.code().unwrap_or("error"),
                    service.message().unwrap_or("no message")
                ),
                None => DisplayErrorContext(&error).to_string(),
            };
            anyhow!("{doing}: {detail}")
        })
    }

    fn or_absent(self, not_found_code: &str, doing: impl Display) -> Result<Option<T>> {
        match self {
            Err(e) if error_code(&e) == Some(not_found_code) => Ok(None),
            other => other.map(Some).aws_context(doing),
        }
    }
}
