//! The token function: holds the app's key and secret server-side and trades them for a
//! short-lived access token that browser and mobile clients may hold.
//!
//! The library is the whole behaviour; `main.rs` only wires it to the Lambda runtime, so
//! the same [`TokenService`] can serve requests locally (tests, a future `tokendeploy serve`).

pub mod cache;
pub mod config;
pub mod cors;
pub mod logging;
pub mod provider;
mod response;
mod service;

pub use service::TokenService;
