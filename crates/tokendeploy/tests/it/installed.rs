//! The CLI installed anywhere: its binary alone, copied into an empty directory outside the
//! repository and run with no `cargo` on PATH, deploys the function it carries, for either CPU,
//! and the code Lambda gets is exactly the function built into it.

use std::path::Path;

use crate::support::*;
use tokendeploy_package::{Arch, zip_bootstrap};

#[tokio::test]
#[ignore = "needs the emulator (moto) and the built function: scripts/test.sh runs it"]
async fn the_binary_alone_deploys_the_function_it_carries_from_an_empty_directory() {
    let harness = Harness::start();
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("embedded/bootstrap-x86_64");
    let built_in = std::fs::read(&embedded).unwrap_or_else(|e| {
        panic!("{}: {e}; the test command builds it (scripts/test.sh)", embedded.display())
    });
    let expected = zip_bootstrap(&built_in, Arch::X86_64).unwrap().code_sha256;

    let home = tempdir("installed");
    let nothing_on_path = home.join("empty-path");
    std::fs::create_dir_all(&nothing_on_path).unwrap();
    let binary = home.join("tokendeploy");
    std::fs::copy(env!("CARGO_BIN_EXE_tokendeploy"), &binary).unwrap();
    let run = |args: &[&str]| {
        let mut env = harness.env();
        env.push(("PATH".into(), nothing_on_path.to_str().unwrap().into()));
        env.push(("HOME".into(), home.to_str().unwrap().into()));
        let output = std::process::Command::new(&binary)
            .args(args)
            .env_clear()
            .envs(env)
            .current_dir(&*home)
            .output()
            .unwrap();
        Run::from(output)
    };

    let up = run(&["up", "--output", "json"]);
    up.assert_success().assert_no_secret();
    assert!(
        up.stderr.contains(&format!(
            "code: the function tokendeploy {} carries (x86_64)",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        up.stderr
    );
    assert_eq!(up.json()["code_sha256"], expected.as_str());
    let aws = harness.aws(REGION).await;
    let function =
        aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    assert_eq!(function.code_sha256(), Some(expected.as_str()), "Lambda has exactly the function built in");

    // `package` writes the same zip, whose hash the release script prints.
    let packaged = run(&["package", "--output", "json", "--out", "function.zip"]);
    packaged.assert_success();
    assert_eq!(packaged.json()["code_sha256"], expected.as_str());

    // Both CPUs ship in the binary: --arch arm64 deploys the arm64 build in place, and an `up`
    // without it switches back.
    let arm64 =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("embedded/bootstrap-arm64")).unwrap();
    let arm64 = zip_bootstrap(&arm64, Arch::Arm64).unwrap().code_sha256;
    let graviton = run(&["up", "--output", "json", "--arch", "arm64"]);
    graviton.assert_success();
    assert_eq!(
        (graviton.json()["architecture"].as_str(), graviton.json()["code_sha256"].as_str()),
        (Some("arm64"), Some(arm64.as_str()))
    );
    let function =
        aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    assert_eq!(function.architectures().iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["arm64"]);
    let drift = run(&["status", "--output", "json"]);
    assert_eq!(drift.code, 3, "x86_64 wanted, arm64 deployed: {}", drift.stdout);
    assert!(drift.stdout.contains("architecture"), "{}", drift.stdout);
    run(&["up", "--output", "json"]).assert_success();
    let function =
        aws.lambda.get_function_configuration().function_name("token-server").send().await.unwrap();
    assert_eq!(function.architectures().iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["x86_64"]);

    let status = run(&["status", "--output", "json"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    assert_eq!(status.json()["in_sync"], true);
    run(&["down", "--yes", "--output", "json"]).assert_success();
    assert!(snapshot(&aws).await.is_empty());
}

/// An empty directory outside the repository, removed with everything in it when dropped (the
/// test passing or not).
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("tokendeploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}
