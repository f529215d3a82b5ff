//! `--profile NAME` means that profile, as the aws CLI takes it, even when the environment
//! holds other credentials.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn profile_credentials_and_region_win_over_keys_in_the_environment() {
    let harness = Harness::start();
    let marker = harness.dir.join("profile-credentials-used");
    let process = harness.dir.join("credentials.sh");
    let json = r#"{"Version": 1, "AccessKeyId": "profile-key", "SecretAccessKey": "profile-secret"}"#;
    std::fs::write(&process, format!("#!/bin/sh\ntouch '{}'\necho '{json}'\n", marker.display())).unwrap();
    std::fs::set_permissions(&process, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = harness.dir.join("aws-config");
    let profile =
        format!("[profile deployer]\nregion = eu-west-1\ncredential_process = {}\n", process.display());
    std::fs::write(&config, profile).unwrap();

    // AWS_ACCESS_KEY_ID stays set, as it is on a developer's machine with a stale export.
    let mut env = harness.env();
    env.retain(|(k, _)| k != "AWS_CONFIG_FILE" && k != "AWS_REGION");
    env.push(("AWS_CONFIG_FILE".into(), config.to_str().unwrap().into()));
    let run = harness.up_with(&["--profile", "deployer"], &env);
    run.assert_success();
    assert!(marker.exists(), "the profile's credential_process was not used");
    assert_eq!(run.json()["region"], "eu-west-1", "the region comes from the profile");

    // --region still wins over the profile's region.
    let run = harness.up_with(&["--profile", "deployer", "--region", "us-east-2"], &env);
    run.assert_success();
    assert_eq!(run.json()["region"], "us-east-2");
}
