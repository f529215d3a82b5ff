//! The CLI's integration tests, one binary with a module a subject: the real `tokendeploy` binary
//! against real servers on loopback. A test that needs the AWS emulator (moto), the function as
//! it ships, Chromium or Node.js is `#[ignore]`d with the reason: `cargo test` runs what needs
//! only Rust, and `scripts/test.sh` runs every test (CONTRIBUTING.md, "Tiers").

mod acceptance;
mod answers;
mod bad_input;
mod browser;
mod concurrency;
mod deployer_policy;
mod docs;
mod drift;
mod faults;
mod gateways;
mod init;
mod installed;
mod jwt_authorizer;
mod lifecycle;
mod profile;
mod regions;
mod security;
mod serve;
mod support;
mod up;
