//! Running steps for the commands: progress told, time measured, errors named by step.

use crate::vocabulary::{Progress, Step, StepReport, Summary};

/// Runs one step: tells `progress` it started, runs `work`, and reports how long it took.
pub async fn run_step<T>(
    progress: &dyn Progress,
    step: Step,
    summary: Summary,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, StepReport)> {
    let started = std::time::Instant::now();
    progress.started(step);
    let value =
        work.await.map_err(|e| e.context(format!("{} ({})", step.title(), summary.action.planned())))?;
    let report = StepReport::new(step, &summary, started.elapsed());
    progress.finished(&report);
    Ok((value, report))
}
