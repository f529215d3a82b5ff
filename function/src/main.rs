//! `bootstrap`: the token function on Lambda's `provided.al2023` runtime.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use token_function::TokenService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    token_function::logging::init();
    let service = Arc::new(TokenService::from_env());
    lambda_http::run(service_fn(move |request: Request| {
        let service = Arc::clone(&service);
        async move { Ok::<_, Infallible>(service.handle(request).await) }
    }))
    .await
}
