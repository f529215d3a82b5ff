//! Building `bootstrap` with cargo for Lambda's runtime.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::Arch;

/// `function/` in the current directory or the nearest parent that has one.
pub fn find_function_dir(start: &Path) -> Result<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("function"))
        .find(|dir| dir.join("Cargo.toml").is_file())
        .with_context(|| {
            format!(
                "no function/Cargo.toml in {} or its parents; run from the tokendeploy checkout, or pass --zip with a zip made by `tokendeploy package`",
                start.display()
            )
        })
}

/// Builds `bootstrap` for `arch` and returns its path: with the checkout's
/// `scripts/build-function.sh` (zig as C compiler and linker, paths remapped: the bytes a
/// release ships), or with a plain `cargo build --release` where there is none.
pub fn build_function(function_dir: &Path, quiet: bool, arch: Arch) -> Result<PathBuf> {
    let script = function_dir.join("../scripts/build-function.sh");
    if script.is_file() {
        return build_with_script(&script, quiet, arch);
    }
    cargo_build(function_dir, quiet, arch)
}

/// Runs the checkout's build script; its last line on stdout is the binary's path. `quiet`:
/// its progress is shown only if it fails.
fn build_with_script(script: &Path, quiet: bool, arch: Arch) -> Result<PathBuf> {
    let output = Command::new("bash")
        .arg(script)
        .arg(arch.lambda_name())
        .stdin(Stdio::null())
        .stderr(if quiet { Stdio::piped() } else { Stdio::inherit() })
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        bail!("{} {arch} failed ({}); see its output above", script.display(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout.lines().last().context("the build script named no binary")?;
    Ok(PathBuf::from(path.trim()))
}

/// Runs `cargo build --release` for `arch`'s target and returns the path of `bootstrap`.
/// Cargo's own progress goes to our stderr; its artifact messages tell where the binary is.
fn cargo_build(function_dir: &Path, quiet: bool, arch: Arch) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = arch.rust_target();
    let mut command = Command::new(&cargo);
    command.args(["build", "--release", "--target", target, "--bin", "bootstrap"]);
    if quiet {
        command.arg("--quiet");
    }
    let mut child = command
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(function_dir.join("Cargo.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {cargo}; is Rust installed (https://rustup.rs)?"))?;

    let mut executable = None;
    for line in BufReader::new(child.stdout.take().expect("stdout is piped")).lines() {
        let line = line.context("reading cargo's output")?;
        if let Some(path) = bootstrap_path(&line) {
            executable = Some(path);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!(
            "building the function failed ({status}); is the target installed? rustup target add {target} (and musl-tools for C dependencies)"
        );
    }
    executable.context("cargo built no bootstrap binary")
}

/// The executable path in a cargo `compiler-artifact` message for the `bootstrap` binary.
fn bootstrap_path(message: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(message).ok()?;
    let is_bootstrap = message["reason"] == "compiler-artifact" && message["target"]["name"] == "bootstrap";
    is_bootstrap.then(|| message["executable"].as_str().map(PathBuf::from)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bootstrap_executable_in_cargo_messages() {
        let artifact = r#"{"reason":"compiler-artifact","target":{"name":"bootstrap"},"executable":"/t/release/bootstrap"}"#;
        assert_eq!(bootstrap_path(artifact), Some(PathBuf::from("/t/release/bootstrap")));
        let library =
            r#"{"reason":"compiler-artifact","target":{"name":"token_function"},"executable":null}"#;
        assert_eq!(bootstrap_path(library), None);
        assert_eq!(bootstrap_path(r#"{"reason":"build-finished","success":true}"#), None);
    }

    /// A checkout of `function/` and `scripts/build-function.sh` (standing in for the real one),
    /// in a directory of its own.
    fn checkout_with_build_script(name: &str, script: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("tokendeploy-build-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("function")).unwrap();
        std::fs::create_dir_all(root.join("scripts")).unwrap();
        std::fs::write(root.join("scripts/build-function.sh"), script).unwrap();
        root
    }

    #[test]
    fn the_checkouts_build_script_names_the_binary_on_its_last_line_quiet_or_not() {
        let root = checkout_with_build_script(
            "names",
            "echo \"progress for $1\" >&2\necho \"building $1\"\necho \"/built/$1/bootstrap\"\n",
        );
        for quiet in [false, true] {
            let built = build_function(&root.join("function"), quiet, Arch::Arm64).unwrap();
            assert_eq!(built, PathBuf::from("/built/arm64/bootstrap"));
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_failing_build_script_is_an_error_naming_it_quiet_or_not() {
        let root = checkout_with_build_script("fails", "echo 'error: linking failed' >&2\nexit 3\n");
        for quiet in [false, true] {
            let error = build_function(&root.join("function"), quiet, Arch::X86_64).unwrap_err();
            let message = format!("{error:#}");
            assert!(message.contains("build-function.sh x86_64 failed"), "{message}");
            assert!(message.contains("exit status: 3"), "{message}");
        }
        std::fs::remove_dir_all(root).unwrap();
    }
}
