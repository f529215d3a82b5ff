//! OAuth2 client credentials (RFC 6749, section 4.4): one token for the whole app, from
//! Dolby.io or any other OAuth2 server.

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::oauth2::{parse_token, read_capped, transport_error};
use super::{CachePolicy, SetupError, TokenProvider, TokenRequest, UpstreamError, UpstreamToken};
use crate::config::settings::{ClientAuth, ClientCredentials as Settings};

/// `POST` to the token endpoint with a form body `grant_type=client_credentials` (plus `scope`
/// and `audience` when set), the client authenticated by HTTP Basic with `key:secret` (as
/// Dolby.io documents for both `session.voxeet.com/v1/oauth2/token` and
/// `api.dolby.io/v1/auth/token`) or by `client_id` and `client_secret` in the form; the answer
/// is JSON with `access_token`, and `refresh_token` and `expires_in` where the server issues them.
pub struct ClientCredentials {
    http: reqwest::Client,
    settings: Settings,
}

impl ClientCredentials {
    pub fn new(settings: &Settings, timeout: std::time::Duration) -> Result<Self, SetupError> {
        Ok(Self { http: super::http_client(timeout)?, settings: settings.clone() })
    }

    /// The form body: the grant, the optional parameters, and the client in the body if so told.
    fn form(&self) -> String {
        let credentials = &self.settings.credentials;
        let client = match self.settings.client_auth {
            ClientAuth::Basic => None,
            ClientAuth::Body => Some([
                ("client_id", credentials.key.as_str()),
                ("client_secret", credentials.secret.expose()),
            ]),
        };
        let optional =
            [("scope", self.settings.scope.as_deref()), ("audience", self.settings.audience.as_deref())];
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        for (name, value) in optional.into_iter().filter_map(|(name, value)| Some((name, value?))) {
            form.append_pair(name, value);
        }
        for (name, value) in client.into_iter().flatten() {
            form.append_pair(name, value);
        }
        form.finish()
    }
}

#[async_trait]
impl TokenProvider for ClientCredentials {
    /// The token is the app's, not a user's: every caller may have it.
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::Shared
    }

    async fn fetch_token(&self, _anyone: &TokenRequest) -> Result<UpstreamToken, UpstreamError> {
        let mut request = self.http.post(&self.settings.token_url);
        if self.settings.client_auth == ClientAuth::Basic {
            let credentials = &self.settings.credentials;
            request = request.basic_auth(&credentials.key, Some(credentials.secret.expose()));
        }
        let response = request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(self.form())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        match status {
            200..=299 => {}
            300..=399 => return Err(UpstreamError::Redirected { status }),
            401 | 403 => return Err(UpstreamError::Rejected { status }),
            429 | 503 => {
                let retry_after = super::retry_after(response.headers(), std::time::SystemTime::now());
                return Err(UpstreamError::Busy { status, retry_after });
            }
            _ => return Err(UpstreamError::Failed { status }),
        }
        let body = read_capped(response).await?;
        parse_token(&body)
    }
}
