//! The deployer as a library against a moto server over HTTP, one binary with a module a subject.
//! Every test needs the emulator, so each is `#[ignore]`d with the reason: `scripts/test.sh`
//! runs them (CONTRIBUTING.md, "Tiers").

mod aws_behaviours;
mod common;
mod library;
mod retries;
mod security;
