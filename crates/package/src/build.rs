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
        return build_with_script(&script, arch);
    }
    cargo_build(function_dir, quiet, arch)
}

/// Runs the checkout's build script; its last line on stdout is the binary's path.
fn build_with_script(script: &Path, arch: Arch) -> Result<PathBuf> {
    let output = Command::new("bash")
        .arg(script)
        .arg(arch.lambda_name())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
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
}
