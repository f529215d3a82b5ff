//! How `up` and its peers tell a person or a pipeline what they are doing.

use serde::Serialize;

use crate::plan::{Action, Step};

/// One finished step, as reported in JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    #[serde(serialize_with = "serialize_step_name", rename = "name")]
    pub step: Step,
    pub action: Action,
    pub seconds: f64,
}

impl StepReport {
    /// `seconds` to the millisecond.
    pub fn new(step: Step, action: Action, took: std::time::Duration) -> Self {
        Self { step, action, seconds: (took.as_secs_f64() * 1000.0).round() / 1000.0 }
    }
}

fn serialize_step_name<S: serde::Serializer>(step: &Step, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(step.name())
}

/// Receives step events; the CLI draws progress bars or plain lines from them.
pub trait Progress: Send + Sync {
    fn started(&self, step: Step);
    /// Something slow is happening inside the step (waiting for AWS, retrying).
    fn note(&self, step: Step, message: &str);
    fn finished(&self, report: &StepReport);
}

/// Reports nothing: for library callers and tests that do not watch.
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _: Step) {}
    fn note(&self, _: Step, _: &str) {}
    fn finished(&self, _: &StepReport) {}
}

/// Runs one step: tells `progress` it started, runs `work`, and reports how long it took.
pub async fn run_step<T>(
    progress: &dyn Progress,
    step: Step,
    action: Action,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, StepReport)> {
    let started = std::time::Instant::now();
    progress.started(step);
    let value = work.await.map_err(|e| e.context(format!("{} ({})", step.title(), action.planned())))?;
    let report = StepReport::new(step, action, started.elapsed());
    progress.finished(&report);
    Ok((value, report))
}
