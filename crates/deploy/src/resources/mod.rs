//! One module per AWS resource kind: how to find it, what to change, how to change it, and
//! which of its errors mean "absent" or "retry".

pub mod function;
pub mod log_group;
pub mod permission;
pub mod rest_api;
pub mod role;

use anyhow::Result;

use crate::stack::{STACK_TAG, Stack};

/// What looking a resource up by its derived name found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    Absent,
    /// Carries our stack tag.
    Ours(T),
    /// Has our name but not our tag: someone else's, never touched.
    Foreign,
}

impl<T> Lookup<T> {
    /// `None` when absent, else whether it is ours.
    pub fn is_ours(&self) -> Option<bool> {
        match self {
            Lookup::Absent => None,
            Lookup::Ours(_) => Some(true),
            Lookup::Foreign => Some(false),
        }
    }

    /// For `up`: a foreign resource stops the run before anything changes.
    pub fn ours_or_refuse(self, kind: &str, name: &str, stack: &Stack) -> Result<Option<T>> {
        match self {
            Lookup::Absent => Ok(None),
            Lookup::Ours(state) => Ok(Some(state)),
            Lookup::Foreign => Err(foreign(kind, name, stack)),
        }
    }
}

/// A resource with our name that this stack did not make: refused, never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignResource {
    pub kind: String,
    pub name: String,
    pub stack: String,
}

impl std::fmt::Display for ForeignResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} already exists but is not tagged {STACK_TAG}={}: it belongs to someone else and was left untouched; deploy under another --name",
            self.kind, self.name, self.stack
        )
    }
}

impl std::error::Error for ForeignResource {}

pub fn foreign(kind: &str, name: &str, stack: &Stack) -> anyhow::Error {
    ForeignResource { kind: kind.into(), name: name.into(), stack: stack.name.clone() }.into()
}
