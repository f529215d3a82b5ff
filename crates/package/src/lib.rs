//! Packaging the token function for Lambda: build `bootstrap`, check it can run on
//! `provided.al2023` on the CPU asked for, and zip it so the same code always gives the same
//! SHA-256.

mod arch;
mod build;
mod elf;
mod zip_file;

pub use arch::Arch;
pub use build::{build_function, find_function_dir};
pub use elf::{BinaryLinkage, GLIBC_LIMIT, check_lambda_binary};
pub use zip_file::{Artifact, DIRECT_UPLOAD_LIMIT, UNZIPPED_LIMIT, read_zip, zip_bootstrap};

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where the code to deploy comes from.
#[derive(Debug, Clone)]
pub enum CodeSource {
    /// A zip made earlier by `tokendeploy package` (`up --zip`), read and checked already
    /// ([`read_zip`]), so a bad one is refused before any AWS call.
    Zip(Artifact),
    /// The function's crate, built now for `arch`.
    Build { function_dir: PathBuf, quiet: bool, arch: Arch },
}

impl CodeSource {
    pub fn artifact(self) -> Result<Artifact> {
        match self {
            Self::Zip(artifact) => Ok(artifact),
            Self::Build { function_dir, quiet, arch } => package_function(&function_dir, quiet, arch),
        }
    }
}

/// Builds the function in `function_dir` for `arch` and zips it. `quiet` keeps cargo to its
/// errors.
pub fn package_function(function_dir: &Path, quiet: bool, arch: Arch) -> Result<Artifact> {
    let binary_path = build_function(function_dir, quiet, arch)?;
    let binary = std::fs::read(&binary_path)
        .with_context(|| format!("reading the built function {}", binary_path.display()))?;
    check_lambda_binary(&binary, arch).with_context(|| format!("checking {}", binary_path.display()))?;
    zip_bootstrap(&binary, arch)
}
