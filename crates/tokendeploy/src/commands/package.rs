use anyhow::Result;
use tokendeploy_package::CodeSource;

use crate::cli::{OutputFormat, PackageArgs};
use crate::commands::function_dir;
use crate::display::print_json;

pub async fn run(args: PackageArgs) -> Result<()> {
    let source = CodeSource::Build { function_dir: function_dir()?, quiet: args.output.quiet };
    let artifact = tokio::task::spawn_blocking(move || source.artifact()).await??;
    artifact.write_to(&args.out)?;
    match args.output.output {
        OutputFormat::Text => println!("{}", args.out.display()),
        OutputFormat::Json => print_json(&serde_json::json!({
            "path": args.out,
            "bytes": artifact.bytes.len(),
            "code_sha256": artifact.code_sha256,
        }))?,
    }
    Ok(())
}
