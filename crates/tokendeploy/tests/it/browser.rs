//! The example client (`examples/client`) in a real browser: Debian's headless Chromium, driven
//! by playwright-core (`tests/browser/drive.mjs`), against `tokendeploy serve` in front of a
//! stand-in upstream. Screenshots are written under target/tmp/browser/ for people to look at.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::serve;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A port free a moment ago: the allowed origin must be known before the server starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The page at `url` in Chromium until `#status` shows `expected` (or 20 s pass), with its
/// screenshot saved as `name`.png.
async fn open_in_browser(url: &str, expected: &str, name: &str) -> Value {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let screenshot = dir.join(format!("{name}.png"));
    let output = tokio::process::Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/drive.mjs"))
        .args([url, expected, screenshot.to_str().unwrap(), "20000"])
        .output()
        .await
        .expect("node runs (scripts/test.sh installs it with Chromium and playwright-core)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser run failed: {stderr}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000, "a screenshot of the page");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test]
#[ignore = "needs Chromium and Node.js: scripts/test.sh runs it"]
async fn the_client_page_gets_and_refreshes_a_token_and_shows_a_refused_origin() {
    // Tokens live 2 s: the function keeps one for 1 s, the page refreshes after 1 s.
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "access_token": "browser-token", "expires_in": 2 })),
        )
        .mount(&upstream)
        .await;
    let (port_a, port_b) = (free_port(), free_port());
    let env = |allowed: String| {
        vec![
            ("CONSUMER_KEY".to_string(), "key".to_string()),
            ("CONSUMER_SECRET".to_string(), "browser-secret".to_string()),
            ("ALLOWED_ORIGINS".to_string(), allowed),
            ("TOKEN_URL".to_string(), format!("{}/v1/oauth2/token", upstream.uri())),
        ]
    };
    // A serves tokens to pages from B's origin only; B to another site only.
    let (mut a, base_a, _) =
        serve(&env(format!("http://127.0.0.1:{port_b}")), &["--port", &port_a.to_string(), "--client"]).await;
    let (mut b, base_b, _) =
        serve(&env("https://app.example".into()), &["--port", &port_b.to_string(), "--client"]).await;

    let allowed = format!("{base_b}/?url={base_a}/token&start=1");
    let shown = open_in_browser(&allowed, "Tokens received2", "client-token").await;
    assert_eq!(shown["found"], true, "{shown}");
    assert_eq!(shown["state"], "ok", "{shown}");
    let text = shown["text"].as_str().unwrap();
    assert!(text.contains("browser-token") || text.contains("browser-toke"), "{text}");
    assert!(text.contains("the app (not a per-user token)") && text.contains("Expires"), "{text}");
    let calls = upstream.received_requests().await.unwrap().len();
    assert!(calls >= 2, "the refresh asked the upstream again once the cached token aged: {calls}");

    // A minted token names its identity: the page shows it (here as the caller named it).
    let twilio = [
        ("TOKEN_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_SECRET", "browser-twilio-secret"),
        ("IDENTITY_MODE", "trust"),
    ];
    let mut minting: Vec<(String, String)> = twilio.map(|(k, v)| (k.to_string(), v.to_string())).to_vec();
    minting.push(("ALLOWED_ORIGINS".into(), format!("http://127.0.0.1:{port_b}")));
    let (mut c, base_c, _) = serve(&minting, &[]).await;
    let named = format!("{base_b}/?url={base_c}/token&identity=Zo%C3%AB&room=standup&start=1");
    let shown = open_in_browser(&named, "Zoë", "client-minted-identity").await;
    assert_eq!((shown["found"].clone(), shown["state"].clone()), (json!(true), json!("ok")), "{shown}");
    c.start_kill().unwrap();

    let refused = format!("{base_a}/?url={base_b}/token&start=1");
    let shown = open_in_browser(&refused, "refused this page's origin", "client-refused-origin").await;
    assert_eq!((shown["found"].clone(), shown["state"].clone()), (json!(true), json!("error")), "{shown}");
    assert!(!shown["text"].as_str().unwrap().contains("browser-token"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        upstream.received_requests().await.unwrap().len() <= calls + 1,
        "no token for the refused origin"
    );
    a.start_kill().unwrap();
    b.start_kill().unwrap();
}
