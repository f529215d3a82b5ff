//! `--region a,b,c`: the same stack in each region, side by side, a few at a time; each region
//! finishes or fails on its own, and the command's result holds every region's, its exit code
//! the worst of theirs (1 over 3 over 0).

use std::collections::BTreeSet;
use std::future::Future;

use anyhow::Result;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};
use tokendeploy_deploy::{ErrorKind, Progress, Stack, Step, StepReport};

use tokendeploy_package::CodeSource;

use crate::abort::AbortAfter;
use crate::cli::{OutputArgs, OutputFormat};
use crate::display::{Console, print_result, say};
use crate::{Outcome, UsageError, exit_code};

/// Regions worked on at once: each holds its own connections and moto or AWS calls.
const AT_ONCE: usize = 4;

/// Where a command works: the one region `--region` names (or none: the profile's), or the
/// several of a comma-separated list.
pub enum Regions {
    One(Option<String>),
    Several(Vec<String>),
}

/// `--region` read and checked before any AWS call: every name well formed, none twice, all of
/// one partition (an account lives in one; its credentials work in no other).
pub fn parse(region: Option<&str>, stack_name: &str) -> Result<Regions, UsageError> {
    let Some(listed) = region.filter(|region| region.contains(',')) else {
        return Ok(Regions::One(region.map(str::to_string)));
    };
    let names: Vec<String> = listed.split(',').map(|name| name.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(UsageError(format!(
            "--region {listed:?} has an empty name in its list: separate regions with single commas, such as us-west-1,eu-west-1"
        )));
    }
    let mut seen = BTreeSet::new();
    if let Some(twice) = names.iter().find(|name| !seen.insert(name.as_str())) {
        return Err(UsageError(format!("--region names {twice} twice: list each region once")));
    }
    let mut partitions = Vec::new();
    for name in &names {
        let stack = Stack::new(stack_name, name).map_err(|e| UsageError(format!("--region: {e:#}")))?;
        partitions.push((stack.partition, name));
    }
    if let Some((_, other)) = partitions.iter().find(|(partition, _)| *partition != partitions[0].0) {
        return Err(UsageError(format!(
            "--region mixes partitions ({} is in {}, {other} is not): an account and its credentials live in one partition, so run tokendeploy once per partition",
            partitions[0].1,
            partitions[0].0.name()
        )));
    }
    Ok(Regions::Several(names))
}

/// What a command made of one region: its outcome, its result as JSON, and as text.
pub struct Finished {
    pub outcome: Outcome,
    pub json: Value,
    pub text: String,
}

impl Finished {
    pub fn of<T: Serialize>(outcome: Outcome, report: &T, text: impl FnOnce(&T) -> String) -> Result<Self> {
        Ok(Self { outcome, json: serde_json::to_value(report)?, text: text(report) })
    }

    /// Prints it as the command's whole result (one region).
    pub fn print(self, format: OutputFormat) -> Result<Outcome> {
        print_result(format, &self.json, |_| self.text.clone())?;
        Ok(self.outcome)
    }
}

/// What every region's run is given alike: the function's code for `up`, `plan` and `status`,
/// nothing for the others.
pub trait Given: Clone {
    /// Made ready once for several regions, so each gets the same, made once (a zip built
    /// once, not once a region).
    fn once_for_all(self) -> Result<Self>;
}

impl Given for () {
    fn once_for_all(self) -> Result<Self> {
        Ok(())
    }
}

impl Given for CodeSource {
    fn once_for_all(self) -> Result<Self> {
        Ok(CodeSource::Zip(self.artifact()?))
    }
}

/// Runs `in_region` where `regions` says: in the one region with the console's progress (and
/// the test hook that kills a run after a step), or in each of several with [`each`], each
/// given `given`.
pub async fn run<G, F>(regions: Regions, output: &OutputArgs, given: G, in_region: F) -> Result<Outcome>
where
    G: Given,
    F: AsyncFn(Option<String>, G, &dyn Progress, &dyn Fn(&str)) -> Result<Finished>,
{
    match regions {
        Regions::One(region) => {
            let console = Console::new(output);
            let progress = AbortAfter::from_env(&console);
            let finished = in_region(region, given, &progress, &|line| console.tell(line)).await;
            console.clear();
            finished?.print(output.output)
        }
        Regions::Several(list) => {
            // Nothing to make for no region (`--all-regions` that found none).
            let given = if list.is_empty() { given } else { given.once_for_all()? };
            each(list, output, |region, lines| {
                let (in_region, given) = (&in_region, given.clone());
                async move { in_region(Some(region), given, &lines, &|line| lines.tell(line)).await }
            })
            .await
        }
    }
}

/// Runs `body` in each region, [`AT_ONCE`] at a time, each with progress of its own (a line a
/// region on a terminal, else lines prefixed by the region); prints every region's result, in
/// the order listed, and returns the worst outcome. A region's failure is its result, not the others' end.
pub async fn each<F, Fut>(regions: Vec<String>, output: &OutputArgs, body: F) -> Result<Outcome>
where
    F: Fn(String, RegionLines) -> Fut,
    Fut: Future<Output = Result<Finished>>,
{
    // On a terminal, a line a region, its current step on it; elsewhere, prefixed lines.
    let bars = (!output.quiet && crate::display::draws_in_place())
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let runs = regions.iter().map(|region| {
        let bar = bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<15} {msg}").expect("a valid template"),
            );
            bar.set_prefix(region.clone());
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        });
        let lines = RegionLines { region: region.clone(), quiet: output.quiet, bar };
        let run = body(region.clone(), lines.clone());
        async move {
            let finished = run.await;
            lines.done(finished.is_ok());
            (region.clone(), finished)
        }
    });
    let mut finished: Vec<(String, Result<Finished>)> =
        futures::stream::iter(runs).buffer_unordered(AT_ONCE).collect().await;
    finished.sort_by_key(|(region, _)| regions.iter().position(|listed| listed == region));
    let mut worst = 0;
    let mut results = Vec::new();
    let mut texts = Vec::new();
    for (region, result) in finished {
        let (code, entry, text) = match result {
            Ok(done) => {
                let code = match done.outcome {
                    Outcome::Done => 0,
                    Outcome::OutOfSync => 3,
                    Outcome::Failed => 1,
                };
                (code, json!({ "region": region, "exit_code": code, "result": done.json }), done.text)
            }
            Err(error) => {
                let message = format!("{error:#}");
                say(&format!("error: {region}: {message}"));
                let code = exit_code(&error);
                let kind = ErrorKind::of(&error).name();
                let error = json!({ "kind": kind, "message": message });
                (
                    code,
                    json!({ "region": region, "exit_code": code, "error": error }),
                    format!("error: {message}"),
                )
            }
        };
        worst = worse(worst, code);
        results.push(entry);
        texts.push(format!("{region}: {}", text.replace('\n', "\n  ")));
    }
    let all = json!({ "regions": results, "exit_code": worst });
    print_result(output.output, &all, |_| texts.join("\n"))?;
    Ok(match worst {
        0 => Outcome::Done,
        3 => Outcome::OutOfSync,
        _ => Outcome::Failed,
    })
}

/// 1 (or 2) over 3 over 0.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |code: u8| match code {
        0 => 0,
        3 => 1,
        _ => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// One region's progress: on a terminal, its own line showing the step at hand; elsewhere a
/// plain line a finished step, prefixed by the region, so the regions' lines read apart.
#[derive(Clone)]
pub struct RegionLines {
    region: String,
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl RegionLines {
    pub fn tell(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            None if !self.quiet => say(&format!("{:<15} {line}", self.region)),
            None => {}
        }
    }

    /// The region's line, once its work is over.
    fn done(&self, ok: bool) {
        if let Some(bar) = &self.bar {
            bar.set_style(ProgressStyle::with_template("{prefix:<17} {msg}").expect("a valid template"));
            bar.finish_with_message(if ok { "✔ done" } else { "✘ failed (below)" });
        }
    }
}

impl Progress for RegionLines {
    fn started(&self, step: Step) {
        if self.bar.is_some() {
            self.tell(step.title());
        }
    }

    fn note(&self, step: Step, message: &str) {
        self.tell(&format!("{:<26} {message}", step.title()));
    }

    fn finished(&self, report: &StepReport) {
        self.tell(&format!("{:<26} {} ({:.1}s)", report.step.title(), report.outcome(), report.seconds));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(region: &str) -> String {
        match parse(Some(region), "token-server") {
            Err(UsageError(message)) => message,
            Ok(_) => panic!("{region} accepted"),
        }
    }

    #[test]
    fn a_list_is_several_regions_each_checked_once_and_of_one_partition() {
        assert!(matches!(parse(None, "s"), Ok(Regions::One(None))));
        assert!(matches!(parse(Some("us-west-1"), "s"), Ok(Regions::One(Some(r))) if r == "us-west-1"));
        let Ok(Regions::Several(list)) = parse(Some("us-west-1, eu-west-1,ap-southeast-2"), "s") else {
            panic!("not several")
        };
        assert_eq!(list, ["us-west-1", "eu-west-1", "ap-southeast-2"]);
        assert!(refusal("us-west-1,us-west-1").contains("names us-west-1 twice"));
        assert!(refusal("us-west-1,,eu-west-1").contains("an empty name"));
        assert!(refusal("us-west-1,mars").contains("region \"mars\" is not an AWS region name"));
        assert!(
            refusal("us-west-1,cn-north-1").contains("mixes partitions (us-west-1 is in aws, cn-north-1")
        );
        assert!(refusal("us-west-1,us-isob-east-1").contains("aws-iso-b partition"));
    }

    #[test]
    fn the_worst_exit_wins_failure_over_drift_over_done() {
        assert_eq!([0, 3, 0].into_iter().fold(0, worse), 3);
        assert_eq!([3, 1, 0].into_iter().fold(0, worse), 1);
        assert_eq!([0, 2, 3].into_iter().fold(0, worse), 2);
        assert_eq!([0, 0].into_iter().fold(0, worse), 0);
    }
}
