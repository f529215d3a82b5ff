//! The CORS a gateway answers with when it answers CORS itself (a function URL, an HTTP API):
//! from ALLOWED_ORIGINS, as the function would answer it.

use tokendeploy_config::origins::AllowedOrigins;

use crate::desired::Desired;

/// The request headers a browser may send: as the function's own preflight answer allows
/// (function/src/response.rs), but for `x-api-key`, which only a REST API has use for.
const ALLOWED_HEADERS: [&str; 2] = ["authorization", "content-type"];
/// How long a browser may keep a preflight's answer: as the function's own preflight says.
const PREFLIGHT_MAX_AGE: i32 = 600;

/// CORS as `up` sets it; every list empty when no origin is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    /// Lowercase.
    pub allow_headers: Vec<String>,
    pub max_age: i32,
}

/// The allowed origins (or `*`), and the methods the function answers but OPTIONS (the
/// gateway answers preflights itself; a function URL takes methods of at most 6 letters).
pub fn wanted(desired: &Desired) -> Cors {
    let origins = desired.environment.variables.get("ALLOWED_ORIGINS");
    let allow_origins = match origins.and_then(|value| AllowedOrigins::parse(value)) {
        None => return Cors::default(),
        Some(AllowedOrigins::Any) => vec!["*".to_string()],
        Some(AllowedOrigins::List(list)) => list,
    };
    let methods = desired.methods().iter().filter(|method| **method != "OPTIONS");
    Cors {
        allow_origins,
        allow_methods: methods.map(|method| method.to_string()).collect(),
        allow_headers: ALLOWED_HEADERS.map(str::to_string).to_vec(),
        max_age: PREFLIGHT_MAX_AGE,
    }
}
