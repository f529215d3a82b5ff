//! `bootstrap`: the token function on Lambda's `provided.al2023` runtime.
//!
//! The event arrives as raw JSON and is read by [`token_function::event`]: any JSON value gets
//! an answer. Should the handler panic all the same, the release profile's `panic = "unwind"`
//! lets lambda_runtime report that one invocation as failed and keep the instance serving.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use token_function::TokenService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    token_function::logging::init();
    let service = Arc::new(TokenService::from_env());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let service = Arc::clone(&service);
        async move { Ok::<_, Infallible>(token_function::event::handle(&service, &event.payload).await) }
    }))
    .await
}
