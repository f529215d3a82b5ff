//! One module per AWS resource kind: how to find it, what to change, how to change it, and
//! which of its errors mean "absent" or "retry".

pub mod function;
pub mod permission;
pub mod rest_api;
pub mod role;

use crate::stack::{STACK_TAG, Stack};

/// A resource with our name that this stack did not make: refused, never touched.
pub fn foreign(kind: &str, name: &str, stack: &Stack) -> anyhow::Error {
    anyhow::anyhow!(
        "{kind} {name:?} already exists but is not tagged {STACK_TAG}={}: it belongs to someone else and was left untouched; deploy under another --name",
        stack.name
    )
}
