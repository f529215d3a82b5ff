//! The token function's integration tests, one binary with a module a subject: the handler in
//! process, and the `bootstrap` binary under a loopback Lambda Runtime API. A test that needs
//! the emulator (moto), Python's token libraries or qemu is `#[ignore]`d with the reason:
//! `cargo test` runs what needs only Rust, and `scripts/test.sh` runs every test
//! (CONTRIBUTING.md, "Tiers").

mod aws_events;
mod bootstrap_arm64;
mod bootstrap_runtime;
mod bootstrap_secrets_manager;
mod common;
mod fuzz;
mod handler;
mod identity;
mod logs;
mod minted_tokens;
mod minting;
mod real_world;
