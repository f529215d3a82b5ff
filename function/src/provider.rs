//! Upstream token APIs. Each provider turns the configured credentials into an [`UpstreamToken`];
//! the rest of the function (caching, CORS, responses) does not care which API it talks to.

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use crate::config::{Config, Credentials, ProviderKind};

/// What the client receives: the only fields of the upstream's answer that pass through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamToken {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Lifetime in seconds, as the upstream stated it.
    pub expires_in: Option<u64>,
}

/// Why no token came back. Carries no upstream body: it may echo credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// 401 or 403: the key or secret is wrong or revoked.
    Rejected { status: u16 },
    /// Any other non-success status.
    Failed { status: u16 },
    /// No complete answer within the configured timeout.
    Timeout,
    /// Could not connect or the connection broke.
    Unreachable,
    /// A success status, but not a token: what was wrong with it.
    InvalidResponse(&'static str),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { status } => {
                write!(f, "the token API rejected the app's credentials (HTTP {status})")
            }
            Self::Failed { status } => write!(f, "the token API failed (HTTP {status})"),
            Self::Timeout => f.write_str("the token API did not answer in time"),
            Self::Unreachable => f.write_str("the token API could not be reached"),
            Self::InvalidResponse(what) => {
                write!(f, "the token API's answer was not a token: {what}")
            }
        }
    }
}

impl std::error::Error for UpstreamError {}

#[async_trait]
pub trait TokenProvider: Send + Sync {
    async fn fetch_token(&self) -> Result<UpstreamToken, UpstreamError>;
}

/// Builds the provider `config` names.
pub fn from_config(config: &Config) -> Box<dyn TokenProvider> {
    let http = reqwest::Client::builder()
        .timeout(config.upstream_timeout)
        .build()
        .expect("a client with only a timeout set always builds");
    match config.provider {
        ProviderKind::Dolby => Box::new(ClientCredentials {
            http,
            token_url: config.token_url.clone(),
            credentials: config.credentials.clone(),
        }),
    }
}

/// OAuth2 client credentials as Dolby.io documents them for both
/// `session.voxeet.com/v1/oauth2/token` and `api.dolby.io/v1/auth/token`: `POST`, HTTP Basic
/// auth with base64 of `key:secret`, form body `grant_type=client_credentials`; the answer is
/// JSON with `access_token`, and `refresh_token` and `expires_in` where the API issues them.
struct ClientCredentials {
    http: reqwest::Client,
    token_url: String,
    credentials: Credentials,
}

#[async_trait]
impl TokenProvider for ClientCredentials {
    async fn fetch_token(&self) -> Result<UpstreamToken, UpstreamError> {
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.credentials.key, Some(self.credentials.secret.expose()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(UpstreamError::Rejected { status: status.as_u16() });
        }
        if !status.is_success() {
            return Err(UpstreamError::Failed { status: status.as_u16() });
        }
        let body = response.bytes().await.map_err(transport_error)?;
        parse_token(&body)
    }
}

fn transport_error(error: reqwest::Error) -> UpstreamError {
    if error.is_timeout() { UpstreamError::Timeout } else { UpstreamError::Unreachable }
}

/// Picks the token fields out of an OAuth2 token answer.
pub fn parse_token(body: &[u8]) -> Result<UpstreamToken, UpstreamError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| UpstreamError::InvalidResponse("the body is not JSON"))?;
    let access_token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or(UpstreamError::InvalidResponse("no access_token"))?
        .to_string();
    let refresh_token = json.get("refresh_token").and_then(Value::as_str).map(str::to_string);
    // Some APIs send the lifetime as a string; both forms mean seconds.
    let expires_in = match json.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64()),
        Some(Value::String(s)) => Some(s.trim().parse().ok()),
        Some(_) => Some(None),
    }
    .map(|seconds| seconds.ok_or(UpstreamError::InvalidResponse("expires_in is not a number of seconds")))
    .transpose()?;
    Ok(UpstreamToken { access_token, refresh_token, expires_in })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_token_fields() {
        let token = parse_token(
            br#"{"token_type":"Bearer","access_token":"at","refresh_token":"rt","expires_in":3600,"scope":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            token,
            UpstreamToken {
                access_token: "at".into(),
                refresh_token: Some("rt".into()),
                expires_in: Some(3600)
            }
        );
    }

    #[test]
    fn accepts_lifetime_as_string_and_absent() {
        assert_eq!(parse_token(br#"{"access_token":"at","expires_in":"60"}"#).unwrap().expires_in, Some(60));
        assert_eq!(parse_token(br#"{"access_token":"at"}"#).unwrap().expires_in, None);
    }

    #[test]
    fn rejects_what_is_not_a_token() {
        for body in
            [&b"<html>"[..], b"{}", br#"{"access_token":""}"#, br#"{"access_token":"a","expires_in":-5}"#]
        {
            assert!(matches!(parse_token(body), Err(UpstreamError::InvalidResponse(_))), "{body:?}");
        }
    }
}
