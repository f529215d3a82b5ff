//! The token function: holds the app's key and secret server-side and trades them for a
//! short-lived access token that browser and mobile clients may hold.
//!
//! The library is the whole behaviour; `main.rs` only wires [`event::handle`] to the Lambda
//! runtime, so the same [`TokenService`] can serve requests locally (tests, a future
//! `tokendeploy serve` building a [`Request`] from its own HTTP server).

pub mod cache;
mod configuration;
pub mod event;
mod http;
pub mod identity;
pub mod logging;
pub mod provider;
pub mod request;
mod response;
mod secrets_manager;
mod service;

pub use request::{Request, Response};
pub use response::MAX_SAFE_INTEGER;
pub use service::TokenService;
/// The configuration, shared with the CLI that checks and deploys it.
pub use tokendeploy_config as config;
