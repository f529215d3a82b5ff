//! One module per AWS resource kind, each with the same skeleton:
//!
//! - `KIND`, its name as errors say it, and its observed state;
//! - `find`: ours, someone else's, or absent ([`Lookup`]);
//! - `plan`: a typed change that says exactly what to do ([`crate::vocabulary::Planned`]);
//! - `apply`: carries that change out, deciding nothing again;
//! - `delete`: for `down`; gone already is fine.
//!
//! Resource modules depend on the leaves (vocabulary, aws, retry, stack, desired, error) and on
//! nothing that gathers them: the snapshot, the plan and the commands do that.

pub mod cors;
pub mod function;
pub mod function_url;
pub mod http_api;
pub mod log_group;
pub mod permission;
pub mod rest_api;
pub mod role;
pub mod secret;
pub mod secret_access;

use anyhow::Result;

use crate::error::ForeignResource;
use crate::stack::Stack;

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

    pub fn ours(&self) -> Option<&T> {
        match self {
            Lookup::Ours(state) => Some(state),
            _ => None,
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

pub fn foreign(kind: &str, name: &str, stack: &Stack) -> anyhow::Error {
    ForeignResource { kind: kind.into(), name: name.into(), stack: stack.name.clone() }.into()
}
