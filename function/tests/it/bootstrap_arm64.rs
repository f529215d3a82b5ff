//! The arm64 build (`scripts/build-function.sh arm64`, what `up --arch arm64` deploys), run
//! under qemu-aarch64-static the way Lambda's arm64 runtime runs it, against the loopback
//! Runtime API: it answers a token as the x86_64 build does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use tokendeploy_testkit::runtime_api::RuntimeApi;
use wiremock::MockServer;

/// Where `scripts/build-function.sh arm64` leaves it (the test command builds it first).
fn arm64_bootstrap() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let binary = workspace.join("target/function/aarch64-unknown-linux-musl/release/bootstrap");
    assert!(
        binary.is_file(),
        "{}: missing; the test command builds it (scripts/build-function.sh arm64)",
        binary.display()
    );
    binary
}

#[tokio::test]
#[ignore = "needs qemu-aarch64-static and the arm64 build: scripts/test.sh runs it"]
async fn the_arm64_bootstrap_answers_a_token_under_qemu() {
    let binary = arm64_bootstrap();
    let bytes = std::fs::read(&binary).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 183, "an aarch64 ELF (e_machine EM_AARCH64)");
    let upstream = MockServer::start().await;
    token_request(VOXEET_PATH).respond_with(voxeet_token("from-arm64")).expect(1).mount(&upstream).await;
    let runtime = RuntimeApi::start().await.unwrap();
    let qemu = Path::new("qemu-aarch64-static");
    let child = spawn_bootstrap_under(Some(qemu), &binary, &runtime, function_env(&upstream));

    let wait = Duration::from_secs(60);
    let (status, headers, payload) =
        response_body(&runtime.invoke(rest_event("GET", "/token", Some(ORIGIN)), wait).await.unwrap());
    assert_eq!(status, 200, "{payload}");
    assert_eq!(payload["access_token"], "from-arm64");
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    // Warm: the same emulated process answers from its cache.
    let (status, _, payload) =
        response_body(&runtime.invoke(rest_event("GET", "/prod/token", Some(ORIGIN)), wait).await.unwrap());
    assert_eq!((status, payload["access_token"].as_str()), (200, Some("from-arm64")));
    let log = output_of(child).await;
    assert!(!log.contains("panicked"), "{log}");
}
