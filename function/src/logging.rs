//! Log set-up: JSON lines on Lambda (CloudWatch parses them), readable text elsewhere.
//! Each line inside an invocation carries lambda_runtime's span, and with it the request id.

use tracing::Level;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

pub fn init() {
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let json =
        on_lambda || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    // Lambda adds its own timestamp to every line.
    let layer = match json {
        true => layer.json().with_current_span(true).with_span_list(false).without_time().boxed(),
        false => layer.boxed(),
    };
    let cap = tracing_subscriber::filter::filter_fn(|metadata| may_log(metadata.target(), *metadata.level()));
    tracing_subscriber::registry().with(layer.with_filter(filter).with_filter(cap)).init();
}

/// Whatever level a user sets, other crates log at most at DEBUG: at TRACE, the Lambda runtime
/// logs each raw event (`Authorization: Bearer ...` included) and the HTTP crates what they send;
/// and the request signer not at all (its lines hold the canonical request, and with it the
/// session token). The function's own lines never hold a credential.
fn may_log(target: &str, level: Level) -> bool {
    let own = ["token_function", "bootstrap"]
        .iter()
        .any(|crate_name| target == *crate_name || target.starts_with(&format!("{crate_name}::")));
    match target.split("::").next() {
        Some("aws_sigv4") => false,
        _ => own || level <= Level::DEBUG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_crates_are_capped_below_trace_and_the_signer_is_silent() {
        assert!(!may_log("lambda_runtime::layers::api_response", Level::TRACE));
        assert!(may_log("lambda_runtime::layers::api_response", Level::DEBUG));
        assert!(!may_log("aws_sigv4::http_request::sign", Level::ERROR));
        assert!(may_log("token_function::service", Level::TRACE));
        assert!(may_log("bootstrap", Level::TRACE));
        assert!(!may_log("token_function_impostor", Level::TRACE));
    }
}
