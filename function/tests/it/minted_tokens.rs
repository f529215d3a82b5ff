//! The tokens the function mints, checked against the vendors' own Python libraries: Twilio's
//! `twilio` package must mint the same token for the same inputs and accept ours, and LiveKit's
//! `livekit-api` verifier must accept ours and read the same identity and grant.
//!
//! The interpreter is `TOKENDEPLOY_TEST_PYTHON` (`scripts/setup.sh` installs both packages into
//! its venv), else `python3`. A missing package fails the test: it never skips.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use token_function::config::Config;
use token_function::provider::{self, CachePolicy, TokenRequest};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_KEY: &str = "SK0123456789abcdef0123456789abcdef";
const CHAT: &str = "IS0123456789abcdef0123456789abcdef";
const APP: &str = "AP0123456789abcdef0123456789abcdef";
const LIVEKIT_KEY: &str = "APIoracleKey42";
const SECRET: &str = "oracle-secret-never-shown-31d0";
const TTL: u64 = 900;
const NON_ASCII: &str = "Zoë 山田 🚀";

/// Reads one JSON input on stdin, writes one JSON answer on stdout (ASCII: no locale matters).
const ORACLE: &str = r#"
import datetime, json, sys, time

given = json.loads(sys.stdin.buffer.read().decode("utf-8"))
token, secret, ttl = given["token"], given["secret"], given["ttl"]
out = {}

def rejected(check):
    try:
        check()
    except Exception:
        return True
    return False

if given["vendor"] == "twilio":
    from twilio.jwt import Jwt
    from twilio.jwt.access_token import AccessToken
    from twilio.jwt.access_token.grants import ChatGrant, VideoGrant, VoiceGrant

    # The library's own decoding, signature, nbf and exp checked: it must accept ours.
    ours = Jwt.from_jwt(token, secret)
    out["ours"] = {"header": ours.headers, "payload": ours.payload}
    out["wrong_secret_rejected"] = rejected(lambda: Jwt.from_jwt(token, secret + "x"))

    grants = []
    if given["video"]:
        grants.append(VideoGrant(room=given["room"]))
    if given["chat_service_sid"]:
        grants.append(ChatGrant(service_sid=given["chat_service_sid"]))
    if given["voice"]:
        grants.append(VoiceGrant(incoming_allow=given["incoming_allow"],
                                 outgoing_application_sid=given["outgoing_application_sid"]))
    nbf = ours.payload["nbf"]
    theirs = AccessToken(given["account_sid"], given["api_key"], secret, grants=grants,
                         identity=given["identity"], nbf=nbf, ttl=ttl)
    # jti and exp come from time.time(): fixed at our nbf, both tokens are of the same second.
    real_time = time.time
    time.time = lambda: nbf
    try:
        minted = theirs.to_jwt()
    finally:
        time.time = real_time
    decoded = Jwt.from_jwt(minted, secret)
    out["theirs"] = {"header": decoded.headers, "payload": decoded.payload}
else:
    import jwt
    from livekit import api

    key = given["api_key"]
    claims = api.TokenVerifier(key, secret).verify(token)
    video = claims.video
    out["verified"] = {
        "identity": claims.identity,
        "video": {"room_join": video.room_join, "room": video.room,
                  "can_publish": video.can_publish, "can_subscribe": video.can_subscribe,
                  "can_publish_data": video.can_publish_data},
    }
    out["wrong_secret_rejected"] = rejected(lambda: api.TokenVerifier(key, secret + "x").verify(token))
    out["wrong_key_rejected"] = rejected(lambda: api.TokenVerifier(key + "x", secret).verify(token))

    def opened(t):
        payload = jwt.decode(t, secret, algorithms=["HS256"], issuer=key)
        return {"header": jwt.get_unverified_header(t), "payload": payload}

    out["ours"] = opened(token)
    try:
        minted = (api.AccessToken(key, secret).with_identity(given["identity"])
                  .with_ttl(datetime.timedelta(seconds=ttl))
                  .with_grants(api.VideoGrants(room_join=True, room=given["room"] or ""))
                  .to_jwt())
        out["theirs"] = opened(minted)
    except ValueError as refused:
        out["library_refuses"] = str(refused)

sys.stdout.write(json.dumps(out))
"#;

fn python() -> String {
    std::env::var("TOKENDEPLOY_TEST_PYTHON")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Runs the oracle on `input`; any failure (a package missing included) fails the test.
fn oracle(input: &Value) -> Value {
    let python = python();
    let mut child = Command::new(&python)
        .args(["-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("could not run {python}: {error}"));
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the vendor library ({python}) failed; `source scripts/setup.sh` installs it:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A token from the provider `vars` configure, built as the function builds it.
async fn fetch(vars: &[(&str, &str)], identity: &str, room: Option<&str>) -> String {
    let config = Config::from_lookup(|name| {
        vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    })
    .unwrap();
    let provider = provider::from_config(&config).unwrap();
    assert_eq!(provider.cache_policy(), CachePolicy::Never);
    let request =
        TokenRequest { identity: Some(identity.into()), room: room.map(str::to_string), not_after: None };
    let token = provider.fetch_token(&request).await.unwrap();
    assert_eq!((token.refresh_token, token.expires_in), (None, Some(TTL)));
    token.access_token
}

/// Every claim of `ours` equals the one of `theirs`, the ones in `except` aside.
fn assert_same_claims(ours: &Value, theirs: &Value, except: &[&str]) {
    let (ours, theirs) = (ours.as_object().unwrap(), theirs.as_object().unwrap());
    for field in ours.keys().chain(theirs.keys()).filter(|field| !except.contains(&field.as_str())) {
        assert_eq!(ours.get(field), theirs.get(field), "claim `{field}`");
    }
}

fn seconds(claims: &Value, field: &str) -> u64 {
    claims[field].as_u64().unwrap_or_else(|| panic!("`{field}` is not whole seconds: {claims}"))
}

/// The Twilio grants `TWILIO_GRANTS` and its companions enable.
#[derive(Default)]
struct TwilioGrants {
    video: bool,
    chat: Option<&'static str>,
    outgoing: Option<&'static str>,
    incoming: bool,
}

async fn check_twilio(grants: TwilioGrants, identity: &str, room: Option<&str>) {
    let voice = grants.outgoing.is_some() || grants.incoming;
    let names: Vec<&str> = [(grants.video, "video"), (grants.chat.is_some(), "chat"), (voice, "voice")]
        .into_iter()
        .filter_map(|(enabled, name)| enabled.then_some(name))
        .collect();
    let names = names.join(",");
    let ttl = TTL.to_string();
    let mut vars = vec![
        ("TOKEN_PROVIDER", "twilio"),
        ("ALLOWED_ORIGINS", "*"),
        ("IDENTITY_MODE", "trust"),
        ("TWILIO_ACCOUNT_SID", ACCOUNT),
        ("TWILIO_API_KEY", TWILIO_KEY),
        ("TWILIO_API_SECRET", SECRET),
        ("TWILIO_GRANTS", &names),
        ("TOKEN_TTL_SECONDS", &ttl),
    ];
    vars.extend(grants.chat.map(|sid| ("TWILIO_CHAT_SERVICE_SID", sid)));
    vars.extend(grants.outgoing.map(|sid| ("TWILIO_OUTGOING_APPLICATION_SID", sid)));
    if grants.incoming {
        vars.push(("TWILIO_INCOMING_ALLOW", "true"));
    }
    let token = fetch(&vars, identity, room).await;

    let answer = oracle(&json!({
        "vendor": "twilio",
        "token": token,
        "secret": SECRET,
        "ttl": TTL,
        "account_sid": ACCOUNT,
        "api_key": TWILIO_KEY,
        "identity": identity,
        "room": room,
        "video": grants.video,
        "chat_service_sid": grants.chat,
        "voice": voice,
        "outgoing_application_sid": grants.outgoing,
        "incoming_allow": grants.incoming,
    }));
    assert_eq!(answer["wrong_secret_rejected"], true, "the check must be able to fail");
    let (ours, theirs) = (&answer["ours"], &answer["theirs"]);
    assert_eq!(ours["header"], json!({ "typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1" }));
    assert_eq!(ours["header"], theirs["header"]);

    let time_based = ["jti", "nbf", "exp"];
    assert_same_claims(&ours["payload"], &theirs["payload"], &time_based);
    assert_same_claims(&ours["payload"]["grants"], &theirs["payload"]["grants"], &[]);
    for claims in [&ours["payload"], &theirs["payload"]] {
        let nbf = seconds(claims, "nbf");
        assert_eq!(seconds(claims, "exp") - nbf, TTL, "{claims}");
        assert_eq!(claims["jti"], json!(format!("{TWILIO_KEY}-{nbf}")), "{claims}");
    }
    // The library minted at our token's second: the time-based claims are equal too.
    assert_same_claims(&ours["payload"], &theirs["payload"], &[]);
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn twilio_video_only() {
    check_twilio(TwilioGrants { video: true, ..Default::default() }, "alice", None).await;
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn twilio_video_with_room() {
    check_twilio(TwilioGrants { video: true, ..Default::default() }, "alice", Some("standup")).await;
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn twilio_chat() {
    check_twilio(TwilioGrants { chat: Some(CHAT), ..Default::default() }, "bob", Some("ignored")).await;
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn twilio_voice_outgoing_only() {
    check_twilio(TwilioGrants { outgoing: Some(APP), ..Default::default() }, "carol", None).await;
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn twilio_voice_incoming_only() {
    check_twilio(TwilioGrants { incoming: true, ..Default::default() }, "carol", None).await;
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn twilio_all_grants() {
    let all = TwilioGrants { video: true, chat: Some(CHAT), outgoing: Some(APP), incoming: true };
    check_twilio(all, "dave", Some("standup")).await;
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn twilio_non_ascii_identity_and_room() {
    check_twilio(TwilioGrants { video: true, ..Default::default() }, NON_ASCII, Some("café")).await;
}

/// Returns the oracle's answer for the LiveKit token minted for `identity` and `room`.
async fn check_livekit(identity: &str, room: Option<&str>) -> Value {
    let ttl = TTL.to_string();
    let vars = [
        ("TOKEN_PROVIDER", "livekit"),
        ("ALLOWED_ORIGINS", "*"),
        ("IDENTITY_MODE", "trust"),
        ("LIVEKIT_API_KEY", LIVEKIT_KEY),
        ("LIVEKIT_API_SECRET", SECRET),
        ("TOKEN_TTL_SECONDS", &ttl),
    ];
    let token = fetch(&vars, identity, room).await;
    let answer = oracle(&json!({
        "vendor": "livekit",
        "token": token,
        "secret": SECRET,
        "ttl": TTL,
        "api_key": LIVEKIT_KEY,
        "identity": identity,
        "room": room,
    }));
    assert_eq!(answer["wrong_secret_rejected"], true, "the check must be able to fail");
    assert_eq!(answer["wrong_key_rejected"], true, "the verifier must check the issuer");
    // What the verifier reads: the identity, a join grant for the room, and (by its defaults,
    // which are LiveKit's) publishing and subscribing.
    assert_eq!(
        answer["verified"],
        json!({
            "identity": identity,
            "video": {
                "room_join": true,
                "room": room.unwrap_or(""),
                "can_publish": true,
                "can_subscribe": true,
                "can_publish_data": true,
            },
        })
    );
    let ours = &answer["ours"];
    assert_eq!(ours["header"], json!({ "typ": "JWT", "alg": "HS256" }));
    assert_eq!(seconds(&ours["payload"], "exp") - seconds(&ours["payload"], "nbf"), TTL);
    answer
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn livekit_with_room() {
    let answer = check_livekit("alice", Some("standup")).await;
    let (ours, theirs) = (&answer["ours"], &answer["theirs"]);
    assert_eq!(ours["header"], theirs["header"]);
    assert_same_claims(&ours["payload"], &theirs["payload"], &["nbf", "exp", "video"]);
    // The library states LiveKit's defaults for publishing and subscribing; we leave them unset.
    let mut their_video = theirs["payload"]["video"].as_object().unwrap().clone();
    for default in ["canPublish", "canSubscribe", "canPublishData"] {
        assert_eq!(their_video.remove(default), Some(json!(true)), "{default}");
    }
    assert_eq!(ours["payload"]["video"], Value::Object(their_video));
    // Its clock is read twice, so its two times may straddle a second.
    let span = seconds(&theirs["payload"], "exp") - seconds(&theirs["payload"], "nbf");
    assert!((TTL..=TTL + 1).contains(&span), "{span}");
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn livekit_without_room() {
    let answer = check_livekit("alice", None).await;
    assert_eq!(answer["ours"]["payload"]["video"], json!({ "roomJoin": true }));
    // The Python minter will not make a join token without a room, though its verifier (and the
    // LiveKit server, which then takes the room the client connects to) accepts one.
    assert_eq!(answer["library_refuses"], "identity and room must be set when joining a room");
}

#[tokio::test]
#[ignore = "needs Python's twilio and livekit-api: scripts/test.sh runs it"]
async fn livekit_non_ascii_identity_and_room() {
    let answer = check_livekit(NON_ASCII, Some("café")).await;
    assert_same_claims(&answer["ours"]["payload"], &answer["theirs"]["payload"], &["nbf", "exp", "video"]);
}
