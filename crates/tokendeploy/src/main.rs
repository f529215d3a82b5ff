use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tokendeploy::run().await
}
