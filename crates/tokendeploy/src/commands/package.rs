use anyhow::Result;
use serde::Serialize;
use tokendeploy_package::CodeSource;

use crate::Outcome;
use crate::cli::PackageArgs;
use crate::commands::function_dir;
use crate::display::print_result;

/// What `package --output json` prints.
#[derive(Serialize)]
struct PackageReport {
    path: std::path::PathBuf,
    bytes: usize,
    code_sha256: String,
}

pub async fn run(args: PackageArgs) -> Result<Outcome> {
    let source = CodeSource::Build { function_dir: function_dir()?, quiet: args.output.quiet };
    let artifact = tokio::task::spawn_blocking(move || source.artifact()).await??;
    artifact.write_to(&args.out)?;
    let report =
        PackageReport { path: args.out, bytes: artifact.bytes.len(), code_sha256: artifact.code_sha256 };
    print_result(args.output.output, &report, |report| report.path.display().to_string())?;
    Ok(Outcome::Done)
}
