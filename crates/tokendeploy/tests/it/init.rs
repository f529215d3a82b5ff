//! `tokendeploy init`: the env file to start from, written as a file about to hold secrets
//! should be.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

fn init(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tokendeploy"))
        .arg("init")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .unwrap()
}

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("init-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_writes_the_providers_file_for_its_owner_alone_and_names_it_in_its_comments() {
    let dir = scratch("writes");
    let written = init(&dir, &["--provider", "livekit", "--output", "json"]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let report: serde_json::Value = serde_json::from_slice(&written.stdout).unwrap();
    assert_eq!(report, serde_json::json!({ "path": "token.env", "provider": "livekit" }));
    assert_eq!(mode(&dir.join("token.env")), 0o600);
    let text = std::fs::read_to_string(dir.join("token.env")).unwrap();
    assert!(text.contains("TOKEN_PROVIDER=livekit") && text.contains("--env-file token.env"), "{text}");
    let said = String::from_utf8_lossy(&written.stderr);
    assert!(said.contains("tokendeploy up --region REGION --env-file token.env"), "{said}");

    // A name with a blank is written quoted, so the comment's command can be pasted.
    let spaced = init(&dir, &["--provider", "twilio", "--file", "my app.env"]);
    assert!(spaced.status.success());
    let text = std::fs::read_to_string(dir.join("my app.env")).unwrap();
    assert!(text.contains("tokendeploy serve --env-file 'my app.env'"), "{text}");

    // On stdout: the same file the checkout has as an example, byte for byte.
    let printed = init(&dir, &["--provider", "oauth2", "--file", "-"]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/oauth2.env");
    assert_eq!(printed.stdout, std::fs::read(example).unwrap());
}

#[test]
fn init_force_replaces_a_file_whole_with_its_own_mode_and_never_writes_through_a_link() {
    let dir = scratch("force");
    std::fs::write(dir.join("token.env"), "CONSUMER_KEY=old\n").unwrap();
    std::fs::set_permissions(dir.join("token.env"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(init(&dir, &["--provider", "dolby", "--force"]).status.success());
    assert_eq!(mode(&dir.join("token.env")), 0o600, "the looser mode is not kept");
    assert!(!std::fs::read_to_string(dir.join("token.env")).unwrap().contains("old"));

    // A link is replaced by the file; what it pointed to is untouched.
    std::fs::write(dir.join("elsewhere"), "theirs\n").unwrap();
    std::os::unix::fs::symlink("elsewhere", dir.join("link.env")).unwrap();
    assert!(init(&dir, &["--provider", "dolby", "--file", "link.env", "--force"]).status.success());
    assert_eq!(std::fs::read_to_string(dir.join("elsewhere")).unwrap(), "theirs\n");
    assert!(std::fs::symlink_metadata(dir.join("link.env")).unwrap().is_file());
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(left.len(), 3, "no file left beside: {left:?}");

    // A directory, with or without --force: exit 2, one line, nothing written.
    std::fs::create_dir(dir.join("conf")).unwrap();
    for args in [
        &["--provider", "dolby", "--file", "conf"][..],
        &["--provider", "dolby", "--file", "conf", "--force"],
    ] {
        let refused = init(&dir, args);
        assert_eq!(refused.status.code(), Some(2));
        let said = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(said.trim_end(), "error: conf is a directory: name a file, such as conf/token.env");
    }
    assert_eq!(std::fs::read_dir(dir.join("conf")).unwrap().count(), 0);
}
