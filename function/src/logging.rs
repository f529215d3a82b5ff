//! Log set-up: JSON lines on Lambda (CloudWatch parses them), readable text elsewhere.
//! Each line inside an invocation carries lambda_runtime's span, and with it the request id.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // Its trace lines hold the canonical request, and with it the session token.
        .add_directive("aws_sigv4=off".parse().expect("a valid directive"));
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    if on_lambda || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        // Lambda adds its own timestamp to every line.
        builder.json().with_current_span(true).with_span_list(false).without_time().init();
    } else {
        builder.init();
    }
}
