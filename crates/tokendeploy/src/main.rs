use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: starting the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(tokendeploy::run());
    // Not waiting for blocking work still running (a `--build` stopped by a signal): the
    // command has answered, and its exit code is what counts.
    runtime.shutdown_background();
    code
}
