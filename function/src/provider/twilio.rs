//! Twilio Access Tokens (Video, Conversations, Voice), minted here: a JWT signed with the API
//! key's secret, in the shape Twilio's own helper libraries give it (checked against the `twilio`
//! Python package by `tests/minted_tokens.rs`), so Twilio's SDKs accept it as theirs.

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value, json};

use super::minted::Minter;
use crate::config::{Secret, settings};

/// Marks the JWT as a Twilio Access Token ("first-party application", version 1).
const CONTENT_TYPE: &str = "twilio-fpa;v=1";

/// Mints one token per request. `Debug` shows the settings with the secret masked.
#[derive(Debug)]
pub struct Twilio {
    settings: settings::Twilio,
}

impl Twilio {
    pub fn new(settings: &settings::Twilio) -> Self {
        Self { settings: settings.clone() }
    }

    /// `identity` and the enabled grants; like Twilio's libraries, a grant's empty parts are
    /// left out rather than sent empty (an empty `video` grant admits to any room).
    fn grants(&self, identity: &str, room: Option<&str>) -> Value {
        let enabled = &self.settings.grants;
        let mut grants = Map::new();
        grants.insert("identity".into(), json!(identity));
        if enabled.video {
            let video = match room {
                Some(room) => json!({ "room": room }),
                None => json!({}),
            };
            grants.insert("video".into(), video);
        }
        if let Some(service_sid) = &enabled.chat_service_sid {
            grants.insert("chat".into(), json!({ "service_sid": service_sid }));
        }
        if let Some(voice) = &enabled.voice {
            let mut grant = Map::new();
            if voice.incoming_allow {
                grant.insert("incoming".into(), json!({ "allow": true }));
            }
            if let Some(application_sid) = &voice.outgoing_application_sid {
                grant.insert("outgoing".into(), json!({ "application_sid": application_sid }));
            }
            grants.insert("voice".into(), Value::Object(grant));
        }
        Value::Object(grants)
    }
}

impl Minter for Twilio {
    fn token(&self, identity: &str, room: Option<&str>, now: u64, ttl: u64) -> (Header, Value) {
        let settings = &self.settings;
        let claims = json!({
            // Unique per key and second, as Twilio's libraries make it.
            "jti": format!("{}-{now}", settings.api_key),
            "iss": settings.api_key,
            "sub": settings.account_sid,
            "nbf": now,
            "exp": now.saturating_add(ttl),
            "grants": self.grants(identity, room),
        });
        let mut header = Header::new(Algorithm::HS256);
        header.cty = Some(CONTENT_TYPE.to_string());
        (header, claims)
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

    use super::*;
    use crate::config::Secret;
    use crate::config::settings::{TwilioGrants, VoiceGrant};
    use crate::provider::{CachePolicy, TokenProvider, TokenRequest, UpstreamError};

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const KEY: &str = "SK0123456789abcdef0123456789abcdef";
    const SECRET: &str = "twilio-secret-never-shown-5a4b";
    const CHAT: &str = "IS0123456789abcdef0123456789abcdef";
    const APP: &str = "AP0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;

    fn provider(grants: TwilioGrants) -> Twilio {
        Twilio::new(&settings::Twilio {
            account_sid: ACCOUNT.into(),
            api_key: KEY.into(),
            api_secret: Secret::new(SECRET),
            grants,
            ttl: Duration::from_secs(3600),
        })
    }

    fn video() -> TwilioGrants {
        TwilioGrants { video: true, ..TwilioGrants::default() }
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

    fn grants_of(provider: &Twilio, request: &TokenRequest) -> Value {
        open(&provider.mint(request, NOW).unwrap().access_token).1["grants"].clone()
    }

    #[test]
    fn mints_the_documented_header_and_claims() {
        let token = provider(video()).mint(&request("alice", Some("standup")), NOW).unwrap();
        assert_eq!(token.refresh_token, None);
        assert_eq!(token.expires_in, Some(3600));
        let (header, claims) = open(&token.access_token);
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.cty.as_deref(), Some("twilio-fpa;v=1"));
        assert_eq!(header.kid, None);
        assert_eq!(
            claims,
            json!({
                "jti": format!("{KEY}-{NOW}"),
                "iss": KEY,
                "sub": ACCOUNT,
                "nbf": NOW,
                "exp": NOW + 3600,
                "grants": { "identity": "alice", "video": { "room": "standup" } },
            })
        );
    }

    #[test]
    fn ttl_sets_exp_and_expires_in() {
        let mut twilio = provider(video());
        twilio.settings.ttl = Duration::from_secs(24 * 60 * 60);
        let token = twilio.mint(&request("alice", None), NOW).unwrap();
        assert_eq!(token.expires_in, Some(86_400));
        let claims = open(&token.access_token).1;
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(), 86_400);
    }

    #[test]
    fn video_without_a_room_is_an_empty_grant() {
        for room in [None, Some("")] {
            let grants = grants_of(&provider(video()), &request("alice", room));
            assert_eq!(grants, json!({ "identity": "alice", "video": {} }));
        }
    }

    #[test]
    fn each_grant_in_its_shape() {
        let chat = TwilioGrants { chat_service_sid: Some(CHAT.into()), ..TwilioGrants::default() };
        let outgoing = TwilioGrants {
            voice: Some(VoiceGrant { outgoing_application_sid: Some(APP.into()), incoming_allow: false }),
            ..TwilioGrants::default()
        };
        let incoming = TwilioGrants {
            voice: Some(VoiceGrant { outgoing_application_sid: None, incoming_allow: true }),
            ..TwilioGrants::default()
        };
        let all = TwilioGrants {
            video: true,
            chat_service_sid: Some(CHAT.into()),
            voice: Some(VoiceGrant { outgoing_application_sid: Some(APP.into()), incoming_allow: true }),
        };
        let cases = [
            (chat, json!({ "identity": "bob", "chat": { "service_sid": CHAT } })),
            (outgoing, json!({ "identity": "bob", "voice": { "outgoing": { "application_sid": APP } } })),
            (incoming, json!({ "identity": "bob", "voice": { "incoming": { "allow": true } } })),
            (
                all,
                json!({
                    "identity": "bob",
                    "video": { "room": "r1" },
                    "chat": { "service_sid": CHAT },
                    "voice": { "incoming": { "allow": true }, "outgoing": { "application_sid": APP } },
                }),
            ),
        ];
        for (grants, expected) in cases {
            assert_eq!(grants_of(&provider(grants), &request("bob", Some("r1"))), expected);
        }
    }

    #[test]
    fn identity_keeps_non_ascii_characters() {
        let identity = "Zoë 山田 🚀 \"quoted\"";
        let grants = grants_of(&provider(video()), &request(identity, Some("café")));
        assert_eq!(grants, json!({ "identity": identity, "video": { "room": "café" } }));
    }

    #[test]
    fn no_identity_is_an_error_not_a_panic() {
        let twilio = provider(video());
        for request in [TokenRequest::default(), request("", Some("r1"))] {
            let error = twilio.mint(&request, NOW).unwrap_err();
            assert_eq!(error, UpstreamError::InvalidResponse("no identity to mint a token for"));
            assert!(!format!("{error} {error:?}").contains(SECRET));
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", provider(video()));
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains(KEY), "{shown}");
    }

    #[tokio::test]
    async fn fetch_token_mints_now_and_is_never_cached() {
        let twilio = provider(video());
        assert_eq!(twilio.cache_policy(), CachePolicy::Never);
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let token = twilio.fetch_token(&request("alice", None)).await.unwrap();
        let nbf = open(&token.access_token).1["nbf"].as_u64().unwrap();
        assert!((before..=before + 5).contains(&nbf), "{nbf} vs {before}");
    }
}
