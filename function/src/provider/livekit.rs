//! LiveKit access tokens, minted here: a JWT signed with the API secret that lets one identity
//! join a room (checked against the `livekit-api` Python package's verifier by
//! `tests/minted_tokens.rs`).

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use super::minted::Minter;
use crate::config::{Secret, settings};

/// Mints one token per request. `Debug` shows the settings with the secret masked.
#[derive(Debug)]
pub struct Livekit {
    settings: settings::Livekit,
}

impl Livekit {
    pub fn new(settings: &settings::Livekit) -> Self {
        Self { settings: settings.clone() }
    }
}

impl Minter for Livekit {
    fn token(&self, identity: &str, room: Option<&str>, now: u64, ttl: u64) -> (Header, Value) {
        // Only what joining needs. Publish and subscribe are left out: LiveKit grants both when
        // they are unset. (The service asks for a room: LiveKit's own libraries require one.)
        let mut video = json!({ "roomJoin": true });
        if let Some(room) = room {
            video["room"] = json!(room);
        }
        let claims = json!({
            "iss": self.settings.api_key,
            "sub": identity,
            "nbf": now,
            "exp": now.saturating_add(ttl),
            "video": video,
        });
        (Header::new(Algorithm::HS256), claims)
    }

    fn secret(&self) -> &Secret {
        &self.settings.api_secret
    }

    fn ttl(&self) -> u64 {
        self.settings.ttl.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{DecodingKey, Validation, decode};
    use serde_json::Value;

    use super::*;
    use crate::config::Secret;
    use crate::provider::{CachePolicy, TokenProvider, TokenRequest, UpstreamError};

    const KEY: &str = "APIkey1234";
    const SECRET: &str = "livekit-secret-never-shown-77c1";
    const NOW: u64 = 1_700_000_000;

    fn provider() -> Livekit {
        Livekit::new(&settings::Livekit {
            api_key: KEY.into(),
            api_secret: Secret::new(SECRET),
            ttl: Duration::from_secs(600),
        })
    }

    fn request(identity: &str, room: Option<&str>) -> TokenRequest {
        TokenRequest { identity: Some(identity.into()), room: room.map(str::to_string), not_after: None }
    }

    /// The header and claims of `token`, its signature checked with the secret; the times are
    /// checked by the tests themselves (`NOW` is long past).
    fn open(token: &str) -> (Header, Value) {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = decode::<Value>(token, &DecodingKey::from_secret(SECRET.as_bytes()), &validation).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn mints_the_documented_header_and_claims() {
        let token = provider().mint(&request("alice", Some("standup")), NOW).unwrap();
        assert_eq!(token.refresh_token, None);
        assert_eq!(token.expires_in, Some(600));
        let (header, claims) = open(&token.access_token);
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!((header.cty, header.kid), (None, None));
        assert_eq!(
            claims,
            json!({
                "iss": KEY,
                "sub": "alice",
                "nbf": NOW,
                "exp": NOW + 600,
                "video": { "roomJoin": true, "room": "standup" },
            })
        );
    }

    #[test]
    fn without_a_room_the_grant_names_none() {
        for room in [None, Some("")] {
            let claims = open(&provider().mint(&request("alice", room), NOW).unwrap().access_token).1;
            assert_eq!(claims["video"], json!({ "roomJoin": true }));
        }
    }

    #[test]
    fn ttl_sets_exp_and_expires_in() {
        let mut livekit = provider();
        livekit.settings.ttl = Duration::from_secs(24 * 60 * 60);
        let token = livekit.mint(&request("alice", None), NOW).unwrap();
        assert_eq!(token.expires_in, Some(86_400));
        assert_eq!(open(&token.access_token).1["exp"], json!(NOW + 86_400));
    }

    #[test]
    fn identity_keeps_non_ascii_characters() {
        let identity = "Zoë 山田 🚀 \"quoted\"";
        let claims = open(&provider().mint(&request(identity, Some("café")), NOW).unwrap().access_token).1;
        assert_eq!(claims["sub"], json!(identity));
        assert_eq!(claims["video"]["room"], json!("café"));
    }

    #[test]
    fn no_identity_is_an_error_not_a_panic() {
        for request in [TokenRequest::default(), request("", Some("r1"))] {
            let error = provider().mint(&request, NOW).unwrap_err();
            assert_eq!(error, UpstreamError::InvalidResponse("no identity to mint a token for"));
            assert!(!format!("{error} {error:?}").contains(SECRET));
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", provider());
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains(KEY), "{shown}");
    }

    #[tokio::test]
    async fn fetch_token_mints_now_and_is_never_cached() {
        let livekit = provider();
        assert_eq!(livekit.cache_policy(), CachePolicy::Never);
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let token = livekit.fetch_token(&request("alice", None)).await.unwrap();
        let nbf = open(&token.access_token).1["nbf"].as_u64().unwrap();
        assert!((before..=before + 5).contains(&nbf), "{nbf} vs {before}");
    }
}
