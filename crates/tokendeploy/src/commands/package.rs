use crate::Outcome;
use crate::cli::{CodeArgs, PackageArgs};
use crate::commands::code_source;
use crate::display::{Console, print_result};
use anyhow::Result;
use serde::Serialize;

/// What `package --output json` prints.
#[derive(Serialize)]
struct PackageReport {
    path: std::path::PathBuf,
    bytes: usize,
    code_sha256: String,
}

pub async fn run(args: PackageArgs) -> Result<Outcome> {
    let code = CodeArgs { zip: None, build: args.build };
    let (source, code_line) = code_source(&code, args.arch.into(), args.output.quiet)?;
    Console::new(&args.output).tell(&code_line);
    let artifact = tokio::task::spawn_blocking(move || source.artifact()).await??;
    artifact.write_to(&args.out)?;
    let report =
        PackageReport { path: args.out, bytes: artifact.bytes.len(), code_sha256: artifact.code_sha256 };
    print_result(args.output.output, &report, |report| report.path.display().to_string())?;
    Ok(Outcome::Done)
}
