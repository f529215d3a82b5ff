//! A test hook: set `TOKENDEPLOY_ABORT_AFTER_STEP` to a step's JSON name and the process dies
//! the moment that step finishes, as a killed `up` would. The tests prove with it that any
//! interrupted run can be finished or removed.

use tokendeploy_deploy::{Progress, Step, StepReport};

const ABORT_AFTER_VARIABLE: &str = "TOKENDEPLOY_ABORT_AFTER_STEP";

/// Passes every event on to `inner`, then dies after the named step, if one is named.
pub struct AbortAfter<'a> {
    inner: &'a dyn Progress,
    step: Option<String>,
}

impl<'a> AbortAfter<'a> {
    pub fn from_env(inner: &'a dyn Progress) -> Self {
        Self { inner, step: std::env::var(ABORT_AFTER_VARIABLE).ok() }
    }
}

impl Progress for AbortAfter<'_> {
    fn started(&self, step: Step) {
        self.inner.started(step);
    }

    fn note(&self, step: Step, message: &str) {
        self.inner.note(step, message);
    }

    fn finished(&self, report: &StepReport) {
        self.inner.finished(report);
        if self.step.as_deref() == Some(report.step.name()) {
            std::process::abort();
        }
    }
}
