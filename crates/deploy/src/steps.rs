//! Running steps for the commands: progress told, time measured, errors named by step.

use crate::vocabulary::{Action, Progress, Step, StepReport};

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
