//! The token server's AWS resources: what should exist ([`desired`]), what exists
//! ([`plan::Observed`]), the [`plan::Plan`] between them, and the calls that carry it out.

pub mod aws;
pub mod desired;
pub mod down;
pub mod plan;
pub mod progress;
pub mod resources;
pub mod stack;
pub mod status;
pub mod up;

pub use aws::{Aws, ConnectOptions};
pub use desired::{Desired, FunctionEnvironment};
pub use plan::{Action, Change, Observed, Plan, Step};
pub use progress::{Progress, StepReport};
pub use stack::Stack;
