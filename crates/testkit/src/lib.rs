//! Test harnesses shared by the workspace's tests and benchmarks: real servers on loopback,
//! never mocks of our own code.

pub mod fault_proxy;
pub mod moto;
pub mod runtime_api;
