//! Dolby.io's token API: OAuth2 client credentials, one token for the whole app.

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::oauth2::{parse_token, read_capped, transport_error};
use super::{CachePolicy, SetupError, TokenProvider, TokenRequest, UpstreamError, UpstreamToken};
use crate::config::{Config, Credentials};

/// OAuth2 client credentials as Dolby.io documents them for both
/// `session.voxeet.com/v1/oauth2/token` and `api.dolby.io/v1/auth/token`: `POST`, HTTP Basic
/// auth with base64 of `key:secret`, form body `grant_type=client_credentials`; the answer is
/// JSON with `access_token`, and `refresh_token` and `expires_in` where the API issues them.
pub struct ClientCredentials {
    http: reqwest::Client,
    token_url: String,
    credentials: Credentials,
}

impl ClientCredentials {
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        Ok(Self {
            http: super::http_client(config.upstream_timeout)?,
            token_url: config.token_url.clone(),
            credentials: config.credentials.clone(),
        })
    }
}

#[async_trait]
impl TokenProvider for ClientCredentials {
    /// The token is the app's, not a user's: every caller may have it.
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::Shared
    }

    async fn fetch_token(&self, _anyone: &TokenRequest) -> Result<UpstreamToken, UpstreamError> {
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
        let body = read_capped(response).await?;
        parse_token(&body)
    }
}
