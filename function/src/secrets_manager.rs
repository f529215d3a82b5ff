//! Reading the function's secret from AWS Secrets Manager: one `GetSecretValue` call, signed
//! with SigV4 and sent with the function's own HTTP client; the AWS SDK, its runtime and its
//! credential chain would weigh far more than this one call needs.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SigningInstructions, SigningParams, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;
use url::Url;

use crate::config::{ConfigError, Secret};
use crate::http::{CappedReadError, read_capped};

/// How long one read may take. Secrets Manager answers within milliseconds; one that has not
/// answered by then is better given up on with a 503 the next request retries, while the first
/// request still has most of the function's 10 s (`FUNCTION_TIMEOUT`) for the token API.
pub const READ_TIMEOUT: Duration = crate::config::SECRET_READ_TIMEOUT;

/// A `SecretString` is at most 64 KiB; the answer's JSON may escape each of its bytes in six.
const MAX_ANSWER_BYTES: usize = 512 * 1024;

/// The SigV4 signing name, and the first label of the service's host name.
const SIGNING_NAME: &str = "secretsmanager";
/// The headers of an awsJson 1.1 `GetSecretValue` call, all of them signed.
const CALL_HEADERS: [(&str, &str); 2] =
    [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "secretsmanager.GetSecretValue")];

/// Where and as whom the function calls Secrets Manager: what Lambda puts in its environment.
#[derive(Debug)]
pub struct SecretsManager {
    endpoint: Url,
    region: String,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
}

/// Why no `SecretString` came back. Names what failed, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The HTTP client could not be built (its TLS set-up failed).
    HttpClient,
    /// The request could not be signed.
    Signing,
    /// Could not connect, or the connection broke.
    Unreachable,
    /// No complete answer within [`READ_TIMEOUT`].
    Timeout,
    /// An error answer: its HTTP status, and the AWS error code when it named one.
    Refused { status: u16, code: Option<String> },
    /// An answer larger than any `GetSecretValue` answer can be.
    TooLarge,
    /// A success, but no `SecretString`: the secret holds a binary value, or the answer is no JSON.
    NoSecretString,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HttpClient => f.write_str("the function could not set up its HTTP client"),
            Self::Signing => f.write_str("the request to Secrets Manager could not be signed"),
            Self::Unreachable => f.write_str("Secrets Manager could not be reached"),
            Self::Timeout => write!(f, "Secrets Manager did not answer within {} s", READ_TIMEOUT.as_secs()),
            Self::Refused { status, code: Some(code) } => {
                write!(f, "Secrets Manager answered {code} (HTTP {status})")
            }
            Self::Refused { status, code: None } => write!(f, "Secrets Manager answered HTTP {status}"),
            Self::TooLarge => {
                write!(f, "Secrets Manager's answer is larger than {} KiB", MAX_ANSWER_BYTES / 1024)
            }
            Self::NoSecretString => f.write_str("Secrets Manager's answer holds no SecretString"),
        }
    }
}

impl std::error::Error for ReadError {}

impl SecretsManager {
    /// The region, endpoint and credentials from `lookup` (the environment): `AWS_REGION`,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` or else `AWS_ENDPOINT_URL` (else the region's
    /// endpoint), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` if set.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let require = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let invalid = |variable: &'static str, expected: &str| ConfigError::Invalid {
            variable,
            expected: expected.to_string(),
        };
        let region = require("AWS_REGION")?;
        // It becomes part of the endpoint's host name.
        if !region.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-') {
            return Err(invalid("AWS_REGION", "an AWS region such as us-east-1"));
        }
        let (endpoint_variable, endpoint) = ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"]
            .into_iter()
            .find_map(|variable| Some((variable, get(variable)?)))
            .unwrap_or_else(|| {
                let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
                ("AWS_REGION", format!("https://{SIGNING_NAME}.{region}.{domain}"))
            });
        let endpoint = Url::parse(endpoint.trim())
            .ok()
            .filter(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|host| !host.is_empty())
            })
            .ok_or_else(|| invalid(endpoint_variable, "an http or https URL"))?;
        Ok(Self {
            endpoint,
            region,
            access_key_id: require("AWS_ACCESS_KEY_ID")?,
            secret_access_key: Secret::new(require("AWS_SECRET_ACCESS_KEY")?),
            session_token: get("AWS_SESSION_TOKEN").map(Secret::new),
        })
    }

    /// The `SecretString` of secret `secret_id` (its ARN or name).
    pub async fn secret_string(&self, secret_id: &str) -> Result<Secret, ReadError> {
        let body = serde_json::json!({ "SecretId": secret_id }).to_string();
        let signature = self.sign(&body)?;
        // No redirect is followed: the signature and the session token go to the endpoint
        // configured, or nowhere.
        let client =
            reqwest::Client::builder().timeout(READ_TIMEOUT).redirect(reqwest::redirect::Policy::none());
        let client = client.build().map_err(|_| ReadError::HttpClient)?;
        let mut request = client.post(self.endpoint.as_str()).body(body);
        for (name, value) in CALL_HEADERS.into_iter().chain(signature.headers()) {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let error_type = response.headers().get("x-amzn-errortype").and_then(|value| value.to_str().ok());
        let header_code = error_type.and_then(error_code);
        let answer = read_capped(response, MAX_ANSWER_BYTES).await.map_err(|error| match error {
            CappedReadError::TooLarge => ReadError::TooLarge,
            CappedReadError::Transport(error) => transport_error(error),
        })?;
        let answer: Option<Value> = serde_json::from_slice(&answer).ok();
        if status != 200 {
            let body_code = || answer.as_ref()?.get("__type")?.as_str().and_then(error_code);
            return Err(ReadError::Refused { status, code: header_code.or_else(body_code) });
        }
        answer
            .as_ref()
            .and_then(|answer| answer.get("SecretString")?.as_str())
            .map(Secret::new)
            .ok_or(ReadError::NoSecretString)
    }

    /// The headers that sign a `GetSecretValue` call with `body`, as of now.
    fn sign(&self, body: &str) -> Result<SigningInstructions, ReadError> {
        let credentials = Credentials::new(
            &self.access_key_id,
            self.secret_access_key.expose(),
            self.session_token.as_ref().map(|token| token.expose().to_string()),
            None,
            "environment",
        );
        let identity = Identity::from(credentials);
        let params: SigningParams = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| ReadError::Signing)?
            .into();
        let request = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            CALL_HEADERS.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|_| ReadError::Signing)?;
        let (instructions, _signature) = sign(request, &params).map_err(|_| ReadError::Signing)?.into_parts();
        Ok(instructions)
    }
}

fn transport_error(error: reqwest::Error) -> ReadError {
    if error.is_timeout() { ReadError::Timeout } else { ReadError::Unreachable }
}

/// The error code in `x-amzn-ErrorType` (`ThrottlingException:http://...`) or `__type`
/// (`com.amazonaws.secretsmanager#ThrottlingException`); `None` unless it looks like a code,
/// so that nothing else of an answer is ever repeated.
fn error_code(raw: &str) -> Option<String> {
    let code = raw.split(':').next()?.rsplit('#').next()?;
    let plausible = (1..=64).contains(&code.len()) && code.bytes().all(|byte| byte.is_ascii_alphanumeric());
    plausible.then(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lambda's environment with `overrides` in front.
    fn from(overrides: &[(&str, &str)]) -> Result<SecretsManager, ConfigError> {
        SecretsManager::from_lookup(&|name| {
            let mut pairs = overrides.iter().chain(LAMBDA);
            pairs.find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
        })
    }

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-west-3"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-key-never-shown"),
        ("AWS_SESSION_TOKEN", "aws-session-token-never-shown"),
    ];

    #[test]
    fn the_endpoint_is_the_services_own_variable_then_the_general_one_then_the_regions() {
        let endpoint = |overrides: &[(&str, &str)]| from(overrides).unwrap().endpoint.to_string();
        assert_eq!(endpoint(&[]), "https://secretsmanager.eu-west-3.amazonaws.com/");
        let general = ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000");
        assert_eq!(endpoint(&[general]), "http://127.0.0.1:5000/");
        let own = ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://localhost:4566");
        assert_eq!(endpoint(&[general, own]), "http://localhost:4566/");
        assert_eq!(endpoint(&[("AWS_ENDPOINT_URL", " ")]), "https://secretsmanager.eu-west-3.amazonaws.com/");
        assert_eq!(
            endpoint(&[("AWS_REGION", "cn-north-1")]),
            "https://secretsmanager.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn names_what_is_missing_or_wrong_in_the_environment() {
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert_eq!(from(&[(missing, "")]).unwrap_err(), ConfigError::Missing(missing));
        }
        assert!(from(&[("AWS_SESSION_TOKEN", "")]).unwrap().session_token.is_none(), "it is optional");
        for (variable, value) in [
            ("AWS_REGION", "eu-west-3.evil.example/"),
            ("AWS_ENDPOINT_URL", "ftp://127.0.0.1"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "localhost:4566"),
        ] {
            let error = from(&[(variable, value)]).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { variable: named, .. } if *named == variable),
                "{error:?}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_credentials() {
        let debug = format!("{:?}", from(LAMBDA).unwrap());
        assert!(debug.contains("ASIAEXAMPLE"), "{debug}");
        assert!(!debug.contains("never-shown"), "{debug}");
    }

    #[test]
    fn reads_only_a_plausible_error_code() {
        assert_eq!(
            error_code("ThrottlingException:http://internal.amazon.com/coral/"),
            Some("ThrottlingException".into())
        );
        assert_eq!(
            error_code("com.amazonaws.secretsmanager#AccessDeniedException"),
            Some("AccessDeniedException".into())
        );
        for implausible in ["", "not a code", "<html>", &"A".repeat(65)] {
            assert_eq!(error_code(implausible), None, "{implausible:?}");
        }
    }
}
