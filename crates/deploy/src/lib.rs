//! The token server's AWS resources: what should exist ([`desired`]), what exists
//! ([`snapshot`]), the [`plan::Plan`] between them, and the commands that carry it out
//! ([`up`], [`down`], [`status`]), and what shows the stack at work ([`verify`], [`logs`]).
//!
//! Dependencies point one way: the leaves ([`vocabulary`], [`aws`], [`retry`], [`partition`],
//! [`stack`], [`desired`], [`error`]) <- [`resources`] <- [`snapshot`], [`plan`] <- the commands.

pub mod agreement;
pub mod aws;
pub mod desired;
pub mod discover;
pub mod down;
pub mod error;
pub mod logs;
pub mod partition;
pub mod plan;
pub mod resources;
pub mod retry;
mod serving;
pub mod snapshot;
pub mod stack;
pub mod status;
mod steps;
pub mod twins;
pub mod up;
pub mod verify;
pub mod vocabulary;

pub use aws::{Aws, ConnectOptions};
pub use desired::{Desired, FunctionEnvironment};
pub use error::{Error, ErrorKind, UsageError};
pub use plan::Plan;
pub use snapshot::Snapshot;
pub use stack::Stack;
pub use vocabulary::{Action, Progress, Silent, Step, StepReport, Summary};
